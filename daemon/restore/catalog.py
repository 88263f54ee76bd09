"""A service's restore points on this node: the listing, the choice of one, a delete, and
the takeover's request. What the API and the CLI (``--local``) share."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from daemon.restore import keeper, pending
from daemon.restore.points import Entry, Point, PointError, at_point, choose, describe_choice


class ServiceHere(Protocol):
    """What the catalog needs of an instance."""

    name: str
    node: str

    @property
    def var_dir(self) -> Path: ...

    @property
    def sync_rids(self) -> set[str]: ...

    @property
    def resources(self) -> Mapping[str, Any]: ...


def points(inst: ServiceHere) -> list[Point]:
    return keeper.points_of(inst.var_dir, inst.name, sorted(inst.sync_rids))


def listing(inst: ServiceHere, at: str | None = None) -> dict[str, Any]:
    """The service's points here (newest first), what ``at`` chooses, the pending
    takeover request and the last restore. PointError for an ``at`` that chooses none."""
    found = points(inst)
    now = time.time()
    out: dict[str, Any] = {
        "service": inst.name,
        "node": inst.node,
        "points": [p.as_dict(now) for p in reversed(found)],
        "pending": pending.pending(inst.var_dir, inst.name),
        "last_restore": pending.last(inst.var_dir, inst.name),
        "warnings": [w for w in (keeper.guard_warning(r) for r in _keepers(inst)) if w],
    }
    if at is not None:
        chosen = choose(found, at)
        out["chosen"] = chosen.as_dict(now)
        out["choice"] = describe_choice(found, chosen, now)
    return out


def _keepers(inst: ServiceHere) -> list[Any]:
    return [inst.resources[rid] for rid in sorted(inst.sync_rids) if rid in inst.resources]


def entries_at(inst: ServiceHere, asked: str) -> tuple[Point, list[Entry]]:
    """The point ``asked`` chooses and what each resource restores for it."""
    found = points(inst)
    point = choose(found, asked)
    entries = [e for rid in sorted(inst.sync_rids) if (e := at_point(found, point, rid))]
    return point, entries


def request_takeover(inst: ServiceHere, asked: str, by: str) -> dict[str, Any]:
    """Record the point for the next start here (see pending.py); what was chosen."""
    point, entries = entries_at(inst, asked)
    pending.request(inst.var_dir, inst.name, point.name, entries, by)
    return {"restore_point": point.name, "resources": [e.rid for e in entries]}


async def delete(inst: ServiceHere, name: str) -> list[str]:
    """Delete point name on every resource that holds it; PointError for the newest or an
    unknown name. Returns the resources whose entry went."""
    found = points(inst)
    if not any(p.name == name for p in found):
        listed = ", ".join(p.name for p in found[-3:]) or "none"
        raise PointError(f"no restore point {name!r} on {inst.node} (newest: {listed})")
    if found[-1].name == name:
        raise PointError(f"{name} is the newest restore point: it is never deleted")
    done = []
    for resource in _keepers(inst):
        if await keeper.delete(resource, name):
            done.append(resource.rid)
    return done
