"""The fs driver: mount dev at mnt in this node's mount namespace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from daemon.resources.base import Resource, ResourceError, StatusReport
from daemon.resources.status import Status
from daemon.system import mounts
from daemon.system.command import CommandError, run

MOUNT_TIMEOUT = 60.0
BUSY_RETRY = 10.0
BLKID_TIMEOUT = 20.0
MAPPER_DIR = "/dev/mapper"


def subvolume_of(options: str) -> str:
    """The btrfs subvolume named by 'subvol=' in mount options, as a mountinfo root ('/data')."""
    for option in options.split(","):
        if option.startswith("subvol="):
            return "/" + option.removeprefix("subvol=").strip("/")
    return ""


async def _tagged(tag: str, devices: list[str]) -> list[str]:
    """The devices carrying tag (``LABEL=x``): among ``devices``, or all the node's."""
    # -c /dev/null: probe the devices now, never trust a cache written before a mkfs.
    argv = ["blkid", "-c", "/dev/null", "-o", "device", "-t", tag, *devices]
    try:
        result = await run(argv, timeout=BLKID_TIMEOUT, check=False)
    except CommandError as exc:
        raise ResourceError(str(exc)) from None
    if result.returncode not in (0, 2):  # 2: no device matches
        raise ResourceError(f"blkid cannot resolve {tag}: {result.tail()}")
    found: dict[int, str] = {}
    for device in result.stdout.split():
        with contextlib.suppress(OSError):
            found.setdefault(os.stat(device).st_rdev, device)  # one entry per device
    return list(found.values())


async def resolve_tag(tag: str) -> str:
    """The one device of this node carrying ``LABEL=x`` or ``UUID=x``.

    Device-mapper names come first, as libblkid ranks them: a multipathed disk carries
    its label on every path, and its /dev/mapper name is the one to mount. They are
    probed by name because a kernel without device-mapper (the testbed's) shows a node's
    disks only as /dev/mapper entries, while every disk of the machine, other nodes'
    included, is in the global scan. Two different devices with the tag: an error, never
    a guess.
    """
    mapper = Path(MAPPER_DIR)
    mapped = (
        sorted(str(p) for p in mapper.iterdir() if p.is_block_device()) if mapper.is_dir() else []
    )
    for devices in ([mapped] if mapped else []) + [[]]:
        found = await _tagged(tag, devices)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ResourceError(f"{tag} is ambiguous on this node: {', '.join(sorted(found))}")
    raise ResourceError(f"no device has {tag} on this node")


class Driver(Resource):
    """A filesystem mounted at mnt from dev (a path, LABEL= or UUID=)."""

    @property
    def dev(self) -> str:
        return str(self.values["dev"])

    @property
    def mnt(self) -> str:
        return os.path.normpath(str(self.values["mnt"]))

    @property
    def options(self) -> str:
        return str(self.values.get("mnt_opt") or "")

    def label(self) -> str:
        return f"{self.mnt} from {self.dev}"

    async def _device(self) -> str:
        """The device path; LABEL= and UUID= are resolved on this node (resolve_tag)."""
        if self.dev.startswith(("LABEL=", "UUID=")):
            return await resolve_tag(self.dev)
        return self.dev

    async def _rdev(self) -> int:
        device = await self._device()
        try:
            st = os.stat(device)
        except FileNotFoundError:
            raise ResourceError(f"device {device} does not exist") from None
        if not st.st_rdev:
            raise ResourceError(f"{device} is not a block device")
        return st.st_rdev

    def _ours(self, mount: mounts.Mount, rdev: int) -> bool:
        if mount.source_rdev() != rdev:
            return False
        wanted = subvolume_of(self.options)
        return not wanted or mount.root == wanted

    async def status(self) -> StatusReport:
        mount = mounts.mounted_at(self.mnt)
        if mount is None:
            return StatusReport(Status.DOWN)
        try:
            rdev = await self._rdev()
        except ResourceError as exc:
            return StatusReport(Status.WARN, [f"warn: {self.mnt} is mounted, but {exc}"])
        if self._ours(mount, rdev):
            return StatusReport(Status.UP)
        return StatusReport(
            Status.WARN,
            [f"warn: {self.mnt} is occupied by {mount.source} ({mount.fstype}, root {mount.root})"],
        )

    async def start(self) -> None:
        rdev = await self._rdev()
        current = mounts.mounted_at(self.mnt)
        if current is not None:
            if self._ours(current, rdev):
                return
            raise ResourceError(f"mount point {self.mnt} is occupied by {current.source}")
        await self.mount_at(self.mnt, rdev)

    async def mount_at(self, path: str, rdev: int | None = None) -> None:
        """Mount dev with mnt_opt at path (nothing to do when it is there already); a mount
        of it elsewhere is an error (a sync's leftover receive mount is released before a
        start: Resource.clear_leftovers)."""
        rdev = rdev or await self._rdev()
        current = mounts.mounted_at(path)
        if current is not None and self._ours(current, rdev):
            return
        for mount in mounts.mounts():
            if self._ours(mount, rdev) and mount.target != path:
                raise ResourceError(f"{self.dev} is already mounted at {mount.target}")
        os.makedirs(path, exist_ok=True)
        argv = ["mount"]
        if self.values.get("type"):
            argv += ["-t", str(self.values["type"])]
        if self.options:
            argv += ["-o", self.options]
        argv += [await self._device(), path]
        try:
            await run(argv, timeout=MOUNT_TIMEOUT)
        except CommandError as exc:
            raise ResourceError(str(exc)) from None

    async def stop(self) -> None:
        if mounts.mounted_at(self.mnt) is not None:
            await self.unmount_at(self.mnt)

    async def unmount_at(self, path: str) -> None:
        deadline = time.monotonic() + BUSY_RETRY
        while True:
            try:
                await run(["umount", path], timeout=MOUNT_TIMEOUT)
                return
            except CommandError as exc:
                # A process that was just stopped may take a moment to release its files
                # (a dockerd's containerd); only then is "busy" an error worth reporting.
                busy = "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise ResourceError(str(exc)) from None
            await asyncio.sleep(0.5)
