"""One side of a btrfs replication on this node: the sender's or the receiver's operations.

The filesystem is named by its label *as mounted on this node*: it is found among the
btrfs mounts of this node's mount namespace, never by a global device scan that
could find another node's disk. Ferry mounts the filesystem's top level privately
(under the resource's state dir) while it works, and unmounts it afterwards.

Layout in the filesystem's top level::

    <subvolume>                           the writable data (dst on the target)
    .ferry/<svc>/<rid>/<base>@<stamp>     read-only snapshots (sent or received)
    .ferry/<svc>/<rid>/.pairs.json        the sender's record: target -> the snapshot it
                                          holds the pair of (kept for it, see plan.retention)

A receive lands in the snapshot directory under the sender's snapshot name (btrfs
cannot move a read-only subvolume to another directory); until it is verified
(read-only, received uuid set) nothing uses it, and a writable entry there is what
an interrupted receive left, removed at the next run. The record of pairs lives with
the snapshots, on the disk: on a shared disk the node that takes the service over
finds what its predecessor's targets hold.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from daemon.config.store import write_atomically
from daemon.resources.base import ResourceError
from daemon.sync.btrfs.plan import Snapshot, ordered
from daemon.system import mounts
from daemon.system.command import CommandError, run

log = logging.getLogger("ferry.sync")

BTRFS_TIMEOUT = 120.0


def parse_location(value: str) -> tuple[str, str]:
    """``'svc1:data'`` -> ``('svc1', 'data')``."""
    label, sep, path = value.partition(":")
    if not sep or not label or not path.strip("/"):
        raise ResourceError(f"{value!r} is not <label>:<subvolume path>")
    return label, path.strip("/")


SETTLE_TIMEOUT = 60.0  # for deleted subvolumes to be cleaned before sizes are read


async def _btrfs(*args: str, timeout: float = BTRFS_TIMEOUT) -> str:
    try:
        return (await run(["btrfs", *args], timeout=timeout)).stdout
    except CommandError as exc:
        raise ResourceError(str(exc)) from None


async def device_of_label(label: str, service_devices: Sequence[str] = ()) -> str:
    """The device of the btrfs labelled ``label`` on this node.

    First among this node's btrfs mounts; else among the devices the service's own fs
    resources name for this node (probing those devices only): on a primary node that
    does not run the service, nothing is mounted, and the way back after a DR
    activation still needs the shared disk.
    """
    seen: set[str] = set()
    for mount in mounts.mounts():
        if mount.fstype != "btrfs" or mount.source in seen:
            continue
        seen.add(mount.source)
        try:
            found = (await _btrfs("filesystem", "label", mount.target, timeout=20)).strip()
        except ResourceError:
            continue
        if found == label:
            return mount.source
    for device in service_devices:
        try:
            probed = await run(["blkid", "-s", "LABEL", "-o", "value", device], timeout=20)
        except CommandError:
            continue
        if probed.stdout.strip() == label:
            return device
    raise ResourceError(
        f"no btrfs filesystem labelled {label!r} on this node, mounted or named by the "
        "service's fs resources (on a DRP node, mount it as a standby fs: "
        "standby@drpnodes = true)"
    )


async def exclusive_sizes(paths: dict[str, str]) -> dict[str, int]:
    """path -> key, to key -> the bytes only that subvolume holds (btrfs filesystem du)."""
    present = [p for p in paths if Path(p).is_dir()]
    if not present:
        return {}
    try:  # a subvolume deleted but not yet cleaned still shares its extents: a commit
        # wakes the cleaner (else it waits for the next one, up to 30 s), then wait for it
        where = str(Path(present[0]).parent)
        await _btrfs("filesystem", "sync", where, timeout=SETTLE_TIMEOUT)
        await _btrfs("subvolume", "sync", where, timeout=SETTLE_TIMEOUT)
    except ResourceError as exc:  # the sizes are then a little low, refreshed next run
        log.debug("btrfs subvolume sync: %s", exc)
    text = await _btrfs("filesystem", "du", "-s", "--raw", *present, timeout=300)
    sizes: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split(None, 3)
        if len(fields) == 4 and fields[0].isdigit() and fields[3] in paths:
            sizes[paths[fields[3]]] = int(fields[1])
    return sizes


def free_percent(path: Path) -> float:
    stat = os.statvfs(path)
    return 100.0 * stat.f_bavail / stat.f_blocks if stat.f_blocks else 100.0


def is_subvolume(path: Path) -> bool:
    """The root directory of every btrfs subvolume has inode number 256."""
    try:
        return path.is_dir() and path.stat().st_ino == 256
    except OSError:
        return False


def parse_subvolume_show(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


@dataclass
class Side:
    """The btrfs filesystem of one side, with its top level mounted at ``top``."""

    label: str
    device: str  # the block device, as this node's mount table names it
    subvolume: str  # path of the data subvolume in the top level
    snap_dir: Path  # absolute, under top
    top: Path

    @property
    def data(self) -> Path:
        return self.top / self.subvolume

    @property
    def base(self) -> str:
        return self.subvolume.replace("/", "_")

    async def info(self, path: Path) -> dict[str, str]:
        return parse_subvolume_show(await _btrfs("subvolume", "show", str(path)))

    async def snapshots(self) -> list[Snapshot]:
        if not self.snap_dir.is_dir():
            return []
        found = []
        for entry in sorted(self.snap_dir.iterdir()):
            if entry.name.startswith(".") or not is_subvolume(entry):
                continue
            fields = await self.info(entry)
            received = fields.get("Received UUID", "-")
            found.append(
                Snapshot(
                    entry.name,
                    fields.get("UUID", ""),
                    "" if received in ("-", "") else received,
                )
            )
        return ordered(found)

    @property
    def pairs_path(self) -> Path:
        return self.snap_dir / ".pairs.json"

    def pairs(self) -> dict[str, str]:
        """The sender's record: target -> the snapshot it holds the pair of ('' = none).

        Unreadable or absent: an empty record (every target unknown, see plan.retention).
        """
        try:
            data = json.loads(self.pairs_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}

    def write_pairs(self, pairs: dict[str, str]) -> None:
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self.pairs_path, json.dumps(pairs, sort_keys=True) + "\n")

    async def snapshot(self, name: str) -> Path:
        """A read-only snapshot of the data subvolume, named name."""
        if not self.data.is_dir():
            raise ResourceError(f"no subvolume {self.subvolume} in btrfs {self.label!r}")
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        path = self.snap_dir / name
        await _btrfs("subvolume", "snapshot", "-r", str(self.data), str(path))
        return path

    async def delete(self, names: list[str]) -> None:
        for name in names:
            path = self.snap_dir / name
            if path.exists():
                await _btrfs("subvolume", "delete", str(path))

    async def clean_incomplete(self) -> list[str]:
        """Remove what an interrupted receive left: writable subvolumes in the snapshot dir.

        A receive makes its subvolume read-only and sets its received uuid only at the
        end; Ferry's own snapshots are read-only from birth. So a writable entry there
        is always the remains of a receive that did not finish.
        """
        removed: list[str] = []
        if not self.snap_dir.is_dir():
            return removed
        for entry in sorted(self.snap_dir.iterdir()):
            if not is_subvolume(entry):
                continue
            if "readonly" not in (await self.info(entry)).get("Flags", ""):
                await _btrfs("subvolume", "delete", str(entry))
                removed.append(entry.name)
        return removed

    async def commit(self) -> None:
        """Write what is in memory to the disk (a btrfs transaction commit)."""
        await _btrfs("filesystem", "sync", str(self.top))

    async def verify_received(self, path: Path) -> None:
        fields = await self.info(path)
        flags = fields.get("Flags", "")
        if "readonly" not in flags:
            raise ResourceError(f"received {path.name} is not read-only: incomplete receive")
        if fields.get("Received UUID", "-") in ("-", ""):
            raise ResourceError(f"received {path.name} has no received uuid: incomplete receive")

    async def refresh_data(self, snapshot: Path) -> list[str]:
        """Make the writable data subvolume a fresh snapshot of ``snapshot``.

        The new subvolume is made beside the old one, then swapped in by renames; the
        mounts of the old one are moved to the new one (so a standby mount shows the new
        data). Returns warnings (an old subvolume still busy is removed at the next run).
        """
        warnings: list[str] = []
        parent = self.data.parent
        fresh = parent / f".{self.data.name}.ferry-new"
        old = parent / f".{self.data.name}.ferry-old"
        for leftover in (fresh, old):
            if leftover.exists():
                try:
                    await _btrfs("subvolume", "delete", str(leftover))
                except ResourceError as exc:
                    warnings.append(f"cannot remove {leftover.name} yet: {exc}")
                    if leftover == old:
                        return warnings  # keep the current data: try again next run
        await _btrfs("subvolume", "snapshot", str(snapshot), str(fresh))
        root = "/" + self.subvolume
        users = [
            m for m in mounts.mounts()
            if m.fstype == "btrfs" and m.root == root and m.source == self.device
        ]  # fmt: skip
        if self.data.exists():
            os.rename(self.data, old)
        os.rename(fresh, self.data)
        for mount in users:
            options = _remount_options(mount.options, self.subvolume)
            try:
                await run(["umount", "-l", mount.target], timeout=60)
                await run(["mount", "-o", options, mount.source, mount.target], timeout=60)
            except CommandError as exc:
                warnings.append(f"cannot move the mount at {mount.target}: {exc}")
        if old.exists():
            try:
                await _btrfs("subvolume", "delete", str(old))
            except ResourceError:
                warnings.append(f"previous {self.subvolume} is busy: removed at the next run")
        return warnings


def _remount_options(options: str, subvolume: str) -> str:
    kept = [o for o in options.split(",") if o and not o.startswith(("subvol=", "subvolid="))]
    return ",".join([*kept, f"subvol={subvolume}"])


@contextlib.asynccontextmanager
async def opened(
    label: str,
    subvolume: str,
    work_dir: Path,
    svc: str,
    rid: str,
    service_devices: Sequence[str] = (),
) -> AsyncIterator[Side]:
    """Mount the top level of the btrfs labelled ``label`` privately while working on it."""
    device = await device_of_label(label, service_devices)
    async with opened_device(device, subvolume, work_dir, svc, rid, label) as side:
        yield side


# The top levels this process has mounted, and how many users each has: a receive that
# ferryd holds open (receiver.py) shares its mount with the calls that come meanwhile,
# which must not unmount it under the stream.
_users: dict[Path, int] = {}


@contextlib.asynccontextmanager
async def opened_device(
    device: str, subvolume: str, work_dir: Path, svc: str, rid: str, label: str = ""
) -> AsyncIterator[Side]:
    """Mount the top level of the btrfs on device privately while working on it."""
    top = work_dir / "top"
    side = Side(label, device, subvolume, top / ".ferry" / svc / rid, top)
    if _users.get(top):
        _users[top] += 1
        try:
            yield side
        finally:
            _users[top] -= 1
        return
    top.mkdir(parents=True, exist_ok=True)
    if mounts.mounted_at(str(top)) is not None:  # left by a process that died
        # lazily: a receive cut off from its sender may still hold it (its stream gone,
        # it waits on ssh); it keeps its own view, and this one mounts afresh
        with contextlib.suppress(CommandError):
            await run(["umount", "-l", str(top)], timeout=60)
    try:
        await run(["mount", "-o", "subvolid=5", device, str(top)], timeout=60)
    except CommandError as exc:
        raise ResourceError(f"cannot mount the top level of {label!r}: {exc}") from None
    _users[top] = 1
    try:
        yield side
    finally:
        _users[top] -= 1
        if not _users[top]:
            del _users[top]
            with contextlib.suppress(CommandError):
                await run(["umount", str(top)], timeout=60)
