"""The cluster state's owner, driven message by message (no task, no network)."""

from __future__ import annotations

from daemon.api.schemas import ExpectMsg, HeartbeatMsg, InstanceMsg
from daemon.cluster.state import ClusterState, Expect, PeerHeartbeat, SetExpect
from daemon.events import EventBus


def _hb(gen: int, boot: str = "b1", **kw: object) -> HeartbeatMsg:
    return HeartbeatMsg(node="n2", cluster="c", boot=boot, gen=gen, sent_at=0.0, **kw)  # type: ignore[arg-type]


async def test_newest_generation_wins_and_silence_kills() -> None:
    events = EventBus()
    state = ClusterState("n1", ["n2"], hb_timeout=3.0, events=events, clock=0.0)
    up = {"svc1": InstanceMsg(avail="up")}
    assert state.apply(PeerHeartbeat(_hb(2, instances=up), 10.0), 10.0)
    assert not state.apply(PeerHeartbeat(_hb(1), 10.5), 10.5)  # older: ignored
    assert state.apply(PeerHeartbeat(_hb(1, boot="b2", instances=up), 11.0), 11.0)  # restarted
    assert not state.expire(13.0)
    assert state.expire(14.5)
    state._publish()
    snap = state.snapshot
    assert not snap.nodes["n2"].alive and snap.instances("svc1") == {}
    assert [e.data["state"] for e in events._history if e.kind == "node"] == ["alive", "dead"]


async def test_expects_merge_newest_and_outcome_wins_at_equal_stamp() -> None:
    state = ClusterState("n1", ["n2"], hb_timeout=3.0, events=EventBus(), clock=0.0)
    state.apply(SetExpect("svc1", Expect("placed@n2", 5.0, "n1")), 0.0)
    older = {"svc1": ExpectMsg(value="stopped", stamp=4.0, origin="n2")}
    state.apply(PeerHeartbeat(_hb(1, expects=older), 1.0), 1.0)
    state._publish()
    assert state.snapshot.expects["svc1"].value == "placed@n2"
    reached = {"svc1": ExpectMsg(value="placed@n2", stamp=5.0, origin="n1", outcome="reached")}
    state.apply(PeerHeartbeat(_hb(2, expects=reached), 2.0), 2.0)
    state._publish()
    assert state.snapshot.expects["svc1"].outcome == "reached"
    assert not state.snapshot.expects["svc1"].active
    msg = state.local_message("boot", 7, "c")
    assert msg.gen == 7 and msg.expects["svc1"].outcome == "reached"


async def test_quorum_is_a_strict_majority() -> None:
    state = ClusterState("n1", ["n2", "n3"], hb_timeout=3.0, events=EventBus(), arbitrators=1)
    assert state.snapshot.votes == (1, 4) and not state.snapshot.has_quorum
    state.apply(PeerHeartbeat(_hb(1), 0.0), 0.0)
    state._publish()
    assert state.snapshot.votes == (2, 4) and not state.snapshot.has_quorum
    from daemon.cluster.state import ArbitratorVotes

    state.apply(ArbitratorVotes(1), 0.0)
    state._publish()
    assert state.snapshot.has_quorum


def _from(node: str, gen: int, **kw: object) -> HeartbeatMsg:
    return HeartbeatMsg(node=node, cluster="c", boot="b", gen=gen, sent_at=0.0, **kw)  # type: ignore[arg-type]


async def test_a_peer_still_heard_by_another_is_not_dead() -> None:
    """n1|n2 split with n3 hearing both: for n2, n1 is cut off, not dead; its instance stays
    in view so that nothing fails over. Once n3 stops hearing n1 too, n1 is dead."""
    state = ClusterState("n2", ["n1", "n3"], hb_timeout=3.0, events=EventBus(), clock=0.0)
    up = {"svc1": InstanceMsg(avail="up")}
    state.apply(PeerHeartbeat(_from("n1", 1, instances=up, sees=["n1", "n2", "n3"]), 0.0), 0.0)
    state.apply(PeerHeartbeat(_from("n3", 1, sees=["n1", "n2", "n3"]), 0.0), 0.0)
    # n1 falls silent to n2 only; n3 keeps saying it hears n1
    state.apply(PeerHeartbeat(_from("n3", 2, sees=["n1", "n2", "n3"]), 3.5), 3.5)
    assert state.expire(3.6)
    state._publish()
    snap = state.snapshot
    assert not snap.nodes["n1"].alive and snap.nodes["n1"].witnessed
    assert snap.instances("svc1") == {"n1": up["svc1"]}  # still seen running: no failover
    assert "n1" not in snap.alive()
    # n3 loses n1 as well: now n1 is dead and its instance dropped
    state.apply(PeerHeartbeat(_from("n3", 3, sees=["n2", "n3"]), 4.0), 4.0)
    assert state.expire(4.1)
    state._publish()
    assert state.snapshot.instances("svc1") == {}


async def test_no_witness_means_dead() -> None:
    state = ClusterState("n2", ["n1", "n3"], hb_timeout=3.0, events=EventBus(), clock=0.0)
    up = {"svc1": InstanceMsg(avail="up")}
    state.apply(PeerHeartbeat(_from("n1", 1, instances=up), 0.0), 0.0)
    state.apply(PeerHeartbeat(_from("n3", 1, sees=["n2", "n3"]), 3.5), 3.5)
    assert state.expire(3.6)
    state._publish()
    assert state.snapshot.instances("svc1") == {}
