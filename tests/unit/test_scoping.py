"""The scoping walk of SPEC 2.3, as a table and as a property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.config.ini import parse
from daemon.config.scoping import Membership, pick_scoped, scope_order
from daemon.config.service import EvalContext, ServiceConfig

MEMBERS = Membership(
    nodes=("n1", "n2"),
    drpnodes=("n3",),
    encapnodes=("e1",),
    flex_primary="n2",
    drp_flex_primary="n3",
)


@pytest.mark.parametrize(
    ("node", "order"),
    [
        ("n1", ["n1", "nodes", ""]),
        ("n2", ["n2", "nodes", "flex_primary", ""]),
        ("n3", ["n3", "drpnodes", "drp_flex_primary", ""]),
        ("e1", ["e1", "encapnodes", ""]),
        ("n9", ["n9", ""]),
    ],
)
def test_scope_order(node: str, order: list[str]) -> None:
    assert scope_order(node, MEMBERS) == order


@pytest.mark.parametrize(
    ("present", "node", "winner"),
    [
        ({"": "plain", "n1": "own"}, "n1", "own"),
        ({"": "plain", "nodes": "site"}, "n1", "site"),
        ({"": "plain", "nodes": "site"}, "n3", "plain"),
        ({"drpnodes": "drp", "nodes": "site"}, "n3", "drp"),
        ({"n3": "own", "drpnodes": "drp"}, "n3", "own"),
        ({"nodes": "site", "flex_primary": "fp"}, "n2", "site"),
        ({"flex_primary": "fp", "": "plain"}, "n2", "fp"),
        ({"flex_primary": "fp", "": "plain"}, "n1", "plain"),
        ({"drp_flex_primary": "dfp", "": "plain"}, "n3", "dfp"),
        ({"encapnodes": "enc", "": "plain"}, "e1", "enc"),
        ({"nodes": "site"}, "n3", None),
        ({}, "n1", None),
    ],
)
def test_pick_scoped_table(present: dict[str, str], node: str, winner: str | None) -> None:
    found = pick_scoped(present, node, MEMBERS)
    assert (found[1] if found else None) == winner


SCOPES = ["n1", "n2", "n3", "nodes", "drpnodes", "flex_primary", "drp_flex_primary", ""]


def expected_winner(present: set[str], node: str) -> str | None:
    """The rule written independently of the implementation: the SPEC's list, in order."""
    facts = {
        "nodes": node in ("n1", "n2"),
        "drpnodes": node == "n3",
        "flex_primary": node == "n2",
        "drp_flex_primary": node == "n3",
    }
    if node in present:
        return node
    for scope in ("nodes", "drpnodes", "flex_primary", "drp_flex_primary"):
        if scope in present and facts[scope]:
            return scope
    return "" if "" in present else None


@given(
    present=st.sets(st.sampled_from(SCOPES)),
    node=st.sampled_from(["n1", "n2", "n3"]),
)
def test_scoping_property_through_a_real_config(present: set[str], node: str) -> None:
    """Random placements of a keyword across the scopes: the evaluated value names the winner."""
    lines = [
        "[DEFAULT]",
        "nodes = n1 n2",
        "drpnodes = n3",
        "topology = flex",
        "flex_primary = n2",
        "drp_flex_primary = n3",
        "[fs#0]",
        "mnt = /srv",
    ]
    for scope in sorted(present):
        key = f"dev@{scope}" if scope else "dev"
        lines.append(f"{key} = /dev/{scope or 'plain'}")
    svc = ServiceConfig(parse("\n".join(lines) + "\n", "p.conf"), context=EvalContext("n1"))
    assert svc.errors == []
    winner = expected_winner(present, node)
    value = svc.value("fs#0", "dev", node)
    assert value == (None if winner is None else f"/dev/{winner or 'plain'}")


def test_impersonation_changes_only_the_node() -> None:
    text = "[DEFAULT]\nnodes = n1 n2\n[fs#0]\ndev@n1 = /dev/a\ndev@n2 = /dev/b\nmnt = /m\n"
    svc = ServiceConfig(parse(text, "x.conf"), context=EvalContext("n1"))
    assert svc.value("fs#0", "dev", "n1") == "/dev/a"
    assert svc.value("fs#0", "dev", "n2") == "/dev/b"


def test_inheritance_from_default() -> None:
    text = (
        "[DEFAULT]\nnodes = n1\ndrpnodes = n3\nsync_max_delay = 90\nsync_schedule = @30\n"
        "sync_max_delay@drpnodes = 2h\n"
        "[sync#1]\ntype = btrfs\nsrc = a:b\ndst = a:b\n"
        "[sync#2]\ntype = btrfs\nsrc = a:b\ndst = a:b\nsync_max_delay = 10\nschedule = @5\n"
    )
    svc = ServiceConfig(parse(text, "x.conf"), context=EvalContext("n1"))
    assert svc.value("sync#1", "sync_max_delay", "n1") == 90 * 60
    assert svc.value("sync#1", "sync_max_delay", "n3") == 7200
    assert svc.value("sync#1", "schedule", "n1") == "@30"
    assert svc.value("sync#2", "sync_max_delay", "n1") == 600
    assert svc.value("sync#2", "schedule", "n1") == "@5"


def test_section_only_keyword_does_not_inherit() -> None:
    text = "[DEFAULT]\nnodes = n1\ndisable = true\n[fs#0]\ndev = /d\nmnt = /m\n"
    svc = ServiceConfig(parse(text, "x.conf"), context=EvalContext("n1"))
    assert svc.value("DEFAULT", "disable", "n1") is True
    assert svc.value("fs#0", "disable", "n1") is False
