"""Orchestration decisions as tables: failover, flex, expects, standby, quorum, drpnodes."""

from __future__ import annotations

import pytest

from daemon.cluster.orchestrate import (
    Context,
    InstanceView,
    ResourceView,
    ServiceView,
    decide,
    upkeep,
)
from daemon.cluster.placement import NodeFacts

FACTS = {n: NodeFacts(n) for n in ("n1", "n2", "n3")}


def svc(**kw: object) -> ServiceView:
    base: dict[str, object] = {
        "name": "svc1",
        "nodes": ("n1", "n2"),
        "drpnodes": ("n3",),
        "orchestrate": "ha",
    }
    base.update(kw)
    return ServiceView(**base)  # type: ignore[arg-type]


def inst(node: str, avail: str = "down", **kw: object) -> InstanceView:
    return InstanceView(node, avail, **kw)  # type: ignore[arg-type]


def ctx(local: str, now: float = 100.0, **kw: object) -> Context:
    facts = kw.pop("facts", FACTS)
    return Context(local, now, facts=facts, **kw)  # type: ignore[arg-type]


def inst_map(*instances: InstanceView) -> dict[str, InstanceView]:
    return {i.node: i for i in instances}


CASES = [
    # (name, service, local, context extras, expected action)
    ("leader gets ready", svc(instances=inst_map(inst("n1"), inst("n2"))), "n1", {}, "ready"),
    ("non-leader waits", svc(instances=inst_map(inst("n1"), inst("n2"))), "n2", {}, "none"),
    (
        "ready period not over",
        svc(instances=inst_map(inst("n1", state="ready", ready_since=98.0), inst("n2"))),
        "n1",
        {},
        "none",
    ),
    (
        "ready period over: start",
        svc(instances=inst_map(inst("n1", state="ready", ready_since=90.0), inst("n2"))),
        "n1",
        {},
        "start",
    ),
    (
        "running elsewhere: unready",
        svc(instances=inst_map(inst("n1", state="ready", ready_since=90.0), inst("n2", "up"))),
        "n1",
        {},
        "unready",
    ),
    (
        "leader dead: the peer leads",
        svc(instances=inst_map(inst("n2"))),
        "n2",
        {"facts": {"n2": FACTS["n2"], "n3": FACTS["n3"]}},
        "ready",
    ),
    (
        "drpnode never starts alone",
        svc(instances=inst_map(inst("n3"))),
        "n3",
        {"facts": {"n3": FACTS["n3"]}},
        "none",
    ),
    ("orchestrate no", svc(orchestrate="no", instances=inst_map(inst("n1"))), "n1", {}, "none"),
    ("frozen", svc(instances=inst_map(inst("n1", frozen=True))), "n1", {}, "none"),
    (
        "frozen leader: the next one leads",
        svc(instances=inst_map(inst("n1", frozen=True), inst("n2"))),
        "n2",
        {},
        "ready",
    ),
    (
        "start failed waits for clear",
        svc(instances=inst_map(inst("n1", state="start failed"), inst("n2"))),
        "n1",
        {},
        "none",
    ),
    (
        "failed leader: the next one leads",
        svc(instances=inst_map(inst("n1", state="start failed"), inst("n2"))),
        "n2",
        {},
        "ready",
    ),
    ("no quorum", svc(instances=inst_map(inst("n1"))), "n1", {"quorum": False}, "none"),
    ("rejoin grace", svc(instances=inst_map(inst("n1"))), "n1", {"rejoined": False}, "none"),
    (
        "dual-active: the lower-ranked stops",
        svc(instances=inst_map(inst("n1", "up"), inst("n2", "up"))),
        "n2",
        {},
        "stop",
    ),
    (
        "dual-active: the leader stays",
        svc(instances=inst_map(inst("n1", "up"), inst("n2", "up"))),
        "n1",
        {},
        "none",
    ),
    (
        "standby kept up on the DRP node",
        svc(orchestrate="no", instances=inst_map(inst("n3", "stdby down", standby_down=True))),
        "n3",
        {},
        "startstandby",
    ),
    (
        "a better-ranked peer is ready",
        svc(instances=inst_map(inst("n1", state="ready", ready_since=50.0), inst("n2"))),
        "n2",
        {},
        "none",
    ),
    (
        "orchestrate start: once",
        svc(orchestrate="start", boot_started=True, instances=inst_map(inst("n1"))),
        "n1",
        {},
        "none",
    ),
    # expects
    (
        "switch: the running node stops",
        svc(expect="placed@n3", instances=inst_map(inst("n1", "up"), inst("n3"))),
        "n1",
        {},
        "stop",
    ),
    (
        "switch: the target waits for the stop",
        svc(expect="placed@n3", instances=inst_map(inst("n1", "up"), inst("n3"))),
        "n3",
        {},
        "none",
    ),
    (
        "switch: the target starts once the others are down",
        svc(expect="placed@n3", instances=inst_map(inst("n1"), inst("n3"))),
        "n3",
        {},
        "start",
    ),
    (
        "takeover with the primary site dead",
        svc(expect="placed@n3", instances=inst_map(inst("n3", "stdby up"))),
        "n3",
        {"facts": {"n3": FACTS["n3"]}},
        "start",
    ),
    (
        "expect reached",
        svc(expect="placed@n3", instances=inst_map(inst("n3", "up"))),
        "n3",
        {},
        "reached",
    ),
    (
        "giveback: placed goes to the leader",
        svc(expect="placed", instances=inst_map(inst("n1"), inst("n3", "up"))),
        "n3",
        {},
        "stop",
    ),
    (
        "giveback with sync resources: final sync first",
        svc(expect="placed", has_sync=True, instances=inst_map(inst("n1"), inst("n3", "up"))),
        "n3",
        {},
        "syncstop",
    ),
    (
        "stopped",
        svc(expect="stopped", instances=inst_map(inst("n1", "up"))),
        "n1",
        {},
        "stop",
    ),
    ("stopped reached", svc(expect="stopped", instances=inst_map(inst("n1"))), "n1", {}, "reached"),
    (
        "expects override freeze",
        svc(expect="placed@n2", instances=inst_map(inst("n1", "up", frozen=True), inst("n2"))),
        "n1",
        {},
        "stop",
    ),
    (
        "no quorum, split_action stop: the running ha instance stops",
        svc(instances=inst_map(inst("n1", "up"), inst("n2"))),
        "n1",
        {"quorum": False, "split_action": "stop"},
        "stop",
    ),
    (
        "no quorum, split_action freeze: the running instance stays",
        svc(instances=inst_map(inst("n1", "up"), inst("n2"))),
        "n1",
        {"quorum": False, "split_action": "freeze"},
        "none",
    ),
    (
        "no quorum, split_action stop: a frozen instance is left alone",
        svc(instances=inst_map(inst("n1", "up", frozen=True), inst("n2"))),
        "n1",
        {"quorum": False, "split_action": "stop"},
        "none",
    ),
    (
        "switch to an alive drpnode with sync resources: final sync, then stop",
        svc(expect="placed@n3", has_sync=True, instances=inst_map(inst("n1", "up"), inst("n3"))),
        "n1",
        {},
        "syncstop",
    ),
    (
        "switch to a dead node: plain stop (nothing to send to)",
        svc(expect="placed@n3", has_sync=True, instances=inst_map(inst("n1", "up"))),
        "n1",
        {},
        "stop",
    ),
    (
        # a move inside the primary site: the final sync has no target there (a no-op)
        "giveback with sync resources: final sync first",
        svc(expect="placed", has_sync=True, instances=inst_map(inst("n1"), inst("n2", "up"))),
        "n2",
        {},
        "syncstop",
    ),
    (
        "switch target waits while the final sync runs",
        svc(expect="placed@n3", instances=inst_map(inst("n1", "up", state="syncing"), inst("n3"))),
        "n3",
        {},
        "none",
    ),
    *[
        (
            # the source's writers are down (its standby fs alone folds to 'stdby up'), its
            # last sync or its stop runs: not running, yet the target must not start
            f"switch target waits for a source {state}, its writers stopped",
            svc(
                expect="placed@n1",
                instances=inst_map(inst("n3", "stdby up", state=state), inst("n1")),
            ),
            "n1",
            {},
            "none",
        )
        for state in ("syncing", "stopping", "starting")
    ],
]


@pytest.mark.parametrize(
    ("service", "local", "extra", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(service: ServiceView, local: str, extra: dict[str, object], expected: str) -> None:
    assert decide(service, ctx(local, **extra)).action == expected


DEAD_N3 = {**FACTS, "n3": NodeFacts("n3", alive=False)}
N2_NODE_FROZEN = {**DEAD_N3, "n2": NodeFacts("n2", frozen=True)}
N3_JUST_UP = {**FACTS, "n3": NodeFacts("n3", alive_since=95.0)}  # now is 100


@pytest.mark.parametrize(
    ("expect", "instances", "facts", "expected"),
    [
        # frozen: nothing moves, whatever runs; reached once every live instance is frozen
        ("frozen", (inst("n1", "up", frozen=True), inst("n2")), DEAD_N3, "none"),
        ("frozen", (inst("n1", "up", frozen=True), inst("n2", frozen=True)), DEAD_N3, "reached"),
        ("frozen", (inst("n1", frozen=True), inst("n2", frozen=True)), DEAD_N3, "reached"),
        # an alive node that has not reported its instance yet (just restarted): wait
        ("frozen", (inst("n1", frozen=True), inst("n2", frozen=True)), N3_JUST_UP, "none"),
        # ... but not for ever: alive for long without an instance, it lacks the config
        ("frozen", (inst("n1", frozen=True), inst("n2", frozen=True)), FACTS, "reached"),
        # frozen does not fail over: no instance up, nobody starts
        ("frozen", (inst("n1", frozen=True), inst("n2")), DEAD_N3, "none"),
        ("thawed", (inst("n1", "up"), inst("n2", frozen=True)), DEAD_N3, "none"),
        ("thawed", (inst("n1", "up"), inst("n2")), DEAD_N3, "reached"),
        # thawed does not start anything by itself
        ("thawed", (inst("n1"), inst("n2")), DEAD_N3, "reached"),
        # a node frozen node-wide keeps its instance frozen: the thaw does not wait for it
        ("thawed", (inst("n1", "up"), inst("n2", frozen=True)), N2_NODE_FROZEN, "reached"),
    ],
)
def test_frozen_and_thawed_expects(
    expect: str,
    instances: tuple[InstanceView, ...],
    facts: dict[str, NodeFacts],
    expected: str,
) -> None:
    service = svc(expect=expect, instances=inst_map(*instances))
    for local in ("n1", "n2"):
        assert decide(service, ctx(local, facts=facts)).action == expected, local
    if expected == "none":
        assert "waiting for" in decide(service, ctx("n1", facts=facts)).reason


FLEX = {"topology": "flex", "nodes": ("n1", "n2", "n3"), "drpnodes": ()}


@pytest.mark.parametrize(
    ("running", "target", "local", "expected"),
    [
        ((), 2, "n1", "ready"),
        ((), 2, "n2", "ready"),
        ((), 2, "n3", "none"),
        (("n1",), 2, "n2", "ready"),
        (("n1", "n2"), 2, "n3", "none"),
        (("n1", "n2", "n3"), 2, "n3", "stop"),
        (("n1", "n2", "n3"), 2, "n1", "none"),
        (("n1", "n2"), 1, "n2", "stop"),
        (("n1", "n2"), 3, "n3", "ready"),
    ],
)
def test_flex_target(running: tuple[str, ...], target: int, local: str, expected: str) -> None:
    instances = inst_map(*(inst(n, "up" if n in running else "down") for n in ("n1", "n2", "n3")))
    service = svc(flex_target=target, instances=instances, **FLEX)
    assert decide(service, ctx(local)).action == expected


FLEX_DRP = {"topology": "flex", "nodes": ("n1", "n2"), "drpnodes": ("n3",), "flex_target": 2}


@pytest.mark.parametrize(
    ("running", "local", "has_sync", "expected"),
    [
        (("n3",), "n3", True, ("syncstop", ("n1", "n2"))),
        (("n3",), "n3", False, ("stop", ())),
        (("n3",), "n1", True, ("none", ())),  # waits for the DR instance to stop
        ((), "n1", True, ("start", ())),
        ((), "n2", True, ("start", ())),
        (("n1",), "n1", True, ("none", ())),  # waits for n2 before calling it reached
        (("n1",), "n2", True, ("start", ())),
        (("n1", "n2"), "n2", True, ("reached", ())),
        ((), "n3", True, ("none", ())),
    ],
)
def test_flex_giveback_places_flex_target_instances(
    running: tuple[str, ...], local: str, has_sync: bool, expected: tuple[str, tuple[str, ...]]
) -> None:
    instances = inst_map(*(inst(n, "up" if n in running else "down") for n in ("n1", "n2", "n3")))
    service = svc(expect="placed", has_sync=has_sync, instances=instances, **FLEX_DRP)
    decision = decide(service, ctx(local))
    assert (decision.action, decision.targets) == expected


@pytest.mark.parametrize("state", ["syncing", "stopping"])
def test_flex_giveback_leaders_wait_for_the_dr_instance_in_its_final_sync(state: str) -> None:
    """The DR instance's writers are down (its standby fs folds to 'stdby up') while it
    sends its last sync: the leaders must not start (and mount) meanwhile."""
    instances = inst_map(inst("n1"), inst("n2"), inst("n3", "stdby up", state=state))
    service = svc(expect="placed", has_sync=True, instances=instances, **FLEX_DRP)
    for leader in ("n1", "n2"):
        assert decide(service, ctx(leader)).action == "none"


def rv(rid: str, status: str, **kw: object) -> ResourceView:
    return ResourceView(rid, status, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("resources", "attempts", "running", "action", "expected"),
    [
        ([rv("app#0", "up", monitor=True)], {}, True, "switch", ("none", "")),
        ([rv("app#0", "down", restart=2)], {}, True, "none", ("restart", "app#0")),
        ([rv("app#0", "down", restart=2)], {"app#0": 2}, True, "none", ("none", "")),
        (
            [rv("app#0", "down", monitor=True, restart=1)],
            {"app#0": 1},
            True,
            "switch",
            ("switch", "app#0 down after 1 restart(s)"),
        ),
        (
            [rv("app#0", "down", monitor=True)],
            {},
            True,
            "freezestop",
            ("freezestop", "app#0 down after 0 restart(s)"),
        ),
        (
            [rv("app#0", "down", monitor=True)],
            {},
            True,
            "reboot",
            ("alert", "app#0 down after 0 restart(s)"),
        ),
        ([rv("app#0", "down", monitor=True)], {}, False, "switch", ("none", "")),
        ([rv("fs#0", "down", monitor=True, standby=True)], {}, True, "switch", ("none", "")),
        ([rv("app#0", "down")], {}, True, "switch", ("none", "")),
    ],
)
def test_resource_upkeep(
    resources: list[ResourceView],
    attempts: dict[str, int],
    running: bool,
    action: str,
    expected: tuple[str, str],
) -> None:
    decision = upkeep(resources, attempts, running, frozen=False, monitor_action=action)
    assert (decision.action, decision.reason) == expected


def test_upkeep_does_nothing_when_frozen() -> None:
    decision = upkeep(
        [rv("app#0", "down", restart=3)], {}, True, frozen=True, monitor_action="none"
    )
    assert decision.action == "none"


def test_standby_down_with_another_standby_up_is_restarted() -> None:
    """stdby up + stdby down folds to warn: that is not a running instance."""
    service = svc(orchestrate="start", instances=inst_map(inst("n3", "warn", standby_down=True)))
    assert decide(service, ctx("n3")).action == "startstandby"


@pytest.mark.parametrize(
    ("running", "alive", "local", "expected"),
    [
        (("n1", "n2", "n3"), ("n1", "n2", "n3"), "n1", "reached"),
        (("n1", "n2"), ("n1", "n2", "n3"), "n1", "none"),  # n3 still to start
        (("n1", "n2"), ("n1", "n2", "n3"), "n3", "ready"),
        (("n1", "n2"), ("n1", "n2"), "n2", "reached"),  # n3 is dead: 2 is all there can be
        ((), ("n1", "n2", "n3"), "n1", "ready"),
    ],
)
def test_flex_start_is_reached_with_the_target_or_every_candidate(
    running: tuple[str, ...], alive: tuple[str, ...], local: str, expected: str
) -> None:
    instances = inst_map(*(inst(n, "up" if n in running else "down") for n in alive))
    facts = {n: NodeFacts(n, alive=n in alive) for n in ("n1", "n2", "n3")}
    service = svc(expect="started", flex_target=3, instances=instances, **FLEX)
    assert decide(service, ctx(local, facts=facts)).action == expected


def test_flex_start_counts_the_instances_its_expect_thaws() -> None:
    """A service created on n1 arrives frozen on n2 and n3; the operator's start thaws every
    instance, each node when it sees the expect. n1, running already, must not say the start
    reached with its instance alone while n2 and n3 are still frozen: they are about to run."""
    instances = inst_map(inst("n1", "up"), inst("n2", frozen=True), inst("n3", frozen=True))
    service = svc(expect="started", flex_target=3, instances=instances, **FLEX)
    assert decide(service, ctx("n1")).action == "none"
    # a node that cannot run it (a node frozen as a whole) still does not count
    facts = {**FACTS, "n2": NodeFacts("n2", alive=True, frozen=True),
             "n3": NodeFacts("n3", alive=True, frozen=True)}  # fmt: skip
    assert decide(service, ctx("n1", facts=facts)).action == "reached"
