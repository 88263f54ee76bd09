"""Scheduler tick cost: 1,000 services x 2 jobs (a status refresh, a sync), goal <= 20 ms.

The baseline, measured in the same run, is the bare loop the tick cannot avoid: one
time comparison per job.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.events import EventBus
from daemon.node.services import NodeServices
from daemon.scheduler.component import Scheduler
from daemon.scheduler.jobs import LastRuns, last_runs_path

SERVICES = 1000
SERVICE = """[DEFAULT]
nodes = n1
drpnodes = n3

[app#0]
check = true

[sync#0]
src = /srv/{svcname}/
dst = /srv/{svcname}
target = drpnodes
"""
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class _Ctx:
    services: NodeServices
    var_dir: Path
    nodename: str = "n1"


def run(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        conf, var = Path(tmp) / "etc", Path(tmp) / "var"
        conf.mkdir()
        var.mkdir()
        for i in range(SERVICES):
            (conf / f"svc{i}.conf").write_text(SERVICE)
        ctx = _Ctx(NodeServices(conf, var, "n1", "bench", EventBus()), var)
        sched = Scheduler()
        last = LastRuns(last_runs_path(var))
        now = datetime.now()

        async def ticks_as_run() -> tuple[int, float, list[float]]:
            """The first tick (reads every configuration), then 30 ticks as ``run`` does
            them: a stat per configuration, then the comparison per job."""
            started = time.perf_counter()
            first = await sched.tick(ctx, last, now)  # type: ignore[arg-type]
            planning = time.perf_counter() - started
            sched._busy.clear()
            ticks = []
            for second in range(1, 31):
                began = time.perf_counter()
                await sched.tick(ctx, last, now + timedelta(seconds=second))  # type: ignore[arg-type]
                ticks.append((time.perf_counter() - began) * 1000)
            return len(first), planning, ticks

        jobs, planning, ticks = asyncio.run(ticks_as_run())
        dues = [now + timedelta(minutes=10)] * (2 * SERVICES)
        base = []
        for second in range(1, 31):
            moment = now + timedelta(seconds=second)
            began = time.perf_counter()
            _ = [d for d in dues if d <= moment]
            base.append((time.perf_counter() - began) * 1000)
    result: dict[str, Any] = {
        "services": SERVICES,
        "jobs": jobs,
        "first_tick_seconds": round(planning, 3),
        "tick_ms_p50": round(statistics.median(ticks), 3),
        "tick_ms_max": round(max(ticks), 3),
        "baseline_ms_p50": round(statistics.median(base), 3),
        "goal_ms": 20,
        "command": "python -m bench scheduler",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(f"scheduler tick, {SERVICES} services x 2 jobs ({jobs} due at start)")
    print(f"{'':<28} {'ferry':>10} {'baseline':>10}")
    print(f"{'tick p50 (ms)':<28} {result['tick_ms_p50']:>10} {result['baseline_ms_p50']:>10}")
    print(f"{'tick max (ms)':<28} {result['tick_ms_max']:>10} {'-':>10}")
    print(f"{'first tick: load + plan (s)':<28} {result['first_tick_seconds']:>10} {'-':>10}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scheduler.json").write_text(json.dumps(result, indent=2) + "\n")
    print("written: bench/results/scheduler.json")
    return 0


BENCHMARKS = {"scheduler": run}
