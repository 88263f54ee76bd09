"""The jobs a service gives the scheduler: a 'sync all' per sync resource, a status refresh,
and on the first drpnode a drill (``drill_schedule``, default never)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from daemon.config.errors import ConfigError
from daemon.config.store import write_atomically
from daemon.scheduler.schedule import Schedule, ScheduleError, parse_schedule
from daemon.scheduler.timing import next_run
from daemon.service.config import ServiceConfig

DRILL_JOB = "drill"


@dataclass(frozen=True)
class Job:
    service: str
    name: str  # the sync resource's rid, "status" or "drill"
    schedule_text: str
    schedule: Schedule | None  # None when the text does not parse (reported in error)
    error: str = ""

    @property
    def key(self) -> str:
        return f"{self.service}/{self.name}"

    def rng(self, node: str) -> random.Random:
        """One seed per job and node: '~' ranges spread jobs across the cluster, stably."""
        return random.Random(f"{node}/{self.key}")


def _job(service: str, name: str, text: str) -> Job:
    try:
        return Job(service, name, text, parse_schedule(text))
    except ScheduleError as exc:
        return Job(service, name, text, None, str(exc))


def service_jobs(svc: ServiceConfig, node: str) -> list[Job]:
    """The scheduled jobs of a service on node (disabled sync resources have none)."""
    jobs = [_job(svc.name, "status", str(svc.value("DEFAULT", "status_schedule", node) or ""))]
    for rid in svc.resource_ids():
        if not rid.startswith("sync#"):
            continue
        try:
            if svc.value(rid, "disable", node):
                continue
            text = str(svc.value(rid, "schedule", node) or "")
        except ConfigError as exc:
            jobs.append(Job(svc.name, rid, "", None, exc.issues[0].render()))
            continue
        jobs.append(_job(svc.name, rid, text))
    drpnodes = list(svc.members.drpnodes)
    if drpnodes and drpnodes[0] == node:
        # Drills rehearse on the first drpnode: the node a DR activation would use.
        jobs.append(
            _job(svc.name, DRILL_JOB, str(svc.value("DEFAULT", "drill_schedule", node) or ""))
        )
    return jobs


def next_time(job: Job, now: datetime, last: datetime | None, node: str) -> datetime | None:
    if job.schedule is None:
        return None
    return next_run(job.schedule, now, last, job.rng(node))


class LastRuns:
    """When each job last ran, persisted so that a restart neither repeats nor forgets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._runs: dict[str, float] = {}
        try:
            self._runs = {k: float(v) for k, v in json.loads(path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            self._runs = {}

    def get(self, key: str) -> datetime | None:
        stamp = self._runs.get(key)
        return None if stamp is None else datetime.fromtimestamp(stamp)

    def set_many(self, keys: list[str], when: datetime) -> None:
        """Record the jobs of one tick with one atomic write (one fsync), not one per job."""
        if not keys:
            return
        for key in keys:
            self._runs[key] = when.timestamp()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(self._runs, sort_keys=True))


def last_runs_path(var_dir: Path) -> Path:
    return var_dir / "scheduler" / "last_runs.json"
