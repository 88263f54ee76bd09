"""Checks that a testbed leaves the machine as it found it.

``network_snapshot`` is the machine's own network namespace as text (links,
addresses, routes, rules, firewall): it must be identical before, during and
after a testbed. ``traces`` lists whatever one testbed (known by its prefix
and state directory) left elsewhere: namespaces, loop devices, device-mapper
devices, mounts, cgroups, processes. It only looks for that testbed's things,
so other testbeds running at the same time on the machine (another test
session) do not disturb it. ``not_applicable`` says which checks this machine
cannot make (``dmsetup ls`` without device-mapper in the kernel).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from .procs import ProcId, all_pids, cmdline

_NETWORK_COMMANDS = {
    "link": ["ip", "-o", "link", "show"],
    "addr": ["ip", "-o", "addr", "show"],
    "route": ["ip", "route", "show", "table", "all"],
    "route6": ["ip", "-6", "route", "show", "table", "all"],
    "rule": ["ip", "rule", "show"],
    "iptables": ["iptables-save"],
    "ip6tables": ["ip6tables-save"],
    "nft": ["nft", "list", "ruleset"],
}
_SBIN_PATH = f"{os.environ.get('PATH', '')}:/usr/local/sbin:/usr/sbin:/sbin"
_DM_LS_LINE = re.compile(r"^(\S+)\s+\(\d+[:,]\s*\d+\)$")
# Lifetimes, counters and timestamps change by themselves.
_VOLATILE = [
    re.compile(r"(valid|preferred)_lft \S+"),
    re.compile(r"expires \S+"),
    re.compile(r"\[\d+:\d+\]"),
    re.compile(r"^#.*$", re.MULTILINE),
]


def _output(cmd: list[str]) -> str:
    exe = shutil.which(cmd[0], path=_SBIN_PATH)
    if exe is None:
        return f"({cmd[0]} not installed)"
    done = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=30, check=False)
    text = done.stdout + done.stderr
    for pattern in _VOLATILE:
        text = pattern.sub("", text)
    return text.strip()


def kernel_has_device_mapper(misc: str | None = None) -> bool:
    """Whether the kernel runs device-mapper (``misc``: /proc/misc's text)."""
    if misc is None:
        try:
            misc = Path("/proc/misc").read_text()
        except OSError:
            return False
    return "device-mapper" in (line.split()[-1] for line in misc.splitlines() if line.split())


def dmsetup_usable() -> bool:
    """``dmsetup`` installed and device-mapper in the kernel.

    Only then may ``dmsetup`` run: without device-mapper it still creates
    /dev/mapper/control (and /dev/mapper) on the machine, and removing that
    directory again would detach the running testbeds' nodes' /dev/mapper.
    """
    return shutil.which("dmsetup", path=_SBIN_PATH) is not None and kernel_has_device_mapper()


def not_applicable() -> list[str]:
    """Checks of ``traces`` that this machine cannot make, and why."""
    if dmsetup_usable():
        return []
    return ["dmsetup ls: no device-mapper in the kernel (the testbed never makes dm devices)"]


def dm_names(listing: str) -> list[str]:
    """Device names in ``dmsetup ls`` output, ``NAME\t(253:0)`` lines."""
    return [m.group(1) for line in listing.splitlines() if (m := _DM_LS_LINE.match(line))]


def dm_deps(text: str) -> list[str]:
    """Devices in ``dmsetup deps -o devname NAME`` output: `` 1 dependencies  : (loop3)``."""
    return re.findall(r"\(([^()\s]+)\)", text)


def own_dm_devices(prefix: str, devices: dict[str, list[str]], loops: Iterable[str]) -> list[str]:
    """Of ``devices`` (name -> devices it sits on), those of the testbed.

    That is, named with its prefix or built on one of its loop devices.
    """
    own = {Path(loop).name for loop in loops}
    return sorted(
        name for name, deps in devices.items() if name.startswith(prefix) or own & set(deps)
    )


def _dm_traces(prefix: str, loops: list[str]) -> list[str]:
    if not dmsetup_usable():
        return []
    names = dm_names(_output(["dmsetup", "ls"]))
    devices = {name: dm_deps(_output(["dmsetup", "deps", "-o", "devname", name])) for name in names}
    return [f"dm device {name}" for name in own_dm_devices(prefix, devices, loops)]


def network_snapshot() -> dict[str, str]:
    """The host network namespace as text: links, addresses, routes, firewall."""
    return {name: _output(cmd) for name, cmd in _NETWORK_COMMANDS.items()}


def processes_mentioning(text: str) -> list[str]:
    """``pid: command line`` of live processes whose command line contains ``text``."""
    me = os.getpid()
    return [f"{pid}: {cmd}" for pid in all_pids() if pid != me and text in (cmd := cmdline(pid))]


def traces(prefix: str, state_dir: Path, procs: Iterable[ProcId] = ()) -> list[str]:
    """What is left of the testbed with this prefix and state dir (empty: nothing).

    ``procs`` are processes known to have belonged to it (taken before ``down``):
    containers and containerd do not mention the state dir on their command line.
    """
    own = re.compile(rf"^{re.escape(prefix)}(sw|n\d+)$")
    inside = f"{state_dir}/"
    netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    found = [f"network namespace {name}" for name in netns if own.match(name)]
    loops = _output(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"])
    own_loops = [line.split()[0] for line in loops.splitlines() if inside in line]
    found += [f"loop device {line}" for line in loops.splitlines() if inside in line]
    found += _dm_traces(prefix, own_loops)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if inside in line or (point.startswith("/run/netns/") and own.match(Path(point).name)):
            found.append(f"mount {line}")
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        if hierarchy.is_dir():
            found += [f"cgroup {c}" for c in hierarchy.iterdir() if own.match(c.name)]
    found += [f"process {line}" for line in processes_mentioning(inside)]
    found += [f"process {p.pid}: {cmdline(p.pid)}" for p in procs if p.alive()]
    if state_dir.exists():
        found.append(f"state directory {state_dir}")
    return found


def settled_traces(
    prefix: str, state_dir: Path, procs: Iterable[ProcId] = (), timeout: float = 10.0
) -> list[str]:
    """``traces``, polled for a while until none is left."""
    procs = list(procs)
    deadline = time.monotonic() + timeout
    while True:
        found = traces(prefix, state_dir, procs)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
