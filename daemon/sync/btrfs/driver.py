"""The btrfs sync driver: snapshot, incremental send, receive, verify, rotate, refresh.

Plan (which parent to send from, which snapshots the sender keeps: every target's pair,
so that each one, even one dead for a while, stays incremental) is pure (``plan.py``);
the side operations are in ``side.py``; the target's side runs as ``ferry SVC sync
btrfs-peer`` over ssh, so the same code acts on both ends. The size of a send is
estimated from its ``--no-data`` twin (``stream.py``), for the ETA.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.resources.base import ResourceError
from daemon.restore import keeper as restore
from daemon.restore.points import Entry
from daemon.sync.base import SyncDriver, TargetReport, TransferResult
from daemon.sync.btrfs import receiver
from daemon.sync.btrfs import side as sides
from daemon.sync.btrfs.plan import (
    Snapshot,
    common_parent,
    full_send_reason,
    ordered,
    retention,
    snapshot_name,
)
from daemon.sync.btrfs.stream import SendSize
from daemon.sync.progress import Progress
from daemon.sync.stamps import Stamp
from daemon.sync.transport import Peers, SourceFailed, TransportError
from daemon.system.command import kill

log = logging.getLogger("ferry.sync")
CHUNK = 256 * 1024
PEER_TIMEOUT = 300.0
ABORT_TIMEOUT = 10.0


class Driver(SyncDriver):
    _run_snapshot: tuple[str, float] | None = None  # this run's snapshot: name, when taken
    """A btrfs subvolume replicated by snapshots and send/receive."""

    def label(self) -> str:
        return f"{self.values['src']} to {self.values['dst']} on {' '.join(self.pools)}"

    @property
    def service(self) -> str:
        return self.instance.name

    def work_dir(self) -> Path:
        return self.sync_dir / "btrfs"

    def service_devices(self) -> list[str]:
        """The devices the service's fs resources name on this node."""
        return [
            str(r.values["dev"])
            for r in self.instance.resources.values()
            if r.group == "fs" and r.values.get("dev")
        ]

    def open_side(self, location: str) -> AbstractAsyncContextManager[sides.Side]:
        label, subvolume = sides.parse_location(location)
        return sides.opened(
            label, subvolume, self.work_dir(), self.instance.name, self.rid, self.service_devices()
        )

    def _peer_argv(self, verb: str) -> list[str]:
        return self.remote_argv("sync", "btrfs-peer", "--rid", self.rid, "--", verb)

    async def _remote_snapshots(self, target: str, peers: Peers) -> list[Snapshot]:
        """What the target holds (its ferryd answers when this runs in ferryd)."""
        answer = await self.daemon_call(target, peers, "list")
        if answer is not None:
            items = answer.get("snapshots")
        else:
            result = await peers.run(target, self._peer_argv("list"), timeout=PEER_TIMEOUT)
            if not result.ok:
                error = result.stderr.strip() or "btrfs-peer list failed"
                raise ResourceError(f"{target}: {error}")
            items = json.loads(result.stdout) if result.stdout.strip() else None
        try:
            return [Snapshot(**item) for item in items or []]
        except (ValueError, TypeError) as exc:
            raise ResourceError(f"{target}: unreadable snapshot list: {exc}") from None

    async def peer_verb(self, verb: str, sender: str) -> dict[str, Any]:
        """list and the receive's calls, asked through the daemons (see
        SyncDriver.daemon_call and receiver.py)."""
        if verb == "list":
            return {"snapshots": await peer_list(self)}
        if verb == "receive-open":
            return await receiver.open_receive(self)
        if verb == "receive-done":
            return await receiver.close_receive(self)
        if verb == "receive-abort":
            return await receiver.abort_receive(self, f"{sender}'s stream failed")
        return await super().peer_verb(verb, sender)

    async def _open_receive(self, target: str, peers: Peers) -> list[str]:
        """The receiving command on target: a plain ``btrfs receive`` into the directory
        its ferryd opened, or (no daemon answers) ``ferry ... btrfs-peer receive``."""
        opened = await self.daemon_call(target, peers, "receive-open")
        if opened is None:
            return self._peer_argv("receive")
        return ["btrfs", "receive", "-q", str(opened["dir"])]

    async def _close_receive(self, target: str, peers: Peers, ok: bool) -> None:
        """End the receive opened on target's ferryd: verified and refreshed when ok."""
        if ok:
            answer = await self.daemon_call(target, peers, "receive-done", timeout=PEER_TIMEOUT)
            for warning in (answer or {}).get("warnings") or []:
                log.warning("%s %s: %s: %s", self.instance.name, self.rid, target, warning)
            return
        try:
            # short: after a lost link the target does not answer either
            await self.daemon_call(target, peers, "receive-abort", timeout=ABORT_TIMEOUT)
        except (TransportError, ResourceError) as exc:  # its deadline cleans up then
            log.warning("%s %s: %s: %s", self.instance.name, self.rid, target, exc)

    # Restore points: the received snapshots themselves -----------------------------------

    def point_refs(self) -> set[str]:
        return {e.ref for e in restore.index_of(self).entries()}

    async def point_entry(self, name: str, stamp: Stamp) -> Entry | None:
        async with self.open_side(str(self.values["dst"])) as side:
            received = [s for s in await side.snapshots() if s.received_uuid]
            if not received:
                return None
            return Entry(name, self.rid, "btrfs", received[-1].name, stamp.started,
                         subvolume=side.subvolume)  # fmt: skip

    async def drop_entry(self, entry: Entry) -> None:
        async with self.open_side(str(self.values["dst"])) as side:
            newest = ordered(await side.snapshots())
            if newest and newest[-1].name == entry.ref:
                raise ResourceError(f"{entry.ref} is the newest snapshot: the next send's parent")
            await side.delete([entry.ref])

    async def restore_entry(self, entry: Entry) -> None:
        async with self.open_side(str(self.values["dst"])) as side:
            path = side.snap_dir / entry.ref
            if not sides.is_subvolume(path):
                raise ResourceError(f"{self.rid}: the snapshot of point {entry.name} is gone")
            for warning in await side.refresh_data(path):
                log.warning("%s %s: %s", self.instance.name, self.rid, warning)

    async def measure_entries(self, entries: list[Entry]) -> dict[str, int]:
        async with self.open_side(str(self.values["dst"])) as side:
            paths = {str(side.snap_dir / e.ref): e.name for e in entries}
            return await sides.exclusive_sizes(paths)

    async def points_free(self) -> float | None:
        async with self.open_side(str(self.values["dst"])) as side:
            return sides.free_percent(side.top)

    async def sync(
        self, action: str, peers: Peers, only_targets: list[str] | None = None, final: bool = False
    ) -> list[TargetReport]:
        """One snapshot per run, sent to every target of the run: the targets then share
        it, so that whichever of them later sends (after a DR activation) has a common
        snapshot with every other one, and the way back needs no full resend."""
        self._run_snapshot = None
        try:
            return await super().sync(action, peers, only_targets, final)
        finally:
            self._run_snapshot = None

    async def transfer(
        self, target: str, full: bool, peers: Peers, progress: Progress
    ) -> TransferResult:
        if self.values.get("recursive"):
            raise ResourceError("recursive = true is not supported by this version of Ferry")
        async with self.open_side(str(self.values["src"])) as side:
            remote = await self._remote_snapshots(target, peers)
            local = await side.snapshots()
            common = common_parent(local, remote)
            parent = None if full else common
            reason = "full send: requested (sync full)" if full else ""
            if parent is None and not reason:
                reason = full_send_reason(local, remote)
            # What the target holds now, as its listing says (a record lost or stale, or
            # a snapshot of a failed run it did receive, are set right here).
            pairs = side.pairs()
            pairs[target] = common.name if common else ""
            run = self._run_snapshot
            if run is not None and not (side.snap_dir / run[0]).is_dir():
                run = None  # gone meanwhile (another node's run on a shared disk)
            await self._prune(side, pairs, new=run[0] if run else "")
            if run is None:
                taken = datetime.now(UTC)
                name = snapshot_name(side.base, taken)
                path = await side.snapshot(name)
                run = self._run_snapshot = (name, taken.timestamp())
            name, path = run[0], side.snap_dir / run[0]
            if common is not None and common.name == name:
                # Received through a target before this one: they share the disk.
                reason = f"{target} holds this run's snapshot already (a disk it shares)"
                moved = wire = 0
            else:
                # On failure the new snapshot stays: the target may have received it all
                # the same (the answer lost on the way back); the next run's listing
                # says, and the prune there removes it when no target holds its pair.
                moved, wire = await self._send(path, parent, side, target, peers, progress)
            pairs[target] = name
            await self._prune(side, pairs, new=name)
        if reason:
            log.info("%s %s -> %s: %s", self.instance.name, self.rid, target, reason)
        mode = "full" if parent is None else "incremental"
        # The data on the target is as old as the snapshot, not as this transfer's start.
        return TransferResult(moved, mode, reason, data_time=run[1], wire_bytes=wire)

    async def _prune(self, side: sides.Side, pairs: dict[str, str], new: str = "") -> None:
        """Keep every target's pair (and new); delete the snapshots no target needs."""
        kept = retention(await side.snapshots(), pairs, self.targets(), new)
        side.write_pairs(kept.pins)  # first: a crash in between over-retains, never loses
        points = self.point_refs()  # restore points received here before a takeover
        await side.delete([name for name in kept.delete if name not in points])

    async def _send(
        self,
        path: Path,
        parent: Snapshot | None,
        side: sides.Side,
        target: str,
        peers: Peers,
        progress: Progress,
    ) -> tuple[int, int]:
        """Send path (incremental from parent) to target: (data bytes, bytes on the wire)."""
        argv = ["btrfs", "send", "-q"]
        if parent is not None:
            argv += ["-p", str(side.snap_dir / parent.name)]
        argv.append(str(path))
        receiving = await self._open_receive(target, peers)
        held = receiving[0] == "btrfs"  # opened by the target's ferryd: closed from here
        # the size, estimated beside the transfer: the ETA shows once it is known
        estimate = asyncio.ensure_future(_estimate_total([*argv[:3], "--no-data", *argv[3:]]))
        estimate.add_done_callback(lambda done: _set_total(done, progress))
        try:
            result = await peers.send_output(
                target, argv, receiving, progress.add, self.wire(target), large=parent is None
            )
            if not result.ok:
                detail = result.stderr.strip()[-800:] or f"exit {result.returncode}"
                raise ResourceError(f"{target}: receive failed: {detail}")
        except BaseException as exc:
            if held:
                await asyncio.shield(self._close_receive(target, peers, ok=False))
            if isinstance(exc, SourceFailed):
                raise ResourceError(str(exc)) from None
            raise
        finally:
            estimate.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await estimate
        if held:
            await self._close_receive(target, peers, ok=True)
        return progress.moved, result.wire_bytes


async def _estimate_total(argv: list[str]) -> int | None:
    """The size of the send argv stands for, from its --no-data twin (see stream.py);
    None when that cannot tell (no total then, and no ETA: the transfer goes on)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        log.debug("no size estimate: %s", exc)
        return None
    assert proc.stdout is not None
    size = SendSize()
    try:
        while chunk := await proc.stdout.read(CHUNK):
            size.feed(chunk)
        await proc.wait()
    except ValueError as exc:
        log.debug("no size estimate: %s", exc)
        await kill(proc)
        return None
    except BaseException:
        await kill(proc)
        raise
    return size.total if proc.returncode == 0 else None


def _set_total(done: asyncio.Future[int | None], progress: Progress) -> None:
    if not done.cancelled() and done.exception() is None and done.result():
        progress.total = done.result()


async def peer_list(driver: Driver) -> list[dict[str, Any]]:
    """Target side: the snapshots this node holds for the resource."""
    async with driver.open_side(str(driver.values["dst"])) as side:
        return [{"name": s.name, "uuid": s.uuid, "received_uuid": s.received_uuid}
                for s in await side.snapshots()]  # fmt: skip


async def peer_receive(driver: Driver, stdin_fd: int) -> list[str]:
    """Target side, over ssh: receive a send stream from stdin (see receiver.py)."""
    return await receiver.receive_stdin(driver, stdin_fd)


def for_peer(driver: object) -> Driver:
    if not isinstance(driver, Driver):
        raise ResourceError("not a btrfs sync resource")
    return driver
