"""Impaired links: netem-like arguments and the userspace forwarder's wiring.

Normally a node's switch port (named after the node) sits on the bridge. To
impair the link, the port leaves the bridge and ``netem_forward.py`` carries
frames between it and a new veth pair whose other end, ``<node>-nq``, joins
the bridge in its place. Each direction gets the same delay, loss and rate.
"""

from __future__ import annotations

import re
import select
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .network import ip
from .procs import ProcId, TestbedError, run
from .topology import BRIDGE, NETEM_INNER_SUFFIX, NETEM_SUFFIX, Layout, Topology

FORWARDER = Path(__file__).with_name("netem_forward.py")
_TIME = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)?$")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, None: 1e-6}  # tc: a bare number is usec
_RATE_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_RATE_UNITS |= {"bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9}


@dataclass(frozen=True)
class Impairment:
    """Delay and jitter (s), loss (fraction), rate (bit/s); 0 means none."""

    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    rate: float = 0.0

    def argv(self) -> list[str]:
        """The forwarder's numeric arguments."""
        return [repr(self.delay), repr(self.jitter), repr(self.loss), repr(self.rate)]


def _seconds(text: str) -> float:
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"bad time {text!r} (e.g. 100ms)")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def parse(args: Sequence[str]) -> Impairment:
    """Parse ``delay 100ms [10ms] loss 5% rate 10mbit`` (any subset, any order)."""
    values: dict[str, float] = {}
    words = list(args)
    while words:
        word = words.pop(0)
        if word == "delay" and words:
            values["delay"] = _seconds(words.pop(0))
            if words and _TIME.match(words[0]):
                values["jitter"] = _seconds(words.pop(0))
        elif word == "loss" and words:
            values["loss"] = float(words.pop(0).rstrip("%")) / 100
        elif word == "rate" and words:
            match = _RATE.match(words.pop(0).lower())
            if not match:
                raise ValueError("bad rate (e.g. 10mbit, 1gbit, 500kbps)")
            values["rate"] = float(match.group(1)) * _RATE_UNITS[match.group(2)]
        else:
            raise ValueError(f"netem: unexpected {word!r}; use delay T [J], loss P%, rate R")
    if not values or not 0 <= values.get("loss", 0) <= 1:
        raise ValueError("netem: give delay, loss and/or rate (loss between 0% and 100%)")
    return Impairment(**values)


def start(
    topo: Topology, layout: Layout, node: str, imp: Impairment
) -> tuple[subprocess.Popen[bytes], ProcId]:
    """Put the forwarder between the node's port and the bridge."""
    sw, outer, inner = topo.switch_ns, f"{node}{NETEM_SUFFIX}", f"{node}{NETEM_INNER_SUFFIX}"
    ip(sw, "link", "add", inner, "type", "veth", "peer", "name", outer)
    ip(sw, "link", "set", outer, "master", BRIDGE, "up")
    ip(sw, "link", "set", inner, "up")
    cmd = ["nsenter", f"--net=/run/netns/{sw}", "--", sys.executable, "-I", "-S"]
    cmd += [str(FORWARDER), node, inner, *imp.argv()]
    with open(layout.log(node, "netem"), "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    if not ready or proc.stdout.readline() != b"ready\n":
        proc.kill()
        proc.wait(timeout=10)
        run(["ip", "-n", sw, "link", "del", inner], check=False)
        raise TestbedError(f"{node}: netem forwarder did not start, see its log")
    ip(sw, "link", "set", node, "nomaster")
    return proc, ProcId.of(proc.pid)


def stop(topo: Topology, node: str, forwarder: ProcId | None) -> None:
    """Put the node's port back on the bridge and remove the forwarder."""
    sw = topo.switch_ns
    ip(sw, "link", "set", node, "master", BRIDGE)
    if forwarder is not None:
        forwarder.kill()
    run(["ip", "-n", sw, "link", "del", f"{node}{NETEM_INNER_SUFFIX}"], check=False)
