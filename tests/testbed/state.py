"""The JSON record of what a testbed created, written as things are created.

``down`` reads it to undo everything, also after a crash: a name is recorded
*before* the thing is made, so a half-made thing is still found and removed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .procs import ProcId
from .topology import DISK_SIZE, Topology

VERSION = 1


@dataclass
class NodeRecord:
    """Processes of one node that the testbed started."""

    init: ProcId | None = None  # PID 1 of the node's PID namespace
    daemons: dict[str, ProcId] = field(default_factory=dict)


@dataclass
class NetemRecord:
    """An impaired link: the netem-like arguments and the forwarder process."""

    args: list[str]
    forwarder: ProcId | None = None


@dataclass
class Partition:
    """Frames dropped between two groups of nodes at the switch.

    Both ways, or with ``oneway`` only from group ``a`` to group ``b``; every
    frame, or with ``port`` only TCP segments to or from that port.
    """

    a: list[str]
    b: list[str]
    oneway: bool = False
    port: int | None = None

    def describe(self) -> str:
        """``n1 | n2``, ``n1 -> n2``, with `` (tcp port 7443)`` when port-only."""
        arrow = "->" if self.oneway else "|"
        text = f"{','.join(self.a)} {arrow} {','.join(self.b)}"
        return text + (f" (tcp port {self.port})" if self.port is not None else "")


@dataclass
class State:
    """Everything a testbed made, and the failures currently injected."""

    topology: Topology
    complete: bool = False
    netns: list[str] = field(default_factory=list)
    host_made: list[str] = field(default_factory=list)  # "dir:/run/netns", "mount:/run/netns"
    cgroups: list[str] = field(default_factory=list)
    loops: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    cut: list[str] = field(default_factory=list)
    partitions: list[Partition] = field(default_factory=list)
    netem: dict[str, NetemRecord] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def node(self, name: str) -> NodeRecord:
        """The record of a node, created on first use."""
        return self.nodes.setdefault(name, NodeRecord())

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename) so a crash never truncates it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_to_json(self), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> State | None:
        """Read a state file; None when there is none."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return _from_json(data)


def _proc(data: dict[str, int] | None) -> ProcId | None:
    return ProcId(data["pid"], data["start"]) if data else None


def _proc_json(proc: ProcId | None) -> dict[str, int] | None:
    return {"pid": proc.pid, "start": proc.start} if proc else None


def _partition(data: dict[str, Any] | list[list[str]]) -> Partition:
    if isinstance(data, list):  # written before one-way and port-only partitions
        return Partition(list(data[0]), list(data[1]))
    port = None if data.get("port") is None else int(data["port"])
    return Partition(list(data["a"]), list(data["b"]), bool(data.get("oneway")), port)


def _topology_json(topo: Topology) -> dict[str, Any]:
    # "shared" stays the flat list it always was (code of before shared groups reads it).
    return {
        "nodes": list(topo.nodes),
        "shared": list(topo.shared),
        "shared_groups": [list(group) for group in topo.shared_groups],
        "prefix": topo.prefix,
        "sites": [list(site) for site in topo.sites],
        "light": list(topo.light),
        "disk_size": topo.disk_size,
    }


def _topology(data: dict[str, Any]) -> Topology:
    groups = data.get("shared_groups")
    if groups is None:  # written before shared groups: one group, or none
        groups = [data["shared"]] if data["shared"] else []
    return Topology(
        nodes=tuple(data["nodes"]),
        shared_groups=tuple(tuple(group) for group in groups),
        prefix=data["prefix"],
        sites=tuple(tuple(site) for site in data.get("sites", [])),
        light=tuple(data.get("light", [])),
        disk_size=int(data.get("disk_size", DISK_SIZE)),
    )


def _to_json(state: State) -> dict[str, Any]:
    topo = state.topology
    return {
        "version": VERSION,
        "topology": _topology_json(topo),
        "complete": state.complete,
        "netns": state.netns,
        "host_made": state.host_made,
        "cgroups": state.cgroups,
        "loops": state.loops,
        "nodes": {
            name: {
                "init": _proc_json(rec.init),
                "daemons": {k: _proc_json(v) for k, v in rec.daemons.items()},
            }
            for name, rec in state.nodes.items()
        },
        "cut": state.cut,
        "partitions": [asdict(p) for p in state.partitions],
        "netem": {
            name: {"args": rec.args, "forwarder": _proc_json(rec.forwarder)}
            for name, rec in state.netem.items()
        },
        "timings": state.timings,
    }


def _from_json(data: dict[str, Any]) -> State:
    nodes = {}
    for name, rec in data.get("nodes", {}).items():
        daemons = {k: p for k, v in rec.get("daemons", {}).items() if (p := _proc(v))}
        nodes[name] = NodeRecord(_proc(rec.get("init")), daemons)
    netem = {
        name: NetemRecord(list(rec["args"]), _proc(rec.get("forwarder")))
        for name, rec in data.get("netem", {}).items()
    }
    return State(
        topology=_topology(data["topology"]),
        complete=bool(data.get("complete")),
        netns=list(data.get("netns", [])),
        host_made=list(data.get("host_made", [])),
        cgroups=list(data.get("cgroups", [])),
        loops=dict(data.get("loops", {})),
        nodes=nodes,
        cut=list(data.get("cut", [])),
        partitions=[_partition(p) for p in data.get("partitions", [])],
        netem=netem,
        timings=dict(data.get("timings", {})),
    )
