"""Entry point of the benchmarks; each benchmark registers in BENCHMARKS."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import api, drill, failover, hostile, restore, scale, scheduler, sync, wan

BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    **sync.BENCHMARKS,
    **api.BENCHMARKS,
    **scheduler.BENCHMARKS,
    **failover.BENCHMARKS,
    **drill.BENCHMARKS,
    **hostile.BENCHMARKS,
    **restore.BENCHMARKS,
    **wan.BENCHMARKS,
    **scale.BENCHMARKS,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        known = ", ".join(sorted(BENCHMARKS))
        print(f"usage: python -m bench NAME [options]; benchmarks: {known}", file=sys.stderr)
        return 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
