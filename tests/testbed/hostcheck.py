"""Checks that a testbed leaves the machine as it found it.

``network_snapshot`` is the machine's own network namespace as text (links,
addresses, routes, rules, firewall): it must be identical before, during and
after a testbed. ``traces`` lists whatever one testbed (known by its prefix
and state directory) left elsewhere: namespaces, loop devices, mounts, cgroups,
processes. It only looks for that testbed's things, so other testbeds running
at the same time on the machine (another test session) do not disturb it.
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
# Lifetimes, counters and timestamps change by themselves.
_VOLATILE = [
    re.compile(r"(valid|preferred)_lft \S+"),
    re.compile(r"expires \S+"),
    re.compile(r"\[\d+:\d+\]"),
    re.compile(r"^#.*$", re.MULTILINE),
]


def _output(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return f"({cmd[0]} not installed)"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    text = done.stdout + done.stderr
    for pattern in _VOLATILE:
        text = pattern.sub("", text)
    return text.strip()


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
    found += [f"loop device {line}" for line in loops.splitlines() if inside in line]
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
