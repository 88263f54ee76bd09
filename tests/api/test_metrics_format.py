"""/metrics as Prometheus reads it: every family with its type and labels (the client
library's parser), and ``promtool check metrics`` has nothing to say about it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.cluster.metrics import register_peer_gauges
from daemon.cluster.state import ClusterState, LocalNode
from daemon.drill.metrics import register_drill_gauges
from daemon.drill.record import DrillStore
from daemon.events import EventBus
from daemon.restore.points import Entry, Index, point_name
from daemon.sync import stamps
from tests.api.conftest import Running
from tests.api.test_metrics import SYNC_SERVICE

SYNC = {"service", "rid", "source", "target"}
PER_SERVICE = {"service", "node"}
# Every family the daemon exposes (docs/daemon.md): its type and label names.
FAMILIES: dict[str, tuple[str, set[str]]] = {
    "ferry_node_info": ("gauge", {"node", "cluster", "version"}),
    "ferry_node_start_time_seconds": ("gauge", set()),
    "ferry_node_actions_running": ("gauge", set()),
    "ferry_node_actions_queued": ("gauge", set()),
    "ferry_node_services": ("gauge", set()),
    "ferry_instance_avail": ("gauge", {"service", "node", "status"}),
    "ferry_instance_overall": ("gauge", {"service", "node", "status"}),
    "ferry_instance_status_updated_seconds": ("gauge", PER_SERVICE),
    "ferry_http_request_duration_seconds": ("histogram", {"method", "route"}),
    "ferry_http_requests": ("counter", {"method", "route", "code"}),
    "ferry_actions": ("counter", {"action", "result"}),
    "ferry_sync_last_success_timestamp_seconds": ("gauge", SYNC),
    "ferry_sync_data_age_seconds": ("gauge", SYNC),
    "ferry_sync_last_bytes": ("gauge", SYNC),
    "ferry_sync_last_duration_seconds": ("gauge", SYNC),
    "ferry_sync_running": ("gauge", SYNC),
    "ferry_drill_last_success_timestamp_seconds": ("gauge", PER_SERVICE),
    "ferry_drill_last_result": ("gauge", PER_SERVICE),
    "ferry_drill_rto_seconds": ("gauge", PER_SERVICE),
    "ferry_restore_points": ("gauge", PER_SERVICE),
    "ferry_restore_point_oldest_age_seconds": ("gauge", PER_SERVICE),
    "ferry_restore_point_newest_age_seconds": ("gauge", PER_SERVICE),
    "ferry_restore_guard_pruned_points": ("gauge", {"service", "rid"}),
}
FAMILIES["ferry_cluster_node_alive"] = ("gauge", {"node"})
FAMILIES["ferry_cluster_node_frozen"] = ("gauge", {"node"})


@pytest.fixture
async def cluster_state() -> AsyncIterator[ClusterState]:
    state = ClusterState("n1", ["n2"], 15.0, EventBus())
    owner = asyncio.create_task(state.run())
    state.post(LocalNode(frozen=False, load=0.1, free_mem=0.5))
    await state.changed(2.0)
    try:
        yield state
    finally:
        owner.cancel()
        await asyncio.gather(owner, return_exceptions=True)


async def _scrape(ferryd: Running, state: ClusterState) -> str:
    """/metrics after an action, with a sync stamp, a drill report and restore points
    on disk, and the families the cluster layer adds (the peers, the drills) registered
    as a ferryd with it does: every family has samples."""
    registry = ferryd.daemon.ctx.metrics.registry if ferryd.daemon.ctx else None
    assert registry is not None
    register_peer_gauges(registry, state)
    if not registry.collects("ferry_drill_last_result"):
        register_drill_gauges(registry, DrillStore(ferryd.var_dir), "n1")
    ferryd.write_service("rep", SYNC_SERVICE)
    now = time.time()
    state_dir = ferryd.var_dir / "services" / "rep"
    stamp = stamps.Stamp(now - 60, now - 58, 4096, 2.0, "full", "n1", "n2")
    stamps.write(stamps.sent_path(state_dir, "sync#0", "n2"), stamp)
    drills = ferryd.var_dir / "drills" / "rep"
    drills.mkdir(parents=True)
    report = {"result": "pass", "started_at": now - 300, "ended_at": now - 200, "rto_seconds": 12.5}
    (drills / "history.json").write_text(json.dumps([report]))
    Index(ferryd.var_dir, "rep", "sync#0").write(
        [
            Entry(point_name(now - 3600 * h), "sync#0", "tree", f"t{h}", now - 3600 * h)
            for h in (1, 2)
        ]
    )
    guard = state_dir / "sync" / "sync#0" / "restore-guard.json"
    guard.parent.mkdir(parents=True, exist_ok=True)
    guard.write_text(json.dumps({"count": 3}))
    async with ferryd.session("operator") as session:
        async with session.post("/api/services/svc1/actions", json={"action": "start"}) as resp:
            action_id = (await resp.json())["action_id"]
        async with session.get(f"/api/actions/{action_id}?wait=10") as resp:
            assert (await resp.json())["state"] == "succeeded"
        async with session.get("/api/services/svc1?refresh=true") as resp:
            assert resp.status == 200
        async with session.get("/metrics") as resp:
            assert resp.status == 200
            return await resp.text()


async def test_every_family_has_its_type_and_labels(
    ferryd: Running, cluster_state: ClusterState
) -> None:
    text = await _scrape(ferryd, cluster_state)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == set(FAMILIES)
    for name, (kind, labels) in FAMILIES.items():
        family = families[name]
        assert family.type == kind, name
        assert family.documentation, f"{name}: no help text"
        assert family.samples, f"{name}: no sample"
        for sample in family.samples:
            extra = {"le"} if sample.name.endswith("_bucket") else set()
            assert set(sample.labels) == labels | extra, (name, sample.labels)
    histogram = families["ferry_http_request_duration_seconds"]
    suffixes = {s.name.removeprefix(histogram.name) for s in histogram.samples}
    assert suffixes == {"_bucket", "_sum", "_count"}
    assert {s.name for s in families["ferry_actions"].samples} == {"ferry_actions_total"}


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is absent (Debian package prometheus; scripts/host-deps.sh installs it)",
)
async def test_promtool_checks_the_exposition(ferryd: Running, cluster_state: ClusterState) -> None:
    text = await _scrape(ferryd, cluster_state)
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (
        f"promtool: {check.stdout}{check.stderr}"
    )
