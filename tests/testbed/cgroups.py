"""A cgroup subtree per node, seen by the node as the whole cgroup tree.

Each node's init starts in ``/<prefix><node>`` of every hierarchy and in a
cgroup namespace of its own, and the node mounts the hierarchies again inside
its mount namespace: whatever cgroups its Docker engines create (the node's
own and the service-private ones the product starts) land under that subtree
on the host, and ``down`` removes the subtree. Nothing is left in the host's
/sys/fs/cgroup, whichever engine made it.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass(frozen=True)
class Hierarchy:
    """A mounted cgroup hierarchy: where, v1 or v2, and its controllers."""

    mountpoint: str
    fstype: str  # cgroup or cgroup2
    options: str  # e.g. "cpu", "name=systemd"; "" for cgroup2


def hierarchies() -> list[Hierarchy]:
    """The machine's cgroup hierarchies under /sys/fs/cgroup."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields, _, tail = line.partition(" - ")
            fstype, _source, options = tail.split()[:3]
            mountpoint = fields.split()[4]
            if fstype in ("cgroup", "cgroup2") and mountpoint.startswith(f"{CGROUP_ROOT}/"):
                kept = [opt for opt in options.split(",") if opt not in ("rw", "ro")]
                found.append(Hierarchy(mountpoint, fstype, ",".join(kept)))
    return found


def create(name: str) -> None:
    """``NAME`` in every hierarchy; cpuset needs its cpus and mems filled in."""
    for hierarchy in hierarchies():
        path = Path(hierarchy.mountpoint) / name
        path.mkdir(exist_ok=True)
        for key in ("cpuset.cpus", "cpuset.mems"):
            if (path / key).exists() and not (path / key).read_text().strip():
                (path / key).write_text((path.parent / key).read_text())


def join_command(name: str) -> list[str]:
    """Command prefix: move into ``NAME`` in every hierarchy, then exec the rest."""
    procs = [f"{h.mountpoint}/{name}/cgroup.procs" for h in hierarchies()]
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 1; shift; done; shift; exec "$@"'
    return ["sh", "-c", script, "sh", *procs, "--"]


def mount_script(tag: str) -> str:
    """Shell lines (using the mount script's ``mnt``) that mount the hierarchies again.

    Run inside the node's cgroup namespace, each mount's root is the node's subtree.
    """
    lines = [f"mnt {CGROUP_ROOT} -t tmpfs -o mode=0755 {shlex.quote(tag + '-cgroup')}"]
    for h in hierarchies():
        point = shlex.quote(h.mountpoint)
        options = f" -o {shlex.quote(h.options)}" if h.options else ""
        lines.append(f"mkdir -p {point}; mnt {point} -t {h.fstype}{options} {h.fstype}")
    return "\n".join(lines) + "\n"


def remove(name: str, timeout: float = 5.0) -> list[str]:
    """rmdir ``NAME`` subtrees, deepest first; return what could not go in time.

    A cgroup can only go once the kernel has finished with its dead tasks.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = _rmdir_trees(name)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _rmdir_trees(name: str) -> list[str]:
    left = []
    for hierarchy in hierarchies():
        top = Path(hierarchy.mountpoint) / name
        if not top.is_dir():
            continue
        dirs = [Path(dirpath) for dirpath, _, _ in os.walk(top)]
        for path in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            try:
                path.rmdir()
            except OSError:
                left.append(str(path))
    return left
