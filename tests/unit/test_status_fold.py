"""Every pair of SPEC 3.2's folding rules, in both orders."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.resources.status import Status, cluster_avail, demote_sync, fold, fold_pair

S = Status
TABLE = [
    (S.UP, S.DOWN, S.WARN),
    (S.UP, S.NA, S.UP),
    (S.DOWN, S.NA, S.DOWN),
    (S.UP, S.STDBY_UP, S.UP),
    (S.UP, S.STDBY_DOWN, S.WARN),
    (S.DOWN, S.STDBY_UP, S.STDBY_UP),
    (S.DOWN, S.STDBY_DOWN, S.STDBY_DOWN),
    (S.NA, S.STDBY_UP, S.STDBY_UP),
    (S.NA, S.STDBY_DOWN, S.STDBY_DOWN),
    (S.STDBY_UP, S.STDBY_DOWN, S.WARN),
    *[(S.WARN, x, S.WARN) for x in S if x is not S.UNDEF],
    *[(S.UNDEF, x, x) for x in S],
    *[(x, x, x) for x in S],
]


@pytest.mark.parametrize(("a", "b", "expected"), TABLE)
def test_fold_pair_both_orders(a: Status, b: Status, expected: Status) -> None:
    assert fold_pair(a, b) is expected
    assert fold_pair(b, a) is expected


def test_table_covers_every_pair() -> None:
    covered = {frozenset((a, b)) for a, b, _ in TABLE}
    for a, b in itertools.combinations_with_replacement(list(S), 2):
        assert frozenset((a, b)) in covered, (a, b)


@given(st.lists(st.sampled_from(list(S)), max_size=8))
def test_fold_warn_absorbs_and_undef_is_neutral(statuses: list[Status]) -> None:
    result = fold(statuses)
    if S.WARN in statuses:
        assert result is S.WARN
    if not [s for s in statuses if s is not S.UNDEF]:
        assert result is S.UNDEF


@pytest.mark.parametrize(
    ("status", "demoted"),
    [(S.UP, S.NA), (S.DOWN, S.WARN), (S.WARN, S.WARN), (S.NA, S.NA), (S.UNDEF, S.UNDEF)],
)
def test_sync_demotion(status: Status, demoted: Status) -> None:
    assert demote_sync(status) is demoted


@pytest.mark.parametrize(
    ("topology", "avails", "flex", "expected"),
    [
        ("failover", [], (1, 1), (Status.DOWN, "no instance is up")),
        ("failover", ["down", "stdby up"], (1, 1), (Status.DOWN, "no instance is up")),
        ("failover", ["up", "stdby up"], (1, 1), (Status.UP, "1 instance up")),
        ("failover", ["warn", "down"], (1, 1), (Status.WARN, "1 instance up, partly")),
        ("failover", ["up", "up"], (1, 1), (Status.WARN, "dual-active: 2 instances up")),
        ("failover", ["up", "warn"], (1, 1), (Status.WARN, "dual-active: 2 instances up")),
        ("flex", ["up", "up", "up"], (3, 3), (Status.UP, "3 instances up")),
        ("flex", ["up", "up", "down"], (3, 3), (Status.WARN, "2 instances up, outside [3, 3]")),
        ("flex", ["up", "up", "down"], (1, 2), (Status.UP, "2 instances up")),
        ("flex", ["up", "up", "up"], (1, 2), (Status.WARN, "3 instances up, outside [1, 2]")),
        ("flex", ["down", "stdby up"], (1, 2), (Status.DOWN, "no instance is up")),
        ("flex", ["up", "warn"], (2, 2), (Status.WARN, "2 instances up, partly")),
    ],
)
def test_cluster_avail(
    topology: str, avails: list[str], flex: tuple[int, int], expected: tuple[Status, str]
) -> None:
    assert cluster_avail(topology, avails, *flex) == expected
