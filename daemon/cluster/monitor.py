"""The monitor: the orchestration loop of this node (SPEC 5.2).

Every second (and whenever the cluster state changes) the monitor, for each
local service: reads the instance status, publishes it with its monitor state
into the cluster state, builds a :class:`ServiceView` from the cluster state,
asks :func:`decide` what to do, and does it through the action runner (so that
every automatic action has a record like an operator's).

Monitor states: ``idle``, ``ready`` (with ``ready_since``), ``starting``,
``stopping``, ``syncing`` (final sync of a switch), ``start failed``,
``stop failed``. A failed state stops automatic retries of this node until
``clear``. Persistent flags, under ``<var dir>/services/<svc>/``: ``frozen``
(instance freeze), ``boot_started`` (orchestrate = start: the cluster-start
placement is done); ``<var dir>/node.frozen`` freezes the whole node
(:mod:`daemon.cluster.flags`).

Rejoin: after the daemon starts, no automatic start until ``rejoin_grace`` is
over or every peer has been heard once, whichever comes first.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from daemon.actions import ActionRunner, ActionState, RunnerClosed
from daemon.cluster.flags import (
    data_ages,
    frozen_path,
    is_frozen,
    last_activation,
    mtime,
    record_activation,
    set_flag,
    state_dir,
)
from daemon.cluster.messages import InstanceMsg
from daemon.cluster.orchestrate import (
    Context,
    Decision,
    InstanceView,
    ResourceView,
    ServiceView,
    decide,
    upkeep,
)
from daemon.cluster.state import ClusterState, Expect, LocalInstances, SetExpect, Snapshot
from daemon.config.errors import ConfigError
from daemon.node.config import NodeConfig
from daemon.node.services import NodeServices, StatusUnavailable, UnknownService
from daemon.service.loader import NotAnInstance

if TYPE_CHECKING:
    from daemon.service.instance import Instance

log = logging.getLogger("ferry.monitor")

ROUND = 1.0  # seconds between rounds when nothing happens
MIN_GAP = 0.1
ACTION_WAIT = 3600.0
FREEZING = ("stopped", "frozen")  # expects that freeze every instance; the others thaw
BUSY_STATES = {"start": "starting", "stop": "stopping", "syncstop": "syncing"}


class MonitorContext(Protocol):
    """What the monitor uses of the daemon (the API's context is one): the node's services,
    and the action runner through which every automatic action goes."""

    @property
    def services(self) -> NodeServices: ...

    @property
    def runner(self) -> ActionRunner: ...


@dataclass(frozen=True)
class MonState:
    state: str = "idle"
    ready_since: float | None = None
    reason: str = ""


class Monitor:
    """Component: the orchestration loop (see the module docstring)."""

    name = "monitor"

    def __init__(self, state: ClusterState, config: NodeConfig, var_dir: Path) -> None:
        self.state = state
        self.config = config
        self.var_dir = var_dir
        self.started_at = time.time()
        self.mon: dict[str, MonState] = {}
        self._busy: set[str] = set()
        self._clear: set[str] = set()
        self._local: dict[str, InstanceMsg] = {}
        self._checksums: dict[str, tuple[tuple[int, int, int], str]] = {}  # by file stamp
        self._restarts: dict[tuple[str, str], int] = {}  # (service, rid) -> restarts done
        self._alerted: set[tuple[str, str]] = set()
        self._flags_applied: dict[str, tuple[str, float]] = {}  # service -> expect applied

    # ------------------------------------------------------------------ requests from the API

    def request_clear(self, service: str) -> None:
        """Reset the service's failed monitor state at the next round."""
        self._clear.add(service)

    def rejoined(self, snap: Snapshot, now: float) -> bool:
        if now - self.started_at >= self.config.cluster.rejoin_grace:
            return True
        return all(p.name in snap.heard for p in self.config.cluster.peers)

    def quorum(self, snap: Snapshot) -> bool:
        return not self.config.cluster.quorum or snap.has_quorum

    # ------------------------------------------------------------------ the loop

    async def run(self, ctx: MonitorContext) -> None:
        """Rounds until cancelled; actions run as tasks of the monitor's own group."""
        async with asyncio.TaskGroup() as group:
            while True:
                try:
                    await self.round(ctx, group)
                except (OSError, ConfigError) as exc:
                    log.error("monitor round failed: %s", exc)
                await self.state.changed(ROUND)
                await asyncio.sleep(MIN_GAP)

    async def _instance_msg(
        self, ctx: MonitorContext, name: str, inst: Instance, refresh: bool = False
    ) -> InstanceMsg:
        previous = self._local.get(name)
        entry = ctx.services.cached(name)
        # A monitored resource is watched every round; the others every status_interval
        # (each evaluation runs the resources' checks: a process per app)
        watched = any(r.monitor for r in inst.resources.values())
        every = self.config.cluster.hb_interval
        if not watched:
            every = max(every, self.config.node.status_interval)
        stale = refresh or entry is None or time.time() - entry.updated_at > every
        if stale and name not in self._busy:
            try:
                entry = await ctx.services.status(name, refresh=True)
            except (UnknownService, ConfigError, NotAnInstance, StatusUnavailable) as exc:
                log.debug("%s: no status: %s", name, exc)
        mon = self.mon.get(name, MonState())
        data = entry.state if entry is not None else {}
        resources = data.get("resources", {})
        boot_flag = state_dir(self.var_dir, name) / "boot_started"
        return InstanceMsg(
            avail=str(data.get("avail", previous.avail if previous else "undef")),
            overall=str(data.get("overall", previous.overall if previous else "undef")),
            monitor=mon.state,
            ready_since=mon.ready_since,
            frozen=is_frozen(self.var_dir, name),
            standby_down=any(r.get("status") == "stdby down" for r in resources.values()),
            checksum=self._checksum(ctx, name),
            boot_started=boot_flag.exists(),
            orchestrate=str(inst.value("DEFAULT", "orchestrate")),
            last_activation=last_activation(self.var_dir, name),
        )

    def _checksum(self, ctx: MonitorContext, name: str) -> str:
        """sha256 of the service's file, read again only when the file changed."""
        path = ctx.services.path(name)
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            known = self._checksums.get(name)
            if known is not None and known[0] == stamp:
                return known[1]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return hashlib.sha256(b"").hexdigest()
        self._checksums[name] = (stamp, digest)
        return digest

    async def round(self, ctx: MonitorContext, group: asyncio.TaskGroup) -> None:
        """One pass over the local services."""
        instances: dict[str, Instance] = {}
        for name in ctx.services.names():
            try:
                instances[name] = ctx.services.instance(name)
            except (UnknownService, ConfigError, NotAnInstance):
                continue
        for name in self._clear & set(instances):
            if self.mon.get(name, MonState()).state in ("start failed", "stop failed"):
                self.mon[name] = MonState()
        self._clear.clear()
        snap = self.state.snapshot
        self._follow_flags(snap, instances)
        # side by side: a status that runs checks holds up no other (NodeServices bounds them)
        names = list(instances)
        msgs = await asyncio.gather(*(self._instance_msg(ctx, n, instances[n]) for n in names))
        local = dict(zip(names, msgs, strict=True))
        self._local = local
        self.state.post(LocalInstances(local))
        now = time.time()
        for name, inst in instances.items():
            if name in self._busy:
                continue
            view = self.view(snap, name, inst, local[name])
            expect = snap.expect(name)
            self._boot_done(view, name)
            decision = decide(view, self.context(snap, now))
            self._apply(ctx, group, snap, name, inst, view, expect, decision, now)
            if decision.action == "none" and name not in self._busy:
                self._upkeep(ctx, group, name, inst, local[name])

    def _upkeep(
        self,
        ctx: MonitorContext,
        group: asyncio.TaskGroup,
        name: str,
        inst: Instance,
        local: InstanceMsg,
    ) -> None:
        """Restart resources found down (``restart``), then apply ``monitor_action``."""
        entry = ctx.services.cached(name)
        if entry is None or self.mon.get(name, MonState()).state != "idle":
            return
        views = []
        for rid, res in (entry.state.get("resources") or {}).items():
            resource = inst.resources.get(rid)
            if resource is None or resource.is_sync or res.get("disabled"):
                continue
            views.append(
                ResourceView(
                    rid,
                    str(res.get("status")),
                    monitor=resource.monitor,
                    restart=int(resource.values.get("restart") or 0),
                    standby=resource.standby,
                )
            )
            if res.get("status") != "down":
                self._restarts.pop((name, rid), None)
                self._alerted.discard((name, rid))
        attempts = {rid: n for (svc, rid), n in self._restarts.items() if svc == name}
        decision = upkeep(
            views,
            attempts,
            running=local.avail in ("up", "warn"),
            frozen=local.frozen,
            monitor_action=str(inst.value("DEFAULT", "monitor_action")),
        )
        if decision.action == "none":
            return
        if decision.action == "alert":
            key = (name, decision.reason)
            if key not in self._alerted:
                self._alerted.add(key)
                log.error(
                    "%s: %s; monitor_action %s: Ferry does not reboot or crash nodes, nothing done",
                    name,
                    decision.reason,
                    inst.value("DEFAULT", "monitor_action"),
                )
            return
        log.warning("%s: %s %s", name, decision.action, decision.reason)
        self._busy.add(name)
        group.create_task(self._resource_action(ctx, name, decision))

    async def _resource_action(self, ctx: MonitorContext, name: str, decision: Decision) -> None:
        try:
            if decision.action == "restart":
                rid = decision.reason
                key = (name, rid)
                self._restarts[key] = self._restarts.get(key, 0) + 1
                error = await self._run_action(ctx, name, "start", {"rids": [rid]})
                if error:
                    log.warning("%s: restart of %s failed: %s", name, rid, error)
                return
            if decision.action == "freezestop":
                set_flag(frozen_path(self.var_dir, name), True)
            self.mon[name] = MonState("stopping")
            self._announce(name)
            error = await self._run_action(ctx, name, "stop", {})
            if decision.action == "switch":
                # This node steps aside: failed here, so that the next candidate leads.
                reason = f"monitor_action switch: {decision.reason}"
                self.mon[name] = MonState("start failed", None, reason)
            else:
                self.mon[name] = MonState("stop failed", None, error) if error else MonState()
        finally:
            self._busy.discard(name)
            await self._report(ctx, name, None)

    def _follow_flags(self, snap: Snapshot, instances: dict[str, Instance]) -> None:
        """Expects that change persistent flags: stopped and frozen freeze the instance,
        thawed, started and placed... thaw it.

        Applied once per expect, whether this node sees it active or already reached: a
        node that only hears of a 'stopped' after the others reached it must freeze too,
        or it would start the service the operator just stopped. But an expect already
        decided does not thaw an instance frozen here after it was set (``freezestop``,
        a configuration installed frozen, before a daemon restart): that freeze is newer.
        """
        for name in instances:
            expect = snap.expect(name)
            if expect is None:
                continue
            identity = (expect.value, expect.stamp)
            if self._flags_applied.get(name) == identity:
                continue
            self._flags_applied[name] = identity
            if expect.value in FREEZING:
                if set_flag(frozen_path(self.var_dir, name), True):
                    log.info("%s: frozen (expect %s)", name, expect.value)
                continue
            flag = frozen_path(self.var_dir, name)
            if not expect.active and mtime(flag) > expect.stamp:
                log.info("%s: stays frozen: frozen here after the expect %s", name, expect.value)
            elif set_flag(flag, False):
                log.info("%s: thawed (expect %s)", name, expect.value)

    def _boot_done(self, view: ServiceView, name: str) -> None:
        if view.orchestrate != "start" or view.boot_started:
            return
        if any(i.running for i in view.instances.values()):
            set_flag(state_dir(self.var_dir, name) / "boot_started", True)

    def context(self, snap: Snapshot, now: float) -> Context:
        cluster = self.config.cluster
        return Context(
            local=self.state.local,
            now=now,
            ready_period=cluster.ready_period,
            facts=snap.facts(),
            rejoined=self.rejoined(snap, now),
            quorum=self.quorum(snap),
            split_action=cluster.split_action if cluster.quorum else "freeze",
        )

    def view(self, snap: Snapshot, name: str, inst: Instance, local: InstanceMsg) -> ServiceView:
        members = inst.config.members
        peers = snap.instances(name)
        peers[self.state.local] = local
        views = {
            node: InstanceView(
                node,
                avail=msg.avail,
                state=msg.monitor,
                frozen=msg.frozen,
                standby_down=msg.standby_down,
                ready_since=msg.ready_since,
            )
            for node, msg in peers.items()
            if node in members.all_nodes
        }
        expect = snap.expect(name)
        return ServiceView(
            name=name,
            nodes=members.nodes,
            drpnodes=members.drpnodes,
            topology=str(inst.value("DEFAULT", "topology")),
            orchestrate=str(inst.value("DEFAULT", "orchestrate")),
            placement=str(inst.value("DEFAULT", "placement")),
            flex_target=int(inst.value("DEFAULT", "flex_target") or 1),
            expect=expect.value if expect is not None and expect.active else "",
            instances=views,
            boot_started=any(m.boot_started for m in peers.values()),
            has_sync=bool(inst.sync_rids),
        )

    # ------------------------------------------------------------------ carrying decisions out

    def _finish_expect(self, name: str, expect: Expect, outcome: str, reason: str) -> None:
        self.state.post(SetExpect(name, replace(expect, outcome=outcome, reason=reason)))

    def _apply(
        self,
        ctx: MonitorContext,
        group: asyncio.TaskGroup,
        snap: Snapshot,
        name: str,
        inst: Instance,
        view: ServiceView,
        expect: Expect | None,
        decision: Decision,
        now: float,
    ) -> None:
        local = self.state.local
        mon = self.mon.get(name, MonState())
        if expect is not None and expect.active:
            target = expect.value.removeprefix("placed@") if "@" in expect.value else ""
            if target and target not in snap.alive() and target != local:
                if expect.origin == local:
                    self._finish_expect(name, expect, "failed", f"{target} is not alive")
                return
            if target == local and mon.state == "start failed":
                self._finish_expect(name, expect, "failed", f"start failed on {local}")
                return
        action = decision.action
        if action == "reached" and expect is not None and expect.active:
            self._finish_expect(name, expect, "reached", decision.reason)
        elif action == "ready":
            log.info("%s: ready (%s)", name, decision.reason)
            self.mon[name] = MonState("ready", now, decision.reason)
        elif action == "unready":
            log.info("%s: back to idle (%s)", name, decision.reason)
            self.mon[name] = MonState()
        elif action in ("start", "stop", "syncstop", "startstandby"):
            if action == "start" and view.topology == "failover":
                elsewhere = [
                    n
                    for n, i in view.instances.items()
                    if n != local and (i.running or i.state == "starting")
                ]
                if elsewhere:  # the guard, whatever decided: never two failover instances
                    log.warning("%s: not starting: running on %s", name, ", ".join(elsewhere))
                    return
            if action == "start":
                unknown = sorted(snap.unheard() & {*view.nodes, *view.drpnodes})
                if unknown:  # what runs there is unknown to us: it may run this service
                    log.info("%s: not starting yet: the state of %s is not known here", name,
                             ", ".join(unknown))  # fmt: skip
                    return
            log.info("%s: %s (%s)", name, action, decision.reason)
            self._busy.add(name)
            if action in BUSY_STATES:
                self.mon[name] = MonState(BUSY_STATES[action])
                self._announce(name)
            group.create_task(
                self._carry_out(ctx, name, inst, view, expect, action, decision.targets)
            )

    async def _run_action(
        self, ctx: MonitorContext, name: str, action: str, params: dict[str, Any]
    ) -> str | None:
        """Submit through the runner and wait; None on success, else the error."""
        try:
            record = ctx.runner.submit(name, action, {"origin": "monitor", **params}, "monitor")
        except RunnerClosed as exc:
            return str(exc)
        ended = await ctx.runner.wait(record.id, ACTION_WAIT)
        if ended is None or ended.state is not ActionState.SUCCEEDED:
            return (ended.error if ended else None) or "did not end"
        return None

    async def _carry_out(
        self,
        ctx: MonitorContext,
        name: str,
        inst: Instance,
        view: ServiceView,
        expect: Expect | None,
        action: str,
        targets: tuple[str, ...] = (),
    ) -> None:
        try:
            if action == "syncstop":
                assert expect is not None
                error = await self._final_sync(ctx, name, inst, targets)
                if error:
                    self.mon[name] = MonState()
                    self._finish_expect(name, expect, "failed", error)
                    return
                action = "stop"
            if action in ("start", "stop"):
                self.mon[name] = MonState("starting" if action == "start" else "stopping")
            before = data_ages(inst, time.time()) if action == "start" else {}
            error = await self._run_action(ctx, name, action, {})
            if error is None:
                self.mon[name] = MonState()
                if action == "start":
                    set_flag(state_dir(self.var_dir, name) / "boot_started", True)
                    if before:
                        self._activation(inst, view, expect, before)
            elif action in ("start", "stop"):
                log.warning("%s: %s failed: %s", name, action, error)
                self.mon[name] = MonState(f"{action} failed", None, error)
            else:
                log.warning("%s: %s failed: %s", name, action, error)
        finally:
            self._busy.discard(name)
            await self._report(ctx, name, inst)

    async def _final_sync(
        self, ctx: MonitorContext, name: str, inst: Instance, targets: tuple[str, ...]
    ) -> str | None:
        """A switch's final sync, so that nothing written here is lost: everything while the
        service runs (the bulk, images included); then its writers (containers, apps) stop
        and the data resources are sent once more, the filesystems still mounted. A failure
        restarts the writers: the service stays here. The error, or None."""
        where = ", ".join(targets)
        self.mon[name] = MonState("syncing")
        error = await self._run_action(ctx, name, "sync", {"mode": "all", "nodes": list(targets)})
        if error:
            return f"final sync to {where} failed: {error}"
        resources = [r for r in inst.resources.values() if not r.disabled]
        writers = [r.rid for r in resources if r.group in ("container", "app")]
        data = [r.rid for r in resources if getattr(r, "moves_live_data", False)]
        if not writers or not data:
            return None
        self.mon[name] = MonState("stopping")
        self._announce(name)  # peers see it busy, not down, while its writers are stopped
        error = await self._run_action(ctx, name, "stop", {"rids": writers})
        if error is None:
            self.mon[name] = MonState("syncing")
            self._announce(name)
            params = {"mode": "all", "nodes": list(targets), "rids": data, "final": True}
            error = await self._run_action(ctx, name, "sync", params)
            if error is None:
                return None
        restarted = await self._run_action(ctx, name, "start", {})
        here = "restarted here" if restarted is None else f"restart here failed: {restarted}"
        return f"final sync to {where}, its writers stopped, failed: {error} ({here})"

    def _announce(self, name: str) -> None:
        """This instance's new monitor state to the cluster now, not at the next round: a
        peer deciding on the report from before (ready, idle) could start it as well."""
        msg = self._local.get(name)
        if msg is not None:
            mon = self.mon.get(name, MonState())
            update = {"monitor": mon.state, "ready_since": mon.ready_since}
            self._local[name] = msg.model_copy(update=update)
        self.state.post(LocalInstances(dict(self._local)))

    async def _report(self, ctx: MonitorContext, name: str, inst: Instance | None) -> None:
        """After an action: the instance's fresh status and monitor state, now. (The report
        built before the action says 'down': sent with an expect, it would let the target
        of a switch start while this instance runs.)"""
        try:
            inst = inst or ctx.services.instance(name)
            self._local[name] = await self._instance_msg(ctx, name, inst, refresh=True)
        except (UnknownService, ConfigError, NotAnInstance, OSError) as exc:
            log.debug("%s: no fresh report after the action: %s", name, exc)
        self.state.post(LocalInstances(dict(self._local)))

    def _activation(
        self,
        inst: Instance,
        view: ServiceView,
        expect: Expect | None,
        ages: dict[str, float | None],
    ) -> None:
        known = [a for a in ages.values() if a is not None]
        entry = {
            "event": "activation",
            "time": time.time(),
            "node": self.state.local,
            "expect": expect.value if expect is not None else "",
            "by": expect.origin if expect is not None else "monitor",
            "data_age": ages,
            "rpo_seconds": max(known) if known else None,
            "peers_alive": sorted(n for n in view.instances if n != self.state.local),
        }
        log.warning(
            "%s: activated on %s from replicated data; RPO %s",
            inst.name,
            self.state.local,
            f"{entry['rpo_seconds']:.1f}s" if known else "unknown",
        )
        record_activation(inst, entry)
