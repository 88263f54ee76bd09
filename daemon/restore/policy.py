"""The retention policy of restore points: which points to keep (pure, UTC, no DST).

``retain = 24h 14d 8w 6m`` keeps the newest point of each of the last 24 calendar hours,
14 days, 8 ISO weeks (Monday to Sunday) and 6 months (``y``: years), counted back from
the bucket ``now`` falls in, whether or not a bucket holds a point. Every point younger
than ``retain_min`` is kept, and the newest point always is, whatever the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.config.converters import Converter

UNITS = ("h", "d", "w", "m", "y")
UNIT_NAMES = {"h": "hours", "d": "days", "w": "weeks", "m": "months", "y": "years"}
_TOKEN_RE = re.compile(r"^(\d{1,6})([hdwmy])$")
_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)  # the first Monday of the epoch


class PolicyError(ValueError):
    """A retain value that does not parse; the message says which word and why."""


@dataclass(frozen=True)
class Policy:
    """How many of the last buckets of each unit keep their newest point."""

    counts: tuple[tuple[str, int], ...] = ()

    def count(self, unit: str) -> int:
        return dict(self.counts).get(unit, 0)

    def render(self) -> str:
        return " ".join(f"{n}{u}" for u, n in self.counts)


def parse_retain(text: str) -> Policy:
    """``'24h 14d 8w 6m'`` -> Policy; PolicyError on a bad word or a unit given twice."""
    counts: dict[str, int] = {}
    for word in text.lower().split():
        match = _TOKEN_RE.match(word)
        if not match:
            raise PolicyError(
                f"{word!r} is not <count><unit> (units: h hours, d days, w weeks, m months, "
                "y years; e.g. 24h 14d 8w 6m)"
            )
        count, unit = int(match.group(1)), match.group(2)
        if unit in counts:
            raise PolicyError(f"{UNIT_NAMES[unit]} given twice ({word!r})")
        counts[unit] = count
    return Policy(tuple((u, counts[u]) for u in UNITS if u in counts))


def bucket(when: datetime, unit: str) -> int:
    """The index of when's calendar bucket of unit (consecutive buckets differ by 1)."""
    when = when.astimezone(UTC)
    if unit == "h":
        return int(when.timestamp() // 3600)
    if unit == "d":
        return int(when.timestamp() // 86400)
    if unit == "w":
        return int((when - _MONDAY).total_seconds() // (7 * 86400))
    if unit == "m":
        return when.year * 12 + when.month - 1
    if unit == "y":
        return when.year
    raise ValueError(f"unknown unit {unit!r}")


def kept(
    points: Sequence[datetime], now: datetime, policy: Policy, min_age: float = 0.0
) -> set[datetime]:
    """The points to keep (see the module docstring); the others may be pruned."""
    if not points:
        return set()
    keep = {max(points)}
    keep.update(p for p in points if (now - p).total_seconds() < min_age)
    for unit, count in policy.counts:
        if count <= 0:
            continue
        current = bucket(now, unit)
        newest: dict[int, datetime] = {}
        for point in points:
            index = min(bucket(point, unit), current)  # a point from the future: now's
            if current - index < count and (index not in newest or point > newest[index]):
                newest[index] = point
        keep.update(newest.values())
    return keep


def pruned(
    points: Iterable[datetime], now: datetime, policy: Policy, min_age: float = 0.0
) -> list[datetime]:
    """The points the policy lets go, oldest first."""
    listed = sorted(points)
    keep = kept(listed, now, policy, min_age)
    return [p for p in listed if p not in keep]


def _retain(text: str) -> Policy:
    try:
        return parse_retain(text)
    except PolicyError as exc:
        raise ValueError(str(exc)) from None


RETAIN = Converter("retention", _retain, lambda policy: policy.render())


def _percent(text: str) -> float:
    word = text.strip().rstrip("%").strip()
    try:
        value = float(word)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a percentage (e.g. 10%)") from None
    if not 0 <= value < 100:
        raise ValueError(f"{text.strip()!r} is not between 0% and 100%")
    return value


PERCENT = Converter("percentage", _percent, lambda value: f"{value:g}%", numeric=True)
