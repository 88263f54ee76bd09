"""The scheduler's jobs and due times over real service configs and a real NodeServices."""

from __future__ import annotations

import json
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
