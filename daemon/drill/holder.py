"""PID 1 of a drill's bubble: holds its namespaces and reaps orphans until told to go.

Run as ``unshare --mount --net --pid --fork ... python -m daemon.drill.holder TAG`` (the
drill id, by which the drill finds it). While it
lives, the bubble's mount, network and PID namespaces live; when it ends (SIGTERM, or
SIGKILL from the teardown), the kernel kills every process left in its PID namespace,
containers' processes included (their PID namespaces are nested in it).
"""

from __future__ import annotations

import os
import signal
import sys


def _reap(_signum: int, _frame: object) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGCHLD, _reap)
    print("ready", flush=True)
    # Let go of the pipe of whoever started us: the drill reads "ready", then EOF.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
