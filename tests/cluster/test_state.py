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
