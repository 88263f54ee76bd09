"""Placement (SPEC 5.2): which nodes may run a service, in which order, and who leads.

Plain functions over plain data: the monitor feeds them what the cluster state says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeFacts:
    """What placement needs to know of a node."""

    name: str
    alive: bool = True
    frozen: bool = False
    load: float = 0.0  # 15 min load average
    free_mem: float = 0.0  # fraction 0..1
    score: float = 0.0
    alive_since: float = 0.0  # unix time its daemon (this boot) was first heard alive


@dataclass(frozen=True)
class PlacementInput:
    service: str
    nodes: tuple[str, ...]  # the primary site, in order of preference
    policy: str = "nodes order"
    failed: frozenset[str] = field(default_factory=frozenset)  # start failed there
    excluded: frozenset[str] = field(default_factory=frozenset)  # constraints, frozen instances


def _digest(*parts: str) -> int:
    return int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:12], 16)


def rank(
    service: str, nodes: Sequence[str], policy: str, facts: Mapping[str, NodeFacts]
) -> list[str]:
    """Nodes in order of preference under a placement policy (all of them, alive or not)."""
    order = {node: index for index, node in enumerate(nodes)}
    if policy == "load avg":
        return sorted(nodes, key=lambda n: (_fact(facts, n).load, order[n]))
    if policy == "score":
        return sorted(nodes, key=lambda n: (-_fact(facts, n).score, order[n]))
    if policy == "spread":
        return sorted(nodes, key=lambda n: (_digest(service, n), order[n]))
    if policy == "shift":
        if not nodes:
            return []
        offset = _digest(service) % len(nodes)
        return [*nodes[offset:], *nodes[:offset]]
    return list(nodes)  # "nodes order", and "none" (which has no leader, see leaders())


def _fact(facts: Mapping[str, NodeFacts], node: str) -> NodeFacts:
    return facts.get(node) or NodeFacts(node, alive=False)


def candidates(inp: PlacementInput, facts: Mapping[str, NodeFacts]) -> list[str]:
    """Ranked nodes that may run the service now: alive, not frozen, not failed, not excluded.

    DRP nodes are never candidates: activating the DR site is an operator's decision.
    """
    return [
        node
        for node in rank(inp.service, inp.nodes, inp.policy, facts)
        if _fact(facts, node).alive
        and not _fact(facts, node).frozen
        and node not in inp.failed
        and node not in inp.excluded
    ]


def leaders(inp: PlacementInput, facts: Mapping[str, NodeFacts], count: int = 1) -> list[str]:
    """The nodes that should run the service: the first candidate (failover) or the first
    ``count`` (flex). The 'none' policy names no leader: nothing is placed automatically."""
    if inp.policy == "none":
        return []
    return candidates(inp, facts)[: max(0, count)]


def surplus(up_nodes: Iterable[str], ranked: Sequence[str], target: int) -> list[str]:
    """Flex: the lowest-ranked running instances beyond the target, to be stopped."""
    running = [n for n in ranked if n in set(up_nodes)]
    running += sorted(set(up_nodes) - set(running))  # running where not a candidate: first to go
    keep = [n for n in running if n in ranked][:target]
    return [n for n in running if n not in keep]
