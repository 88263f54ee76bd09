"""The drill's copies of the service's data: writable clones, never the replicated data.

* Where the data is a btrfs subvolume: a writable snapshot (O(1)) of the last verified
  received snapshot of the btrfs sync resource that fills it, else of the subvolume itself
  (an rsync ``dstfs`` on btrfs, the Docker data dir). Nested subvolumes (the layers of a
  Docker engine on btrfs) are snapshotted in place, one by one. Clones live in the
  filesystem's top level under ``.ferry/<svc>/drills/<drill id>/``.
* Elsewhere: an overlayfs whose lower dir is the replicated tree and whose upper dir is
  scratch space (a tmpfs) inside the bubble, under the drill's var dir.

Clones are made and mounted inside the bubble only; the node never sees them mounted.
They are deleted at teardown (from the drill's record after a crash), in a private
mount namespace of their own.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from daemon.drill.bubble import Bubble
from daemon.sync.btrfs.side import parse_subvolume_show
from daemon.system.command import CommandError, run
from daemon.system.mounts import Mount

SNAPSHOT = "snapshot"
OVERLAY = "overlay"
BTRFS_TIMEOUT = 120.0
SCRATCH_SIZE = "25%"  # of RAM, for the overlay clones' upper dirs


class CloneError(Exception):
    """A clone cannot be planned, made or removed; the message names the resource."""


@dataclass(frozen=True)
class Clone:
    """One filesystem of the service as the drill sees it."""

    rid: str
    mnt: str
    kind: str  # SNAPSHOT or OVERLAY
    device: str = ""  # snapshot: the btrfs device
    sync_rid: str = ""  # snapshot: the btrfs sync resource whose received snapshots fill it
    subvolume: str = ""  # snapshot: the mounted subvolume (path in the top level)
    path: str = ""  # snapshot: the clone, path in the top level
    source: str = ""  # snapshot: what was cloned (path in the top level), set when made
    point: str = ""  # snapshot (drill --at): the restore point's snapshot, path in the top level
    lower: str = ""  # overlay (drill --at): the restore point's tree, else the mount point

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Clone:
        return cls(**{k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__})


def clone_dir(service: str, drill_id: str) -> str:
    return f".ferry/{service}/drills/{drill_id}"


def plan_clone(
    rid: str,
    mnt: str,
    mount: Mount | None,
    service: str,
    drill_id: str,
    btrfs_syncs: dict[str, str],
) -> Clone:
    """How the drill clones fs ``rid`` mounted at ``mnt`` (``mount``: what the node has
    there). ``btrfs_syncs``: subvolume path -> the btrfs sync rid that receives into it."""
    if mount is None:
        raise CloneError(
            f"{rid}: nothing is mounted at {mnt} on this node (its standby fs is down): "
            "no replicated data to rehearse with"
        )
    if mount.fstype == "btrfs":
        subvolume = mount.root.strip("/")
        if not subvolume:
            raise CloneError(f"{rid}: {mnt} is the top level of its btrfs, not a subvolume")
        name = rid.replace("#", "_")
        return Clone(
            rid,
            mnt,
            SNAPSHOT,
            device=mount.source,
            sync_rid=btrfs_syncs.get(subvolume, ""),
            subvolume=subvolume,
            path=f"{clone_dir(service, drill_id)}/{name}",
        )
    return Clone(rid, mnt, OVERLAY)


def newest_received(entries: Sequence[tuple[str, bool, bool]]) -> str:
    """The newest verified received snapshot: (name, read-only, has a received uuid) of the
    entries of a snapshot dir; names sort by time (daemon/sync/btrfs/plan.py)."""
    good = sorted(name for name, readonly, received in entries if readonly and received)
    return good[-1] if good else ""


def _nested(listing: str, parent: str) -> list[str]:
    """Paths (in the top level) of the subvolumes right below ``parent``, from
    ``btrfs subvolume list -o``."""
    out = []
    for line in listing.splitlines():
        _, sep, path = line.partition(" path ")
        if sep:
            path = path.strip().removeprefix("<FS_TREE>/")
            if path.startswith(parent + "/"):
                out.append(path)
    return sorted(out)


class Cloner:
    """Makes the clones inside a bubble (``work``: the drill's own dir, seen alike inside)."""

    def __init__(self, bubble: Bubble, service: str, work: str) -> None:
        self.bubble = bubble
        self.service = service
        self.work = work

    async def _run(self, *argv: str, check: bool = True) -> str:
        try:
            result = await self.bubble.run(*argv, timeout=BTRFS_TIMEOUT, check=check)
        except CommandError as exc:
            raise CloneError(str(exc)) from None
        return result.stdout

    async def _snapshot_tree(self, top: str, source: str, dest: str) -> None:
        """A writable snapshot of source at dest, nested subvolumes included."""
        await self._run("btrfs", "subvolume", "snapshot", f"{top}/{source}", f"{top}/{dest}")
        listing = await self._run("btrfs", "subvolume", "list", "-o", f"{top}/{source}")
        for child in _nested(listing, source):
            rel = child[len(source) + 1 :]
            await self._run("rmdir", f"{top}/{dest}/{rel}", check=False)  # its placeholder
            await self._snapshot_tree(top, child, f"{dest}/{rel}")

    async def _received(self, top: str, clone: Clone) -> str:
        """The newest verified snapshot received for clone's sync resource ('' for none)."""
        snap_dir = f"{top}/.ferry/{self.service}/{clone.sync_rid}"
        names = (await self._run("ls", "-1", snap_dir, check=False)).split()
        entries = []
        for name in names:
            if name.startswith("."):
                continue
            shown = await self._run("btrfs", "subvolume", "show", f"{snap_dir}/{name}", check=False)
            fields = parse_subvolume_show(shown)
            entries.append(
                (
                    name,
                    "readonly" in fields.get("Flags", ""),
                    fields.get("Received UUID", "-") not in ("-", ""),
                )
            )
        newest = newest_received(entries)
        return f".ferry/{self.service}/{clone.sync_rid}/{newest}" if newest else ""

    async def make(self, clones: Sequence[Clone]) -> list[Clone]:
        """Make and mount every clone at its mount point inside the bubble; returns the clones
        with what each was cloned from."""
        made: list[Clone] = []
        devices = sorted({c.device for c in clones if c.kind == SNAPSHOT})
        tops = {device: f"{self.work}/top{i}" for i, device in enumerate(devices)}
        for device, top in tops.items():
            await self._run("mkdir", "-p", top)
            await self._run("mount", "-o", "subvolid=5", device, top)
        try:
            for clone in clones:
                if clone.kind != SNAPSHOT:
                    made.append(clone)
                    continue
                top = tops[clone.device]
                source = clone.subvolume
                if clone.point:
                    source = clone.point
                elif clone.sync_rid:
                    source = await self._received(top, clone) or source
                await self._run("mkdir", "-p", str(PurePosixPath(f"{top}/{clone.path}").parent))
                await self._snapshot_tree(top, source, clone.path)
                made.append(Clone(**{**clone.as_dict(), "source": source}))
        finally:
            for top in tops.values():
                await self._run("umount", top, check=False)
        await self._mount(made)
        return made

    async def _mount(self, clones: Sequence[Clone]) -> None:
        snapshots = [c for c in clones if c.kind == SNAPSHOT]
        # The replicated data leaves the bubble's view: deepest first, then the clones.
        for clone in sorted(snapshots, key=lambda c: -len(c.mnt)):
            await self._run("umount", "-l", clone.mnt, check=False)
        overlays = [c for c in clones if c.kind == OVERLAY]
        if overlays:
            scratch = f"{self.work}/scratch"
            await self._run("mkdir", "-p", scratch)
            await self._run("mount", "-t", "tmpfs", "-o", f"size={SCRATCH_SIZE}", "drill", scratch)
        for clone in sorted(clones, key=lambda c: len(c.mnt)):
            if clone.kind == SNAPSHOT:
                await self._run("mount", "-o", f"subvol={clone.path}", clone.device, clone.mnt)
                continue
            name = clone.rid.replace("#", "_")
            upper, workdir = f"{self.work}/scratch/{name}.up", f"{self.work}/scratch/{name}.work"
            await self._run("mkdir", "-p", upper, workdir)
            options = f"lowerdir={clone.lower or clone.mnt},upperdir={upper},workdir={workdir}"
            await self._run("mount", "-t", "overlay", "-o", options, "drill", clone.mnt)


def removal_script(clones: Sequence[Clone], service: str, drill_id: str, work: str) -> str:
    """A shell script that deletes the drill's snapshot clones, nested subvolumes first (a
    subvolume with subvolumes inside cannot be deleted), to run in a private mount
    namespace of its own."""
    base = clone_dir(service, drill_id)
    lines = ["set -u", "rc=0"]
    devices = sorted({c.device for c in clones if c.kind == SNAPSHOT})
    for i, device in enumerate(devices):
        top = shlex.quote(f"{work}/rm{i}")
        lines += [
            f"mkdir -p {top}",
            f"mount -o subvolid=5 {shlex.quote(device)} {top} || exit 3",
            # longest path first: a nested subvolume's path extends its parent's
            f"for p in $(btrfs subvolume list {top} | sed -n 's/.* path //p' | "
            f"awk -v b={shlex.quote(base + '/')} 'index($0, b) == 1 {{print length($0), $0}}' | "
            "sort -rn | cut -d' ' -f2-); do",
            f'  btrfs subvolume delete "{top}/$p" >/dev/null || rc=1',
            "done",
            f"rm -rf {top}/{shlex.quote(base)} 2>/dev/null",
            f"rmdir {top}/{shlex.quote(f'.ferry/{service}/drills')} 2>/dev/null",
            f"umount {top} && rmdir {top}",
        ]
    lines.append("exit $rc")
    return "\n".join(lines)


async def remove(clones: Sequence[Clone], service: str, drill_id: str, work: str) -> None:
    """Delete the snapshot clones; a clone still busy (its bubble ending) is retried."""
    if not any(c.kind == SNAPSHOT for c in clones):
        return
    script = removal_script(clones, service, drill_id, work)
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    last = ""
    for _ in range(20):
        try:
            await run(argv, timeout=BTRFS_TIMEOUT)
            return
        except CommandError as exc:
            last = str(exc)
        await asyncio.sleep(0.5)
    raise CloneError(f"cannot delete the drill's clones: {last}")
