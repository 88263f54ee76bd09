"""/metrics is valid Prometheus text: node and instance gauges, route latency, sync families."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from daemon.cluster.metrics import register_peer_gauges
from daemon.cluster.state import ClusterState, LocalNode
from daemon.events import EventBus
from daemon.metrics import Registry
from daemon.node.metrics import sync_rows
from daemon.sync import stamps
from tests.api.conftest import Running

# Two sync resources replicating from n1 (this node) to n2.
SYNC_SERVICE = """[DEFAULT]
nodes = n1 n2

[app#0]
check = true

[sync#0]
src = /tmp/ferry-metrics-x/
dst = /tmp/ferry-metrics-x
target = nodes

[sync#1]
src = /tmp/ferry-metrics-y/
dst = /tmp/ferry-metrics-y
target = nodes
"""


async def test_metrics_parse_and_carry_the_families(ferryd: Running) -> None:
    async with ferryd.session("operator") as session:
        async with session.post("/api/services/svc1/actions", json={"action": "start"}) as resp:
            action_id = (await resp.json())["action_id"]
        async with session.get(f"/api/actions/{action_id}?wait=10") as resp:
            assert (await resp.json())["state"] == "succeeded"
        async with session.get("/api/services/svc1") as resp:
            assert resp.status == 200
        async with session.get("/metrics") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/plain"
            text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    info = families["ferry_node_info"].samples[0]
    assert info.labels == {"node": "n1", "cluster": "default", "version": "0.1.0"}
    avail = {
        s.labels["status"]: s.value
        for s in families["ferry_instance_avail"].samples
        if s.labels["service"] == "svc1"
    }
    assert avail["up"] == 1 and avail["down"] == 0 and len(avail) == 7
    latency = families["ferry_http_request_duration_seconds"]
    assert latency.type == "histogram"
    routes = {s.labels["route"] for s in latency.samples}
    assert "/api/services/{svc}" in routes  # the route, not the raw path
    counts = [
        s
        for s in families["ferry_http_requests"].samples
        if s.labels["route"] == "/api/services/{svc}/actions"
    ]
    assert counts and counts[0].labels["code"] == "202"
    ended = families["ferry_actions"].samples
    assert any(s.labels == {"action": "start", "result": "succeeded"} for s in ended)
    # No service has a sync resource: the families are there, empty.
    for name in ("ferry_sync_last_success_timestamp_seconds", "ferry_sync_running"):
        assert families[name].type == "gauge" and families[name].samples == []


def _families(text: str) -> dict[str, dict[tuple[str, ...], float]]:
    """name -> {(service, rid, source, target): value}."""
    out: dict[str, dict[tuple[str, ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            key = tuple(labels.get(k, "") for k in ("service", "rid", "source", "target"))
            out.setdefault(sample.name, {})[key] = sample.value
    return out


def _progress(ferryd: Running, rid: str, **data: Any) -> None:
    path = stamps.sync_dir(ferryd.var_dir / "services" / "rep", rid) / "progress.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"bytes": 1, "rate": 1.0, "updated": time.time(), **data}))


async def test_sync_families_from_stamps_and_progress(ferryd: Running) -> None:
    ferryd.write_service("rep", SYNC_SERVICE)
    state_dir = ferryd.var_dir / "services" / "rep"
    started = time.time() - 120.0
    sent = stamps.Stamp(started, started + 2.5, 4096, 2.5, "full", "n1", "n2")
    stamps.write(stamps.sent_path(state_dir, "sync#0", "n2"), sent)
    # Data n1 received from n2 before (the way back after a failover).
    back = stamps.Stamp(started - 3600, started - 3590, 1000, 10.0, "incremental", "n2", "n1")
    stamps.write(stamps.received_path(state_dir, "sync#0"), back)
    # A transfer of sync#1 to n2 runs now (this process publishes its progress).
    _progress(ferryd, "sync#1", target="n2", pid=os.getpid())

    async with ferryd.session("guest") as session, session.get("/metrics") as resp:
        assert resp.status == 200
        got = _families(await resp.text())
    to_n2 = ("rep", "sync#0", "n1", "n2")
    from_n2 = ("rep", "sync#0", "n2", "n1")
    running_to_n2 = ("rep", "sync#1", "n1", "n2")
    assert got["ferry_sync_last_success_timestamp_seconds"] == {
        to_n2: started,
        from_n2: started - 3600,
    }
    age = got["ferry_sync_data_age_seconds"]
    assert set(age) == {to_n2, from_n2}
    assert 120 <= age[to_n2] < 150 and 3720 <= age[from_n2] < 3750
    assert got["ferry_sync_last_bytes"] == {to_n2: 4096, from_n2: 1000}
    assert got["ferry_sync_last_duration_seconds"] == {to_n2: 2.5, from_n2: 10.0}
    # Every sending resource and target has a running sample; no stamp yet for sync#1.
    assert got["ferry_sync_running"] == {to_n2: 0, running_to_n2: 1}


def test_a_dead_transfer_is_not_running(ferryd: Running) -> None:
    ferryd.write_service("rep", SYNC_SERVICE)
    dead = subprocess.Popen(["true"])  # a pid that no longer runs
    dead.wait()
    _progress(ferryd, "sync#0", target="n2", pid=dead.pid)
    _progress(ferryd, "sync#1", target="n2", pid=os.getpid())
    ctx = ferryd.daemon.ctx
    assert ctx is not None
    running = {(r.rid, r.target): r.running for r in sync_rows(ctx.services)}
    assert running == {("sync#0", "n2"): False, ("sync#1", "n2"): True}


async def test_peer_families_from_the_cluster_state() -> None:
    state = ClusterState("n1", ["n2", "n3"], 15.0, EventBus())
    owner = asyncio.create_task(state.run())
    try:
        state.post(LocalNode(frozen=True, load=0.1, free_mem=0.5))
        await state.changed(2.0)
        registry = Registry()
        register_peer_gauges(registry, state)
        got = {
            (s.name, s.labels["node"]): s.value
            for f in text_string_to_metric_families(registry.render())
            for s in f.samples
        }
    finally:
        owner.cancel()
        await asyncio.gather(owner, return_exceptions=True)
    assert got == {
        ("ferry_cluster_node_alive", "n1"): 1,
        ("ferry_cluster_node_alive", "n2"): 0,
        ("ferry_cluster_node_alive", "n3"): 0,
        ("ferry_cluster_node_frozen", "n1"): 1,
        ("ferry_cluster_node_frozen", "n2"): 0,
        ("ferry_cluster_node_frozen", "n3"): 0,
    }
