"""One action at a time per service and node.

The lock is a file in the service's state dir, held with ``flock`` by whoever
acts (the daemon or a ``--local`` CLI run). The holder writes what it does in
the file, so that a second caller that gives up after waiting can say which
action is running. The kernel drops the lock when the holder dies: no stale lock.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

POLL_SECONDS = 0.1


class LockBusy(Exception):
    """Another action holds the lock and did not release it in time."""


def _describe_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another action"
    action = info.get("action", "another action")
    since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
    return f"'{action}' (pid {info.get('pid', '?')}, since {since})"


@asynccontextmanager
async def action_lock(state_dir: Path, action: str, wait: float) -> AsyncIterator[None]:
    """Hold the service's action lock for the duration of the block; wait at most ``wait``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "action.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"{_describe_holder(path)} is running on this service; "
                        f"waited {wait:g}s for it, try again when it is done"
                    ) from None
                await asyncio.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, json.dumps({"action": action, "pid": os.getpid(), "since": time.time()}).encode(), 0
        )
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
