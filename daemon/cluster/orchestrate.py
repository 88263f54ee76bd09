"""Orchestration decisions (SPEC 5.2, 5.3): what this node should do for one service now.

A pure function of what the cluster state says (instances of alive nodes, the global
expect, placement facts, the clock). The monitor loop calls it, carries the action
out and records the monitor state; tests call it with tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from daemon.cluster.placement import NodeFacts, PlacementInput, candidates, leaders, surplus

UP = ("up", "warn")  # an instance that runs the service, even partly
FAILED = ("start failed", "stop failed")
BUSY = ("starting", "stopping", "syncing")
REPORT_GRACE = 10.0  # seconds a daemon just heard alive may take to report its instances


@dataclass(frozen=True)
class InstanceView:
    """One node's instance of the service, as the cluster state knows it."""

    node: str
    avail: str = "down"
    state: str = "idle"  # idle, ready, starting, stopping, start failed, stop failed
    frozen: bool = False
    standby_down: bool = False  # standby resources found down
    ready_since: float | None = None

    @property
    def running(self) -> bool:
        return self.avail in UP

    @property
    def occupies(self) -> bool:
        """Running, or on its way in or out (starting; a switch's final syncs and stop,
        its writers already down): no other node starts a failover service meanwhile."""
        return self.running or self.state in ("starting", "syncing", "stopping")


@dataclass(frozen=True)
class ServiceView:
    name: str
    nodes: tuple[str, ...]
    drpnodes: tuple[str, ...] = ()
    topology: str = "failover"
    orchestrate: str = "no"
    placement: str = "nodes order"
    flex_target: int = 1
    expect: str = ""  # "", started, stopped, frozen, thawed, placed, placed@<node>
    instances: Mapping[str, InstanceView] = field(default_factory=dict)  # alive nodes only
    boot_started: bool = False  # orchestrate = start: the cluster-start placement is done
    has_sync: bool = False  # sync resources: a switch sends a final sync before the stop


@dataclass(frozen=True)
class Context:
    local: str
    now: float
    ready_period: float = 5.0
    facts: Mapping[str, NodeFacts] = field(default_factory=dict)
    rejoined: bool = True  # the rejoin grace period is over
    quorum: bool = True  # this node sees enough votes to act on its own
    split_action: str = "freeze"  # without quorum: "stop" also stops running ha failover instances


@dataclass(frozen=True)
class Decision:
    action: str  # none, ready, unready, start, stop, syncstop, startstandby, reached
    reason: str = ""
    targets: tuple[str, ...] = ()  # syncstop: the nodes the final sync goes to


NONE = Decision("none")


def placement_input(svc: ServiceView, thawing: bool = False) -> PlacementInput:
    """The placement's view of the service. ``thawing``: its frozen instances count as
    candidates (an expect that thaws every instance is being followed: they are about to be
    thawed, each by its own node, a beat later)."""
    failed = frozenset(n for n, i in svc.instances.items() if i.state == "start failed")
    frozen = frozenset() if thawing else frozenset(n for n, i in svc.instances.items() if i.frozen)
    return PlacementInput(svc.name, svc.nodes, svc.placement, failed=failed, excluded=frozen)


def expected_node(svc: ServiceView, ctx: Context) -> str:
    """The node a placed / placed@node expect points to ('' when none can be had)."""
    if svc.expect.startswith("placed@"):
        return svc.expect.removeprefix("placed@")
    chosen = leaders(placement_input(svc), ctx.facts)
    return chosen[0] if chosen else ""


def decide(svc: ServiceView, ctx: Context) -> Decision:
    """What the local node does next for this service."""
    local = svc.instances.get(ctx.local, InstanceView(ctx.local))
    if local.state in BUSY:
        return NONE  # an action is running: its outcome will be seen next round
    if svc.expect:
        return _follow_expect(svc, ctx, local)
    if local.frozen:
        return NONE
    if local.standby_down:  # kept up wherever the instance is, running or not
        return Decision("startstandby", "standby resources are down")
    if not ctx.rejoined:
        return NONE
    if svc.orchestrate == "no" or (svc.orchestrate == "start" and svc.boot_started):
        return NONE
    if not ctx.quorum:
        if (
            ctx.split_action == "stop"
            and local.running
            and svc.orchestrate == "ha"
            and svc.topology == "failover"
        ):
            return Decision("stop", "quorum lost: split_action = stop")
        return _unready(local, "no quorum: no automatic start")
    if svc.topology == "flex":
        return _flex(svc, ctx, local)
    return _failover(svc, ctx, local)


def _follow_expect(svc: ServiceView, ctx: Context, local: InstanceView) -> Decision:
    running = [n for n, i in svc.instances.items() if i.running]
    if svc.expect in ("frozen", "thawed"):
        return _follow_freeze(svc, ctx)
    if svc.expect == "stopped":
        if local.running:
            return Decision("stop", "expect stopped")
        return Decision("reached", "stopped") if not running else NONE
    if svc.expect in ("started", "placed") or svc.expect.startswith("placed@"):
        if svc.topology == "flex" and svc.expect == "started":
            return _flex_started(svc, ctx, local)
        if svc.topology == "flex" and svc.expect == "placed":
            return _flex_placed(svc, ctx, local)
        target = expected_node(svc, ctx)
        if ctx.local != target:
            if local.running:
                alive_target = target in svc.instances
                if svc.has_sync and svc.expect.startswith("placed") and alive_target:
                    # The running node is the only one that may send: final sync, then stop.
                    return Decision("syncstop", f"final sync to {target}, then stop", (target,))
                return Decision("stop", f"the service moves to {target or 'nowhere'}")
            return NONE
        others = [n for n, i in svc.instances.items() if i.occupies and n != ctx.local]
        if others:
            return Decision("none", f"waiting for {', '.join(others)} to stop")
        if local.running:
            return Decision("reached", f"running on {ctx.local}")
        if local.state in FAILED:
            return NONE
        return Decision("start", f"expect {svc.expect}")
    return NONE


def _follow_freeze(svc: ServiceView, ctx: Context) -> Decision:
    """frozen / thawed: every node sets its own instance's flag (the monitor does, from the
    expect) and nothing else happens; reached once every live instance reports it. An alive
    node of the service that reports no instance is waited for during REPORT_GRACE after
    its daemon came up (it says nothing of its instances at first), not longer (it may
    lack the configuration). An instance of a node frozen node-wide stays frozen: a thaw
    does not wait for it."""
    want = svc.expect == "frozen"
    members = (*svc.nodes, *svc.drpnodes)
    silent = sorted(
        n
        for n in members
        if n not in svc.instances
        and n in ctx.facts
        and ctx.facts[n].alive
        and ctx.now - ctx.facts[n].alive_since < REPORT_GRACE
    )
    pending = sorted(
        n
        for n, i in svc.instances.items()
        if i.frozen != want and (want or not (n in ctx.facts and ctx.facts[n].frozen))
    )
    if silent or pending:
        why = [f"{', '.join(pending)} to be {svc.expect}"] if pending else []
        why += [f"{', '.join(silent)} to report its instance"] if silent else []
        return Decision("none", f"waiting for {' and '.join(why)}")
    return Decision("reached", f"every instance {svc.expect}")


def _flex_started(svc: ServiceView, ctx: Context, local: InstanceView) -> Decision:
    """A flex start: flex_target instances, or as many as there are candidates (a dead or
    frozen node cannot run one); reached, said by a running instance, once they run."""
    running = [n for n, i in svc.instances.items() if i.running]
    # the instances still frozen are thawed by this very expect: they count (else a node
    # that sees the expect first says it reached with its own instance alone)
    ranked = candidates(placement_input(svc, thawing=True), ctx.facts)
    wanted = max(1, min(svc.flex_target, len(ranked)))
    if local.running and len(running) >= wanted:
        return Decision("reached", f"{len(running)} flex instances up")
    return _flex(svc, ctx, local)


def _flex_placed(svc: ServiceView, ctx: Context, local: InstanceView) -> Decision:
    """Giveback of a flex service: instances back on the flex_target leaders. The others
    stop first (a running one sends a final sync to the leaders), then the leaders start;
    reached when every leader runs."""
    chosen = leaders(placement_input(svc), ctx.facts, max(1, svc.flex_target))
    running = [n for n, i in svc.instances.items() if i.running]
    if ctx.local not in chosen:
        if not local.running:
            return NONE
        if svc.has_sync and chosen:
            return Decision(
                "syncstop", f"final sync to {', '.join(chosen)}, then stop", tuple(chosen)
            )
        return Decision("stop", f"the service moves to {', '.join(chosen) or 'nowhere'}")
    others = [n for n, i in svc.instances.items() if i.occupies and n not in chosen]
    if others:
        return Decision("none", f"waiting for {', '.join(others)} to stop")
    if not local.running:
        return NONE if local.state in FAILED else Decision("start", "expect placed")
    missing = [n for n in chosen if n not in running]
    if missing:
        return Decision("none", f"waiting for {', '.join(missing)} to start")
    return Decision("reached", f"running on {', '.join(chosen)}")


def _unready(local: InstanceView, reason: str) -> Decision:
    return Decision("unready", reason) if local.state == "ready" else Decision("none", reason)


def _ready_or_start(svc: ServiceView, ctx: Context, local: InstanceView, why: str) -> Decision:
    if local.state in FAILED:
        return Decision("none", f"{local.state}: waiting for 'clear'")
    contenders = [
        i.node
        for i in svc.instances.values()
        if i.node != ctx.local and i.state in ("ready", "starting")
    ]
    ranked = candidates(placement_input(svc), ctx.facts)
    better = [n for n in contenders if n in ranked and ranked.index(n) < _index(ranked, ctx.local)]
    if better:
        return _unready(local, f"{better[0]} is ready before us")
    if local.state != "ready" or local.ready_since is None:
        return Decision("ready", why)
    if ctx.now - local.ready_since < ctx.ready_period:
        return NONE
    return Decision("start", why)


def _index(ranked: list[str], node: str) -> int:
    return ranked.index(node) if node in ranked else len(ranked)


def _failover(svc: ServiceView, ctx: Context, local: InstanceView) -> Decision:
    running = [n for n, i in svc.instances.items() if i.running]
    if running:
        if local.running and len(running) > 1:
            ranked = candidates(placement_input(svc), ctx.facts)
            best = min(running, key=lambda n: _index(ranked, n))
            if best != ctx.local:
                return Decision("stop", f"dual-active with {best}: the lower-ranked instance stops")
        return _unready(local, "the service runs")
    chosen = leaders(placement_input(svc), ctx.facts)
    if not chosen or chosen[0] != ctx.local:
        return _unready(local, f"the leader is {chosen[0] if chosen else 'nobody'}")
    return _ready_or_start(svc, ctx, local, "no instance is up and this node leads")


def _flex(svc: ServiceView, ctx: Context, local: InstanceView) -> Decision:
    running = [n for n, i in svc.instances.items() if i.running]
    ranked = candidates(placement_input(svc), ctx.facts)
    target = max(0, svc.flex_target)
    if local.running:
        if len(running) > target and ctx.local in surplus(running, ranked, target):
            return Decision("stop", f"{len(running)} instances up, flex_target is {target}")
        return NONE
    if len(running) >= target:
        return _unready(local, "flex_target reached")
    wanted = [n for n in ranked if n not in running][: target - len(running)]
    if ctx.local not in wanted:
        return _unready(local, "other nodes lead")
    return _ready_or_start(svc, ctx, local, f"{len(running)} of {target} flex instances up")


@dataclass(frozen=True)
class ResourceView:
    """A resource of the local running instance, as its status shows it."""

    rid: str
    status: str
    monitor: bool = False
    restart: int = 0
    standby: bool = False


def upkeep(
    resources: list[ResourceView],
    attempts: Mapping[str, int],
    running: bool,
    frozen: bool,
    monitor_action: str,
) -> Decision:
    """Resources of a running instance found down: restart them (``restart`` times), then
    for a monitored one apply ``monitor_action``. Decision actions: ``restart`` (reason =
    the rid), ``freezestop``, ``switch``, ``alert`` (monitor_action none, reboot, crash:
    Ferry does not reboot or crash nodes, it says so), ``none``."""
    if not running or frozen:
        return NONE
    down = [
        r for r in resources
        if r.status == "down" and not r.standby and (r.monitor or r.restart > 0)
    ]  # fmt: skip
    for res in down:
        if attempts.get(res.rid, 0) < res.restart:
            return Decision("restart", res.rid)
    monitored = [r.rid for r in down if r.monitor]
    if not monitored:
        return NONE
    what = f"{', '.join(monitored)} down after {attempts.get(monitored[0], 0)} restart(s)"
    if monitor_action in ("freezestop", "switch"):
        return Decision(monitor_action, what)
    return Decision("alert", what)
