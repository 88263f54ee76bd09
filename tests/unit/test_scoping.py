"""The scoping walk of SPEC 2.3, as a table and as a property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config.ini import parse
from daemon.config.scoping import Membership, pick_scoped, scope_order
from daemon.service.config import EvalContext, ServiceConfig

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


NODES = ("n1", "n2")
DRPNODES = ("n3", "n4")
ENCAPNODES = ("e1", "e2")
EVALUATED = (*NODES, *DRPNODES, *ENCAPNODES, "n9")  # n9: in no list, only kw@n9 or kw apply
# Every scope of SPEC 2.3: kw@<node> for each node, the five group words, and plain kw ("").
SCOPES = [
    *EVALUATED,
    "nodes",
    "drpnodes",
    "encapnodes",
    "flex_primary",
    "drp_flex_primary",
    "",
]


def expected_winner(present: set[str], node: str, flex_primary: str, drp_flex_primary: str) -> str:
    """The rule written independently of the implementation: the SPEC's list, in order."""
    applies = [
        (node, True),
        ("nodes", node in NODES),
        ("drpnodes", node in DRPNODES),
        ("encapnodes", node in ENCAPNODES),
        ("flex_primary", node == flex_primary),
        ("drp_flex_primary", node == drp_flex_primary),
        ("", True),
    ]
    for scope, holds in applies:
        if holds and scope in present:
            return scope
    return "none"


def scoped_config(present: set[str], flex_primary: str, drp_flex_primary: str) -> ServiceConfig:
    """A real service whose fs#0.dev is set once per present scope, the value naming it."""
    lines = [
        "[DEFAULT]",
        f"nodes = {' '.join(NODES)}",
        f"drpnodes = {' '.join(DRPNODES)}",
        f"encapnodes = {' '.join(ENCAPNODES)}",
        "topology = flex",
        f"flex_primary = {flex_primary}",
        f"drp_flex_primary = {drp_flex_primary}",
        "[fs#0]",
        "mnt = /srv",
    ]
    for scope in sorted(present):
        key = f"dev@{scope}" if scope else "dev"
        lines.append(f"{key} = /dev/{scope or 'plain'}")
    svc = ServiceConfig(parse("\n".join(lines) + "\n", "p.conf"), context=EvalContext("n1"))
    assert svc.errors == []
    return svc


def winner_of(svc: ServiceConfig, node: str) -> str:
    value = svc.value("fs#0", "dev", node)
    if value is None:
        return "none"
    assert value.startswith("/dev/")
    name = value.removeprefix("/dev/")
    return "" if name == "plain" else name


@settings(max_examples=500)
@given(
    present=st.sets(st.sampled_from(SCOPES)),
    node=st.sampled_from(EVALUATED),
    flex_primary=st.sampled_from(NODES),
    drp_flex_primary=st.sampled_from(DRPNODES),
)
def test_scoping_property_through_a_real_config(
    present: set[str], node: str, flex_primary: str, drp_flex_primary: str
) -> None:
    """Random placements of a keyword across the seven scopes, evaluated for a random node
    (site, DRP, encap or unlisted) with random flex primaries: the value names the winner."""
    svc = scoped_config(present, flex_primary, drp_flex_primary)
    assert winner_of(svc, node) == expected_winner(present, node, flex_primary, drp_flex_primary)


@pytest.mark.parametrize(
    ("node", "precedence"),
    [
        ("n1", ["n1", "nodes", "flex_primary", ""]),
        ("n2", ["n2", "nodes", ""]),
        ("n3", ["n3", "drpnodes", "drp_flex_primary", ""]),
        ("n4", ["n4", "drpnodes", ""]),
        ("e1", ["e1", "encapnodes", ""]),
        ("e2", ["e2", "encapnodes", ""]),
        ("n9", ["n9", ""]),
    ],
)
def test_peeling_every_scope_off_follows_the_spec_order(node: str, precedence: list[str]) -> None:
    """All seven scopes set at once; removing the winner each time walks SPEC 2.3's list."""
    present = set(SCOPES)
    seen = []
    while (winner := winner_of(scoped_config(present, "n1", "n3"), node)) != "none":
        seen.append(winner)
        present.discard(winner)
    assert seen == precedence


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
