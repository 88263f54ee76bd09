"""Every pair of SPEC 3.2's folding rules, in both orders."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.service.status import Status, demote_sync, fold, fold_pair

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
