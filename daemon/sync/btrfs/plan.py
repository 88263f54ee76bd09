"""Pure decisions of the btrfs sync: snapshot names, the common parent, what to keep."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

_NAME_RE = re.compile(r"^(?P<base>.+)@(?P<stamp>\d{8}T\d{6}\.\d{6})$")


@dataclass(frozen=True)
class Snapshot:
    """A read-only snapshot: its name in the snapshot directory and its identities."""

    name: str
    uuid: str
    received_uuid: str = ""

    @property
    def stamp(self) -> str:
        match = _NAME_RE.match(self.name)
        return match.group("stamp") if match else ""


def snapshot_name(base: str, when: datetime) -> str:
    """``data@20261125T010203.000123``: sortable, one per run."""
    return f"{base}@{when.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}"


def ordered(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """Oldest first; names that are not Ferry's are ignored."""
    return sorted((s for s in snapshots if s.stamp), key=lambda s: s.stamp)


def common_parent(local: Sequence[Snapshot], remote: Sequence[Snapshot]) -> Snapshot | None:
    """The newest local snapshot whose content the target also holds.

    A pair is common when one side received the other's snapshot (uuid equals received
    uuid, either way: the way back after a DR activation needs no full resend) or both
    received the same snapshot from a third node.
    """
    remote_uuids = {s.uuid for s in remote if s.uuid}
    remote_received = {s.received_uuid for s in remote if s.received_uuid}
    for snap in reversed(ordered(local)):
        if snap.uuid in remote_received:
            return snap
        if snap.received_uuid and (
            snap.received_uuid in remote_uuids or snap.received_uuid in remote_received
        ):
            return snap
    return None


def full_send_reason(local: Sequence[Snapshot], remote: Sequence[Snapshot]) -> str:
    """Why no incremental send is possible (logged with every full send)."""
    if not ordered(remote):
        return "full send: the target holds no snapshot of this resource"
    if not ordered(local):
        return "full send: no previous snapshot on this node"
    return "full send: no snapshot in common with the target (the chain was broken)"


def obsolete(snapshots: Sequence[Snapshot], keep: str) -> list[str]:
    """On a receiver, once the snapshot ``keep`` is verified, the others can go."""
    return [s.name for s in ordered(snapshots) if s.name != keep]


@dataclass(frozen=True)
class Retention:
    """What the sender keeps: one pinned snapshot per target, and what it deletes."""

    pins: dict[str, str]  # target -> the local snapshot kept for it ("" = none)
    delete: list[str]


def retention(
    snapshots: Sequence[Snapshot],
    confirmed: Mapping[str, str],
    targets: Sequence[str],
    new: str = "",
) -> Retention:
    """Which of the sender's snapshots stay: for every target, its pair; plus ``new``.

    ``confirmed`` maps a target to the local snapshot it is known to hold the pair of
    (what it confirmed receiving, or the common parent its listing showed), ``""`` when
    it is known to share none. A target absent from it, or whose pair is gone from this
    side, is *unknown* (this node has not sent to it yet: a DR node that just took over,
    a record lost): it is pinned the newest snapshot it may share, a received one first
    (what a node that was a target shares with its former sender and that sender's
    other targets), else the newest one older than ``new``; the pin is recorded, so it
    does not slide to newer snapshots run after run while that target stays away.

    Growth is bounded by the targets, not by time: at most one pinned snapshot per
    target plus ``new``. What a target that stays dead costs is the space of the data
    changed since its pair (copy on write), until it comes back (its listing replaces
    the pin), is removed from ``target``, or gets a full send.
    """
    present = [s.name for s in ordered(snapshots)]
    older = [s for s in ordered(snapshots) if s.name != new]
    received = [s.name for s in older if s.received_uuid]
    guess = received[-1] if received else (older[-1].name if older else "")
    pins: dict[str, str] = {}
    for target in targets:
        pair = confirmed.get(target)
        if pair is None or (pair and pair not in present):
            pair = guess
        pins[target] = pair
    keep = {new, *pins.values()}
    return Retention(pins, [name for name in present if name not in keep])
