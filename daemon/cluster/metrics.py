"""The peers in /metrics: alive and frozen per node, from the cluster state's snapshot."""

from __future__ import annotations

import functools

from daemon.cluster.state import ClusterState
from daemon.metrics import Registry, Sample

PEER_FAMILIES = (
    ("ferry_cluster_node_alive", "1 when the node is alive as this node sees it, else 0."),
    ("ferry_cluster_node_frozen", "1 when the node is frozen (no automatic action), else 0."),
)


def peer_samples(state: ClusterState, field_name: str) -> list[Sample]:
    """One sample per node of the cluster state (this node included): alive or frozen, 0/1."""
    nodes = state.snapshot.nodes
    return [
        ({"node": name}, 1.0 if getattr(info, field_name) else 0.0)
        for name, info in sorted(nodes.items())
    ]


def register_peer_gauges(registry: Registry, state: ClusterState) -> None:
    """Per node of the cluster: alive and frozen, from the cluster state's snapshot."""
    if registry.collects(PEER_FAMILIES[0][0]):
        return
    for (name, help), field_name in zip(PEER_FAMILIES, ("alive", "frozen"), strict=True):
        registry.gauge(name, help, functools.partial(peer_samples, state, field_name))
