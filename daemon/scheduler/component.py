"""The scheduler: runs each service's jobs when their schedule says so (SPEC 5.4).

Per service: a status refresh (``status_schedule``, default ``@10``), a ``sync all``
per sync resource (``schedule``, falling back to ``DEFAULT.sync_schedule``), and on
the first drpnode a drill (``drill_schedule``, default never). A sync job runs only on
the node allowed to send; on the others it is skipped (and counted as run, so that it
is not retried every tick): ``outcomes`` keeps why, the log says it when the reason
changes. Last runs are persisted: after downtime a missed job runs once, not once per
missed slot. The next due time of each job is computed once, after each run or
configuration change, so a tick is a directory scan, a stat per configuration and a
comparison per job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from daemon.actions import ActionRunner
from daemon.node.services import NodeServices, UnknownService
from daemon.scheduler.jobs import (
    DRILL_JOB,
    Job,
    LastRuns,
    last_runs_path,
    next_time,
    service_jobs,
)

if TYPE_CHECKING:
    from daemon.drill.runner import Drills

log = logging.getLogger("ferry.scheduler")

JOB_TIMEOUT = 60.0
CONCURRENT_JOBS = 8


class SchedulerContext(Protocol):
    """What the scheduler uses of the daemon (the API's context is one)."""

    @property
    def var_dir(self) -> Path: ...

    @property
    def nodename(self) -> str: ...

    @property
    def services(self) -> NodeServices: ...

    @property
    def runner(self) -> ActionRunner: ...

    @property
    def drills(self) -> Drills | None: ...


@dataclass
class _Planned:
    stamp: tuple[int, int, int]  # NodeServices.stamp of the configuration read
    jobs: list[Job]


@dataclass(frozen=True)
class Outcome:
    """What the last run of a job did: ``submitted`` (with the action id) or ``skipped``."""

    at: datetime
    what: str
    detail: str = ""  # the action id, or why it was skipped


@dataclass
class Scheduler:
    """The scheduler component (``name`` and ``run`` make it a daemon Component)."""

    interval: float = 1.0
    name: str = "scheduler"
    _plans: dict[str, _Planned] = field(default_factory=dict)
    _due: dict[str, datetime | None] = field(default_factory=dict)
    _busy: set[str] = field(default_factory=set)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # job key -> last run's outcome

    async def run(self, ctx: SchedulerContext) -> None:
        last = LastRuns(last_runs_path(ctx.var_dir))
        slots = asyncio.Semaphore(CONCURRENT_JOBS)
        async with asyncio.TaskGroup() as group:
            while True:
                for job in await self.tick(ctx, last, datetime.now()):
                    self._busy.add(job.key)
                    group.create_task(self._run_job(ctx, job, slots), name=f"job-{job.key}")
                await asyncio.sleep(self.interval)

    async def tick(self, ctx: SchedulerContext, last: LastRuns, now: datetime) -> list[Job]:
        """One tick: read what changed, then the jobs due now (see :meth:`due_jobs`)."""
        services = ctx.services.names()  # a directory scan: once per tick
        await self._load_plans(ctx, services)
        return self.due_jobs(ctx, last, now, services)

    async def _load_plans(self, ctx: SchedulerContext, services: list[str]) -> None:
        """Read the configurations that are new or changed (one stat each per tick), letting
        the loop run between them: the first tick of a node with 1,000 services (about 2 s
        of parsing) does not hold up heartbeats and API calls."""
        for service in services:
            if self._refresh(ctx, service):
                await asyncio.sleep(0)

    def _refresh(self, ctx: SchedulerContext, service: str) -> bool:
        """Read the service's jobs again when its configuration changed; True if it did."""
        try:
            stamp = ctx.services.stamp(service)
        except UnknownService:
            return False
        planned = self._plans.get(service)
        if planned is not None and planned.stamp == stamp:
            return False
        try:
            config = ctx.services.instance(service).config
            jobs = service_jobs(config, ctx.nodename)
        except Exception as exc:  # an invalid config has no jobs; say so once
            log.warning("%s: no scheduled jobs: %s", service, exc)
            jobs = []
        for job in jobs:
            self._due.pop(job.key, None)
            if job.error:
                log.warning("%s %s: schedule %r: %s", service, job.name, job.schedule_text,
                            job.error)  # fmt: skip
        self._plans[service] = _Planned(stamp, jobs)
        return True

    def _jobs(self, ctx: SchedulerContext, service: str) -> list[Job]:
        """The service's jobs as last read (read now if never: changes are for
        :meth:`_load_plans`)."""
        if service not in self._plans:
            self._refresh(ctx, service)
        planned = self._plans.get(service)
        return planned.jobs if planned is not None else []

    def due_jobs(
        self,
        ctx: SchedulerContext,
        last: LastRuns,
        now: datetime,
        services: list[str] | None = None,
    ) -> list[Job]:
        """The jobs to start now (of ``services``, default every installed one); their last
        runs are recorded (one write for them all) before they start."""
        due = []
        for service in ctx.services.names() if services is None else services:
            for job in self._jobs(ctx, service):
                if job.key in self._busy:
                    continue
                if job.key not in self._due:
                    self._due[job.key] = next_time(job, now, last.get(job.key), ctx.nodename)
                when = self._due[job.key]
                if when is None or when > now:
                    continue
                self._due[job.key] = next_time(job, now, now, ctx.nodename)
                due.append(job)
        last.set_many([job.key for job in due], now)
        return due

    async def _run_job(self, ctx: SchedulerContext, job: Job, slots: asyncio.Semaphore) -> None:
        try:
            async with slots, asyncio.timeout(JOB_TIMEOUT):
                if job.name == "status":
                    await ctx.services.status(job.service, refresh=True)
                elif job.name == DRILL_JOB:
                    await self._drill(ctx, job)
                else:
                    await self._sync(ctx, job)
        except Exception as exc:  # a job failure is logged, never the end of the scheduler
            log.warning("%s %s: scheduled job failed: %s", job.service, job.name, exc)
        finally:
            self._busy.discard(job.key)

    async def _sync(self, ctx: SchedulerContext, job: Job) -> None:
        from daemon.sync.base import SyncDriver

        resource = ctx.services.instance(job.service).resources.get(job.name)
        if not isinstance(resource, SyncDriver):
            return
        refusal = await resource.refusal()
        if refusal:
            previous = self.outcomes.get(job.key)
            said = previous is not None and previous.detail == refusal
            level = logging.DEBUG if said else logging.INFO
            log.log(level, "%s %s: scheduled sync skipped: %s", job.service, job.name, refusal)
            self.outcomes[job.key] = Outcome(datetime.now(), "skipped", refusal)
            return
        record = ctx.runner.submit(
            job.service, "sync", {"mode": "all", "rids": [job.name]}, requested_by="scheduler"
        )
        self.outcomes[job.key] = Outcome(datetime.now(), "submitted", record.id)
        log.info("%s %s: scheduled sync all submitted", job.service, job.name)

    async def _drill(self, ctx: SchedulerContext, job: Job) -> None:
        """A scheduled drill is submitted as an action when nothing stands in its way."""
        if ctx.drills is None:
            return
        inst = ctx.services.instance(job.service)
        entry = await ctx.services.status(job.service)
        refusal = ctx.drills.refusal(inst, str(entry.state["avail"]))
        if refusal:
            log.info("%s: scheduled drill skipped: %s", job.service, refusal)
            self.outcomes[job.key] = Outcome(datetime.now(), "skipped", refusal)
            return
        record = ctx.runner.submit(job.service, "drill", {}, requested_by="scheduler")
        self.outcomes[job.key] = Outcome(datetime.now(), "submitted", record.id)
        log.info("%s: scheduled drill submitted (action %s)", job.service, record.id)
