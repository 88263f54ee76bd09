"""Namespaces, the switch, node links, cuts and partitions.

Every ``ip`` command here runs with ``-n NAMESPACE``: links are born inside
the switch namespace and one end moves straight into the node's, so nothing
ever appears in the machine's own network namespace.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from itertools import product

from .procs import run
from .state import Partition
from .topology import BRIDGE, GATEWAY, NETEM_SUFFIX, PREFIXLEN, Topology, node_ip

NFT_TABLE = "ferry"
RUN_NETNS = "/run/netns"


def netns_exists(name: str) -> bool:
    """True when /run/netns/NAME exists."""
    return os.path.exists(f"{RUN_NETNS}/{name}")


def run_netns_footprint() -> list[str]:
    """What the first ``ip netns add`` would add to the host: /run/netns, its mount.

    ``ip`` creates the directory and bind-mounts it on itself; the testbed
    records which of those it caused so that ``down`` can take them back.
    """
    if not os.path.isdir(RUN_NETNS):
        return [f"dir:{RUN_NETNS}", f"mount:{RUN_NETNS}"]
    with open("/proc/self/mountinfo") as mountinfo:
        mounted = any(line.split()[4] == RUN_NETNS for line in mountinfo)
    return [] if mounted else [f"mount:{RUN_NETNS}"]


def undo_run_netns(made: Iterable[str]) -> list[str]:
    """Unmount/remove /run/netns if a testbed made it and it is empty now; what was undone."""
    ours = [item for item in made if item in (f"mount:{RUN_NETNS}", f"dir:{RUN_NETNS}")]
    if not ours or not os.path.isdir(RUN_NETNS) or os.listdir(RUN_NETNS):
        return []
    undone = []
    if f"mount:{RUN_NETNS}" in ours:
        run(["umount", RUN_NETNS], check=False, timeout=30)
        undone.append(f"mount:{RUN_NETNS}")
    if f"dir:{RUN_NETNS}" in ours:
        os.rmdir(RUN_NETNS)
        undone.append(f"dir:{RUN_NETNS}")
    return undone


def ip(ns: str, *args: str) -> None:
    """Run ``ip -n NS ARGS`` (never in the machine's own namespace)."""
    run(["ip", "-n", ns, *args], timeout=30)


def add_netns(name: str) -> None:
    """Create a network namespace with its loopback up."""
    if not netns_exists(name):
        run(["ip", "netns", "add", name], timeout=30)
    ip(name, "link", "set", "lo", "up")


def delete_netns(name: str) -> None:
    """Delete a network namespace if it exists."""
    if netns_exists(name):
        run(["ip", "netns", "delete", name], timeout=30)


def create_switch(topo: Topology) -> None:
    """The bridge, with the gateway address, in the switch namespace."""
    sw = topo.switch_ns
    ip(sw, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    ip(sw, "addr", "add", f"{GATEWAY}/{PREFIXLEN}", "dev", BRIDGE)
    ip(sw, "link", "set", BRIDGE, "up")
    apply_partitions(topo, [])


def connect_node(topo: Topology, node: str) -> None:
    """Node's ``eth0`` (fixed address, default route) on a switch port named after it."""
    sw, ns = topo.switch_ns, topo.node_ns(node)
    ip(sw, "link", "add", node, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip(sw, "link", "set", node, "master", BRIDGE, "up")
    ip(ns, "addr", "add", f"{node_ip(node)}/{PREFIXLEN}", "dev", "eth0")
    ip(ns, "link", "set", "eth0", "up")
    ip(ns, "route", "add", "default", "via", GATEWAY)


def set_port(topo: Topology, node: str, up: bool) -> None:
    """Carrier of the node's link: down is a pulled cable, seen by the node."""
    ip(topo.switch_ns, "link", "set", node, "up" if up else "down")


def partition_rules(partitions: Sequence[Partition]) -> list[str]:
    """nft rules (bridge family, forward hook) that carry out ``partitions``.

    A frame is matched by the switch ports it enters and leaves by (named after
    the nodes; ``<node>-nq`` while netem is on). A one-way partition drops what
    group ``a`` sends to group ``b`` but lets ARP through, so that ``b`` keeps
    resolving ``a``'s addresses and its frames keep arriving there: only the
    IP traffic is lost, as on a link losing one direction. A port-only one drops
    TCP segments to or from that port and nothing else.
    """
    rules = []
    for part in partitions:
        if part.port is not None:
            matches = [f"tcp dport {part.port} ", f"tcp sport {part.port} "]
        else:
            matches = ["ether type != arp " if part.oneway else ""]
        directions = [(part.a, part.b)] if part.oneway else [(part.a, part.b), (part.b, part.a)]
        for group_src, group_dst in directions:
            for src, dst in product(group_src, group_dst):
                ports_src = f'{{ "{src}", "{src}{NETEM_SUFFIX}" }}'
                ports_dst = f'{{ "{dst}", "{dst}{NETEM_SUFFIX}" }}'
                rules += [f"iifname {ports_src} oifname {ports_dst} {m}drop" for m in matches]
    return rules


def apply_partitions(topo: Topology, partitions: Sequence[Partition]) -> None:
    """Replace the switch's bridge filter with the rules of ``partitions``."""
    body = "\n".join(f"    {rule}" for rule in partition_rules(partitions))
    ruleset = (
        f"table bridge {NFT_TABLE}\n"
        f"delete table bridge {NFT_TABLE}\n"
        f"table bridge {NFT_TABLE} {{\n"
        "  chain forward {\n"
        "    type filter hook forward priority 0; policy accept;\n"
        f"{body}\n"
        "  }\n"
        "}\n"
    )
    in_netns = ["nsenter", f"--net=/run/netns/{topo.switch_ns}", "--"]
    run([*in_netns, "nft", "-f", "-"], input=ruleset, timeout=30)


def port_is_up(topo: Topology, node: str) -> bool:
    """Whether the node's switch port is administratively up."""
    out = run(["ip", "-n", topo.switch_ns, "-o", "link", "show", "dev", node], timeout=30)
    flags = out.stdout.split("<", 1)[1].split(">", 1)[0].split(",")
    return "UP" in flags


def netns_inodes(names: Iterable[str]) -> dict[str, int]:
    """Namespace inode of each existing named network namespace."""
    inodes = {}
    for name in names:
        try:
            inodes[name] = os.stat(f"/run/netns/{name}").st_ino
        except OSError:
            continue
    return inodes
