"""The mount table of this process's mount namespace (/proc/self/mountinfo)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_ESCAPE_RE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo."""

    root: str  # the path inside the filesystem that is mounted (btrfs: the subvolume)
    target: str
    fstype: str
    source: str
    options: str
    super_options: str

    def source_rdev(self) -> int | None:
        """The block device number of the source, when the source is a device path."""
        try:
            st = os.stat(self.source)
        except OSError:
            return None
        return st.st_rdev if st.st_rdev else None


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        tail = right.split()
        if len(fields) < 6 or len(tail) < 3:
            continue
        mounts.append(
            Mount(
                root=_unescape(fields[3]),
                target=_unescape(fields[4]),
                fstype=tail[0],
                source=_unescape(tail[1]),
                options=fields[5],
                super_options=tail[2],
            )
        )
    return mounts


def mounts() -> list[Mount]:
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def mounted_at(target: str) -> Mount | None:
    """The topmost mount at target, or None."""
    target = os.path.normpath(target)
    found = None
    for mount in mounts():
        if mount.target == target:
            found = mount  # later lines are mounted over earlier ones
    return found


def is_mountpoint(path: str) -> bool:
    return mounted_at(path) is not None
