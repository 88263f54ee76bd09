"""What every sync driver shares: targets, who may send, the split-brain guard, stamps,
status, one sync at a time, the no-progress watchdog and the overall timeout.

A driver only implements :meth:`SyncDriver.transfer` (and :meth:`SyncDriver.check_target`
when it has target preconditions): plan, execute and verify one transfer to one target.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sys
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daemon.resources.base import Resource, ResourceError, StatusReport
from daemon.resources.status import Status
from daemon.restore import keeper as restore
from daemon.restore.points import Entry
from daemon.sync import plan, stamps
from daemon.sync.progress import Progress, running_transfer
from daemon.sync.transport import Peers, TransportError
from daemon.sync.wire import Compression, Wire

log = logging.getLogger("ferry.sync")

GUARD_TIMEOUT = 60.0
POINT_TIMEOUT = 600.0  # the target keeps the run's restore point and prunes: snapshots, du
SYNC_LOCK_WAIT = 120.0
WATCH_EVERY = 1.0  # how often a running transfer is checked for progress and reported


class SyncRefused(Exception):
    """This node must not send (not running the service, not the flex primary, ...)."""


class TransferSkipped(Exception):
    """A target is skipped, with the reason (guard, dstfs, ...)."""


@dataclass
class TransferResult:
    """What a driver's transfer moved."""

    bytes: int
    mode: str  # "full" or "incremental"
    reason: str = ""  # why full, or what was special
    data_time: float | None = None  # when the data sent was taken, if before the transfer
    wire_bytes: int | None = None  # what went over the link (compressed); None: bytes


@dataclass
class TargetReport:
    rid: str
    target: str
    ok: bool
    mode: str  # full, incremental, skipped, failed
    bytes: int = 0
    seconds: float = 0.0
    reason: str = ""
    wire_bytes: int | None = None  # None: the same as bytes

    def as_dict(self) -> dict[str, Any]:
        return {
            "rid": self.rid,
            "target": self.target,
            "ok": self.ok,
            "mode": self.mode,
            "bytes": self.bytes,
            "wire_bytes": self.bytes if self.wire_bytes is None else self.wire_bytes,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
        }


def remote_ferry() -> str:
    """Ferry's CLI on peers: installed at the same path on every node."""
    return str(Path(sys.executable).with_name("ferry"))


class SyncDriver(Resource):
    """A sync resource: it takes no part in start/stop, it acts on sync actions."""

    progress_reporter: Callable[[Progress], None] | None = None
    # Data that changes while the service runs (files, subvolumes); docker images do not:
    # the last sync of a switch, after the writers stop, sends only such resources.
    moves_live_data = True
    run_started: float | None = None  # set by run_sync: the run's time names its point

    # Start and stop do nothing for sync resources -------------------------------------------

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    # Facts ------------------------------------------------------------------------------------

    @property
    def pools(self) -> list[str]:
        return list(self.values.get("target") or [])

    def targets(self, action: str = "all") -> list[str]:
        return plan.targets(self.instance.config.members, self.pools, self.instance.node, action)

    def wire(self, target: str) -> Wire:
        """Compression and cap of this resource's transfers to target. They describe the
        link, so they are evaluated for the target: ``compress@drpnodes = zstd`` compresses
        what goes to the DR site, not what a LAN peer gets."""
        config = self.instance.config
        compression = config.value(self.rid, "compress", target)
        return Wire(compression or Compression(), config.value(self.rid, "bwlimit", target))

    @property
    def max_delay(self) -> float:
        return float(self.values["sync_max_delay"])

    @property
    def sync_dir(self) -> Path:
        return stamps.sync_dir(self.state_dir, self.rid)

    @property
    def var_dir(self) -> Path:
        return Path(self.instance.var_dir)

    @property
    def service(self) -> str:
        return str(self.instance.name)

    async def local_up(self, final: bool = False) -> bool:
        """Is the service up here? Judged on all non-sync, non-app resources.

        ``final``: the last sync of a switch, sent once the service's writers (containers,
        apps) are stopped: judged on its filesystems and disks alone (none: up)."""
        if final:
            storage = [
                r for r in self.instance.resources.values()
                if r.group in ("fs", "disk") and not r.disabled and not r.optional
            ]  # fmt: skip
            return all([(await r.status()).status is Status.UP for r in storage])
        judged = [
            r
            for r in self.instance.resources.values()
            if not r.is_sync and r.group != "app" and not r.disabled and not r.optional
        ]
        if not judged:  # a service of app resources only: judged on its apps
            judged = [
                r for r in self.instance.resources.values()
                if r.group == "app" and not r.disabled and not r.optional
            ]  # fmt: skip
        if not judged:
            return False
        for resource in judged:
            if (await resource.status()).status is not Status.UP:
                return False
        return True

    async def refusal(self, final: bool = False) -> str:
        topology = str(self.instance.value("DEFAULT", "topology"))
        members = self.instance.config.members
        up = await self.local_up(final)
        return plan.sender_refusal(members, topology, self.instance.node, up)

    # Status -----------------------------------------------------------------------------------

    async def status(self) -> StatusReport:
        now = time.time()
        running = running_transfer(self.sync_dir / "progress.json")
        members = self.instance.config.members
        # A receiver: a target of the primary site (the usual direction), or a node that
        # has received data (the way back, after a DR activation).
        usual = plan.targets(members, self.pools, members.nodes[0]) if members.nodes else []
        received = stamps.read(stamps.received_path(self.state_dir, self.rid))
        if await self.refusal():
            if self.instance.node not in usual and received is None:
                return StatusReport(Status.NA, ["info: neither the sender nor a target here"])
            status, lines = plan.receiver_status(received, now, self.max_delay)
        else:
            targets = self.targets()
            if not targets:
                return StatusReport(Status.NA, ["info: no target"])
            sent = {t: stamps.read(stamps.sent_path(self.state_dir, self.rid, t)) for t in targets}
            status, lines = plan.sender_status(sent, now, self.max_delay)
        guard = restore.guard_warning(self)
        if guard:
            lines.insert(0, f"warn: {guard}")
            if status is Status.UP:
                status = Status.WARN
        if running is not None:
            lines.insert(0, f"info: transfer running: {_running_text(running)}")
            if status is Status.DOWN:
                status = Status.WARN  # late, but being caught up: not a false alarm
        return StatusReport(status, lines)

    def last_success(self) -> dict[str, stamps.Stamp | None]:
        return {
            t: stamps.read(stamps.sent_path(self.state_dir, self.rid, t)) for t in self.targets()
        }

    # The action -------------------------------------------------------------------------------

    async def sync(
        self, action: str, peers: Peers, only_targets: list[str] | None = None, final: bool = False
    ) -> list[TargetReport]:
        """Run one sync action for this resource: every covered target, in order (``final``:
        see local_up)."""
        targets = self.targets(action)
        if only_targets:
            targets = [t for t in targets if t in only_targets]
        if not targets:
            return []
        reason = await self.refusal(final)
        if reason:
            raise SyncRefused(reason)
        async with self._one_at_a_time():
            reports = []
            for target in targets:
                reports.append(await self._sync_target(target, action == "full", peers))
            return reports

    def _one_at_a_time(self) -> _SyncLock:
        return _SyncLock(self.sync_dir / "lock", self.rid, SYNC_LOCK_WAIT)

    async def _sync_target(self, target: str, full: bool, peers: Peers) -> TargetReport:
        try:
            return await self._sync_one(target, full, peers)
        finally:
            try:
                await self.finish_target(target, peers)
            except TransportError as exc:
                log.warning("%s %s -> %s: %s", self.instance.name, self.rid, target, exc)

    async def _sync_one(self, target: str, full: bool, peers: Peers) -> TargetReport:
        began = time.time()
        try:
            await self._guard(target, peers)
            await self.check_target(target, peers)
        except (TransferSkipped, TransportError) as exc:
            log.warning("%s %s -> %s: skipped: %s", self.instance.name, self.rid, target, exc)
            return TargetReport(self.rid, target, False, "skipped", reason=str(exc))
        progress = Progress(target, path=self.sync_dir / "progress.json")
        try:
            result = await self._bounded(self.transfer(target, full, peers, progress), progress)
        except (ResourceError, TransportError, TimeoutError) as exc:
            log.error("%s %s -> %s: failed: %s", self.instance.name, self.rid, target, exc)
            return TargetReport(
                self.rid, target, False, "failed", progress.moved, time.time() - began, str(exc)
            )
        finally:
            progress.clear()
        ended = time.time()
        # The stamp's start is the data's age: a driver's data taken before this transfer
        # began (btrfs: the run's snapshot, shared by its targets) is that old.
        data_time = min(began, result.data_time or began)
        stamp = stamps.Stamp(
            data_time, ended, result.bytes, ended - began, result.mode, self.instance.node, target,
            self.run_started or began,
        )  # fmt: skip
        stamps.write(stamps.sent_path(self.state_dir, self.rid, target), stamp)
        await self._stamp_target(target, stamp, peers)
        return TargetReport(
            self.rid, target, True, result.mode, result.bytes, ended - began, result.reason,
            result.wire_bytes,
        )  # fmt: skip

    async def _bounded(self, work: Awaitable[TransferResult], progress: Progress) -> TransferResult:
        """Run a transfer under the overall timeout and the no-progress watchdog."""
        timeout = float(self.values["timeout"])
        stall = float(self.values["stall_timeout"])
        task = asyncio.ensure_future(work)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    done, _ = await asyncio.wait({task}, timeout=WATCH_EVERY)
                    if done:
                        return task.result()
                    if self.progress_reporter is not None:
                        self.progress_reporter(progress)
                    progress.publish()
                    if progress.stalled_for() > stall:
                        raise ResourceError(f"no progress for {stall:g}s: transfer killed")
        except TimeoutError:
            raise ResourceError(f"transfer timed out after {timeout:g}s") from None
        finally:
            if not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass

    async def _guard(self, target: str, peers: Peers) -> None:
        """Refuse to write into a target that runs the service or whose state is unknown,
        saying why it is unknown (unreachable over ssh, or an unreadable answer)."""
        try:
            resources = dict((await self.probe(target, peers))["resources"])
        except TransportError as exc:
            raise TransferSkipped(
                f"{target} unreachable over ssh: {exc.detail or exc}; "
                "its state is unknown: not sending"
            ) from None
        except (ResourceError, ValueError, KeyError, TypeError) as exc:
            raise TransferSkipped(f"{plan.target_refusal(None)} ({exc})") from None
        refusal = plan.target_refusal(resources)
        if refusal:
            raise TransferSkipped(refusal)

    def remote_argv(self, *words: str) -> list[str]:
        """A ferry command for this service, to run on a peer."""
        return [
            remote_ferry(),
            "--config-dir", str(Path(self.instance.config.doc.path).parent),
            "--var-dir", str(self.instance.var_dir),
            self.instance.name, *words,
        ]  # fmt: skip

    async def probe(self, target: str, peers: Peers) -> dict[str, Any]:
        """What the target says of itself: at least its instance status ('resources').

        Its ferryd answers when this runs in ferryd (milliseconds), else ``print status``
        over ssh (a Python start there: half a second). Drivers that need more facts from
        the target answer them in the same call.
        """
        answer = await self.daemon_call(target, peers, "status")
        if answer is not None:
            return answer
        argv = self.remote_argv("print", "status", "-o", "json")
        result = await peers.run(target, argv, timeout=GUARD_TIMEOUT)
        if not result.ok:
            raise ResourceError(f"{target}: {result.stderr.strip()[-300:]}")
        return dict(json.loads(result.stdout))

    async def _stamp_target(self, target: str, stamp: stamps.Stamp, peers: Peers) -> None:
        try:
            if await self.daemon_call(target, peers, "stamp", stamp=asdict(stamp)) is not None:
                return
            argv = self.remote_argv("sync", "stamp-peer", "--rid", self.rid)
            result = await peers.run(
                target, argv, timeout=POINT_TIMEOUT, input=stamp.to_json().encode()
            )
            error = "" if result.ok else result.stderr.strip()
        except TransportError as exc:
            error = str(exc)
        if error:
            log.warning("%s %s: cannot stamp %s: %s", self.instance.name, self.rid, target, error)

    async def daemon_call(
        self,
        target: str,
        peers: Peers,
        verb: str,
        stamp: dict[str, Any] | None = None,
        timeout: float = GUARD_TIMEOUT,
    ) -> dict[str, Any] | None:
        """A call to this resource on target through its ferryd (the route of peer_call),
        or None when there is no daemon to ask (the caller uses ssh)."""
        body = {"rid": self.rid, "verb": verb, "sender": self.instance.node, "stamp": stamp}
        path = f"/api/cluster/services/{self.instance.name}/sync"
        answer = await peers.daemon_call(target, path, body, timeout)
        return None if answer is None else dict(answer.get("answer") or {})

    async def peer_call(
        self, verb: str, sender: str, stamp: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Target side of daemon_call, in this node's ferryd: record the stamp of a
        successful transfer, or answer a driver's own verb."""
        if verb == "stamp":
            if stamp is None:
                raise ResourceError("a stamp call without its stamp")
            received = stamps.Stamp(**stamp)
            stamps.write(stamps.received_path(self.state_dir, self.rid), received)
            guarded = restore.guard_count(self)
            answer: dict[str, Any] = {"point": await restore.keep(self, received)}
            if restore.guard_count(self) > guarded:  # the space guard pruned: ferryd says so
                answer["guard"] = restore.guard_warning(self)
            return answer
        if verb == "status":  # the sender's guard (see probe)
            return (await self.instance.status()).as_dict()
        return await self.peer_verb(verb, sender)

    async def peer_verb(self, verb: str, sender: str) -> dict[str, Any]:
        """A driver's own target-side call (rsync: prepare, release)."""
        raise ResourceError(f"{verb} is not a call of this sync driver")

    # Restore points (the target's side; see daemon/restore/keeper.py) ------------------------

    async def point_entry(self, name: str, stamp: stamps.Stamp) -> Entry | None:
        """Keep what the run just delivered here as point ``name``; None: no point here."""
        return None

    async def drop_entry(self, entry: Entry) -> None:
        """Delete what holds entry's data (pruning, or an operator's delete)."""

    async def restore_entry(self, entry: Entry) -> None:
        """Make entry's data the live data on this node (a takeover from a point)."""
        raise ResourceError(f"{self.rid}: this driver keeps no restore points")

    async def measure_entries(self, entries: list[Entry]) -> dict[str, int]:
        """Entry name -> its size in bytes, where this driver can tell."""
        return {}

    async def points_free(self) -> float | None:
        """Free space of the filesystem holding the points, in percent; None: unknown."""
        return None

    # What drivers implement -------------------------------------------------------------------

    async def check_target(self, target: str, peers: Peers) -> None:
        """Raise TransferSkipped when target cannot receive (dstfs missing, ...)."""

    async def finish_target(self, target: str, peers: Peers) -> None:
        """After a target's turn, whatever its outcome: undo what the probe set up there."""

    @abstractmethod
    async def transfer(
        self, target: str, full: bool, peers: Peers, progress: Progress
    ) -> TransferResult:
        """Move the data to target; leave the target's previous copy intact on failure."""


class _SyncLock:
    """One sync of a resource at a time on this node (flock, dropped by the kernel on death).

    A second sync waits up to ``wait`` seconds for the first, then is refused naming it.
    """

    def __init__(self, path: Path, rid: str, wait: float = SYNC_LOCK_WAIT) -> None:
        self.path = path
        self.rid = rid
        self.wait = wait
        self.fd = -1

    async def __aenter__(self) -> _SyncLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.wait
        try:
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip()
                        raise SyncRefused(
                            f"a sync of {self.rid} is already running (pid {holder or '?'}); "
                            f"waited {self.wait:g}s"
                        ) from None
                    await asyncio.sleep(0.2)
        except BaseException:  # refused, or cancelled while waiting
            os.close(self.fd)
            raise
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _running_text(data: dict[str, object]) -> str:
    """What status says of a running transfer: bytes (of ~total), rate, ETA."""
    from daemon.sync.progress import human_bytes

    text = f"{data.get('target')}: {human_bytes(float(str(data.get('bytes', 0))))}"
    if data.get("total"):
        text += f" of ~{human_bytes(float(str(data['total'])))}"
    if data.get("rate"):
        text += f", {human_bytes(float(str(data['rate'])))}/s"
    if data.get("eta") is not None:
        text += f", ETA {float(str(data['eta'])):.0f}s"
    return text
