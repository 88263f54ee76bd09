"""The scheduler's jobs and due times over real service configs and a real NodeServices."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from daemon.events import EventBus
from daemon.node.services import NodeServices
from daemon.scheduler.component import Scheduler
from daemon.scheduler.jobs import LastRuns, last_runs_path
from tests.unit.ferry_cli import ferry

SVC = """[DEFAULT]
nodes = n1
drpnodes = n3
sync_schedule = @30
status_schedule = @10

[app#0]
check = true

[sync#0]
src = /tmp/x/
dst = /tmp/x
target = drpnodes

[sync#1]
src = /tmp/y/
dst = /tmp/y
target = drpnodes
schedule = 03:00-04:00

[sync#2]
src = /tmp/z/
dst = /tmp/z
disable = true
"""


@dataclass
class Ctx:
    services: NodeServices
    var_dir: Path
    nodename: str = "n1"


def make(tmp_path: Path) -> Ctx:
    conf, var = tmp_path / "etc", tmp_path / "var"
    conf.mkdir()
    var.mkdir()
    (conf / "svc1.conf").write_text(SVC)
    return Ctx(NodeServices(conf, var, "n1", "c", EventBus()), var)


def test_jobs_and_due_times(tmp_path: Path) -> None:
    ctx = make(tmp_path)
    sched = Scheduler()
    last = LastRuns(last_runs_path(ctx.var_dir))
    now = datetime(2026, 11, 25, 10, 0, 0)
    due = {j.name for j in sched.due_jobs(ctx, last, now)}
    # never ran: interval jobs are due at once; the 03:00-04:00 one waits for its window
    assert due == {"status", "sync#0"}
    for job in due:
        sched._busy.discard(f"svc1/{job}")
    assert sched.due_jobs(ctx, last, now + timedelta(minutes=5)) == []
    later = {j.name for j in sched.due_jobs(ctx, last, now + timedelta(minutes=11))}
    assert later == {"status"}
    next_day = now.replace(hour=3, minute=30) + timedelta(days=1)
    assert "sync#1" in {j.name for j in sched.due_jobs(ctx, last, next_day)}


def test_last_runs_survive_a_restart_and_missed_runs_run_once(tmp_path: Path) -> None:
    ctx = make(tmp_path)
    now = datetime(2026, 11, 25, 10, 0, 0)
    Scheduler().due_jobs(ctx, LastRuns(last_runs_path(ctx.var_dir)), now)
    # a new scheduler (a restart) 3 hours later: @30 missed 6 slots, it is due once
    restarted = Scheduler()
    last = LastRuns(last_runs_path(ctx.var_dir))
    assert last.get("svc1/sync#0") == now
    three_hours = now + timedelta(hours=3)
    first = [j.name for j in restarted.due_jobs(ctx, last, three_hours)]
    assert first.count("sync#0") == 1
    restarted._busy.clear()
    again = [j.name for j in restarted.due_jobs(ctx, last, three_hours + timedelta(seconds=5))]
    assert "sync#0" not in again


def test_print_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = make(tmp_path)
    monkeypatch.setenv("FERRY_NODENAME", "n1")
    result = ferry(
        "--config-dir", str(ctx.services.config_dir), "--var-dir", str(ctx.var_dir),
        "svc1", "print", "schedule", "-o", "json",
    )  # fmt: skip
    rows = {r["job"]: r for r in json.loads(result.out)}
    assert set(rows) == {"status", "sync#0", "sync#1"}
    assert rows["sync#0"]["schedule"] == "@30"
    # 03:00-04:00: the window's start, or now when the window is open (runs at any hour)
    assert "T03:" in rows["sync#1"]["next_run"]


SENDER = """[DEFAULT]
nodes = n1 n2
drpnodes = n3
{extra}

[app#0]
start = touch {{var}}/up
stop = rm -f {{var}}/up
check = test -f {{var}}/up

[sync#0]
src = /tmp/x/
dst = /tmp/x
target = drpnodes
schedule = @30
"""


@dataclass
class Submitted:
    id: str


@dataclass
class FakeRunner:
    """Records submissions instead of running them."""

    calls: list[tuple[str, str, dict[str, object], str]]

    def submit(
        self, service: str, action: str, params: dict[str, object], requested_by: str
    ) -> Submitted:
        self.calls.append((service, action, params, requested_by))
        return Submitted(f"a{len(self.calls)}")


@dataclass
class RunnerCtx:
    services: NodeServices
    var_dir: Path
    runner: FakeRunner
    nodename: str


def _node(tmp_path: Path, node: str, extra: str = "") -> RunnerCtx:
    conf, var = tmp_path / node / "etc", tmp_path / node / "var"
    conf.mkdir(parents=True)
    var.mkdir(parents=True)
    (conf / "svc1.conf").write_text(SENDER.format(extra=extra))
    return RunnerCtx(NodeServices(conf, var, node, "c", EventBus()), var, FakeRunner([]), node)


async def _run_due(sched: Scheduler, ctx: RunnerCtx, now: datetime) -> list[str]:
    """Start the due jobs as the component does; the names of the jobs run."""
    last = LastRuns(last_runs_path(ctx.var_dir))
    jobs = sched.due_jobs(ctx, last, now)  # type: ignore[arg-type]
    for job in jobs:
        await sched._run_job(ctx, job, asyncio.Semaphore(1))  # type: ignore[arg-type]
    return [j.name for j in jobs]


@pytest.mark.parametrize(
    ("node", "extra", "up", "expected"),
    [
        ("n1", "", True, "submitted"),
        ("n2", "", False, "skipped: the service is not up on n2: only the node running it sends"),
        # flex: only the flex primary sends, even where an instance runs
        (
            "n2",
            "topology = flex\nflex_target = 2",
            True,
            "skipped: n2 is not the flex primary (n1): only the flex primary sends",
        ),
        ("n1", "topology = flex\nflex_target = 2", True, "submitted"),
    ],
)
async def test_scheduled_syncs_run_only_on_the_node_allowed_to_send(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    node: str,
    extra: str,
    up: bool,
    expected: str,
) -> None:
    ctx = _node(tmp_path, node, extra)
    if up:  # {var} is the service's state dir
        (ctx.var_dir / "services" / "svc1").mkdir(parents=True)
        (ctx.var_dir / "services" / "svc1" / "up").write_text("")
    sched = Scheduler()
    caplog.set_level(logging.INFO, logger="ferry.scheduler")
    now = datetime(2026, 11, 25, 10, 0, 0)
    assert "sync#0" in await _run_due(sched, ctx, now)
    outcome = sched.outcomes["svc1/sync#0"]
    assert outcome.at >= now
    if expected == "submitted":
        assert ctx.runner.calls == [
            ("svc1", "sync", {"mode": "all", "rids": ["sync#0"]}, "scheduler")
        ]
        assert (outcome.what, outcome.detail) == ("submitted", "a1")
        return
    assert ctx.runner.calls == []  # nothing runs on a node that may not send
    assert f"{outcome.what}: {outcome.detail}" == expected
    assert f"svc1 sync#0: scheduled sync {expected}" in caplog.text
    # counted as run: not retried at the next tick, only at the next slot
    assert await _run_due(sched, ctx, now + timedelta(seconds=5)) == []
    assert "sync#0" in await _run_due(sched, ctx, now + timedelta(minutes=31))
    assert ctx.runner.calls == []
