"""Restore points of an rsync destination, on the target.

Where ``dst`` is a btrfs subvolume: a read-only snapshot of it after each verified run,
in the filesystem's top level at ``.ferry/<svc>/<rid>/<point>`` (as the btrfs driver
keeps its snapshots), costing only the blocks changed since. Elsewhere (ext4, xfs, a
plain directory): a hard-link tree ``<dst>/.ferry-restore/<point>`` made by a local
``rsync --link-dest`` against dst: unchanged files cost an inode each, no data. The
sender's rsync writes changed files as new inodes (no ``--inplace`` in Ferry's
defaults; do not add it with restore points) and excludes ``/.ferry-restore/``, which
also protects the trees from ``--delete``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from daemon.resources.base import ResourceError
from daemon.restore.points import Entry
from daemon.sync.btrfs import side as sides
from daemon.system import mounts
from daemon.system.command import CommandError, run

TREES = ".ferry-restore"
EXCLUDE = f"--exclude=/{TREES}/"
LOCAL_RSYNC_TIMEOUT = 3600.0


def holding_mount(path: str) -> mounts.Mount | None:
    """The mount that holds path (the deepest mount point above it)."""
    path = os.path.normpath(path)
    found = [m for m in mounts.mounts() if Path(path).is_relative_to(m.target)]
    return max(found, key=lambda m: len(m.target), default=None)


def btrfs_subvolume_of(dst: str) -> tuple[str, str] | None:
    """(device, subvolume path in the top level) when dst is a btrfs subvolume's root."""
    mount = holding_mount(dst)
    if mount is None or mount.fstype != "btrfs" or not sides.is_subvolume(Path(dst)):
        return None
    rel = os.path.relpath(os.path.normpath(dst), mount.target)
    subvolume = os.path.normpath(os.path.join(mount.root.strip("/") or ".", rel)).strip("/")
    if subvolume in ("", "."):
        return None  # the top level itself cannot be snapshotted beside itself
    return mount.source, subvolume


@asynccontextmanager
async def opened(dst: str, work_dir: Path, svc: str, rid: str) -> AsyncIterator[sides.Side]:
    found = btrfs_subvolume_of(dst)
    if found is None:
        raise ResourceError(f"{dst} is not a btrfs subvolume")
    async with sides.opened_device(found[0], found[1], work_dir, svc, rid) as side:
        yield side


async def keep(name: str, dst: str, rid: str, work_dir: Path, svc: str, data_time: float) -> Entry:
    if btrfs_subvolume_of(dst) is not None:
        async with opened(dst, work_dir, svc, rid) as side:
            ref = name.replace(":", "")
            if not (side.snap_dir / ref).exists():
                await side.snapshot(ref)
            return Entry(name, rid, "snapshot", ref, data_time, subvolume=side.subvolume)
    tree = Path(dst) / TREES / name.replace(":", "")
    if not tree.exists():
        tree.parent.mkdir(parents=True, exist_ok=True)
        partial = tree.with_name(tree.name + ".partial")
        await _remove_tree(partial)
        await _local_rsync("-aHAX", "--numeric-ids", f"--link-dest={dst.rstrip('/')}", EXCLUDE,
                           dst.rstrip("/") + "/", str(partial) + "/")  # fmt: skip
        os.rename(partial, tree)
    return Entry(name, rid, "tree", tree.name, data_time)


async def drop(entry: Entry, dst: str, work_dir: Path, svc: str) -> None:
    if entry.kind == "snapshot":
        async with opened(dst, work_dir, svc, entry.rid) as side:
            await side.delete([entry.ref])
        return
    await _remove_tree(Path(dst) / TREES / entry.ref)


async def restore(entry: Entry, dst: str, work_dir: Path, svc: str) -> list[str]:
    """Make the point the live data at dst; returns warnings."""
    if entry.kind == "snapshot":
        async with opened(dst, work_dir, svc, entry.rid) as side:
            path = side.snap_dir / entry.ref
            if not sides.is_subvolume(path):
                raise ResourceError(f"{entry.rid}: the snapshot of point {entry.name} is gone")
            return await side.refresh_data(path)
    tree = Path(dst) / TREES / entry.ref
    if not tree.is_dir():
        raise ResourceError(f"{entry.rid}: the tree of point {entry.name} is gone")
    await _local_rsync("-aHAX", "--numeric-ids", "--delete", EXCLUDE,
                       str(tree) + "/", dst.rstrip("/") + "/")  # fmt: skip
    return []


async def sizes(entries: list[Entry], dst: str, work_dir: Path, svc: str) -> dict[str, int]:
    snapshots = [e for e in entries if e.kind == "snapshot"]
    found: dict[str, int] = {}
    if snapshots and btrfs_subvolume_of(dst) is not None:
        async with opened(dst, work_dir, svc, snapshots[0].rid) as side:
            found.update(await sides.exclusive_sizes(
                {str(side.snap_dir / e.ref): e.name for e in snapshots}))  # fmt: skip
    for entry in (e for e in entries if e.kind == "tree"):
        found[entry.name] = await _du(Path(dst) / TREES / entry.ref)
    return found


def free(dst: str) -> float | None:
    try:
        return sides.free_percent(Path(dst))
    except OSError:
        return None


async def _du(path: Path) -> int:
    """Bytes of the files only this tree links (a file linked elsewhere too is shared)."""

    def walk() -> int:
        total = 0
        for root, _, files in os.walk(path):
            for name in files:
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                if st.st_nlink == 1:
                    total += st.st_blocks * 512
        return total

    return await asyncio.to_thread(walk)


async def _remove_tree(path: Path) -> None:
    if path.exists():
        await asyncio.to_thread(shutil.rmtree, path)


async def _local_rsync(*args: str) -> None:
    try:
        await run(["rsync", *args], timeout=LOCAL_RSYNC_TIMEOUT)
    except CommandError as exc:
        raise ResourceError(str(exc)) from None
