"""The drill routes: the pre-flight of a drill, the drills' reports, and the peer route
through which a drill asked on one node runs on another.

Drills themselves run as actions (``drill``, ``drill-stop`` on
``POST /api/services/{svc}/actions``): see daemon/drill/runner.py. With ``node`` naming
another node, the pre-flight and the action are asked of that node's ferryd
(``POST /api/cluster/services/{svc}/drill``, node certificate only), which runs the drill
as an action of its own and answers when it ended.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from daemon.api.auth import Role
from daemon.api.http import ApiError, Call, PathParam, QueryParam, Route
from daemon.api.schemas import NODE_NAME_PATTERN, _Request, _Response
from daemon.cluster.peer_client import PeerDaemonClient
from daemon.config.errors import ConfigError, Severity
from daemon.config.store import SERVICE_NAME_PATTERN, service_name_problem
from daemon.drill.runner import data_age
from daemon.node.services import StatusUnavailable, UnknownService
from daemon.restore import catalog
from daemon.restore.points import AT_PATTERN, PointError
from daemon.service.loader import NotAnInstance
from daemon.sync.transport import TransportError

SVC = PathParam("svc", SERVICE_NAME_PATTERN, "Service name.")
PREFLIGHT_TIMEOUT = 60.0
TEARDOWN_MARGIN = 600.0  # beyond drill_timeout: the teardown, the queue


class DrillPreflight(_Response):
    """What a drill of the service on this node would do, or why it cannot run."""

    service: str
    node: str
    refusal: str | None = Field(description="Why a drill cannot run here now (None: it can).")
    data_age: dict[str, float | None] = Field(
        description="Per sync resource, the age of the data here (the RPO a takeover would have)."
    )
    will_start: list[str]
    check: str = Field(description="The check the drill runs (drill_check), '' for none.")
    timeout: float
    active: dict[str, Any] | None = Field(default=None, description="The drill running or kept.")
    last: dict[str, Any] | None = Field(default=None, description="The newest drill's report.")
    restore_point: str | None = Field(
        default=None, description="With at: the restore point the drill would rehearse."
    )
    restore_choice: str | None = Field(
        default=None, description="With at: the point's age and the newer data left aside."
    )


class DrillList(_Response):
    service: str
    node: str
    active: dict[str, Any] | None = None
    drills: list[dict[str, Any]] = Field(description="Reports of the recent drills, newest first.")


def _name(call: Call) -> str:
    name = call.request.match_info.get("svc", "")
    problem = service_name_problem(name)
    if problem:
        raise ApiError(400, f"svc: {problem}", field="svc")
    return name


def _instance(call: Call) -> Any:
    name = _name(call)
    if not call.ctx.services.path(name).exists():
        raise ApiError(404, f"no service {name!r} on this node", field="svc")
    try:
        return call.ctx.services.instance(name)
    except UnknownService:
        raise ApiError(404, f"no service {name!r} on this node", field="svc") from None
    except ConfigError as exc:
        errors = [i for i in exc.issues if i.severity is Severity.ERROR]
        raise ApiError(409, f"{name}: the configuration has errors", issues=errors) from None
    except NotAnInstance as exc:
        raise ApiError(409, str(exc)) from None


async def drill_avail(call: Call, name: str) -> str:
    """The instance's avail here, fresh enough to decide whether a drill may run."""
    try:
        entry = await call.ctx.services.status(name)
    except StatusUnavailable as exc:
        raise ApiError(503, str(exc)) from None
    return str(entry.state["avail"])


async def drill_preflight(call: Call, at: str | None = None) -> DrillPreflight:
    node = call.query_str("node", NODE_NAME_PATTERN)
    if at is None:
        at = call.query_str("at", AT_PATTERN)
    if node and node != call.ctx.nodename:
        body = {"op": "preflight", **({"at": at} if at else {})}
        answer = await ask_peer(call, node, _name(call), body, PREFLIGHT_TIMEOUT)
        return DrillPreflight.model_validate(answer.get("preflight") or {})
    drills = call.ctx.drills
    inst = _instance(call)
    avail = await drill_avail(call, inst.name)
    active = drills.active(inst.name) if drills is not None else None
    if drills is None:
        refusal: str | None = "drills run with the cluster layer (ferryd's default)"
    else:
        refusal = drills.refusal(inst, avail) or None
    chosen: dict[str, Any] | None = None
    if at and refusal is None:
        try:
            chosen = catalog.listing(inst, at)
        except PointError as exc:
            refusal = str(exc)
    return DrillPreflight(
        restore_point=chosen["chosen"]["name"] if chosen else None,
        restore_choice=chosen["choice"] if chosen else None,
        service=inst.name,
        node=inst.node,
        refusal=refusal,
        data_age=data_age(inst, time.time()),
        will_start=[r.rid for r in inst.ordered() if not r.disabled],
        check=str(inst.value("DEFAULT", "drill_check") or ""),
        timeout=float(inst.value("DEFAULT", "drill_timeout")),
        active=active.report() if active is not None else None,
        last=drills.last(inst.name) if drills is not None else None,
    )


async def list_drills(call: Call) -> DrillList:
    drills = call.ctx.drills
    inst = _instance(call)
    if drills is None:
        return DrillList(service=inst.name, node=inst.node, drills=[])
    active = drills.active(inst.name)
    return DrillList(
        service=inst.name,
        node=inst.node,
        active=active.report() if active is not None else None,
        drills=drills.store.history(inst.name),
    )


class DrillPeerCall(_Request):
    """A peer's drill request to this node, the node that rehearses."""

    op: Literal["preflight", "run", "stop"]
    check: str | None = Field(default=None, max_length=4096)
    at: str | None = Field(default=None, min_length=1, max_length=64)
    keep: bool = False
    requested_by: str = Field(default="", max_length=256)


class DrillPeerAnswer(_Response):
    preflight: dict[str, Any] | None = None
    action_id: str | None = None
    state: str | None = None
    error: str | None = None
    drill: dict[str, Any] | None = None


async def ask_peer(call: Call, node: str, name: str, body: dict[str, Any], timeout: float) -> Any:
    """A drill call to another node's ferryd; ApiError when it cannot be had."""
    if node not in call.ctx.cluster_nodes:
        raise ApiError(422, f"node: {node} is not a node of this cluster", field="node")
    peers = PeerDaemonClient(call.ctx.node, call.ctx.var_dir)
    try:
        answer = await peers.call(node, f"/api/cluster/services/{name}/drill", body, timeout)
    except TransportError as exc:
        detail = exc.detail or str(exc)
        raise ApiError(409, f"{node}: {detail}") from None
    finally:
        await peers.close()
    if answer is None:
        raise ApiError(503, f"{node}'s ferryd does not answer: a drill there needs it")
    return answer


async def peer_drill(call: Call) -> DrillPeerAnswer:
    """The node that rehearses, asked by a peer: the pre-flight, or the drill run here as an
    action of this node (answered once it ended)."""
    principal = call.principal
    if principal is None or principal.via != "node-cert":
        raise ApiError(403, "peer routes accept only a cluster node certificate")
    request = await call.body(DrillPeerCall)
    if request.op == "preflight":
        return DrillPeerAnswer(preflight=(await drill_preflight(call, request.at)).model_dump())
    inst = _instance(call)
    drills = call.ctx.drills
    if drills is None:
        raise ApiError(422, "drills run with the cluster layer (ferryd's default)")
    params: dict[str, Any] = {}
    if request.op == "run":
        why = drills.refusal(inst, await drill_avail(call, inst.name))
        if why:
            raise ApiError(409, why)
        params = {"keep": request.keep} if request.keep else {}
        if request.check is not None:
            params["check"] = request.check
        if request.at is not None:
            params["at"] = request.at
    elif drills.active(inst.name) is None:
        raise ApiError(409, f"no drill of {inst.name} runs on {inst.node}")
    action = "drill" if request.op == "run" else "drill-stop"
    by = f"{principal.name} for {request.requested_by or '?'}"
    record = call.ctx.runner.submit(inst.name, action, params, by)
    limit = float(inst.value("DEFAULT", "drill_timeout")) + TEARDOWN_MARGIN
    ended = await call.ctx.runner.wait(record.id, limit) or record
    result = ended.result or {}
    return DrillPeerAnswer(
        action_id=ended.id,
        state=str(ended.state),
        error=ended.error,
        drill=result.get("drill") or drills.last(inst.name),
    )


DRILL_ROUTES = (
    Route(
        "GET",
        "/api/services/{svc}/drill",
        drill_preflight,
        "Drill pre-flight: what a drill here would rehearse, or why it cannot run now",
        Role.GUEST,
        DrillPreflight,
        path_params=(SVC,),
        query=(
            QueryParam(
                "node",
                "string",
                "The node that would rehearse (default: this node).",
                pattern=NODE_NAME_PATTERN,
            ),
            QueryParam(
                "at",
                "string",
                "Rehearse from this restore point (its name, or an ISO 8601 time).",
                pattern=AT_PATTERN,
            ),
        ),
        errors=(400, 404, 409, 422, 503),
        tag="drills",
    ),
    Route(
        "GET",
        "/api/services/{svc}/drills",
        list_drills,
        "The drills of the service on this node: the one running or kept, the recent reports",
        Role.GUEST,
        DrillList,
        path_params=(SVC,),
        errors=(400, 404, 409),
        tag="drills",
    ),
    Route(
        "POST",
        "/api/cluster/services/{svc}/drill",
        peer_drill,
        "A peer's drill request to the node that rehearses: pre-flight, run, stop (node "
        "certificate only; run and stop answer once the drill action ended)",
        Role.ROOT,
        DrillPeerAnswer,
        body=DrillPeerCall,
        path_params=(SVC,),
        errors=(400, 403, 404, 409, 413, 422, 503),
        tag="cluster",
    ),
)
