"""The rsync sync driver: the real rsync binary over ssh to root@<target>:<dst>."""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon.resources.base import ResourceError
from daemon.resources.fs.driver import Driver as FsDriver
from daemon.restore.points import Entry
from daemon.sync import receive, stamps
from daemon.sync.base import GUARD_TIMEOUT, SyncDriver, TransferResult, TransferSkipped
from daemon.sync.progress import Progress
from daemon.sync.rsync import points
from daemon.sync.transport import CIPHERS, LINK_LOST, Peers
from daemon.system import mounts
from daemon.system.command import kill

log = logging.getLogger("ferry.sync")

# Hard links, ACLs, xattrs, permissions, owners, groups, devices, times, recursion,
# symlinks, one file system; --delete. --delay-updates and --delete-after keep the
# target's previous copy whole until the end of the transfer (a killed rsync leaves it
# as it was, apart from the hidden partial directories). --partial-dir keeps what a
# broken transfer had received of a file there: the next run sends only the rest.
PARTIAL_DIR = ".ferry-partial"
DEFAULT_OPTIONS = [
    "-HAXpogDtrlx", "--delete", "--delete-after", "--delay-updates",
    f"--partial-dir={PARTIAL_DIR}", "--stats",
]  # fmt: skip
SSH = (
    "ssh -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=10 "
    f"-o Ciphers={','.join(CIPHERS)}"
)
# Numbers as plain digits whatever the options or the locale (else "1.05M", "1.234.567"),
# last so that an -h in the options cannot undo it; separators are still tolerated.
PLAIN_NUMBERS = "--no-human-readable"
_PROGRESS_RE = re.compile(rb"^\s*(\d[\d,.]*)\s+(\d+)%")
_STAT_RE = re.compile(r"^Total bytes (sent|received): (\d[\d,.]*)", re.MULTILINE)


def _number(text: str | bytes) -> int:
    digits = text.decode() if isinstance(text, bytes) else text
    return int(digits.replace(",", "").replace(".", ""))


def wire_bytes(stats: str) -> int:
    """Bytes on the wire from rsync --stats: sent plus received."""
    return sum(_number(m.group(2)) for m in _STAT_RE.finditer(stats))


def progress_line(line: bytes) -> tuple[int, int] | None:
    """(bytes, percent) from one --info=progress2 line, None for any other line."""
    match = _PROGRESS_RE.match(line)
    return (_number(match.group(1)), int(match.group(2))) if match else None


# rsync's exits when the other end went silent or away: 12 (the stream broke), 30 (no
# data for --timeout seconds), 255 (ssh's own failure)
LINK_EXITS = (12, 30, 255)


def link_lost(returncode: int, stderr: str) -> bool:
    """Did rsync end because the link to the target was lost (not a refusal there)?"""
    if returncode == 30 or any(words in stderr for words in LINK_LOST):
        return True
    return returncode in LINK_EXITS and "timeout" in stderr.lower()


def transfer_mode(full: bool, sent_before: bool) -> tuple[str, str]:
    """(mode, reason) of a transfer: full when asked, or when the target never received a
    copy from here (nothing to be incremental against); else incremental."""
    if full:
        return "full", "requested (sync full)"
    if not sent_before:
        return "full", "first transfer"
    return "incremental", ""


class Driver(SyncDriver):
    """Files replicated by rsync."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._probed: dict[str, dict[str, Any]] = {}
        self._masters: dict[str, _SshMaster] = {}

    def label(self) -> str:
        return f"{' '.join(self.values['src'])} to {self.values['dst']} on {' '.join(self.pools)}"

    def sources(self) -> list[str]:
        found: list[str] = []
        for pattern in self.values["src"]:
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise ResourceError(f"src {pattern} matches nothing on this node")
            # glob drops a trailing slash, which means "the content of" to rsync
            found += [m + "/" if pattern.endswith("/") and not m.endswith("/") else m
                      for m in matches]  # fmt: skip
        return found

    def options(self, target: str) -> list[str]:
        extra = list(self.values.get("options") or [])
        base = [] if self.values.get("reset_options") else list(DEFAULT_OPTIONS)
        base.append(points.EXCLUDE)  # the target's restore points: never sent, never deleted
        wire = self.wire(target)
        base += wire.compression.rsync_options()
        if wire.bwlimit:
            base.append(f"--bwlimit={max(1, round(wire.bwlimit / 1024))}")  # rsync's KiB/s
        # rsync's own timeout a little shorter than the watchdog's: when the link is lost,
        # rsync says so (exit 30) before the watchdog kills it knowing only "no progress"
        stall = int(self.values["stall_timeout"])
        return [*base, f"--timeout={max(1, stall - 5) if stall > 10 else stall}", *extra]

    def _peer_argv(self, *words: str) -> list[str]:
        return self.remote_argv("sync", "rsync-peer", "--rid", self.rid, "--", *words)

    async def probe(self, target: str, peers: Peers) -> dict[str, Any]:
        """The target's instance status and where rsync writes there, in one call.

        Asked of the target's ferryd when this runs in ferryd (a few milliseconds). Else
        over ssh, and meanwhile an ssh master connection to the target opens, which
        rsync's ssh then reuses: its set-up overlaps the guard instead of following it."""
        answer = await self.daemon_call(target, peers, "prepare")
        if answer is not None:
            data = answer
        else:
            if target not in self._masters:
                self._masters[target] = await _SshMaster.open(target, self.sync_dir / "ssh")
            argv = self._peer_argv("prepare", self.instance.node)
            result = await peers.run(target, argv, timeout=GUARD_TIMEOUT)
            if not result.ok:
                error = result.stderr.strip()[-300:] or "prepare failed"
                raise ResourceError(f"{target}: {error}")
            data = dict(json.loads(result.stdout))
        if "resources" not in data or "dest" not in data:
            raise ResourceError(f"{target}: unreadable answer to rsync-peer prepare")
        self._probed[target] = data
        return data

    async def check_target(self, target: str, peers: Peers) -> None:
        data = self._probed.get(target) or {}
        if not data.get("dest"):
            raise TransferSkipped(str(data.get("dest_error") or f"{target} gave no destination"))

    async def finish_target(self, target: str, peers: Peers) -> None:
        """Close the ssh master; unmount what prepare mounted for this receive on the target."""
        master = self._masters.pop(target, None)
        if master is not None:
            await master.close()
        if not (self._probed.pop(target, None) or {}).get("receive_mount"):
            return
        if await self.daemon_call(target, peers, "release") is not None:
            return
        result = await peers.run(target, self._peer_argv("release"), timeout=GUARD_TIMEOUT)
        if not result.ok:
            log.warning("%s %s: %s: release failed: %s", self.instance.name, self.rid, target,
                        result.stderr.strip()[-300:])  # fmt: skip

    async def transfer(
        self, target: str, full: bool, peers: Peers, progress: Progress
    ) -> TransferResult:
        sent_before = stamps.read(stamps.sent_path(self.state_dir, self.rid, target)) is not None
        mode, reason = transfer_mode(full, sent_before)
        argv = [
            "rsync", *self.options(target), "--info=progress2", PLAIN_NUMBERS,
            "-e", self._ssh(target), *self.sources(), f"root@{target}:{self._destination(target)}",
        ]  # fmt: skip
        if full:
            argv.insert(1, "--ignore-times")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
        assert proc.stdout is not None and proc.stderr is not None
        output = bytearray()
        try:
            stderr_task = asyncio.ensure_future(proc.stderr.read())
            # progress2 writes "\rLINE" about once a second: the last line of a read is
            # ended only by the next one, a second later, yet it is whole once it shows its
            # percentage; a line cut by a read shows none, and is read again whole.
            line_start = 0
            while chunk := await proc.stdout.read(65536):
                output += chunk
                lines = re.split(rb"[\r\n]", output[line_start:])
                for line in lines[:-1]:
                    line_start += len(line) + 1
                for line in lines:
                    parsed = progress_line(bytes(line))
                    if parsed is not None:
                        progress.set(*parsed)
            err = await stderr_task
            await proc.wait()
        except BaseException:
            await kill(proc)
            raise
        text = output.decode(errors="replace")
        if proc.returncode != 0:
            tail = "\n".join(err.decode(errors="replace").strip().splitlines()[-8:])
            if link_lost(proc.returncode or 0, tail):
                last = tail.splitlines()[-1] if tail else f"exit {proc.returncode}"
                raise ResourceError(
                    f"rsync to {target}: the link was lost after {progress.moved} bytes "
                    f"({last}); the next run resumes from the partial files kept there"
                )
            raise ResourceError(f"rsync to {target}: exit {proc.returncode}: {tail}")
        return TransferResult(wire_bytes(text), mode, reason)

    def _ssh(self, target: str) -> str:
        master = self._masters.get(target)
        if master is None or master.proc is None:
            return SSH
        # Without a master listening on the socket (yet), ssh connects by itself.
        return f"{SSH} -o ControlPath={master.socket}"

    def _destination(self, target: str) -> str:
        return str((self._probed.get(target) or {}).get("dest") or self.values["dst"])

    # Target side (ferry SVC sync rsync-peer --rid RID -- prepare|release, over ssh) ----------

    def receive_path(self) -> str:
        return receive.receive_path(self)

    def dstfs_provider(self) -> FsDriver | None:
        """The service's fs resource mounted at dstfs on this node, if any."""
        found = receive.provider(self, str(self.values["dstfs"]))
        return found if found is not None and found.mnt == self._dstfs() else None

    def _dstfs(self) -> str:
        return os.path.normpath(str(self.values["dstfs"]))

    async def peer_prepare(self, sender: str) -> dict[str, Any]:
        """Where rsync may write here, with this instance's status (the sender's guard).

        Without ``dstfs``, or with it mounted: ``dst``. Not mounted: through a receive
        mount of the fs resource for ``dstfs`` (daemon/sync/receive.py), ``dst``
        rewritten into it, when ``dst`` is inside ``dstfs``; else no destination, and why.
        Never into the root filesystem."""
        state = (await self.instance.status()).as_dict()
        dst = str(self.values["dst"])
        answer: dict[str, Any] = {**state, "dest": dst, "receive_mount": False}
        if not self.values.get("dstfs") or mounts.mounted_at(self._dstfs()) is not None:
            return answer
        inside = Path(os.path.normpath(dst)).is_relative_to(self._dstfs())
        fs = self.dstfs_provider() if inside else None
        dest, why = await receive.mount_for(self, dst, fs, state["resources"], sender)
        if dest is None:
            answer["dest"] = None
            answer["dest_error"] = (
                f"dstfs {self._dstfs()} is not a mounted filesystem on {self.instance.node}"
                f" ({why}): not writing into its root filesystem"
            )
            return answer
        answer.update(dest=dest + ("/" if dst.endswith("/") else ""), receive_mount=True)
        return answer

    async def peer_verb(self, verb: str, sender: str) -> dict[str, Any]:
        """prepare and release, asked through the daemons (see SyncDriver.daemon_call)."""
        if verb == "prepare":
            return await self.peer_prepare(sender)
        if verb == "release":
            await self.peer_release()
            return {}
        return await super().peer_verb(verb, sender)

    async def peer_release(self) -> None:
        if self.values.get("dstfs"):
            await receive.release(self, self.dstfs_provider())

    async def clear_leftovers(self) -> None:
        await self.peer_release()  # the receive mount of a killed transfer

    # Restore points (daemon/sync/rsync/points.py) --------------------------------------------

    def dst_here(self) -> str:
        """Where dst is on this node now: through the receive mount while one is made."""
        dst = os.path.normpath(str(self.values["dst"]))
        if (
            self.values.get("dstfs")
            and mounts.mounted_at(self._dstfs()) is None
            and receive.mounted(self)
            and Path(dst).is_relative_to(self._dstfs())
        ):
            rel = os.path.relpath(dst, self._dstfs())
            return os.path.normpath(os.path.join(self.receive_path(), rel))
        return dst

    async def point_entry(self, name: str, stamp: stamps.Stamp) -> Entry | None:
        dst = self.dst_here()
        if not os.path.isdir(dst):
            return None
        return await points.keep(name, dst, self.rid, self.sync_dir, self.instance.name,
                                 stamp.started)  # fmt: skip

    async def drop_entry(self, entry: Entry) -> None:
        await points.drop(entry, self.dst_here(), self.sync_dir, self.instance.name)

    async def restore_entry(self, entry: Entry) -> None:
        for warning in await points.restore(entry, self.dst_here(), self.sync_dir,
                                            self.instance.name):  # fmt: skip
            log.warning("%s %s: %s", self.instance.name, self.rid, warning)

    async def measure_entries(self, entries: list[Entry]) -> dict[str, int]:
        return await points.sizes(entries, self.dst_here(), self.sync_dir, self.instance.name)

    async def points_free(self) -> float | None:
        return points.free(self.dst_here())


def _die_with_parent() -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when the sender dies, even by kill -9, so that
    neither rsync nor the ssh master outlives the sync that started it. The library is
    loaded here, in the parent: a forked child of a threaded process must not import."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


class _SshMaster:
    """An ssh master connection (``ssh -M -N``) to a target, its control socket in the
    resource's sync dir (one at a time there: one sync per resource, targets in turn; a
    socket left by a killed sync is removed at the next open)."""

    def __init__(self, proc: asyncio.subprocess.Process | None, socket: Path) -> None:
        self.proc = proc
        self.socket = socket

    @classmethod
    async def open(cls, target: str, socket: Path) -> _SshMaster:
        socket.unlink(missing_ok=True)
        if len(str(socket)) > 100:  # a unix socket path is < 108 bytes
            return cls(None, socket)  # rsync's ssh connects by itself
        argv = [*SSH.split(), "-M", "-N", "-o", "ControlPersist=no",
                "-o", f"ControlPath={socket}", f"root@{target}"]  # fmt: skip
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        except OSError:
            proc = None
        return cls(proc, socket)

    async def close(self) -> None:
        if self.proc is not None:
            await kill(self.proc)
        self.socket.unlink(missing_ok=True)


def for_peer(driver: object) -> Driver:
    if not isinstance(driver, Driver):
        raise ResourceError("not an rsync sync resource")
    return driver
