"""Placement policies, candidates and leaders as tables."""

from __future__ import annotations

import pytest

from daemon.cluster.placement import NodeFacts, PlacementInput, candidates, leaders, rank, surplus

FACTS = {
    "n1": NodeFacts("n1", load=2.0, score=10),
    "n2": NodeFacts("n2", load=0.5, score=30),
    "n3": NodeFacts("n3", load=1.0, score=20),
}
NODES = ("n1", "n2", "n3")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("nodes order", ["n1", "n2", "n3"]),
        ("load avg", ["n2", "n3", "n1"]),
        ("score", ["n2", "n3", "n1"]),
        ("none", ["n1", "n2", "n3"]),
    ],
)
def test_rank(policy: str, expected: list[str]) -> None:
    assert rank("svc1", NODES, policy, FACTS) == expected


def test_spread_and_shift_are_deterministic_permutations() -> None:
    for policy in ("spread", "shift"):
        first = rank("svc1", NODES, policy, FACTS)
        assert sorted(first) == sorted(NODES)
        assert rank("svc1", NODES, policy, FACTS) == first
    shifted = {tuple(rank(f"svc{i}", NODES, "shift", FACTS)) for i in range(30)}
    assert len(shifted) > 1  # different services lead on different nodes


@pytest.mark.parametrize(
    ("facts", "failed", "expected"),
    [
        (FACTS, frozenset(), ["n1", "n2", "n3"]),
        ({**FACTS, "n1": NodeFacts("n1", alive=False)}, frozenset(), ["n2", "n3"]),
        ({**FACTS, "n2": NodeFacts("n2", frozen=True)}, frozenset(), ["n1", "n3"]),
        (FACTS, frozenset({"n1"}), ["n2", "n3"]),
        ({"n1": FACTS["n1"]}, frozenset(), ["n1"]),  # no news of n2, n3: not candidates
    ],
)
def test_candidates(
    facts: dict[str, NodeFacts], failed: frozenset[str], expected: list[str]
) -> None:
    inp = PlacementInput("svc1", NODES, failed=failed)
    assert candidates(inp, facts) == expected


def test_drpnodes_are_never_candidates() -> None:
    inp = PlacementInput("svc1", ("n1", "n2"))
    facts = {**FACTS}
    assert "n3" not in candidates(inp, facts)


def test_leaders() -> None:
    inp = PlacementInput("svc1", NODES)
    assert leaders(inp, FACTS) == ["n1"]
    assert leaders(inp, FACTS, count=2) == ["n1", "n2"]
    assert leaders(PlacementInput("svc1", NODES, policy="none"), FACTS) == []


@pytest.mark.parametrize(
    ("up", "target", "expected"),
    [
        (["n1", "n2", "n3"], 2, ["n3"]),
        (["n1", "n2"], 2, []),
        (["n3", "n1"], 1, ["n3"]),
        (["n1", "n9"], 1, ["n9"]),
        (["n1", "n2", "n3"], 0, ["n1", "n2", "n3"]),
    ],
)
def test_surplus(up: list[str], target: int, expected: list[str]) -> None:
    assert surplus(up, ["n1", "n2", "n3"], target) == expected
