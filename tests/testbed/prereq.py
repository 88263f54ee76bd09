"""What the testbed needs from the machine, and what is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

COMMANDS = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "losetup": "util-linux",
    "mount": "mount",
    "nft": "nftables",
    "mkfs.btrfs": "btrfs-progs",
    "btrfs": "btrfs-progs",
    "dockerd": "docker.io",
    "docker": "docker.io",
    "containerd": "containerd",
    "runc": "runc",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "rsync": "rsync",
}
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def missing_prerequisites() -> list[str]:
    """Human-readable reasons the testbed cannot run here (empty when it can)."""
    if os.geteuid() != 0:
        return ["the testbed needs root (network namespaces, loop devices, mounts)"]
    path = f"{os.environ.get('PATH', '')}:{_SBIN}"
    missing = [
        f"command {cmd} (Debian package {pkg})"
        for cmd, pkg in COMMANDS.items()
        if shutil.which(cmd, path=path) is None
    ]
    if not Path("/bin/busybox").exists():
        missing.append("/bin/busybox (Debian package busybox-static)")
    filesystems = Path("/proc/filesystems").read_text()
    missing += [f"kernel filesystem {fs}" for fs in ("btrfs", "overlay") if fs not in filesystems]
    if not Path("/dev/loop-control").exists():
        missing.append("/dev/loop-control (loop devices)")
    return missing
