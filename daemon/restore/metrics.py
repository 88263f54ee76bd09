"""The restore points in /metrics: an alert can fire when a target's newest point grows old
or its points dwindle (the space guard pruning)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daemon.metrics import Registry, Sample
from daemon.restore.points import Index, Point, service_points


def _points(var_dir: Path) -> dict[str, list[Point]]:
    """Service -> its points on this node, from the records the keeper writes."""
    root = var_dir / "restore"
    found: dict[str, list[Point]] = {}
    for service_dir in sorted(root.iterdir()) if root.is_dir() else []:
        rids = sorted(p.stem for p in service_dir.glob("sync#*.json"))
        points = service_points({r: Index(var_dir, service_dir.name, r).entries() for r in rids})
        if points:
            found[service_dir.name] = points
    return found


def _guard_prunes(var_dir: Path) -> list[Sample]:
    out: list[Sample] = []
    for path in sorted(var_dir.glob("services/*/sync/*/restore-guard.json")):
        try:
            count = float(json.loads(path.read_text()).get("count", 0))
        except (OSError, ValueError, AttributeError):
            continue
        out.append(({"service": path.parents[2].name, "rid": path.parent.name}, count))
    return out


def register_restore_gauges(registry: Registry, var_dir: Path, node: str) -> None:
    def count() -> list[Sample]:
        return [({"service": s, "node": node}, float(len(p))) for s, p in _points(var_dir).items()]

    def age(which: int) -> list[Sample]:
        now = time.time()
        return [({"service": s, "node": node}, round(now - p[which].time, 1))
                for s, p in _points(var_dir).items()]  # fmt: skip

    registry.gauge(
        "ferry_restore_points",
        "Restore points of the service kept on this node (a target).",
        count,
    )
    registry.gauge(
        "ferry_restore_point_oldest_age_seconds",
        "Age of the oldest restore point kept on this node: how far back a takeover can go.",
        lambda: age(0),
    )
    registry.gauge(
        "ferry_restore_point_newest_age_seconds",
        "Age of the newest restore point kept on this node.",
        lambda: age(-1),
    )
    registry.gauge(
        "ferry_restore_guard_pruned_points",
        "Restore points pruned by the space guard (retain_free_min) so far, per resource.",
        lambda: _guard_prunes(var_dir),
    )
