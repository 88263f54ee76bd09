"""Host paths that testbeds make for one another (``/run/netns``, ``/dev/mapper``).

A testbed records in its own state what it made, but a path made by testbed A is
also used by testbed B brought up meanwhile, and A cannot take it back while B is
up: B's ``down`` must, although B did not make it. So what any testbed makes on
the host is also listed in one host-wide file, ``/run/ferry-testbed.host-made``
(on tmpfs, like the paths it lists: gone at reboot); the last testbed down takes
back what is listed there, and the file with its last line.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

MARKER = Path("/run/ferry-testbed.host-made")


@contextmanager
def _locked() -> Iterator[list[str]]:
    """The listed items, under an exclusive lock; the list is written back at the end (the
    file removed, still under the lock, when it is empty)."""
    while True:
        handle = open(MARKER, "a+")  # noqa: SIM115 (closed below, after the lock's work)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(MARKER).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()  # removed by the last holder while we waited: open it again
    with handle:
        handle.seek(0)
        items = [line.strip() for line in handle if line.strip()]
        before = list(items)
        yield items
        if not items:
            MARKER.unlink(missing_ok=True)
        elif items != before:
            handle.seek(0)
            handle.truncate()
            handle.write("".join(f"{item}\n" for item in items))


def listed() -> set[str]:
    """What testbeds made on the host and no one took back yet."""
    if not MARKER.exists():
        return set()
    with _locked() as items:
        return set(items)


def claim(made: Iterable[str]) -> None:
    """List what a testbed is about to make on the host."""
    made = list(made)
    if not made:
        return
    with _locked() as items:
        items += [item for item in made if item not in items]


def release(done: Iterable[str]) -> None:
    """Unlist what was taken back."""
    done = set(done)
    if not done or not MARKER.exists():
        return
    with _locked() as items:
        items[:] = [item for item in items if item not in done]
