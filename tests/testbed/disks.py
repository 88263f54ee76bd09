"""btrfs disks on loop devices, shown to nodes as /dev/mapper/svc1.d0.

The kernel has no device-mapper here, so a node's /dev/mapper is a directory
of its own holding a block device node with the loop device's numbers. The
filesystem is only ever mounted in short-lived private mount namespaces (to
make the subvolumes) and later inside nodes, never in the machine's own.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .network import RUN_NETNS
from .procs import run
from .topology import DISK_LABEL, DISK_SIZE, DISK_SUBVOLUMES

DEV_MAPPER = "/dev/mapper"


def mapper_footprint() -> list[str]:
    """What the testbed must add to the host for nodes to bind their /dev/mapper on.

    A kernel without device-mapper has no /dev/mapper at all: the nodes' private
    directory needs a mount point there. ``up`` records it before making it.
    """
    return [] if os.path.isdir(DEV_MAPPER) else [f"dir:{DEV_MAPPER}"]


def make_mapper_dir(made: list[str]) -> None:
    if f"dir:{DEV_MAPPER}" in made:
        os.makedirs(DEV_MAPPER, exist_ok=True)


def undo_mapper_dir(made: Iterable[str]) -> list[str]:
    """Remove the /dev/mapper a testbed made, once empty and no other testbed is up;
    what was undone.

    Another testbed's nodes may have their own /dev/mapper bound on it (removing a
    mount point also detaches the mounts on it in other namespaces)."""
    if f"dir:{DEV_MAPPER}" not in made or not os.path.isdir(DEV_MAPPER):
        return []
    others = os.listdir(RUN_NETNS) if os.path.isdir(RUN_NETNS) else []
    if any(name.startswith("ferry-") for name in others) or os.listdir(DEV_MAPPER):
        return []
    try:
        os.rmdir(DEV_MAPPER)
    except OSError:
        return []  # became busy meanwhile: an empty directory on devtmpfs, gone at reboot
    return [f"dir:{DEV_MAPPER}"]


def make_filesystem(image: Path, mountpoint: Path, size: int = DISK_SIZE) -> str:
    """Sparse file of ``size`` bytes, btrfs labelled svc1, subvolumes; return its loop device.

    The caller records the image path first: ``loops_of`` finds the loop
    device again from it if we crash between attaching and recording.
    """
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as sparse:
        sparse.truncate(size)
    run(["mkfs.btrfs", "-q", "-f", "-L", DISK_LABEL, str(image)], timeout=60)
    # Direct I/O: the loop device writes to the image without a second page cache, as a real
    # disk would. Buffered, every btrfs commit was copied into the image's cache and written
    # again from there: twice the work for a commit, which no real DR node pays.
    attach = ["losetup", "--find", "--show", "--direct-io=on", str(image)]
    device = run(attach, timeout=30).stdout.strip()
    mountpoint.mkdir(parents=True, exist_ok=True)
    script = (
        'dev=$1 mnt=$2; shift 2; mount -t btrfs "$dev" "$mnt" || exit 1; '
        'for sub; do btrfs -q subvolume create "$mnt/$sub" || exit 1; done; umount "$mnt"'
    )
    private = ["unshare", "--mount", "--propagation", "private", "--"]
    run([*private, "sh", "-c", script, "sh", device, str(mountpoint), *DISK_SUBVOLUMES])
    mountpoint.rmdir()
    return device


def loops_of(image: Path) -> list[str]:
    """Loop devices backed by ``image``."""
    if not image.exists():
        return []
    out = run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)])
    return out.stdout.split()


def detach(device: str) -> None:
    """Forget the btrfs device (this one only, no global scan) and detach it."""
    run(["btrfs", "device", "scan", "--forget", device], check=False, timeout=30)
    run(["losetup", "--detach", device], check=False, timeout=30)


def make_device_node(path: Path, device: str) -> None:
    """A block device node at ``path`` with the numbers of ``device``."""
    rdev = os.stat(device).st_rdev
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    os.mknod(path, 0o600 | stat.S_IFBLK, rdev)
