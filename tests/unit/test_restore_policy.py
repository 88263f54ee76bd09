"""The retention policy of restore points, on synthetic UTC times (btrbk-style buckets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.restore.policy import PolicyError, kept, parse_retain, pruned

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)  # a Thursday


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def hours_back(n: int, step: float = 1.0) -> list[datetime]:
    return [NOW - timedelta(hours=i * step) for i in range(n)]


CASES = [
    # (name, points, policy, min_age seconds, expected kept)
    ("nothing", [], "24h", 0, set()),
    ("newest always, empty policy", hours_back(5), "", 0, {NOW}),
    ("newest always, 0h", hours_back(5), "0h", 0, {NOW}),
    ("min age keeps the young", hours_back(5, 0.25), "", 3600, set(hours_back(4, 0.25))),
    (
        "3h keeps one per hour",
        hours_back(6, 0.5),
        "3h",
        0,
        {NOW, NOW - timedelta(hours=1), NOW - timedelta(hours=2)},
    ),
    (
        "newest of each hour",
        [t(2026, 12, 3, 9, 5), t(2026, 12, 3, 9, 25), t(2026, 12, 3, 8, 10), t(2026, 12, 3, 8, 50)],
        "2h",
        0,
        {t(2026, 12, 3, 9, 25), t(2026, 12, 3, 8, 50)},
    ),
    (
        "an hour without a point still counts",
        [t(2026, 12, 3, 9, 0), t(2026, 12, 3, 7, 0)],
        "2h",
        0,
        {t(2026, 12, 3, 9, 0)},
    ),
    (
        "days: newest of each day",
        [
            t(2026, 12, 3, 1),
            t(2026, 12, 2, 23),
            t(2026, 12, 2, 1),
            t(2026, 12, 1, 12),
            t(2026, 11, 30, 12),
        ],
        "3d",
        0,
        {t(2026, 12, 3, 1), t(2026, 12, 2, 23), t(2026, 12, 1, 12)},
    ),
    (
        "day boundary at UTC midnight",
        [t(2026, 12, 3, 0, 0), t(2026, 12, 2, 23, 59)],
        "1d",
        0,
        {t(2026, 12, 3, 0, 0)},
    ),
    (
        "weeks start on Monday",
        [t(2026, 11, 30, 0, 1), t(2026, 11, 29, 23, 59), t(2026, 11, 23, 12)],
        "2w",
        0,
        {t(2026, 11, 30, 0, 1), t(2026, 11, 29, 23, 59)},
    ),
    (
        "months by the calendar",
        [t(2026, 12, 1), t(2026, 11, 30, 23), t(2026, 11, 1), t(2026, 10, 31), t(2026, 9, 15)],
        "3m",
        0,
        {t(2026, 12, 1), t(2026, 11, 30, 23), t(2026, 10, 31)},
    ),
    (
        "month boundary: 31 Jan and 1 Feb",
        [t(2026, 2, 1, 0, 0), t(2026, 1, 31, 23, 59)],
        "2m",
        0,
        {t(2026, 2, 1, 0, 0), t(2026, 1, 31, 23, 59)},
    ),
    (
        "february of a leap year",
        [t(2028, 2, 29, 12), t(2028, 2, 1), t(2028, 1, 31)],
        "1m",
        0,
        {t(2028, 2, 29, 12)},
    ),
    (
        "years",
        [t(2026, 1, 1), t(2025, 12, 31), t(2024, 6, 1), t(2023, 6, 1)],
        "2y",
        0,
        {t(2026, 1, 1), t(2025, 12, 31)},
    ),
    (
        "combined btrbk-like",
        [
            NOW,
            NOW - timedelta(hours=1),
            NOW - timedelta(days=1),
            NOW - timedelta(days=10),
            NOW - timedelta(days=40),
        ],
        "24h 14d 8w 6m",
        0,
        {
            NOW,
            NOW - timedelta(hours=1),
            NOW - timedelta(days=1),
            NOW - timedelta(days=10),
            NOW - timedelta(days=40),
        },
    ),
    ("older than every bucket goes", [NOW, NOW - timedelta(days=400)], "24h 14d 8w 6m", 0, {NOW}),
    (
        "the newest is kept even when old",
        [NOW - timedelta(days=400)],
        "1h",
        0,
        {NOW - timedelta(days=400)},
    ),
    (
        "a point from the future counts as now",
        [NOW + timedelta(minutes=5), NOW],
        "1h",
        0,
        {NOW + timedelta(minutes=5)},
    ),
    ("hourly over a day keeps 24", hours_back(48), "24h", 0, set(hours_back(24))),
    ("min age and policy together", hours_back(6, 0.5), "1h", 2 * 3600, set(hours_back(4, 0.5))),
    ("upper case units", hours_back(3), "2H", 0, {NOW, NOW - timedelta(hours=1)}),
    (
        "daily across a year end",
        [t(2027, 1, 1, 8), t(2026, 12, 31, 8), t(2026, 12, 30, 8)],
        "2d",
        0,
        {t(2027, 1, 1, 8), t(2026, 12, 31, 8)},
    ),
]


# The cases whose "now" is not NOW: near the period they test.
NOWS = {
    "month boundary: 31 Jan and 1 Feb": t(2026, 2, 1, 1),
    "february of a leap year": t(2028, 2, 29, 13),
    "years": t(2026, 6, 1),
    "daily across a year end": t(2027, 1, 1, 9),
}


@pytest.mark.parametrize(
    ("name", "points", "policy", "min_age", "expected"), CASES, ids=[case[0] for case in CASES]
)
def test_kept(
    name: str, points: list[datetime], policy: str, min_age: float, expected: set[datetime]
) -> None:
    now = NOWS.get(name, NOW)
    result = kept(points, now, parse_retain(policy), min_age)
    assert result == expected
    assert sorted(set(points) - result) == pruned(points, now, parse_retain(policy), min_age)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("24", "not <count><unit>"),
        ("24x", "not <count><unit>"),
        ("h24", "not <count><unit>"),
        ("-1d", "not <count><unit>"),
        ("1.5h", "not <count><unit>"),
        ("2h 3h", "hours given twice"),
        ("1d 14d", "days given twice"),
    ],
)
def test_bad_policies(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_retain(text)


def test_render_keeps_the_unit_order() -> None:
    assert parse_retain("6m 24h 8w 14d").render() == "24h 14d 8w 6m"
