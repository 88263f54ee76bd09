"""Status values and how they fold (SPEC 3.1, 3.2): pure functions over plain data."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Status(StrEnum):
    UP = "up"
    DOWN = "down"
    WARN = "warn"
    NA = "n/a"
    UNDEF = "undef"
    STDBY_UP = "stdby up"
    STDBY_DOWN = "stdby down"


_S = Status
# Unordered pairs of distinct statuses; undef is neutral and handled before the table.
_PAIRS: dict[frozenset[Status], Status] = {
    frozenset((_S.UP, _S.DOWN)): _S.WARN,
    frozenset((_S.UP, _S.NA)): _S.UP,
    frozenset((_S.DOWN, _S.NA)): _S.DOWN,
    frozenset((_S.UP, _S.STDBY_UP)): _S.UP,
    frozenset((_S.UP, _S.STDBY_DOWN)): _S.WARN,
    frozenset((_S.DOWN, _S.STDBY_UP)): _S.STDBY_UP,
    frozenset((_S.DOWN, _S.STDBY_DOWN)): _S.STDBY_DOWN,
    frozenset((_S.NA, _S.STDBY_UP)): _S.STDBY_UP,
    frozenset((_S.NA, _S.STDBY_DOWN)): _S.STDBY_DOWN,
    frozenset((_S.STDBY_UP, _S.STDBY_DOWN)): _S.WARN,
}


def fold_pair(a: Status, b: Status) -> Status:
    """Fold two statuses: undef is neutral, warn absorbs, then the SPEC's table."""
    if a is Status.UNDEF:
        return b
    if b is Status.UNDEF or a is b:
        return a
    if Status.WARN in (a, b):
        return Status.WARN
    return _PAIRS[frozenset((a, b))]


def fold(statuses: Iterable[Status]) -> Status:
    result = Status.UNDEF
    for status in statuses:
        result = fold_pair(result, status)
    return result


def demote_sync(status: Status) -> Status:
    """Sync resources colour overall, never avail: up counts as n/a, down as warn."""
    if status in (Status.UP, Status.STDBY_UP):
        return Status.NA
    if status in (Status.DOWN, Status.STDBY_DOWN):
        return Status.WARN
    return status


def as_standby(status: Status) -> Status:
    """A standby resource reports stdby up / stdby down instead of up / down."""
    return {Status.UP: Status.STDBY_UP, Status.DOWN: Status.STDBY_DOWN}.get(status, status)


def start_succeeded(avail: Status) -> bool:
    """After a start, an instance whose avail is not up, stdby up or n/a failed to start."""
    return avail in (Status.UP, Status.STDBY_UP, Status.NA)


def cluster_avail(
    topology: str, avails: Iterable[str], flex_min: int = 1, flex_max: int = 1
) -> tuple[Status, str]:
    """The service across the cluster (SPEC 3.2), from its instances' avail on alive nodes.

    failover: one instance up is up, more is warn (dual-active), none is down. flex: warn
    when the number up is outside [flex_min, flex_max]; none up is down (as for failover:
    'down' tells more than 'warn' when nothing runs). A running instance in warn (partly
    up) makes the service warn too."""
    running = [Status(a) for a in avails if a in (Status.UP, Status.WARN)]
    count = len(running)
    if count == 0:
        return Status.DOWN, "no instance is up"
    partial = Status.WARN in running
    if topology == "flex":
        if not flex_min <= count <= flex_max:
            return Status.WARN, f"{count} instances up, outside [{flex_min}, {flex_max}]"
        what = f"{count} instance{'s' if count > 1 else ''} up"
    elif count > 1:
        return Status.WARN, f"dual-active: {count} instances up"
    else:
        what = "1 instance up"
    return (Status.WARN, f"{what}, partly") if partial else (Status.UP, what)
