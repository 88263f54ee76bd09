"""A drill's bubble: a mount, network and PID namespace of its own, held by one process.

The bubble is made with ``unshare`` (mount propagation private: nothing mounted inside
shows on the node, nothing the node mounts later shows inside); its PID 1 is
:mod:`daemon.drill.holder`. Every command of the drill runs inside it through
``nsenter``. Its network namespace has only ``lo`` and a bridge of its own
(:data:`BRIDGE`) that stands in for the service's ``ipdev``: connected to no site network,
reachable from nowhere else. Killing PID 1 ends every process inside, containers too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from daemon.system import process
from daemon.system.command import CommandError, CommandResult, kill, run

BRIDGE = "ferry0"  # the bubble's stand-in for every ipdev
CREATE_TIMEOUT = 20.0
STEP_TIMEOUT = 60.0


class BubbleError(Exception):
    """The bubble cannot be made or reached; the message says why."""


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, its identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(") ", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Bubble:
    """The bubble's PID 1 as this node sees it, and that process's start time."""

    pid: int
    ticks: int

    def alive(self) -> bool:
        return process.alive(self.pid) and start_ticks(self.pid) == self.ticks

    def enter(self, *argv: str) -> list[str]:
        """argv run inside the bubble: its mounts, its network, its processes."""
        return ["nsenter", "-t", str(self.pid), "-m", "-n", "-p", "--", *argv]

    async def run(
        self,
        *argv: str,
        timeout: float = STEP_TIMEOUT,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        if not self.alive():
            raise BubbleError("the drill's bubble is gone")
        return await run(self.enter(*argv), timeout=timeout, check=check, env=env)

    def members(self) -> list[int]:
        """Pids of every process of the bubble (as this node sees them): PID 1 and its
        descendants, containers' processes included (their PID namespaces nest in the
        bubble's, and their parents end at its PID 1)."""
        parents: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                status = Path(f"/proc/{entry.name}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("PPid:"):
                    parents[int(entry.name)] = int(line.split()[1])
                    break
        if self.pid not in parents:
            return []
        out = []
        for pid in parents:
            seen, current = 0, pid
            while current and current != self.pid and seen < 256:
                current, seen = parents.get(current, 0), seen + 1
            if current == self.pid:
                out.append(pid)
        return sorted(out)

    async def end(self, wait: float = 15.0) -> None:
        """Kill PID 1 (and with it everything inside); return once they are all gone."""
        if not self.alive():
            return
        others = [p for p in self.members() if p != self.pid]
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process.alive(self.pid) and not any(process.alive(p) for p in others):
                return
            await asyncio.sleep(0.1)
        raise BubbleError(f"processes of the drill's bubble (pid {self.pid}) did not end")


def _find_holder(tag: str) -> int | None:
    """The pid (as this node sees it) of the holder started with ``tag``: PID 1 of its own
    PID namespace."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            if b"daemon.drill.holder" not in cmdline or tag.encode() not in cmdline:
                continue
            status = Path(f"/proc/{entry.name}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                return int(entry.name)
    return None


async def create(tag: str) -> Bubble:
    """A new bubble, wired: ``lo`` up and the bridge :data:`BRIDGE`, both up.

    Its ``unshare`` is detached (``setsid -f``): the bubble outlives the process that made
    it (a CLI run with ``--keep``, a ferryd killed mid-drill), and is ended only by
    :meth:`Bubble.end`, from its record when need be. ``tag`` (the drill id) names it.
    """
    argv = [
        "setsid", "-f", "unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc",
        "--propagation", "private", "--kill-child",
        sys.executable, "-m", "daemon.drill.holder", tag,
    ]  # fmt: skip
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        raise BubbleError(f"cannot run unshare: {exc.strerror}") from None
    try:
        async with asyncio.timeout(CREATE_TIMEOUT):
            line = await proc.stdout.readline() if proc.stdout else b""
            await proc.wait()
    except TimeoutError:
        await kill(proc)
        line = b""
    pid = _find_holder(tag) if line.strip() == b"ready" else None
    ticks = start_ticks(pid) if pid is not None else None
    if pid is None or ticks is None:
        pid = _find_holder(tag)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise BubbleError("the bubble did not start (unshare: mount, network and PID namespaces)")
    bubble = Bubble(pid, ticks)
    try:
        await bubble.run("ip", "link", "set", "lo", "up")
        await bubble.run("ip", "link", "add", BRIDGE, "type", "bridge")
        await bubble.run("ip", "link", "set", BRIDGE, "up")
    except (CommandError, BubbleError) as exc:
        await bubble.end()
        raise BubbleError(f"cannot wire the bubble's network: {exc}") from None
    return bubble


def bridge_address(ipname: str, prefix: int, gateway: str, taken: set[str]) -> str:
    """The address the bubble's bridge takes so that the drill reaches the service's address:
    the service's gateway when it has one, else the first free host of its subnet."""
    network = ipaddress.ip_network(f"{ipname}/{prefix}", strict=False)
    if gateway:
        return f"{gateway}/{network.prefixlen}"
    for host in network.hosts():
        if str(host) not in taken and str(host) != ipname:
            return f"{host}/{network.prefixlen}"
    raise BubbleError(f"no free address in {network} for the drill's bridge")
