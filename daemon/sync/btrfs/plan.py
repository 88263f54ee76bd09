"""Pure decisions of the btrfs sync: snapshot names, the common parent, what to delete."""

from __future__ import annotations

import re
from collections.abc import Sequence
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
    """After the snapshot ``keep`` is confirmed on both sides, the others can go."""
    return [s.name for s in ordered(snapshots) if s.name != keep]
