"""The cluster layer end to end: in-process daemons on loopback, app-only services."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from daemon.cluster import heartbeat
from daemon.cluster.heartbeat import Heartbeat
from tests.cluster.conftest import (
    HB_TIMEOUT,
    READY,
    Cluster,
    MakeCluster,
    Node,
    app_service,
    eventually,
)


async def _all_see_each_other(cluster: Cluster) -> None:
    async def check() -> bool:
        for node in cluster.nodes.values():
            if node.daemon is None:
                continue
            _, body = await node.api("GET", "/api/cluster")
            states = {n["name"]: n["state"] for n in body["nodes"]}
            running = [n for n, x in cluster.nodes.items() if x.daemon is not None]
            if any(states[n] != "up" for n in running):
                return False
        return True

    await eventually(check, 10, "every daemon sees the others up")


async def _up_on(cluster: Cluster, svc: str) -> list[str]:
    return [n for n, node in cluster.nodes.items() if node.is_up(svc)]


async def _start_all(cluster: Cluster) -> None:
    for name in cluster.nodes:
        await cluster.start(name)


async def _until_only_on(cluster: Cluster, svc: str, node: str, what: str) -> None:
    """Wait (10 s at most) until svc is up on node and nowhere else."""

    async def only_there() -> bool:
        return await _up_on(cluster, svc) == [node]

    await eventually(only_there, 10, what)


def _frozen(cluster: Cluster, node: str, svc: str = "svc1") -> bool:
    """The instance's persistent freeze flag on that node."""
    return (cluster[node].var_dir / "services" / svc / "frozen").exists()


async def test_heartbeat_sees_peers_and_detects_a_dead_one(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster()
    await _start_all(cluster)
    await _all_see_each_other(cluster)
    stopped = time.monotonic()
    await cluster.stop("n3")

    async def n3_dead() -> bool:
        _, body = await cluster["n1"].api("GET", "/api/cluster")
        return {n["name"]: n["state"] for n in body["nodes"]}["n3"] == "down"

    await eventually(n3_dead, HB_TIMEOUT + 2, "n1 sees n3 dead")
    assert time.monotonic() - stopped <= HB_TIMEOUT + 1.5
    _, body = await cluster["n1"].api("GET", "/api/cluster")
    assert body["nodes"][0]["local"] and body["votes"] == [2, 3]


async def test_ha_failover_when_the_running_daemon_stops(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster(("n1", "n2"))
    cluster.install("svc1", app_service("n1 n2"))
    await _start_all(cluster)

    await _until_only_on(cluster, "svc1", "n1", "svc1 up on n1 (the leader)")
    killed = time.monotonic()
    await cluster.stop("n1")

    async def on_n2() -> bool:
        return cluster["n2"].is_up("svc1")

    await eventually(on_n2, HB_TIMEOUT + 5, "svc1 fails over to n2")
    assert time.monotonic() - killed < HB_TIMEOUT + 4


async def test_restart_grace_a_stopping_daemon_is_not_a_dead_node(
    make_cluster: MakeCluster,
) -> None:
    """A daemon that stops on request (a restart) tells its peers so: its services run on,
    and within restart_grace its silence is not a death: nothing fails over; back, it
    finds its service where it was. (The harness's other tests model deaths by stops.)"""
    cluster = await make_cluster(("n1", "n2"), restart_grace=30.0)
    cluster.install("svc1", app_service("n1 n2"))
    await _start_all(cluster)
    await _until_only_on(cluster, "svc1", "n1", "svc1 up on n1 (the leader)")
    await cluster.stop("n1")
    await asyncio.sleep(HB_TIMEOUT + READY + 3)  # a death would have failed over by now
    assert not cluster["n2"].is_up("svc1")
    _, body = await cluster["n2"].api("GET", "/api/cluster")
    assert {n["name"]: n["state"] for n in body["nodes"]}["n1"] == "up", body["nodes"]
    await cluster.start("n1")
    await _until_only_on(cluster, "svc1", "n1", "svc1 still on n1 after the restart")


async def test_orchestrate_no_starts_nothing(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster(("n1", "n2"))
    cluster.install("svc1", app_service("n1 n2", orchestrate="no"))
    await _start_all(cluster)
    await _all_see_each_other(cluster)
    await eventually(lambda: _true_after(1.5), 3)
    assert await _up_on(cluster, "svc1") == []


async def _true_after(seconds: float, _t: dict[str, float] = {}) -> bool:  # noqa: B006
    start = _t.setdefault("start", time.monotonic())
    if time.monotonic() - start >= seconds:
        _t.clear()
        return True
    return False


async def test_flex_target_is_enforced(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster()
    cluster.install("flex1", app_service("n1 n2 n3", extra="topology = flex\nflex_target = 2"))
    await _start_all(cluster)

    async def two_up() -> bool:
        return await _up_on(cluster, "flex1") == ["n1", "n2"]

    await eventually(two_up, 10, "flex1 up on n1 and n2")

    async def seen_up_by_n3() -> bool:
        _, body = await cluster["n3"].api("GET", "/api/cluster")
        view = body["services"].get("flex1", {})
        return (view.get("avail"), view.get("reason")) == ("up", "2 instances up")

    await eventually(seen_up_by_n3, 10, "n3 sees flex1 up, 2 instances")
    await cluster.stop("n1")

    async def n3_joins() -> bool:
        return cluster["n3"].is_up("flex1") and cluster["n2"].is_up("flex1")

    await eventually(n3_joins, HB_TIMEOUT + 6, "n3 replaces n1")


async def test_switch_takeover_giveback_converge(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster()
    cluster.install("svc1", app_service("n1 n2", extra="drpnodes = n3"))
    await _start_all(cluster)

    async def on(node: str) -> bool:
        return await _up_on(cluster, "svc1") == [node]

    await eventually(lambda: on("n1"), 10, "svc1 on n1")
    record = await cluster["n1"].act("svc1", {"action": "switch", "to": "n2"})
    assert record["state"] == "succeeded", record
    assert record["result"]["outcome"] == "reached"
    assert await _up_on(cluster, "svc1") == ["n2"]
    record = await cluster["n3"].act("svc1", {"action": "takeover"})
    assert record["state"] == "succeeded", record
    assert await _up_on(cluster, "svc1") == ["n3"]
    record = await cluster["n2"].act("svc1", {"action": "giveback"})
    assert record["state"] == "succeeded", record
    assert await _up_on(cluster, "svc1") == ["n1"]
    # The drp node never starts on its own: stop everything, nothing restarts on n3.
    record = await cluster["n2"].act("svc1", {"action": "stop"})
    assert record["state"] == "succeeded", record
    assert await _up_on(cluster, "svc1") == []
    _, status = await cluster["n1"].api("GET", "/api/services/svc1")
    assert status["frozen"] is True  # a stopped ha service is frozen everywhere

    async def seen_down() -> bool:
        _, body = await cluster["n1"].api("GET", "/api/cluster")
        return bool(body["services"]["svc1"]["avail"] == "down")

    await eventually(seen_down, 10, "n1 sees svc1 down across the cluster")
    record = await cluster["n3"].act("svc1", {"action": "switch", "to": "n9"})
    assert record["state"] == "failed" and "n9" in record["error"]


async def test_freeze_persists_across_a_restart(make_cluster: MakeCluster) -> None:
    """freeze on a lone n1 (the global expect frozen) survives a restart of every daemon:
    n1's flag and the expect, kept on disk; n2, down when it was said, hears it from n1
    and freezes too, so nothing starts. (A node frozen alone is no candidate: see
    test_config_distribution_installs_frozen.)"""
    cluster = await make_cluster(("n1", "n2"))
    cluster.install("svc1", app_service("n1 n2"))
    await cluster.start("n1")
    record = await cluster["n1"].act("svc1", {"action": "freeze"})
    assert record["state"] == "succeeded"
    kept = json.loads((cluster["n1"].var_dir / "expects.json").read_text())
    assert kept["svc1"]["value"] == "frozen" and kept["svc1"]["outcome"] == "reached"
    await cluster.stop("n1")
    await cluster.start("n1")
    await cluster.start("n2")
    _, status = await cluster["n1"].api("GET", "/api/services/svc1")
    assert status["frozen"] is True

    async def n2_frozen() -> bool:
        return _frozen(cluster, "n2")

    await eventually(n2_frozen, 5, "n2 freezes, told by n1")
    await eventually(lambda: _true_after(READY + 1.0), 3)
    assert await _up_on(cluster, "svc1") == []
    status_code, body = await cluster["n1"].api("POST", "/api/node/freeze")
    assert status_code == 200 and body["frozen"] is True
    _, cl = await cluster["n1"].api("GET", "/api/cluster")
    assert cl["node"] == "n1"


async def test_start_failed_then_clear(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster(("n1",))
    flag = cluster.base / "allow"
    cluster.install("svc1", app_service("n1", start=f"test -f {flag} && touch {{var}}/up"))
    await cluster.start("n1")

    async def failed() -> bool:
        _, status = await cluster["n1"].api("GET", "/api/services/svc1")
        return bool(status.get("monitor") == "start failed")

    await eventually(failed, 10, "start failed")
    flag.write_text("")
    await eventually(lambda: _true_after(1.0), 3)
    assert not cluster["n1"].is_up("svc1")  # no retry while failed
    record = await cluster["n1"].act("svc1", {"action": "clear"})
    assert record["state"] == "succeeded"

    async def up() -> bool:
        return cluster["n1"].is_up("svc1")

    await eventually(up, 10, "started after clear")


async def test_config_distribution_installs_frozen(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster()
    await _start_all(cluster)
    text = app_service("n1 n2", extra="drpnodes = n3")
    status, body = await cluster["n1"].api("PUT", "/api/services/new1/config", {"text": text})
    assert status == 200, body
    assert body["distributed"] == {"n2": "installed", "n3": "installed"}
    for name in ("n2", "n3"):
        assert (cluster[name].config_dir / "new1.conf").read_text() == text
        assert _frozen(cluster, name, "new1")

    await _until_only_on(cluster, "new1", "n1", "new1 starts on n1 (not frozen where it was put)")


async def test_isolated_node_without_quorum_starts_nothing(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster(quorum=True, rejoin_grace=0.5)
    cluster.install("svc1", app_service("n3 n1"), on=["n3"])
    await cluster.start("n3")  # n1 and n2 never answer: 1 vote of 3
    await eventually(lambda: _true_after(2.0), 4)
    assert not cluster["n3"].is_up("svc1")
    _, body = await cluster["n3"].api("GET", "/api/cluster")
    assert body["quorum"] is False and body["votes"] == [1, 3]
    await cluster.start("n1")  # 2 of 3: a majority

    async def up() -> bool:
        return cluster["n3"].is_up("svc1")

    await eventually(up, 10, "n3 starts once it sees a majority")


async def test_dr_facts(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster(("n1", "n2"))
    cluster.install("svc1", app_service("n1", extra="drpnodes = n2"))
    await _start_all(cluster)

    await _until_only_on(cluster, "svc1", "n1", "svc1 on n1")

    async def facts_ok() -> bool:
        _, facts = await cluster["n2"].api("GET", "/api/services/svc1/dr?to=n2")
        return bool(facts["running_on"] == ["n1"])

    await eventually(facts_ok, 5, "n2 sees svc1 running on n1")
    _, facts = await cluster["n2"].api("GET", "/api/services/svc1/dr?to=n2")
    assert facts["running_node_alive"] is True
    assert facts["will_start"] == ["app#a"] and facts["rpo_seconds"] is None


async def test_sync_through_the_daemon_returns_the_reports(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster(("n1",))
    cluster.install("svc1", app_service("n1", orchestrate="no"))
    await cluster.start("n1")
    record = await cluster["n1"].act("svc1", {"action": "sync", "mode": "all"})
    assert record["state"] == "succeeded", record
    assert record["result"] == {"reports": []}
    status, body = await cluster["n1"].api(
        "POST", "/api/services/svc1/actions", {"action": "switch"}
    )
    assert status == 422 and body["field"] == "to"


async def test_resource_restart_then_monitor_action_switch(make_cluster: MakeCluster) -> None:
    """A monitored resource found down is restarted (restart = 1); when it stays down, the
    node steps aside (monitor_action = switch) and the service moves to the next node."""
    cluster = await make_cluster(("n1", "n2"))
    text = app_service("n1 n2", extra="monitor_action = switch").replace(
        "[app#a]\n", "[app#a]\nmonitor = true\nrestart = 1\n"
    )
    cluster.install("svc1", text)
    await _start_all(cluster)
    n1 = cluster["n1"]

    async def on_n1() -> bool:
        return n1.is_up("svc1")

    async def started_on_n1() -> bool:  # the start ended (the file appears before it does)
        _, status = await n1.api("GET", "/api/services/svc1")
        return n1.is_up("svc1") and status.get("monitor") == "idle"

    await eventually(started_on_n1, 10, "svc1 up on n1")
    (n1.var_dir / "services" / "svc1" / "up").unlink()  # the app dies
    await eventually(on_n1, 10, "app#a restarted on n1")
    # now it cannot start any more on n1: the restart budget is spent, n1 steps aside
    (n1.config_dir / "svc1.conf").write_text(text.replace("touch {var}/up", "false"))
    (n1.var_dir / "services" / "svc1" / "up").unlink()

    async def on_n2() -> bool:
        return cluster["n2"].is_up("svc1")

    await eventually(on_n2, 20, "svc1 switched to n2 by monitor_action")
    status, state = await n1.api("GET", "/api/cluster")
    assert status == 200
    assert state["services"]["svc1"]["instances"]["n1"]["monitor"] == "start failed"


async def test_a_switch_whose_final_sync_cannot_reach_the_target_does_not_move(
    make_cluster: MakeCluster,
) -> None:
    """The data must reach the node that takes over: a final sync skipped for a data
    resource (here the target cannot be reached over ssh) stops the switch, and the
    service keeps running where it is."""
    cluster = await make_cluster(("n1", "n2"))
    src = cluster.base / "data"
    src.mkdir()
    extra = "[sync#1]\nsrc = {src}/\ndst = /tmp/ferry-test-nowhere\ntarget = nodes\n"
    cluster.install("svc1", app_service("n1 n2") + extra.format(src=src))
    await _start_all(cluster)

    await _until_only_on(cluster, "svc1", "n1", "svc1 on n1")
    record = await cluster["n1"].act("svc1", {"action": "switch", "to": "n2"})
    assert record["state"] == "failed", record
    assert "final sync to n2 failed: sync#1 -> n2:" in record["error"]
    assert await _up_on(cluster, "svc1") == ["n1"]


async def test_freeze_and_thaw_are_global_expects(make_cluster: MakeCluster) -> None:
    """freeze on n1 freezes every instance (n2's too), persistently: the ha service does not
    fail over when n1 dies meanwhile; thaw on n2 thaws them all, n1's included."""
    cluster = await make_cluster(("n1", "n2"))
    cluster.install("svc1", app_service("n1 n2"))
    await _start_all(cluster)

    await _until_only_on(cluster, "svc1", "n1", "svc1 up on n1")

    record = await cluster["n1"].act("svc1", {"action": "freeze"})
    assert record["state"] == "succeeded", record
    assert record["result"]["expect"] == "frozen" and record["result"]["outcome"] == "reached"
    assert _frozen(cluster, "n1") and _frozen(cluster, "n2")
    for name in ("n1", "n2"):
        _, status = await cluster[name].api("GET", "/api/services/svc1")
        assert status["frozen"] is True, name

    async def n2_knows() -> bool:
        _, view = await cluster["n2"].api("GET", "/api/cluster")
        expect = view["services"]["svc1"]["expect"] or {}
        return (expect.get("value"), expect.get("outcome")) == ("frozen", "reached")

    await eventually(n2_knows, 5, "n2 hears that the expect frozen is reached")

    await cluster.stop("n1")  # the running node dies: a frozen n2 must not take over
    waited = time.monotonic()

    async def n1_dead() -> bool:
        _, body = await cluster["n2"].api("GET", "/api/cluster")
        return {n["name"]: n["state"] for n in body["nodes"]}["n1"] == "down"

    await eventually(n1_dead, HB_TIMEOUT + 3, "n2 sees n1 dead")
    await eventually(lambda: _true_after(READY + 1.5), 4)
    assert not cluster["n2"].is_up("svc1") and _frozen(cluster, "n2")
    assert time.monotonic() - waited > READY + 1.5

    await cluster.start("n1")  # frozen survives the restart
    await _all_see_each_other(cluster)
    _, status = await cluster["n1"].api("GET", "/api/services/svc1")
    assert status["frozen"] is True

    record = await cluster["n2"].act("svc1", {"action": "thaw"})
    assert record["state"] == "succeeded", record
    assert record["result"]["expect"] == "thawed" and record["result"]["frozen"] is False
    assert not _frozen(cluster, "n1") and not _frozen(cluster, "n2")
    for name in ("n1", "n2"):
        _, status = await cluster[name].api("GET", "/api/services/svc1")
        assert status["frozen"] is False, name
    # thawed, the service still runs on n1 only (n1's instance never stopped)
    await eventually(lambda: _true_after(1.0), 3)
    assert await _up_on(cluster, "svc1") == ["n1"]


def _heartbeat(node: Node) -> Heartbeat:
    assert node.daemon is not None
    found = [c for c in node.daemon.components if isinstance(c, Heartbeat)]
    assert len(found) == 1
    return found[0]


async def test_heartbeats_are_patches_and_a_lost_one_is_repaired_by_a_full(
    make_cluster: MakeCluster, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heartbeat, "FULL_EVERY", 10**6)  # no safety-net full to hide the gap
    cluster = await make_cluster(("n1", "n2"))
    cluster.install("svc1", app_service("n1 n2"))
    await _start_all(cluster)

    await _until_only_on(cluster, "svc1", "n1", "svc1 up on n1")
    hb1, hb2 = _heartbeat(cluster["n1"]), _heartbeat(cluster["n2"])

    def n2_holds_n1() -> bool:
        """n2's copy of n1 is n1's own state, at n1's last generation."""
        mine = hb1.state.snapshot.nodes["n1"].instances
        held = hb2.state.snapshot.nodes["n1"]
        return held.gen == hb1.gen and dict(held.instances) == dict(mine) and bool(mine)

    async def converged() -> bool:
        return hb1.sent["patch"] >= 5 and n2_holds_n1()

    await eventually(converged, 5, "n2 holds n1's state, from patches")
    assert 1 <= hb1.sent["full"] < hb1.sent["patch"]
    fulls = hb1.sent["full"]
    # A generation is lost on the way to n2: the next patch does not apply there.
    caplog.set_level(logging.INFO, logger="ferry.cluster")

    async def idle() -> bool:
        return all(task.done() for task in hb1._inflight.values())

    await eventually(idle, 5, "no heartbeat in flight")
    hb1.delivered["n2"] = hb1.message("test")  # n1 believes n2 got a generation it did not

    async def repaired() -> bool:
        return hb1.sent["full"] > fulls and n2_holds_n1()

    await eventually(repaired, 5, "n2 asks for a full and holds n1's state again")
    assert "n1: patch" in caplog.text and "asking for a full message" in caplog.text
    assert "n1" not in hb2.state.snapshot.full_wanted
    assert await _up_on(cluster, "svc1") == ["n1"]


async def test_a_node_says_at_once_when_it_starts_or_stops_hearing_a_peer(
    make_cluster: MakeCluster,
) -> None:
    """What a node hears goes out at once, not at its next beat: a peer waiting to learn
    whether a silent node is still heard by someone decides within a fraction of a second
    (the failover time). Beats every 10 s here: waiting for them would take seconds."""
    cluster = await make_cluster(("n1", "n2"), hb_interval=10.0, hb_timeout=30.0)
    await cluster.start("n1")
    await asyncio.sleep(0.5)  # n1's first beat went out, to no one
    await cluster.start("n2")  # n2's first beat reaches n1: n1 now hears n2

    async def n2_knows_n1_hears_it() -> bool:
        assert cluster["n2"].daemon is not None
        held = _heartbeat(cluster["n2"]).state.snapshot.nodes["n1"]
        return held.alive and "n2" in held.sees

    assert await eventually(n2_knows_n1_hears_it, 3, "n1 tells n2 it hears it") < 3
