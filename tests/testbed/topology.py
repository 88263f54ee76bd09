"""What a testbed is made of: node names, addresses, names of its parts.

Pure data, no side effects. Every name the testbed gives to something on the
machine (namespaces, cgroups) starts with the prefix, ``ferry-`` by default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

SUBNET_PREFIX = "10.0.3."
PREFIXLEN = 24
GATEWAY = "10.0.3.1"
BRIDGE = "br0"
DEFAULT_NODES = ("n1", "n2", "n3")
DEFAULT_SHARED = ("n1", "n2")
DISK_DEVICE = "svc1.d0"  # shown to every node as /dev/mapper/svc1.d0
DISK_LABEL = "svc1"
DISK_SUBVOLUMES = ("docker", "data")
DISK_SIZE = 3 * 1024**3
MIN_DISK_SIZE = 128 * 1024**2  # mkfs.btrfs refuses less than about 110 MiB
NETEM_SUFFIX = "-nq"  # bridge-side port of a node whose link is impaired
NETEM_INNER_SUFFIX = "-nx"

_NODE_NAME = re.compile(r"^n([1-9][0-9]{0,2})$")
_PREFIX = re.compile(r"^ferry-([a-z0-9]+-)*$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmgtKMGT]?)$")
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def node_number(node: str) -> int:
    """K of node ``nK``; raise ValueError for any other name."""
    match = _NODE_NAME.match(node)
    if not match or not 1 <= int(match.group(1)) <= 200:
        raise ValueError(f"node names are n1 .. n200, not {node!r}")
    return int(match.group(1))


def node_ip(node: str) -> str:
    """Fixed address of node ``nK``: 10.0.3.(10+K) (.3-.5 stay free for services)."""
    return f"{SUBNET_PREFIX}{10 + node_number(node)}"


def _expand(item: str) -> list[str]:
    """``n3`` -> [n3]; ``n1-n6`` -> [n1 .. n6]."""
    first, dash, last = item.partition("-")
    if not dash:
        node_number(item)
        return [item]
    low, high = node_number(first.strip()), node_number(last.strip())
    if low > high:
        raise ValueError(f"range {item!r} runs backwards")
    return [f"n{k}" for k in range(low, high + 1)]


def parse_nodes(text: str) -> tuple[str, ...]:
    """Parse ``n1,n2,n5-n8`` (``nA-nB``: nA to nB) into a checked, duplicate-free tuple."""
    nodes = [node for item in text.split(",") if item.strip() for node in _expand(item.strip())]
    if not nodes:
        raise ValueError(f"no node in {text!r}")
    twice = sorted_nodes({node for node in nodes if nodes.count(node) > 1})
    if twice:
        raise ValueError(f"{describe(twice)} given twice in {text!r}")
    return tuple(nodes)


def parse_sites(text: str) -> tuple[tuple[str, ...], ...]:
    """Parse ``n1-n6,n7-n12``: sites separated by commas, each a node or a range, or
    several of them joined by ``+`` (``n1-n3+n7``)."""
    sites = []
    for number, site in enumerate(text.split(","), 1):
        if not site.strip():
            raise ValueError(f"site {number} has no node in {text!r}")
        sites.append(parse_nodes(site.replace("+", ",")))
    return _check_sites(tuple(sites))


def node_list(spec: str | Iterable[str]) -> tuple[str, ...]:
    """Nodes from ``"n1-n3,n5"`` or from names and ranges (``["n1-n3", "n5"]``)."""
    return parse_nodes(spec if isinstance(spec, str) else ",".join(spec))


def site_list(spec: str | Iterable[str | Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    """Sites from ``"n1-n6,n7-n12"`` (see parse_sites) or a list of node lists
    (``["n1-n6", "n7-n12"]``, ``[("n1", "n2"), ("n3",)]``)."""
    if isinstance(spec, str):
        return parse_sites(spec) if spec.strip() else ()
    return _check_sites(tuple(node_list(site) for site in spec))


def node_groups(spec: str | Iterable[str | Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    """Groups of nodes: one from a string or a flat list of names (``("n1", "n2")``, as
    ``up(shared=...)`` always took), several from a list of lists or strings of them."""
    if isinstance(spec, str):
        return (node_list(spec),) if spec.strip() else ()
    items = list(spec)
    if not items:
        return ()
    if all(isinstance(item, str) for item in items):
        return (node_list(cast(list[str], items)),)
    return tuple(node_list(item) for item in items)


def parse_size(text: str | int) -> int:
    """Bytes of ``512M``, ``3G``, ``1.5G``, ``2048K`` (powers of 1024) or a plain number."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"bad size {text!r} (e.g. 512M, 3G)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def describe(nodes: Sequence[str]) -> str:
    """Nodes as the CLI takes them, runs of consecutive ones as ranges: ``n1-n6,n9``."""
    parts: list[str] = []
    run: list[int] = []
    for k in [node_number(node) for node in nodes] + [0]:
        if run and k == run[-1] + 1:
            run.append(k)
            continue
        if run:
            parts += [f"n{run[0]}-n{run[-1]}"] if len(run) > 2 else [f"n{j}" for j in run]
        run = [k]
    return ",".join(parts)


def pairs_in(sites: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """Consecutive nodes of each site in twos; an odd one out is left alone (own disk)."""
    return tuple(tuple(site[i : i + 2]) for site in sites for i in range(0, len(site) - 1, 2))


def _check_sites(sites: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    seen: dict[str, int] = {}
    for number, site in enumerate(sites, 1):
        if not site:
            raise ValueError(f"site {number} has no node")
        for node in site:
            if node in seen:
                raise ValueError(f"{node} is in two sites ({seen[node]} and {number})")
            seen[node] = number
    return sites


def plan(
    nodes: str | Iterable[str] | None = None,
    shared: str | Iterable[str | Iterable[str]] | None = None,
    *,
    sites: str | Iterable[str | Iterable[str]] = (),
    pairs: bool = False,
    light: str | Iterable[str] = (),
    disk_size: int | str = DISK_SIZE,
    prefix: str = "ferry-",
) -> Topology:
    """The topology ``up`` builds from what its caller asked.

    ``nodes`` default to the sites' nodes, else n1 n2 n3. ``shared``: one group
    of nodes seeing one disk (a flat list) or several (a list of lists);
    default, the first two nodes (of the first site). ``pairs``: instead,
    consecutive nodes of each site (of all nodes without sites) share a disk
    two by two.
    """
    site_groups = site_list(sites)
    if nodes is not None:
        names = node_list(nodes)
    elif site_groups:
        names = tuple(node for site in site_groups for node in site)
    else:
        names = DEFAULT_NODES
    if pairs and shared is not None:
        raise ValueError("give either shared disk groups or pairs, not both")
    if pairs:
        groups = pairs_in(site_groups or (names,))
    elif shared is None:
        primary = default_shared(site_groups[0] if site_groups else names)
        groups = (primary,) if primary else ()
    else:
        groups = node_groups(shared)
    light_items = [light] if isinstance(light, str) else list(light)
    lights = node_list(light_items) if any(item.strip() for item in light_items) else ()
    return Topology(names, groups, prefix, site_groups, lights, parse_size(disk_size))


def default_shared(nodes: Sequence[str]) -> tuple[str, ...]:
    """The primary site by default: the first two nodes share the disk."""
    return tuple(nodes[:2]) if len(nodes) >= 2 else ()


@dataclass(frozen=True)
class Topology:
    """Nodes, their sites, which of them share a disk, which are light, name prefix.

    A node of ``light`` runs no Docker engine (benches that need only app
    resources); every node sees a disk as /dev/mapper/svc1.d0, of
    ``disk_size`` bytes: the nodes of one ``shared_groups`` group the same one.
    """

    nodes: tuple[str, ...] = DEFAULT_NODES
    shared_groups: tuple[tuple[str, ...], ...] = (DEFAULT_SHARED,)
    prefix: str = "ferry-"
    sites: tuple[tuple[str, ...], ...] = ()
    light: tuple[str, ...] = ()
    disk_size: int = DISK_SIZE

    def __post_init__(self) -> None:
        for node in self.nodes:
            node_number(node)
        if len(set(self.nodes)) != len(self.nodes) or not self.nodes:
            raise ValueError(f"need distinct node names, got {list(self.nodes)}")
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"prefix must look like 'ferry-' or 'ferry-x-', not {self.prefix!r}")
        self._check_groups()
        self._check_sites()
        strangers = set(self.light) - set(self.nodes)
        if strangers:
            raise ValueError(f"light nodes not in the testbed: {describe(sorted_nodes(strangers))}")
        if self.disk_size < MIN_DISK_SIZE:
            size = f"{self.disk_size / 1024**2:g}M"
            raise ValueError(f"disk size {size} is below btrfs's minimum (use 128M or more)")

    def _check_groups(self) -> None:
        owner: dict[str, tuple[str, ...]] = {}
        for group in self.shared_groups:
            strangers = set(group) - set(self.nodes)
            if strangers:
                names = describe(sorted_nodes(strangers))
                raise ValueError(f"shared nodes not in the testbed: {names}")
            for node in group:
                if node in owner:
                    raise ValueError(
                        f"{node} is in two shared groups ({describe(owner[node])} and "
                        f"{describe(group)}): a node sees one disk"
                    )
                owner[node] = group

    def _check_sites(self) -> None:
        if not self.sites:
            return
        _check_sites(self.sites)
        in_sites = {node for site in self.sites for node in site}
        if in_sites - set(self.nodes):
            names = describe(sorted_nodes(in_sites - set(self.nodes)))
            raise ValueError(f"site nodes not in the testbed: {names}")
        if set(self.nodes) - in_sites:
            names = describe(sorted_nodes(set(self.nodes) - in_sites))
            raise ValueError(f"nodes in no site: {names} (every node must be in one)")
        for group in self.shared_groups:
            if len({self.site_of(node) for node in group}) > 1:
                raise ValueError(f"shared group {describe(group)} spans sites: a disk is in one")

    @property
    def shared(self) -> tuple[str, ...]:
        """Every node that shares its disk with another, in group order."""
        return tuple(node for group in self.shared_groups for node in group)

    def site_of(self, node: str) -> int | None:
        """Number (from 1) of the node's site; None without sites."""
        return next((k for k, site in enumerate(self.sites, 1) if node in site), None)

    def is_light(self, node: str) -> bool:
        """Whether the node runs without a Docker engine."""
        return node in self.light

    @property
    def switch_ns(self) -> str:
        """Network namespace holding the bridge and the gateway address."""
        return f"{self.prefix}sw"

    def node_ns(self, node: str) -> str:
        """Network namespace of a node."""
        return f"{self.prefix}{node}"

    def cgroup(self, node: str) -> str:
        """Cgroup parent of the containers of the node's Docker engine."""
        return f"{self.prefix}{node}"

    def all_netns(self) -> list[str]:
        """Every network namespace of this testbed, switch first."""
        return [self.switch_ns, *(self.node_ns(node) for node in self.nodes)]

    def disk_group(self, node: str) -> tuple[str, ...]:
        """The nodes that see the same disk as ``node`` (itself included)."""
        return next((group for group in self.shared_groups if node in group), (node,))

    def disk_of(self, node: str) -> str:
        """Name of the disk a node sees as /dev/mapper/svc1.d0: its group's, joined by +."""
        return "+".join(self.disk_group(node))

    def disks(self) -> list[str]:
        """Distinct disks, in node order."""
        names = [self.disk_of(node) for node in self.nodes]
        return list(dict.fromkeys(names))


def sorted_nodes(nodes: Iterable[str]) -> list[str]:
    """Node names by number."""
    return sorted(nodes, key=node_number)


@dataclass(frozen=True)
class Layout:
    """Where the testbed keeps its files under the state directory."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def images_tar(self) -> Path:
        return self.root / "images" / "seed-images.tar"

    def disk_file(self, disk: str) -> Path:
        return self.root / "disks" / f"{DISK_LABEL}-{disk}.img"

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / node

    def log(self, node: str, what: str) -> Path:
        return self.node_dir(node) / "log" / f"{what}.log"

    def docker_root(self, node: str) -> Path:
        return self.node_dir(node) / "docker"

    def sshd_config(self, node: str) -> Path:
        return self.node_dir(node) / "sshd" / "sshd_config"

    def host_key(self, node: str) -> Path:
        return self.node_dir(node) / "sshd" / "ssh_host_ed25519_key"
