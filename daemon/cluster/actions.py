"""The daemon's action executor once the cluster runs: orchestrated actions become expects.

* ``start`` / ``stop`` of a service with ``orchestrate = ha|start`` set the global
  expect ``started`` / ``stopped`` (stop: the local instance is frozen first; every
  node freezes its own instance when it follows ``stopped``, and thaws it when it
  follows ``started`` or ``placed...``). Other services start and stop here, now.
* ``switch`` (``to``) sets ``placed@<to>``, ``takeover`` ``placed@<this node>``,
  ``giveback`` ``placed`` (back to the placement leader).
* The action ends when the expect is reached (succeeded) or failed (failed, with
  the reason), so that ``GET /api/actions/{id}?wait=S`` waits for the outcome.
* ``freeze`` / ``thaw`` (any service) set the global expect ``frozen`` / ``thawed``:
  every node of the service sets (clears) its own persistent instance flag; the
  action ends when every live instance reports it. The local flag changes at once.
  ``clear``: reset failed monitor states of this instance. ``sync``: the sync
  resources, run here.
* Actions the monitor submits (params ``origin = monitor``) act directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from daemon.actions import ActionFailure, ActionRecord
from daemon.cluster.flags import frozen_path, set_flag
from daemon.cluster.monitor import FREEZING, Monitor
from daemon.cluster.peer_client import PeerDaemonClient
from daemon.cluster.state import ClusterState, Expect, SetExpect
from daemon.drill.runner import DrillRefused, Drills
from daemon.node.services import NodeServices
from daemon.restore import catalog, pending
from daemon.restore.points import PointError
from daemon.service.instance import Instance
from daemon.sync.base import SyncDriver, TargetReport
from daemon.sync.docker.driver import Driver as DockerSync
from daemon.sync.plan import ACTION_POOLS
from daemon.sync.run import run_sync as shared_run_sync
from daemon.sync.transport import PeerDaemons, TransportError

log = logging.getLogger("ferry.action")

EXPECT_WAIT = 900.0  # an expect not reached within this is reported as failed
EXPECT_ACTIONS = ("switch", "takeover", "giveback", "freeze", "thaw")


async def run_sync(
    inst: Instance,
    mode: str,
    rids: list[str] | None,
    nodes: list[str] | None = None,
    pools: list[str] | None = None,
    daemons: PeerDaemons | None = None,
    final: bool = False,
) -> list[TargetReport]:
    """Run a sync action on this node's sync resources (as ``ferry SVC sync MODE`` does;
    ``daemons``: the peers' ferryd, for the small calls of a sync)."""
    if mode not in ACTION_POOLS:
        raise ActionFailure(f"sync mode {mode!r}: one of {', '.join(ACTION_POOLS)}")
    found = [r for r in inst.resources.values() if isinstance(r, SyncDriver) and not r.disabled]
    if rids:
        found = [r for r in found if r.rid in rids]
    if pools:  # only the targets in these pools
        members = inst.config.members
        pooled = [n for p in pools for n in getattr(members, p, ())]
        nodes = [t for t in (nodes or pooled) if t in pooled]
        if not nodes:
            return []
    return await shared_run_sync(found, mode, nodes, daemons, final)


class ClusterActions:
    """Executor of the action runner (see the module docstring)."""

    def __init__(
        self,
        services: NodeServices,
        state: ClusterState,
        monitor: Monitor,
        drills: Drills | None = None,
    ) -> None:
        self.services = services
        self.state = state
        self.monitor = monitor
        self.drills = drills

    def _instance(self, name: str) -> Instance:
        return self.services.instance_for_action(name)

    def _daemons(self) -> PeerDaemonClient:
        """The peers' ferryd for a sync's small calls (closed with the sync's transport)."""
        return PeerDaemonClient(self.monitor.config, self.monitor.var_dir)

    async def act(self, record: ActionRecord) -> dict[str, Any]:
        """Run one action record."""
        name, action, params = record.service, record.action, record.params
        if self.drills is not None and (
            action in ("start", "takeover")
            or (action == "switch" and params.get("to") == self.state.local)
        ):
            # A real start here never waits on a rehearsal: its drill ends first.
            await self.drills.abort(name, f"a real {action} of {name} on this node")
        if action in ("drill", "drill-stop"):
            return await self._drill(record)
        if params.get("origin") == "monitor":
            if action == "sync":
                inst = self._instance(name)
                reports = await run_sync(inst, str(params.get("mode", "all")),
                                         params.get("rids") or None,
                                         list(params.get("nodes") or []) or None,
                                         daemons=self._daemons(),
                                         final=bool(params.get("final")))  # fmt: skip
                # The final sync of a switch: data that did not reach a target stops the
                # switch (the target would start from older data); images skipped (no
                # engine for the service there: its filesystem is not mounted) do not.
                images = {rid for rid, r in inst.resources.items() if isinstance(r, DockerSync)}
                failed = [
                    r for r in reports
                    if r.mode == "failed" or (r.mode == "skipped" and r.rid not in images)
                ]  # fmt: skip
                if failed:
                    raise ActionFailure(
                        "; ".join(f"{r.rid} -> {r.target}: {r.reason}" for r in failed)
                    )
                return _sync_result(reports)
            return await self.services.act(record)
        inst = self._instance(name)
        orchestrated = str(inst.value("DEFAULT", "orchestrate")) in ("ha", "start")
        if action == "clear":
            self.monitor.request_clear(name)
            return {"cleared": True}
        if action == "sync":
            reports = await run_sync(
                inst,
                str(params.get("mode") or "all"),
                params.get("rids"),
                None,
                params.get("target"),
                self._daemons(),
            )
            result = _sync_result(reports)
            failed = [r for r in reports if not r.ok]
            if failed:
                message = "; ".join(f"{r.rid} -> {r.target}: {r.reason}" for r in failed)
                raise ActionFailure(message, result)
            return result
        if action == "takeover" and params.get("at"):
            # The point waits for the start here, after the others stopped (pending.py).
            try:
                chosen = catalog.request_takeover(inst, str(params["at"]), record.requested_by)
            except PointError as exc:
                raise ActionFailure(str(exc)) from None
            log.info("%s: takeover from restore point %s", name, chosen["restore_point"])
            try:
                return {**chosen, **await self._expect(record, inst)}
            except ActionFailure:
                if pending.cancel(inst.var_dir, name):
                    log.warning("%s: takeover failed: restore point %s dropped, not applied",
                                name, chosen["restore_point"])  # fmt: skip
                raise
        if action in EXPECT_ACTIONS or (action in ("start", "stop") and orchestrated):
            return await self._expect(record, inst)
        return await self.services.act(record)

    async def _drill(self, record: ActionRecord) -> dict[str, Any]:
        if self.drills is None:
            raise ActionFailure("drills are not available on this node")
        inst = self._instance(record.service)
        node = str(record.params.get("node") or self.state.local)
        if node != self.state.local:
            return await self._drill_elsewhere(record, inst, node)
        try:
            if record.action == "drill-stop":
                return {"drill": await self.drills.stop(inst.name)}
            entry = await self.services.status(inst.name, refresh=True)
            report = await self.drills.run(
                inst,
                str(entry.state["avail"]),
                check=record.params.get("check"),
                keep=bool(record.params.get("keep")),
                requested_by=record.requested_by,
                progress=lambda line: log.info("%s: drill: %s", inst.name, line),
                at=record.params.get("at"),
            )
        except DrillRefused as exc:
            raise ActionFailure(str(exc)) from None
        if report["result"] != "pass":
            raise ActionFailure(f"drill {report['result']}: {report['error']}")
        return {"drill": report}

    async def _drill_elsewhere(
        self, record: ActionRecord, inst: Instance, node: str
    ) -> dict[str, Any]:
        """The drill asked here for another node: that node's ferryd runs it as an action of
        its own and answers when it ended."""
        if node not in inst.config.members.all_nodes:
            raise ActionFailure(f"{node} is not a node of {inst.name}")
        body: dict[str, Any] = {
            "op": "run" if record.action == "drill" else "stop",
            "keep": bool(record.params.get("keep")),
            "requested_by": record.requested_by,
        }
        for name in ("check", "at"):
            if record.params.get(name) is not None:
                body[name] = record.params[name]
        log.info("%s: %s runs on %s (asked through its ferryd)", inst.name, record.action, node)
        limit = float(inst.value("DEFAULT", "drill_timeout")) + 600.0
        peers = self._daemons()
        try:
            answer = await peers.call(node, f"/api/cluster/services/{inst.name}/drill", body,
                                      limit)  # fmt: skip
        except TransportError as exc:
            raise ActionFailure(str(exc)) from None
        finally:
            await peers.close()
        if answer is None:
            raise ActionFailure(f"{node}'s ferryd does not answer: the drill runs there")
        report = answer.get("drill")
        if answer.get("state") != "succeeded":
            raise ActionFailure(f"on {node}: {answer.get('error') or answer.get('state')}")
        return {"drill": report}

    def _expect_value(self, record: ActionRecord, inst: Instance) -> str:
        members = inst.config.members
        local = self.state.local
        if record.action == "switch":
            to = str(record.params.get("to") or "")
            if to not in members.all_nodes:
                raise ActionFailure(f"switch: {to or '(no to)'} is not a node of {inst.name}")
            return f"placed@{to}"
        if record.action == "takeover":
            return f"placed@{local}"
        if record.action == "giveback":
            return "placed"
        if record.action in ("freeze", "thaw"):
            return "frozen" if record.action == "freeze" else "thawed"
        return "started" if record.action == "start" else "stopped"

    async def _expect(self, record: ActionRecord, inst: Instance) -> dict[str, Any]:
        name = record.service
        value = self._expect_value(record, inst)
        # The local flag at once (a stop: no restart meanwhile); the others follow the expect.
        set_flag(frozen_path(self.services.var_dir, name), value in FREEZING)
        if value not in ("frozen", "thawed", "stopped"):
            self.monitor.request_clear(name)
        expect = Expect(value, time.time(), self.state.local, action_id=record.id)
        self.state.post(SetExpect(name, expect))
        try:
            async with asyncio.timeout(EXPECT_WAIT):
                while True:
                    snap = await self.state.changed(1.0)
                    current = snap.expect(name)
                    if current is None:
                        continue
                    if current.stamp != expect.stamp or current.origin != expect.origin:
                        if current.stamp > expect.stamp:
                            raise ActionFailure(
                                f"superseded by expect {current.value} from {current.origin}"
                            )
                        continue
                    if current.outcome == "reached":
                        result: dict[str, Any] = {
                            "expect": value,
                            "outcome": "reached",
                            "reason": current.reason,
                        }
                        if value in ("frozen", "thawed"):
                            result["frozen"] = value == "frozen"
                        return result
                    if current.outcome == "failed":
                        raise ActionFailure(f"expect {value} failed: {current.reason}")
        except TimeoutError:
            failed = Expect(value, expect.stamp, expect.origin, "failed",
                            f"not reached within {EXPECT_WAIT:g}s", record.id)  # fmt: skip
            self.state.post(SetExpect(name, failed))
            raise ActionFailure(f"expect {value} not reached within {EXPECT_WAIT:g}s") from None


def _sync_result(reports: list[TargetReport]) -> dict[str, Any]:
    return {"reports": [r.as_dict() for r in reports]}
