"""What a testbed is made of: node names, addresses, names of its parts.

Pure data, no side effects. Every name the testbed gives to something on the
machine (namespaces, cgroups) starts with the prefix, ``ferry-`` by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
SHARED_DISK = "shared"
NETEM_SUFFIX = "-nq"  # bridge-side port of a node whose link is impaired
NETEM_INNER_SUFFIX = "-nx"

_NODE_NAME = re.compile(r"^n([1-9][0-9]{0,2})$")
_PREFIX = re.compile(r"^ferry-([a-z0-9]+-)*$")


def node_number(node: str) -> int:
    """K of node ``nK``; raise ValueError for any other name."""
    match = _NODE_NAME.match(node)
    if not match or not 1 <= int(match.group(1)) <= 200:
        raise ValueError(f"node names are n1 .. n200, not {node!r}")
    return int(match.group(1))


def node_ip(node: str) -> str:
    """Fixed address of node ``nK``: 10.0.3.(10+K) (.3-.5 stay free for services)."""
    return f"{SUBNET_PREFIX}{10 + node_number(node)}"


def parse_nodes(text: str) -> tuple[str, ...]:
    """Parse ``n1,n2,n3`` into a checked, duplicate-free tuple."""
    nodes = tuple(name.strip() for name in text.split(",") if name.strip())
    for node in nodes:
        node_number(node)
    if not nodes or len(set(nodes)) != len(nodes):
        raise ValueError(f"need distinct node names, got {text!r}")
    return nodes


@dataclass(frozen=True)
class Topology:
    """Nodes, which of them share the disk, and the prefix of every name."""

    nodes: tuple[str, ...] = DEFAULT_NODES
    shared: tuple[str, ...] = DEFAULT_SHARED
    prefix: str = "ferry-"

    def __post_init__(self) -> None:
        for node in self.nodes:
            node_number(node)
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"prefix must look like 'ferry-' or 'ferry-x-', not {self.prefix!r}")
        strangers = set(self.shared) - set(self.nodes)
        if strangers:
            raise ValueError(f"shared nodes not in the testbed: {sorted(strangers)}")

    @classmethod
    def default_shared(cls, nodes: tuple[str, ...]) -> tuple[str, ...]:
        """The primary site by default: the first two nodes share the disk."""
        return nodes[:2] if len(nodes) >= 2 else ()

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

    def disk_of(self, node: str) -> str:
        """Name of the disk a node sees as /dev/mapper/svc1.d0."""
        return SHARED_DISK if node in self.shared else node

    def disks(self) -> list[str]:
        """Distinct disks, the shared one first when there is one."""
        names = [self.disk_of(node) for node in self.nodes]
        return list(dict.fromkeys(names))


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
