"""The cluster state's owner, driven message by message (no task, no network)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from daemon.cluster.heartbeat import FULL_EVERY, Heartbeat
from daemon.cluster.messages import ExpectMsg, HeartbeatMsg, InstanceMsg, PongMsg
from daemon.cluster.state import (
    ClusterState,
    Expect,
    LocalInstances,
    PeerHeartbeat,
    PeerPong,
    SetExpect,
    instances_digest,
    patch,
)
from daemon.events import EventBus
from daemon.node.config import node_config_from_text


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


# ---------------------------------------------------------------------------- patches

UP, DOWN = InstanceMsg(avail="up"), InstanceMsg(avail="down")
STARTED = ExpectMsg(value="started", stamp=5.0, origin="n2")


def _state() -> ClusterState:
    return ClusterState("n1", ["n2"], hb_timeout=3.0, events=EventBus(), clock=0.0)


def _held(state: ClusterState) -> tuple[int, dict[str, InstanceMsg]]:
    state._publish()
    info = state.snapshot.nodes["n2"]
    return info.gen, dict(info.instances)


def _full(gen: int, boot: str = "b1", **kw: object) -> HeartbeatMsg:
    return _hb(gen, boot=boot, kind="full", **kw)


def _patch(gen: int, boot: str = "b1", **kw: object) -> HeartbeatMsg:
    return _hb(gen, boot=boot, kind="patch", **kw)


def test_patch_carries_only_what_changed() -> None:
    before = _full(4, instances={"a": UP, "b": UP, "c": DOWN})
    after = _full(5, instances={"a": UP, "b": DOWN, "d": UP}, expects={"a": STARTED}, load=2.0)
    diff = patch(before, after)
    assert (diff.kind, diff.gen, diff.load) == ("patch", 5, 2.0)
    assert diff.instances == {"b": DOWN, "d": UP}
    assert diff.removed == ["c"] and diff.expects == {"a": STARTED}
    assert patch(after, after.model_copy(update={"gen": 6})).instances == {}


@pytest.mark.parametrize(
    ("name", "messages", "applied", "gen", "instances", "full_wanted"),
    [
        (
            "patch on the generation held: applied",
            [_full(1, instances={"a": UP, "c": UP}), _patch(2, instances={"b": UP}, removed=["c"])],
            [True, True],
            2,
            {"a": UP, "b": UP},
            False,
        ),
        (
            "gap (generation 2 lost): ignored, a full is asked for",
            [_full(1, instances={"a": UP}), _patch(3, instances={"a": DOWN})],
            [True, True],
            1,
            {"a": UP},
            True,
        ),
        (
            "the full that answers the gap is used and the request withdrawn",
            [_full(1, instances={"a": UP}), _patch(3, instances={"b": UP}), _full(4)],
            [True, True, True],
            4,
            {},
            False,
        ),
        (
            "a second patch of the gap asks nothing more",
            [_full(1), _patch(3), _patch(4)],
            [True, True, False],
            1,
            {},
            True,
        ),
        (
            "a patch first (we never got its full, e.g. we restarted): full asked for",
            [_patch(7, instances={"a": UP})],
            [True],
            0,
            {},
            True,
        ),
        (
            "a patch of a new boot (the peer restarted): full asked for",
            [_full(5, instances={"a": UP}), _patch(2, boot="b2", instances={"a": DOWN})],
            [True, True],
            5,
            {"a": UP},
            True,
        ),
        (
            "duplicate patch: ignored, nothing asked",
            [_full(1), _patch(2, instances={"a": UP}), _patch(2, instances={"a": DOWN})],
            [True, True, False],
            2,
            {"a": UP},
            False,
        ),
        (
            "out of order: an older full after a patch is ignored",
            [_full(1), _patch(2, instances={"a": UP}), _full(1, instances={"z": UP})],
            [True, True, False],
            2,
            {"a": UP},
            False,
        ),
        (
            "out of order: an older patch is ignored, nothing asked",
            [_full(1), _full(3, instances={"a": UP}), _patch(2, instances={"a": DOWN})],
            [True, True, False],
            3,
            {"a": UP},
            False,
        ),
    ],
)
def test_patches_gaps_and_duplicates(
    name: str,
    messages: list[HeartbeatMsg],
    applied: list[bool],
    gen: int,
    instances: dict[str, InstanceMsg],
    full_wanted: bool,
) -> None:
    state = _state()
    done = [state.apply(PeerHeartbeat(m, 1.0 + i), 1.0 + i) for i, m in enumerate(messages)]
    assert done == applied
    assert _held(state) == (gen, instances)
    assert ("n2" in state.snapshot.full_wanted) is full_wanted
    # the request travels in this node's own heartbeats
    assert ("n2" in state.local_message("boot", 1, "c").full_wanted) is full_wanted


def test_a_patch_merges_expects_and_replaces_the_node_facts() -> None:
    state = _state()
    state.apply(PeerHeartbeat(_full(1, instances={"a": UP}, load=1.0, sees=["n2"]), 1.0), 1.0)
    state.apply(PeerHeartbeat(_patch(2, expects={"a": STARTED}, load=3.0, frozen=True), 2.0), 2.0)
    state._publish()
    snap = state.snapshot
    assert snap.expects["a"].value == "started"
    assert (snap.nodes["n2"].load, snap.nodes["n2"].frozen) == (3.0, True)
    assert snap.nodes["n2"].sees == frozenset() and snap.nodes["n2"].instances == {"a": UP}


def test_a_node_declared_dead_comes_back_with_its_next_patch() -> None:
    """Declared dead while its messages were only late: its instances leave every view, but
    the owner keeps them as the base of its next patch, which revives it with its exact
    state (no round trip for a full); a patch after a gap still asks for a full."""
    state = _state()
    state.apply(PeerHeartbeat(_full(1, instances={"a": UP}), 0.0), 0.0)
    assert state.expire(4.0)
    state._publish()
    assert not state.snapshot.nodes["n2"].alive and state.snapshot.instances("a") == {}
    assert state.apply(PeerHeartbeat(_patch(2, instances={"b": UP}), 4.5), 4.5)
    state._publish()
    snap = state.snapshot
    assert snap.nodes["n2"].alive and not snap.full_wanted
    assert snap.instances("a") == {"n2": UP} and snap.instances("b") == {"n2": UP}
    assert state.expire(9.0)
    assert state.apply(PeerHeartbeat(_patch(4, instances={"c": UP}), 9.5), 9.5)
    state._publish()
    assert not state.snapshot.nodes["n2"].alive and "n2" in state.snapshot.full_wanted
    assert state.snapshot.instances("c") == {}


# ---------------------------------------------------------------------------- the sender


def _sender(peers: str = "n2=127.0.0.1:1 n3=127.0.0.1:2") -> Heartbeat:
    text = f"[node]\nname = n1\n[cluster]\nname = c\npeers = n1=127.0.0.1:3 {peers}\n"
    config = node_config_from_text(text, "node.conf", "n1")
    state = ClusterState("n1", ["n2", "n3"], hb_timeout=3.0, events=EventBus(), clock=0.0)
    return Heartbeat(state, config)


def test_the_sender_sends_a_full_first_then_patches_from_what_each_peer_got() -> None:
    hb = _sender()
    first = hb.message("c")
    assert (first.kind, first.gen) == ("full", 1)
    assert hb.wants_full("n2", hb.state.snapshot)  # never sent to: a full
    hb.delivered.update(n2=first, n3=first)
    hb.state.apply(LocalInstances({"a": UP}), 0.0)
    hb.state._publish()
    second = hb.message("c")
    diff = patch(hb.delivered["n2"], second)
    assert (diff.kind, diff.gen, diff.base, diff.instances) == ("patch", 2, 0, {"a": UP})
    assert not hb.wants_full("n2", hb.state.snapshot)
    hb.delivered["n2"] = second
    third = hb.message("c")
    # n2 got generation 2, n3 only 1: each gets the patch from its own generation
    to_n2, to_n3 = patch(hb.delivered["n2"], third), patch(hb.delivered["n3"], third)
    assert (to_n2.base, to_n2.instances) == (0, {})  # consecutive: base left at its default
    assert (to_n3.base, to_n3.instances) == (1, {"a": UP})


def test_the_sender_resends_a_full_after_a_failure_a_request_or_every_n_beats() -> None:
    hb = _sender()
    hb.delivered.update(n2=hb.message("c"))  # the send to n3 failed
    hb.message("c")
    snap = hb.state.snapshot
    assert not hb.wants_full("n2", snap) and hb.wants_full("n3", snap)
    # n2 says (in its heartbeat) it wants a full from us
    hb.state.apply(PeerHeartbeat(_full(1, full_wanted=["n1"]), 1.0), 1.0)
    hb.state._publish()
    assert hb.wants_full("n2", hb.state.snapshot)
    hb.state.apply(PeerHeartbeat(_full(2), 2.0), 2.0)
    hb.state._publish()
    assert not hb.wants_full("n2", hb.state.snapshot)
    while hb.gen % FULL_EVERY:
        hb.message("c")
    assert hb.wants_full("n2", hb.state.snapshot)  # the safety net


def test_a_patch_from_an_older_generation_applies_on_that_generation_only() -> None:
    state = _state()
    state.apply(PeerHeartbeat(_full(3, instances={"a": UP}), 1.0), 1.0)
    assert state.apply(PeerHeartbeat(_patch(7, base=3, instances={"b": UP}), 2.0), 2.0)
    assert _held(state) == (7, {"a": UP, "b": UP})
    state.apply(PeerHeartbeat(_patch(9, base=8, instances={"c": UP}), 3.0), 3.0)  # a gap
    assert _held(state) == (7, {"a": UP, "b": UP}) and "n2" in state.snapshot.full_wanted


def test_a_pong_is_the_peer_alive_with_its_facts_for_the_boot_we_hold() -> None:
    """The answer to our beat says the peer lives (as a beat of its own would), with its
    node facts; not for a boot whose state we do not hold (its full beat comes first)."""
    state = _state()
    pong = PongMsg(node="n2", boot="b1", load=2.5, sees=["n1", "n2"], full_wanted=["n1"])
    assert not state.apply(PeerPong(pong, 1.0), 1.0)  # nothing held of n2 yet
    state.apply(PeerHeartbeat(_full(1, instances={"a": UP}), 1.0), 1.0)
    assert state.expire(4.5)  # silent: dead
    assert state.apply(PeerPong(pong, 5.0), 5.0)
    state._publish()
    info = state.snapshot.nodes["n2"]
    assert info.alive and info.last_seen == 5.0 and info.load == 2.5
    assert info.sees == {"n1", "n2"} and info.full_wanted == {"n1"}
    assert dict(info.instances) == {"a": UP} and info.gen == 1  # its state: beats only
    assert not state.apply(PeerPong(pong.model_copy(update={"boot": "b2"}), 6.0), 6.0)


def test_a_peer_back_from_a_silence_by_its_answers_is_unknown_until_its_state_comes() -> None:
    """After a partition, the first sign of a peer may be its answer to our beat: it lives,
    but what it runs now (it may have started what we stopped) is not in a pong. Until its
    next beat, a full one that we ask for, its instances are unknown here (``unheard``:
    no start of a service that may run there)."""
    state = _state()
    state.apply(PeerHeartbeat(_full(1, instances={"a": DOWN}), 1.0), 1.0)
    state._publish()
    assert not state.snapshot.unheard()
    assert state.expire(4.5)  # partitioned: dead to us, "a" is started there meanwhile
    pong = PongMsg(node="n2", boot="b1", sees=["n1", "n2"])
    assert state.apply(PeerPong(pong, 8.0), 8.0)
    state._publish()
    snap = state.snapshot
    assert snap.nodes["n2"].alive and snap.nodes["n2"].alive_since == 8.0
    assert snap.unheard() == {"n2"} and "n2" in snap.full_wanted
    assert state.apply(PeerPong(pong, 9.0), 9.0)  # still unknown: answers carry no state
    state._publish()
    assert state.snapshot.unheard() == {"n2"}
    assert state.apply(PeerHeartbeat(_full(5, instances={"a": UP}), 9.5), 9.5)
    state._publish()
    snap = state.snapshot
    assert not snap.unheard() and not snap.full_wanted
    assert snap.instances("a") == {"n2": UP}


async def test_a_node_a_live_peer_hears_and_we_do_not_is_unheard() -> None:
    """Cut off from us but heard by n3 (witnessed), or already dead to us when n3 hears it
    again: either way we do not know what n1 runs."""
    state = ClusterState("n2", ["n1", "n3"], hb_timeout=3.0, events=EventBus(), clock=0.0)
    state.apply(PeerHeartbeat(_from("n1", 1, sees=["n1", "n2", "n3"]), 0.0), 0.0)
    state.apply(PeerHeartbeat(_from("n3", 1, sees=["n1", "n2", "n3"]), 0.0), 0.0)
    state._publish()
    assert not state.snapshot.unheard()
    state.apply(PeerHeartbeat(_from("n3", 2, sees=["n2", "n3"]), 3.5), 3.5)
    assert state.expire(3.6)  # nobody hears n1: dead, and known to be
    state._publish()
    assert not state.snapshot.unheard()
    state.apply(PeerHeartbeat(_from("n3", 3, sees=["n1", "n2", "n3"]), 4.0), 4.0)
    state._publish()
    assert state.snapshot.unheard() == {"n1"}
    state.apply(PeerHeartbeat(_from("n1", 2, sees=["n1", "n2", "n3"]), 4.5), 4.5)
    state._publish()
    assert not state.snapshot.unheard()


def test_between_two_nodes_one_beat_a_period_goes_while_nothing_changes() -> None:
    """n1 beats n3 every period; n3 (it sorts after n1) answers with its state and sends n1
    a beat only when something changed (or n1 stops beating it)."""
    text = "[node]\nname = n3\n[cluster]\nname = c\npeers = n1=127.0.0.1:1 n3=127.0.0.1:3\n"
    config = node_config_from_text(text, "node.conf", "n3")
    state = ClusterState("n3", ["n1"], hb_timeout=3.0, events=EventBus(), clock=0.0)
    hb = Heartbeat(state, config)
    n1 = HeartbeatMsg(node="n1", cluster="c", boot="x", gen=1, sent_at=0.0, pongs=True)
    state.apply(PeerHeartbeat(n1, 10.0), 10.0)
    state._publish()
    hb.delivered["n1"] = hb.message("c")
    diff = patch(hb.delivered["n1"], hb.message("c"))
    assert hb.quiet_towards("n1", diff, state.snapshot, 10.5)  # nothing new, n1 beats us
    assert not hb.quiet_towards("n1", diff, state.snapshot, 30.0)  # n1 went quiet: we beat
    state.apply(LocalInstances({"a": UP}), 10.6)
    state._publish()
    diff = patch(hb.delivered["n1"], hb.message("c"))
    assert not hb.quiet_towards("n1", diff, state.snapshot, 10.7)  # a change: it goes
    older = n1.model_copy(update={"gen": 2, "pongs": False})  # a peer that reads no answers
    state.apply(PeerHeartbeat(older, 10.8), 10.8)
    state._publish()
    quiet = patch(hb.delivered["n1"], hb.delivered["n1"].model_copy(update={"gen": 99}))
    assert not hb.quiet_towards("n1", quiet, state.snapshot, 10.9)


def test_alive_since_restarts_with_the_daemon_or_after_a_death() -> None:
    state = _state()
    state.apply(PeerHeartbeat(_full(1), 1.0), 1.0)
    state.apply(PeerHeartbeat(_full(2), 2.0), 2.0)
    state._publish()
    assert state.snapshot.facts()["n2"].alive_since == 1.0
    state.apply(PeerHeartbeat(_full(1, boot="b2"), 2.5), 2.5)  # restarted within the timeout
    state._publish()
    assert state.snapshot.facts()["n2"].alive_since == 2.5
    assert state.expire(6.0)
    state.apply(PeerHeartbeat(_patch(2, boot="b2"), 7.0), 7.0)  # back from the dead
    state._publish()
    assert state.snapshot.facts()["n2"].alive_since == 7.0


async def test_the_owner_wakes_when_a_silence_reaches_the_timeout_and_a_beat_is_due() -> None:
    """A death is declared on time (not up to a tick late), and what this node hears changing
    makes its next heartbeat due at once (local_version), both ways."""
    state = ClusterState("n1", ["n2"], hb_timeout=3.0, events=EventBus(), clock=0.0)
    assert state._next_wake(5.0, tick=0.3) == 0.3  # no live peer: the tick
    version = state.local_version
    state.apply(PeerHeartbeat(_hb(1), 10.0), 10.0)
    state._publish()
    assert state.local_version == version + 1  # n1 now hears n2: a beat is due
    assert state._next_wake(10.5, tick=0.3) == 0.3
    assert state._next_wake(12.9, tick=0.3) == pytest.approx(0.11)
    assert state._next_wake(13.5, tick=0.3) == 0.01
    state.apply(PeerHeartbeat(_hb(2), 11.0), 11.0)
    state._publish()
    assert state.local_version == version + 1  # nothing this node sends changed
    assert state.expire(14.02)
    state._publish()
    assert state.local_version == version + 2  # n2 is dead: a beat is due


async def test_expects_are_kept_on_disk_and_a_bad_file_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "expects.json"
    state = ClusterState("n1", ["n2"], hb_timeout=3.0, events=EventBus(), clock=0.0, store=store)
    frozen = Expect("frozen", 5.0, "n1", outcome="reached")
    state.apply(SetExpect("svc1", frozen), 0.0)
    state._publish()
    again = ClusterState("n1", ["n2"], hb_timeout=3.0, events=EventBus(), clock=0.0, store=store)
    assert again.snapshot.expect("svc1") == frozen
    assert again.local_message("b", 1, "c").expects["svc1"].value == "frozen"  # gossiped
    store.write_text('{"svc1": {"value": 3}}')
    caplog.set_level(logging.WARNING, logger="ferry.cluster")
    broken = ClusterState("n1", ["n2"], hb_timeout=3.0, events=EventBus(), clock=0.0, store=store)
    assert broken.snapshot.expects == {}
    assert f"{store}: unreadable, ignored" in caplog.text


def test_a_patch_that_would_leave_our_copy_unlike_the_senders_asks_for_a_full() -> None:
    """Every message carries the digest of its sender's instances: a patch whose result here
    differs (a change we never got) is not applied, and a full message is asked for; an
    empty patch is checked against the digest we hold, without computing."""
    state = _state()
    held = {"a": UP, "b": UP}
    state.apply(PeerHeartbeat(_full(1, instances=held, digest=instances_digest(held)), 1.0), 1.0)
    # the sender's b went down in a generation we did not get, and the next patch says a only
    theirs = {"a": DOWN, "b": DOWN}
    wrong = _patch(2, instances={"a": DOWN}, digest=instances_digest(theirs))
    assert state.apply(PeerHeartbeat(wrong, 2.0), 2.0)
    assert _held(state) == (1, held)  # kept as it was
    assert "n2" in state.snapshot.full_wanted
    state.apply(
        PeerHeartbeat(_full(3, instances=theirs, digest=instances_digest(theirs)), 3.0), 3.0
    )
    assert _held(state) == (3, theirs) and "n2" not in state.snapshot.full_wanted
    # an empty patch: our held digest is the one compared
    assert state.apply(PeerHeartbeat(_patch(4, digest=instances_digest(theirs)), 4.0), 4.0)
    assert _held(state)[0] == 4
    state.apply(PeerHeartbeat(_patch(5, digest="0" * 16), 5.0), 5.0)
    assert _held(state)[0] == 4 and "n2" in state.snapshot.full_wanted


def test_the_digest_is_the_same_for_the_same_instances_wherever_computed() -> None:
    one = {"b": DOWN, "a": UP}
    other = dict(reversed(list(one.items())))
    assert instances_digest(one) == instances_digest(other)
    assert instances_digest(one) != instances_digest({"a": UP, "b": UP})
    # a message at rest leaves out what has its default: it reads back the same
    msg = _full(1, instances=one, digest=instances_digest(one))
    again = HeartbeatMsg.model_validate_json(msg.model_dump_json(exclude_defaults=True))
    assert again == msg and instances_digest(again.instances) == msg.digest


def test_a_peer_that_restarted_gets_a_full_though_it_asks_for_nothing() -> None:
    """A restarted peer holds nothing of us; a node that stays quiet towards it (it beats
    us) would never send it a patch it could fail on, so it would never ask: the new boot
    in its beat is what says a full is due."""
    hb = _sender()
    hb.state.apply(PeerHeartbeat(_full(1, boot="b1"), 1.0), 1.0)
    hb.state._publish()
    hb.delivered["n2"], hb.delivered_boot["n2"] = hb.message("c"), "b1"
    hb.message("c")
    assert not hb.wants_full("n2", hb.state.snapshot)
    hb.state.apply(PeerHeartbeat(_full(1, boot="b2"), 2.0), 2.0)  # n2's daemon restarted
    hb.state._publish()
    assert hb.wants_full("n2", hb.state.snapshot)
