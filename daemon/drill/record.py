"""A drill's record: what it made (so that a crash can be cleaned up), and its report.

``<var>/drills/<svc>/active.json`` exists from before the drill makes anything until its
teardown ends: what it lists (the bubble's PID 1, the clones) is what a later ferryd
removes when the drill was cut short. ``history.json`` keeps the last reports.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from daemon.config.store import write_atomically

HISTORY_KEPT = 50
RUN_DIR = Path("/run/ferry-drills")
PASS = "pass"
FAIL = "fail"


@dataclass
class DrillRecord:
    """One drill: its plan, what it made, and how it went."""

    id: str
    service: str
    node: str
    started_at: float
    check: str = ""
    keep: bool = False
    timeout: float = 300.0
    requested_by: str = ""
    state: str = "running"  # running, kept, ended
    step: str = "prepare"  # the step running, or the one that failed
    result: str = ""  # pass or fail, once known
    error: str = ""
    ended_at: float | None = None
    up_at: float | None = None
    rto_seconds: float | None = None
    data_age: dict[str, float | None] = field(default_factory=dict)
    check_exit: int | None = None
    check_output: str = ""
    teardown_seconds: float | None = None
    bubble_pid: int = 0
    bubble_ticks: int = 0
    clones: list[dict[str, Any]] = field(default_factory=list)
    restore_point: str = ""  # drill --at: the point rehearsed ('' : the newest data)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DrillRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def report(self) -> dict[str, Any]:
        """What a person or an alert reads (no internals)."""
        data = self.as_dict()
        for internal in ("bubble_pid", "bubble_ticks", "clones"):
            data.pop(internal)
        data["clones"] = [{"rid": c.get("rid"), "kind": c.get("kind"),
                           "source": c.get("source", "")} for c in self.clones]  # fmt: skip
        data["duration_seconds"] = (
            None if self.ended_at is None else round(self.ended_at - self.started_at, 3)
        )
        return data


class DrillStore:
    """The records of one node's drills, under ``<var>/drills/<svc>/``."""

    def __init__(self, var_dir: Path) -> None:
        self.root = var_dir / "drills"

    def dir(self, service: str) -> Path:
        return self.root / service

    def work_dir(self, service: str, drill_id: str) -> Path:
        """Scratch of one drill: mount points of the top levels, the overlays' scratch."""
        return self.dir(service) / drill_id

    def active(self, service: str) -> DrillRecord | None:
        try:
            data = json.loads((self.dir(service) / "active.json").read_text())
        except (OSError, ValueError):
            return None
        return DrillRecord.from_dict(data) if isinstance(data, dict) else None

    def all_active(self) -> list[DrillRecord]:
        if not self.root.is_dir():
            return []
        found = [self.active(d.name) for d in sorted(self.root.iterdir()) if d.is_dir()]
        return [r for r in found if r is not None]

    def save(self, record: DrillRecord) -> None:
        directory = self.dir(record.service)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(directory / "active.json", json.dumps(record.as_dict()) + "\n")

    def history(self, service: str) -> list[dict[str, Any]]:
        """Reports, newest first."""
        try:
            data = json.loads((self.dir(service) / "history.json").read_text())
        except (OSError, ValueError):
            return []
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    def last(self, service: str) -> dict[str, Any] | None:
        """The newest ended drill's report."""
        found = self.history(service)
        return found[0] if found else None

    def last_report(self, service: str) -> dict[str, Any] | None:
        """The newest report: a drill running or kept once its result is known, else the
        newest ended one."""
        active = self.active(service)
        if active is not None and active.result:
            return active.report()
        return self.last(service)

    def finish(self, record: DrillRecord) -> None:
        """The drill is over and torn down: its report joins the history, active goes."""
        record.state = "ended"
        record.ended_at = record.ended_at or time.time()
        directory = self.dir(record.service)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        kept = [record.report(), *self.history(record.service)][:HISTORY_KEPT]
        write_atomically(directory / "history.json", json.dumps(kept) + "\n")
        (directory / "active.json").unlink(missing_ok=True)

    def services(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir())


def instance_var_dir(drill_id: str) -> Path:
    """The var dir of the instance inside the bubble: short, because the Docker engine's
    sockets live below it (a unix socket path has at most 107 bytes)."""
    return RUN_DIR / drill_id.rpartition("-")[2]
