"""The rsync sync driver: the real rsync binary over ssh to root@<target>:<dst>."""

from __future__ import annotations

import asyncio
import glob
import re

from daemon.resources.base import ResourceError
from daemon.sync.base import SyncDriver, TransferResult, TransferSkipped
from daemon.sync.progress import Progress
from daemon.sync.transport import Peers
from daemon.system.command import kill

# Hard links, ACLs, xattrs, permissions, owners, groups, devices, times, recursion,
# symlinks, one file system; --delete. --delay-updates and --delete-after keep the
# target's previous copy whole until the end of the transfer (a killed rsync leaves it
# as it was, apart from the hidden partial directory).
DEFAULT_OPTIONS = ["-HAXpogDtrlx", "--delete", "--delete-after", "--delay-updates", "--stats"]
SSH = "ssh -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=10"
_PROGRESS_RE = re.compile(rb"^\s*([\d,]+)\s+\d+%")
_STAT_RE = re.compile(r"^Total bytes (sent|received): ([\d,]+)", re.MULTILINE)


def wire_bytes(stats: str) -> int:
    """Bytes on the wire from rsync --stats: sent plus received."""
    return sum(int(m.group(2).replace(",", "")) for m in _STAT_RE.finditer(stats))


class Driver(SyncDriver):
    """Files replicated by rsync."""

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

    def options(self) -> list[str]:
        extra = list(self.values.get("options") or [])
        base = [] if self.values.get("reset_options") else list(DEFAULT_OPTIONS)
        if self.values.get("bwlimit"):
            base.append(f"--bwlimit={self.values['bwlimit']}")
        return [*base, f"--timeout={int(self.values['stall_timeout'])}", *extra]

    async def check_target(self, target: str, peers: Peers) -> None:
        dstfs = self.values.get("dstfs")
        if not dstfs:
            return
        result = await peers.run(target, ["mountpoint", "-q", str(dstfs)], timeout=30)
        if not result.ok:
            raise TransferSkipped(
                f"dstfs {dstfs} is not a mounted filesystem on {target}: "
                "not writing into its root filesystem"
            )

    async def transfer(
        self, target: str, full: bool, peers: Peers, progress: Progress
    ) -> TransferResult:
        argv = [
            "rsync", *self.options(), "--info=progress2",
            "-e", SSH, *self.sources(), f"root@{target}:{self.values['dst']}",
        ]  # fmt: skip
        if full:
            argv.insert(1, "--ignore-times")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        output = bytearray()
        try:
            stderr_task = asyncio.ensure_future(proc.stderr.read())
            while chunk := await proc.stdout.read(65536):
                output += chunk
                for piece in re.split(rb"[\r\n]", chunk):
                    match = _PROGRESS_RE.match(piece)
                    if match:
                        progress.set(int(match.group(1).replace(b",", b"")))
            err = await stderr_task
            await proc.wait()
        except BaseException:
            await kill(proc)
            raise
        text = output.decode(errors="replace")
        if proc.returncode != 0:
            tail = "\n".join(err.decode(errors="replace").strip().splitlines()[-8:])
            raise ResourceError(f"rsync to {target}: exit {proc.returncode}: {tail}")
        return TransferResult(wire_bytes(text), "full" if full else "incremental")
