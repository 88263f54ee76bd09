"""The scoping walk: which ``kw@scope`` entry applies to a node.

For keyword ``kw`` evaluated for node ``N`` the first present key wins:
``kw@N``, ``kw@nodes`` (N in nodes), ``kw@drpnodes`` (N in drpnodes),
``kw@encapnodes`` (N in encapnodes), ``kw@flex_primary`` (N is the flex
primary), ``kw@drp_flex_primary`` (N is the DRP flex primary), then ``kw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

SCOPE_WORDS = ("nodes", "drpnodes", "encapnodes", "flex_primary", "drp_flex_primary")

T = TypeVar("T")


@dataclass(frozen=True)
class Membership:
    """Who is who in a service: the facts the scoping walk needs."""

    nodes: tuple[str, ...] = ()
    drpnodes: tuple[str, ...] = ()
    encapnodes: tuple[str, ...] = ()
    flex_primary: str = ""
    drp_flex_primary: str = ""

    @property
    def all_nodes(self) -> tuple[str, ...]:
        return self.nodes + tuple(n for n in self.drpnodes if n not in self.nodes)


def split_key(key: str) -> tuple[str, str]:
    """``'dev@nodes'`` -> ``('dev', 'nodes')``; ``'dev'`` -> ``('dev', '')``."""
    name, _, scope = key.partition("@")
    return name, scope


def scope_order(node: str, members: Membership) -> list[str]:
    """The scopes that apply to node, best first; '' (the plain keyword) last."""
    order = [node]
    if node in members.nodes:
        order.append("nodes")
    if node in members.drpnodes:
        order.append("drpnodes")
    if node in members.encapnodes:
        order.append("encapnodes")
    if node and node == members.flex_primary:
        order.append("flex_primary")
    if node and node == members.drp_flex_primary:
        order.append("drp_flex_primary")
    order.append("")
    return order


def pick_scoped(variants: Mapping[str, T], node: str, members: Membership) -> tuple[str, T] | None:
    """Choose among a keyword's variants (scope -> value) the one that applies to node."""
    for scope in scope_order(node, members):
        if scope in variants:
            return scope, variants[scope]
    return None
