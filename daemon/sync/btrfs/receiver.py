"""The target side of a btrfs sync: receive a send stream into the snapshot directory.

Two ways in. Over ssh, ``ferry SVC sync btrfs-peer receive`` reads the stream from its
stdin (the CLI alone, or a target whose ferryd does not answer): :func:`receive_stdin`.
In ferryd, the sender's calls open and close the receive around a plain ``btrfs
receive`` run by ssh, so that no Python starts on the target before the first byte lands
(half a second of a full send): ``receive-open`` mounts the top level and removes what an
interrupted receive left (:func:`open_receive`), ``receive-done`` verifies, refreshes the
data and closes (:func:`close_receive`); ``receive-abort``, or the open receive's own
deadline when its sender vanishes, cleans up and closes.

While a stream lands, the filesystem is committed every second: a receive leaves the data
in memory, and the refresh's snapshot would otherwise write all of it at the end (1.1 s
of a 5 s full send of 1 GiB, measured), after the transfer instead of beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from daemon.resources.base import ResourceError
from daemon.sync.btrfs import side as sides
from daemon.sync.btrfs.plan import obsolete

log = logging.getLogger("ferry.sync")

COMMIT_EVERY = 1.0  # seconds between commits while a stream lands
OPEN_GRACE = 60.0  # an open receive outlives the transfer's own timeout by this much


class Driver(Protocol):
    """What a receive needs of the btrfs sync resource (driver.py)."""

    rid: str
    values: dict[str, Any]

    @property
    def service(self) -> str: ...

    def open_side(self, location: str) -> AbstractAsyncContextManager[sides.Side]: ...

    def point_refs(self) -> set[str]: ...


class Committer:
    """Commits a filesystem every COMMIT_EVERY seconds until stopped."""

    def __init__(self, side: sides.Side) -> None:
        self.side = side
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(COMMIT_EVERY)
            try:
                await self.side.commit()
            except ResourceError as exc:  # the final refresh commits anyway
                log.debug("commit during a receive: %s", exc)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def begin(side: sides.Side) -> set[str]:
    """Ready the snapshot directory for a stream: what it holds before it. A receive of an
    earlier stream that still waits (cut off from its sender) is ended first."""
    await end_receivers(side.snap_dir)
    for leftover in await side.clean_incomplete():
        log.info("removed %s, left by an interrupted receive", leftover)
    side.snap_dir.mkdir(parents=True, exist_ok=True)
    return {p.name for p in side.snap_dir.iterdir()}


async def finish(driver: Driver, side: sides.Side, before: set[str]) -> list[str]:
    """After a stream landed: verify it, make it the data, drop what it obsoletes."""
    new = [p for p in side.snap_dir.iterdir() if sides.is_subvolume(p) and p.name not in before]
    if len(new) != 1:
        await side.clean_incomplete()
        raise ResourceError(f"btrfs receive made {len(new)} subvolumes, expected 1")
    final = new[0]
    await side.verify_received(final)
    warnings = await side.refresh_data(final)
    # The snapshots of restore points stay (the keeper prunes them by the policy);
    # one received by a run whose point was not recorded goes.
    points = driver.point_refs()
    await side.delete(
        [n for n in obsolete(await side.snapshots(), keep=final.name) if n not in points]
    )
    side.pairs_path.unlink(missing_ok=True)  # a record of when it sent: moot now
    return warnings


async def receive_stdin(driver: Driver, stdin_fd: int) -> list[str]:
    """Receive a send stream from stdin_fd (``btrfs-peer receive`` over ssh)."""
    async with driver.open_side(str(driver.values["dst"])) as side:
        before = await begin(side)
        committer = Committer(side)
        try:
            proc = await asyncio.create_subprocess_exec(
                "btrfs", "receive", "-q", str(side.snap_dir),
                stdin=stdin_fd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await proc.communicate()
        finally:
            await committer.stop()
        if proc.returncode != 0:
            await side.clean_incomplete()
            raise ResourceError(f"btrfs receive: exit {proc.returncode}: {err.decode().strip()}")
        return await finish(driver, side, before)


# Receives held open by ferryd ----------------------------------------------------------------


@dataclass
class _Open:
    stack: AsyncExitStack  # the top level's mount
    side: sides.Side
    before: set[str]
    committer: Committer
    deadline: asyncio.TimerHandle

    async def close(self) -> None:
        self.deadline.cancel()
        await self.committer.stop()
        await self.stack.aclose()


_open: dict[tuple[str, str], _Open] = {}  # by service and rid
_expiring: set[asyncio.Task[dict[str, Any]]] = set()


async def open_receive(driver: Driver) -> dict[str, Any]:
    """Open a receive for a stream that ssh carries into ``btrfs receive DIR``: DIR."""
    key = (driver.service, driver.rid)
    if key in _open:  # its sender lost it (killed, timed out) and tries again
        await abort_receive(driver, "a new receive was opened")
    stack = AsyncExitStack()
    try:
        side = await stack.enter_async_context(driver.open_side(str(driver.values["dst"])))
        before = await begin(side)
    except BaseException:
        await stack.aclose()
        raise
    ttl = float(driver.values["timeout"]) + OPEN_GRACE
    deadline = asyncio.get_running_loop().call_later(ttl, _expire, driver, ttl)
    _open[key] = _Open(stack, side, before, Committer(side), deadline)
    return {"dir": str(side.snap_dir)}


async def close_receive(driver: Driver) -> dict[str, Any]:
    """The stream has landed: verify, refresh the data, close. Its warnings."""
    held = _open.pop((driver.service, driver.rid), None)
    if held is None:
        raise ResourceError("no receive is open (closed by its deadline, or ferryd restarted)")
    try:
        await held.committer.stop()
        return {"warnings": await finish(driver, held.side, held.before)}
    finally:
        await held.close()


async def abort_receive(driver: Driver, why: str) -> dict[str, Any]:
    """Close an open receive whose stream failed: end its ``btrfs receive`` if it still
    waits (cut off from its sender, it waits on a dead ssh session), remove what it left."""
    held = _open.pop((driver.service, driver.rid), None)
    if held is None:
        return {}
    log.info("%s %s: receive aborted: %s", driver.service, driver.rid, why)
    try:
        await held.committer.stop()
        await end_receivers(held.side.snap_dir)
        await held.side.clean_incomplete()
    finally:
        await held.close()
    return {}


async def end_receivers(snap_dir: Path, grace: float = 5.0) -> list[int]:
    """Kill the ``btrfs receive -q snap_dir`` processes of this node (this resource's own
    command line, nothing else) and wait for them to go: their pids."""
    wanted = ["btrfs", "receive", "-q", str(snap_dir)]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if [a.decode(errors="replace") for a in argv] == wanted:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                found.append(int(entry.name))
    deadline = time.monotonic() + grace
    while any(Path(f"/proc/{pid}").exists() for pid in found) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if found:
        log.info("ended a receive left waiting in %s (pids %s)", snap_dir, found)
    return found


def _expire(driver: Driver, ttl: float) -> None:
    task = asyncio.create_task(abort_receive(driver, f"its sender did not end it in {ttl:g}s"))
    _expiring.add(task)
    task.add_done_callback(_expired)


def _expired(task: asyncio.Task[dict[str, Any]]) -> None:
    _expiring.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("closing an expired receive failed: %s", task.exception())
