"""/metrics is valid Prometheus text: node and instance gauges, route latency, sync families."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Running


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
    for name in ("ferry_sync_last_success_timestamp_seconds", "ferry_sync_bytes"):
        assert name in families and families[name].samples == []
