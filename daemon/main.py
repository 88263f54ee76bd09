"""``ferryd``: the node daemon's entry point.

The daemon itself (listener, heartbeat, monitor, scheduler) is issue 6; until it
lands this entry point says so instead of pretending to run.
"""

from __future__ import annotations

import sys


def main() -> None:
    print("ferryd: the daemon is not built yet (issue 6); use 'ferry ... --local'", file=sys.stderr)
    sys.exit(1)
