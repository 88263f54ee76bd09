"""The API's operations: one handler each, and the route table that declares them."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

from aiohttp import web

from daemon.actions import ACTION_ID_RE, ActionRecord, RunnerClosed
from daemon.api.auth import Role
from daemon.api.checker import CheckerBusy, CheckTimeout
from daemon.api.context import ApiContext
from daemon.api.drill_routes import DRILL_ROUTES, ask_peer, drill_avail
from daemon.api.http import ApiError, Call, PathParam, QueryParam, Route, json_response
from daemon.api.restore_routes import RESTORE_ROUTES
from daemon.api.schemas import (
    ACTION_ID_PATTERN,
    NODE_NAME_PATTERN,
    ActionAccepted,
    ActionCounts,
    ActionList,
    ActionLog,
    ActionOut,
    ActionRequest,
    ActionSummary,
    ClusterNode,
    ClusterServiceView,
    ClusterStatus,
    ConfigText,
    ConfigView,
    DrFacts,
    FreezeState,
    Health,
    HeartbeatAck,
    InstanceStatus,
    Issue,
    NodeStatus,
    PeerConfig,
    ServiceList,
    ServiceSummary,
    StatusName,
    SyncPeerAnswer,
    SyncPeerCall,
    ValidationReport,
)
from daemon.api.sync_routes import SYNC_ROUTES
from daemon.cluster import distribute
from daemon.cluster.messages import HeartbeatMsg, InstanceMsg
from daemon.cluster.monitor import NODE_FROZEN, data_ages, is_frozen, last_activation, set_flag
from daemon.cluster.state import PeerHeartbeat
from daemon.config.errors import ConfigError, ConfigIssue, Severity
from daemon.config.store import SERVICE_NAME_PATTERN, service_name_problem, write_atomically
from daemon.events import SubscriptionEnded
from daemon.node.services import StatusUnavailable, UnknownService
from daemon.resources.base import ResourceError
from daemon.resources.status import Status, cluster_avail
from daemon.restore import catalog
from daemon.restore.points import PointError
from daemon.service.check import CheckResult, sections_problem
from daemon.service.config import EvalContext
from daemon.service.loader import NotAnInstance
from daemon.sync.base import SyncDriver

log = logging.getLogger("ferry.api")

SVC = PathParam("svc", SERVICE_NAME_PATTERN, "Service name.")
ACTION_ID = PathParam("action_id", ACTION_ID_PATTERN, "Action id, as returned on submission.")
# Actions the schema knows that arrive with later work.
LATER = {
    "freeze": "the cluster issue",
    "thaw": "the cluster issue",
    "clear": "the cluster issue",
    "switch": "the cluster issue",
    "takeover": "the cluster issue",
    "giveback": "the cluster issue",
    "sync": "the cluster issue",
    "drill": "the cluster layer",
    "drill-stop": "the cluster layer",
}
MAX_WAIT = 300.0
MAX_EVENT_ID = 2**53


def _service(call: Call, must_exist: bool = True) -> str:
    name = call.request.match_info.get("svc", "")
    problem = service_name_problem(name)
    if problem:
        raise ApiError(400, f"svc: {problem}", field="svc")
    if must_exist and not call.ctx.services.path(name).exists():
        raise ApiError(404, f"no service {name!r} on this node", field="svc")
    return name


def _issues(issues: list[ConfigIssue]) -> list[Issue]:
    return [Issue.model_validate(i.as_dict()) for i in issues]


def _instance_error(name: str, exc: Exception) -> ApiError:
    if isinstance(exc, ConfigError):
        errors = [i for i in exc.issues if i.severity is Severity.ERROR]
        return ApiError(409, f"{name}: the configuration has errors", issues=errors)
    if isinstance(exc, UnknownService):
        return ApiError(404, f"no service {name!r} on this node", field="svc")
    if isinstance(exc, StatusUnavailable):
        return ApiError(503, str(exc))
    return ApiError(409, str(exc))


# ---------------------------------------------------------------------------- node


async def health(call: Call) -> Health:
    ctx = call.ctx
    return Health(
        status="stopping" if ctx.stopping else "ok", node=ctx.nodename, version=ctx.version
    )


async def openapi_document(call: Call) -> web.Response:
    return web.json_response(call.ctx.openapi)


async def node_status(call: Call) -> NodeStatus:
    ctx = call.ctx
    return NodeStatus(
        name=ctx.nodename,
        cluster=ctx.node.cluster.name,
        version=ctx.version,
        pid=ctx.pid,
        started_at=ctx.started_at,
        uptime=max(0.0, time.time() - ctx.started_at),
        listen=ctx.listen,
        tls=ctx.tls,
        actions=ActionCounts(
            running=ctx.runner.running,
            queued=ctx.runner.queued,
            max_concurrent=ctx.runner.max_concurrent,
        ),
        services=len(ctx.services.names()),
        event_subscribers=ctx.events.subscribers,
        config_dir=str(ctx.config_dir),
    )


def _cluster_avail(
    ctx: ApiContext, name: str, instances: dict[str, InstanceMsg]
) -> tuple[Status, str]:
    """The service across the cluster; undef when this node has no usable config of it."""
    try:
        inst = ctx.services.instance(name)
    except (UnknownService, ConfigError, NotAnInstance):
        return Status.UNDEF, "not installed on this node"
    members = inst.config.members
    avails = [i.avail for node, i in instances.items() if node in members.all_nodes]
    return cluster_avail(
        str(inst.value("DEFAULT", "topology")),
        avails,
        int(inst.value("DEFAULT", "flex_min") or 1),
        int(inst.value("DEFAULT", "flex_max") or 1),
    )


async def cluster_status(call: Call) -> ClusterStatus:
    ctx = call.ctx
    cluster = ctx.node.cluster
    state = ctx.cluster
    if state is None:
        nodes = [ClusterNode(name=ctx.nodename, local=True, state="up", address=None)]
        for peer in cluster.peers:
            peer_state = ctx.peer_state(peer.name)
            nodes.append(
                ClusterNode(
                    name=peer.name,
                    local=False,
                    state="up"
                    if peer_state == "up"
                    else "down"
                    if peer_state == "down"
                    else "unknown",
                    address=f"{peer.host}:{peer.port}",
                )
            )
        return ClusterStatus(
            name=cluster.name,
            node=ctx.nodename,
            nodes=nodes,
            hb_interval=cluster.hb_interval,
            hb_timeout=cluster.hb_timeout,
        )
    snap = state.snapshot
    addresses = {p.name: f"{p.host}:{p.port}" for p in cluster.peers}
    nodes = []
    for name, info in snap.nodes.items():
        local = name == ctx.nodename
        nodes.append(
            ClusterNode(
                name=name,
                local=local,
                state="up"
                if local or info.alive
                else "unknown"
                if info.last_seen is None
                else "down",
                address=addresses.get(name),
                frozen=info.frozen,
                load=info.load,
                free_mem=info.free_mem,
                score=info.score,
                last_seen=info.last_seen,
                gen=info.gen,
            )
        )
    services: dict[str, ClusterServiceView] = {}
    names = set(snap.expects)
    for info in snap.nodes.values():
        names |= set(info.instances) if info.alive else set()
    for name in sorted(names):
        expect = snap.expect(name)
        instances = snap.instances(name)
        # This node's own instance: its status as fresh as the `instance` event a client
        # reacts to (the monitor reports it to the cluster state up to a round later).
        mine, fresh = instances.get(ctx.nodename), ctx.services.cached(name)
        if mine is not None and fresh is not None:
            update = {"avail": fresh.state["avail"], "overall": fresh.state["overall"]}
            instances = {**instances, ctx.nodename: mine.model_copy(update=update)}
        avail, reason = _cluster_avail(ctx, name, instances)
        services[name] = ClusterServiceView(
            avail=cast(StatusName, avail.value),
            reason=reason,
            expect=expect.to_msg() if expect is not None else None,
            instances=instances,
        )
    monitor = ctx.monitor
    seen, total = snap.votes
    return ClusterStatus(
        name=cluster.name,
        node=ctx.nodename,
        nodes=nodes,
        hb_interval=cluster.hb_interval,
        hb_timeout=cluster.hb_timeout,
        quorum=not cluster.quorum or snap.has_quorum,
        votes=[seen, total],
        rejoined=monitor.rejoined(snap, time.time()) if monitor is not None else True,
        services=services,
    )


def _require_peer(call: Call, node: str | None = None) -> str:
    principal = call.principal
    if principal is None or principal.via != "node-cert":
        raise ApiError(403, "peer routes accept only a cluster node certificate")
    if node is not None and principal.name != node:
        raise ApiError(403, f"certificate of {principal.name} cannot speak for {node}")
    return principal.name


def _cluster_state(call: Call) -> Any:
    if call.ctx.cluster is None:
        raise ApiError(409, "the cluster layer does not run in this ferryd")
    return call.ctx.cluster


async def heartbeat(call: Call) -> HeartbeatAck:
    _require_peer(call)  # a token's caller is refused before its body is read
    state = _cluster_state(call)
    msg = await call.body(HeartbeatMsg)
    _require_peer(call, msg.node)
    if msg.cluster != call.ctx.node.cluster.name:
        raise ApiError(403, f"{msg.node} belongs to cluster {msg.cluster!r}", field="cluster")
    if msg.node not in {p.name for p in call.ctx.node.cluster.peers}:
        raise ApiError(403, f"{msg.node} is not a peer of this node", field="node")
    state.post(PeerHeartbeat(msg, time.time()))
    return HeartbeatAck(node=call.ctx.nodename, gen=msg.gen)


async def _node_freeze(call: Call, frozen: bool) -> FreezeState:
    ctx = call.ctx
    set_flag(ctx.var_dir / NODE_FROZEN, frozen)
    ctx.events.publish("node", {"node": ctx.nodename, "frozen": frozen, "by": call.caller})
    return FreezeState(node=ctx.nodename, frozen=frozen)


async def node_freeze(call: Call) -> FreezeState:
    return await _node_freeze(call, True)


async def node_thaw(call: Call) -> FreezeState:
    return await _node_freeze(call, False)


# ---------------------------------------------------------------------------- services


async def _summary(call: Call, name: str, refresh: bool) -> ServiceSummary | None:
    ctx = call.ctx
    try:
        entry = await ctx.services.status(name, refresh=refresh)
    except UnknownService:
        return None  # removed meanwhile
    except ConfigError as exc:
        errors = [i for i in exc.issues if i.severity is Severity.ERROR]
        first = errors[0].render() if errors else "configuration errors"
        return ServiceSummary(
            name=name, node=ctx.nodename, error=f"{len(errors)} configuration error(s): {first}"
        )
    except (NotAnInstance, StatusUnavailable) as exc:
        return ServiceSummary(name=name, node=ctx.nodename, error=str(exc))
    return ServiceSummary(
        name=name,
        node=ctx.nodename,
        avail=entry.state["avail"],
        overall=entry.state["overall"],
        updated_at=entry.updated_at,
    )


async def list_services(call: Call) -> ServiceList:
    refresh = call.query_bool("refresh")
    names = call.ctx.services.names()
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(_summary(call, name, refresh)) for name in names]
    return ServiceList(services=[s for t in tasks if (s := t.result()) is not None])


async def service_status(call: Call) -> InstanceStatus:
    name = _service(call)
    refresh = call.query_bool("refresh")
    try:
        entry = await call.ctx.services.status(name, refresh=refresh)
    except (UnknownService, ConfigError, NotAnInstance, StatusUnavailable) as exc:
        raise _instance_error(name, exc) from None
    extra: dict[str, Any] = {}
    ctx = call.ctx
    if ctx.cluster is not None:
        monitor = ctx.monitor.mon.get(name) if ctx.monitor is not None else None
        extra = {
            "frozen": is_frozen(ctx.var_dir, name),
            "monitor": monitor.state if monitor is not None else "idle",
            "last_activation": last_activation(ctx.var_dir, name),
        }
    if ctx.drills is not None:
        extra["last_drill"] = ctx.drills.last(name)
    return InstanceStatus.model_validate({**entry.state, "updated_at": entry.updated_at, **extra})


async def dr_facts(call: Call) -> DrFacts:
    """What a DR activation on ``to`` would do (SPEC 5.3), from the cluster state and stamps."""
    ctx = call.ctx
    name = _service(call)
    to = call.query_str("to", NODE_NAME_PATTERN) or ctx.nodename
    try:
        inst = ctx.services.instance(name)
    except (UnknownService, ConfigError, NotAnInstance) as exc:
        raise _instance_error(name, exc) from None
    members = inst.config.members
    if to not in members.all_nodes:
        raise ApiError(422, f"to: {to} is not a node of {name}", field="to")
    running: list[str] = []
    if ctx.cluster is not None:
        snap = ctx.cluster.snapshot
        running = sorted(n for n, i in snap.instances(name).items() if i.avail in ("up", "warn"))
    else:
        entry = ctx.services.cached(name)
        if entry is not None and entry.state["avail"] in ("up", "warn"):
            running = [ctx.nodename]
    now = time.time()
    ages: dict[str, dict[str, float | None]] = {}
    if to == ctx.nodename:
        for rid, age in data_ages(inst, now).items():
            ages[rid] = {to: age}
    else:
        from daemon.sync import stamps

        for rid in sorted(inst.sync_rids):
            stamp = stamps.read(stamps.sent_path(inst.state_dir, rid, to))
            ages[rid] = {to: None if stamp is None else max(0.0, now - stamp.started)}
    known = [a for per in ages.values() for a in per.values() if a is not None]
    will_start = [r.rid for r in inst.ordered() if not r.disabled]
    return DrFacts(
        service=name,
        to=to,
        running_on=running,
        running_node_alive=bool(running),
        data_age=ages,
        will_start=will_start,
        rpo_seconds=max(known) if known else None,
    )


def _context(call: Call, node: str | None = None) -> EvalContext:
    ctx = call.ctx
    return EvalContext(
        nodename=node or ctx.nodename, clustername=ctx.node.cluster.name, var_dir=str(ctx.var_dir)
    )


async def _check_text(
    call: Call, name: str, text: str, node: str | None = None, evaluate: bool = False
) -> CheckResult:
    """Parse, validate (and evaluate) text in a worker process: never on the event loop.

    A request's text past the section limit is refused (413) before it costs a worker
    anything; an installed file past it (get_config) is reported as an issue.
    """
    problem = None if evaluate else sections_problem(text)
    if problem:
        raise ApiError(413, problem, field="text")
    path = str(call.ctx.services.path(name))
    try:
        return await call.ctx.checker.check(text, path, name, _context(call, node), evaluate)
    except CheckerBusy as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "1"}) from None
    except CheckTimeout as exc:
        raise ApiError(422, str(exc), field="text") from None


def _refuse_invalid(name: str, result: CheckResult, message: str) -> None:
    if not result.valid:
        errors = [i for i in result.issues if i.severity is Severity.ERROR]
        raise ApiError(422, f"{name}: {message}", field="text", issues=errors)


async def get_config(call: Call) -> ConfigView:
    name = _service(call)
    node = call.query_str("node", NODE_NAME_PATTERN) or call.ctx.nodename
    path = call.ctx.services.path(name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ApiError(404, f"no service {name!r} on this node", field="svc") from None
    text = data.decode("utf-8", errors="replace")
    result = await _check_text(call, name, text, node, evaluate=True)
    return ConfigView(
        service=name,
        path=str(path),
        text=text,
        node=node,
        valid=result.valid and result.evaluated is not None,
        evaluated=result.evaluated,
        issues=_issues(result.issues),
    )


async def validate_config(call: Call) -> ValidationReport:
    name = _service(call, must_exist=False)
    body = await call.body(ConfigText)
    result = await _check_text(call, name, body.text)
    return ValidationReport(service=name, valid=result.valid, issues=_issues(result.issues))


async def put_config(call: Call) -> ValidationReport:
    name = _service(call, must_exist=False)
    body = await call.body(ConfigText)
    result = await _check_text(call, name, body.text)
    _refuse_invalid(name, result, "the configuration has errors; nothing written")
    path = call.ctx.services.path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, body.text)
    except OSError as exc:
        raise ApiError(500, f"cannot write {path}: {exc.strerror or exc}") from None
    call.ctx.services.forget(name)
    call.ctx.events.publish("config", {"service": name, "by": call.caller})
    distributed = None
    if call.ctx.cluster is not None:
        distributed = await distribute.push(call.ctx, name, body.text, result.all_nodes)
    return ValidationReport(
        service=name, valid=True, issues=_issues(result.issues), distributed=distributed
    )


async def peer_config(call: Call) -> ValidationReport:
    """A configuration pushed by a peer: validated here, installed, not pushed further.

    A service new to this node arrives frozen: an operator thaws (or starts) it.
    """
    peer = _require_peer(call)
    name = _service(call, must_exist=False)
    body = await call.body(PeerConfig)
    result = await _check_text(call, name, body.text)
    _refuse_invalid(name, result, "the configuration has errors here")
    path = call.ctx.services.path(name)
    if not path.exists():
        set_flag(call.ctx.var_dir / "services" / name / "frozen", True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, body.text)
    except OSError as exc:
        raise ApiError(500, f"cannot write {path}: {exc.strerror or exc}") from None
    call.ctx.services.forget(name)
    call.ctx.events.publish("config", {"service": name, "by": f"peer:{peer}"})
    return ValidationReport(service=name, valid=True, issues=_issues(result.issues))


async def peer_sync(call: Call) -> SyncPeerAnswer:
    """A sender's call to this node as a sync target (daemon/sync/transport.py)."""
    peer = _require_peer(call)
    name = _service(call)
    body = await call.body(SyncPeerCall)
    if body.sender != peer:
        raise ApiError(403, f"certificate of {peer} cannot speak for {body.sender}", field="sender")
    try:
        inst = call.ctx.services.instance(name)
    except (UnknownService, ConfigError, NotAnInstance) as exc:
        raise _instance_error(name, exc) from None
    resource = inst.resources.get(body.rid)
    if not isinstance(resource, SyncDriver):
        raise ApiError(404, f"{name}: no sync resource {body.rid}", field="rid")
    try:
        answer = await resource.peer_call(body.verb, body.sender, body.model_dump()["stamp"])
    except ResourceError as exc:
        raise ApiError(409, f"{name} {body.rid}: {exc}") from None
    except Exception as exc:  # a driver's failure (docker, btrfs): the sender's answer
        log.exception("%s %s: %s for %s failed", name, body.rid, body.verb, peer)
        raise ApiError(
            409, f"{name} {body.rid}: {body.verb}: {type(exc).__name__}: {exc}"
        ) from None
    if answer.get("guard"):
        call.ctx.events.publish(
            "restorepoints",
            {"service": name, "node": call.ctx.nodename, "rid": body.rid,
             "warning": answer["guard"]},
        )  # fmt: skip
    return SyncPeerAnswer(answer=answer)


# ---------------------------------------------------------------------------- actions


async def _check_action(call: Call, name: str, request: ActionRequest) -> None:
    action = request.action
    if action in LATER and call.ctx.cluster is None:
        raise ApiError(422, f"action {action} arrives with {LATER[action]}", field="action")
    if action == "switch" and not request.to:
        raise ApiError(422, "switch needs 'to': the destination node", field="to")
    if request.confirm is not None and request.confirm != name:
        raise ApiError(
            422, f"confirm: type the service's name ({name}) to confirm", field="confirm"
        )
    for option, applies in (
        ("to", ("switch",)),
        ("target", ("sync",)),
        ("mode", ("sync",)),
        ("force", ("stop",)),
        ("check", ("drill",)),
        ("keep", ("drill",)),
        ("at", ("takeover", "drill")),
    ):
        if getattr(request, option) and action not in applies:
            raise ApiError(422, f"{option} does not apply to {action}", field=option)
    try:
        inst = call.ctx.services.instance(name)
    except (UnknownService, ConfigError, NotAnInstance) as exc:
        raise _instance_error(name, exc) from None
    if request.node and action not in ("drill", "drill-stop"):
        raise ApiError(422, f"node does not apply to {action}", field="node")
    remote = request.node and request.node != call.ctx.nodename
    if action == "drill" and remote and request.node:
        body = {"op": "preflight", **({"at": request.at} if request.at else {})}
        answer = await ask_peer(call, request.node, name, body, 60.0)
        why = (answer.get("preflight") or {}).get("refusal")
        if why:
            raise ApiError(409, str(why))
    elif action == "drill" and call.ctx.drills is not None:
        why = call.ctx.drills.refusal(inst, await drill_avail(call, name))
        if why:
            raise ApiError(409, why)
    if request.at and not remote:
        try:
            catalog.entries_at(inst, request.at)
        except PointError as exc:
            raise ApiError(422, f"at: {exc}", field="at") from None
    if action == "takeover" and request.at:
        avail = await drill_avail(call, name)
        if avail in ("up", "warn"):
            raise ApiError(
                409,
                f"{name} is {avail} on {call.ctx.nodename}: a takeover from a restore point "
                "starts it here anew; stop it here first",
            )
    unknown = [rid for rid in request.rids or [] if rid not in inst.resources]
    if unknown:
        known = ", ".join(inst.resources) or "none"
        raise ApiError(
            422,
            f"rids: no resource {', '.join(unknown)} in {name} (resources: {known})",
            field="rids",
        )


async def submit_action(call: Call) -> web.Response:
    name = _service(call)
    request = await call.body(ActionRequest)
    await _check_action(call, name, request)
    params = request.model_dump(exclude_none=True, exclude={"action", "confirm"})
    try:
        record = call.ctx.runner.submit(name, request.action, params, call.caller)
    except RunnerClosed as exc:
        raise ApiError(503, str(exc)) from None
    href = f"/api/actions/{record.id}"
    accepted = ActionAccepted(action_id=record.id, state=str(record.state), href=href)  # type: ignore[arg-type]
    return json_response(accepted, 202, headers={"Location": href})


def _record(call: Call) -> ActionRecord:
    action_id = call.path("action_id")
    record = call.ctx.runner.get(action_id) if ACTION_ID_RE.fullmatch(action_id) else None
    if record is None:
        raise ApiError(404, f"no action {action_id!r}", field="action_id")
    return record


async def get_action(call: Call) -> ActionOut:
    record = _record(call)
    wait = call.query_number("wait", 0.0, 0.0, MAX_WAIT)
    if wait > 0 and not record.state.ended:
        record = await call.ctx.runner.wait(record.id, wait) or record
    return ActionOut.model_validate(record.as_dict())


async def get_action_log(call: Call) -> ActionLog:
    record = _record(call)
    data = record.as_dict()
    return ActionLog.model_validate(
        {"action_id": record.id, "state": data["state"], "lines": data["log"]}
    )


async def list_actions(call: Call) -> ActionList:
    service = call.query_str("service", SERVICE_NAME_PATTERN)
    limit = int(call.query_number("limit", 50, 1, 1000))
    records = call.ctx.runner.recent(service, limit)
    return ActionList(actions=[ActionSummary.model_validate(r.as_dict()) for r in records])


# ---------------------------------------------------------------------------- events, metrics


async def events(call: Call) -> web.StreamResponse:
    ctx = call.ctx
    after_text = call.request.headers.get("Last-Event-ID")
    after: int | None = None
    if after_text is not None:
        # An event number: digits, at most 2**53 (int() of thousands of digits raises).
        if not (after_text.isascii() and after_text.isdigit() and len(after_text) <= 16):
            raise ApiError(400, "Last-Event-ID: not an event number", field="Last-Event-ID")
        after = int(after_text)
    if call.request.query.get("after") is not None:
        after = int(call.query_number("after", 0, 0, MAX_EVENT_ID))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    with ctx.events.subscribe(after) as subscription:
        await response.prepare(call.request)
        await response.write(f": ferryd {ctx.nodename} events\n\n".encode())
        try:
            while True:
                event = await subscription.next(ctx.sse_keepalive)
                await response.write(event.sse() if event else b": keepalive\n\n")
        except SubscriptionEnded as end:
            await response.write(f"event: end\ndata: {end}\n\n".encode())
        except ConnectionError:
            return response
    return response


async def metrics(call: Call) -> web.Response:
    registry = call.ctx.metrics.registry
    return web.Response(
        body=registry.exposition(),
        headers={"Content-Type": registry.content_type, "X-Content-Type-Options": "nosniff"},
    )


GUEST, OPERATOR, ROOT = Role.GUEST, Role.OPERATOR, Role.ROOT
REFRESH = QueryParam("refresh", "boolean", "Evaluate the status now instead of using the cache.")

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", health, "Is the daemon up", None, Health, tag="node"),
    Route(
        "GET",
        "/api/openapi.json",
        openapi_document,
        "This document",
        None,
        tag="node",
        extra={"schema": {"type": "object"}},
    ),
    Route("GET", "/api/node", node_status, "This node's status", GUEST, NodeStatus, tag="node"),
    Route(
        "GET",
        "/api/cluster",
        cluster_status,
        "The cluster as this node sees it",
        GUEST,
        ClusterStatus,
        tag="node",
    ),
    Route(
        "POST",
        "/api/cluster/heartbeat",
        heartbeat,
        "A peer's heartbeat: its full state (node certificate only)",
        ROOT,
        HeartbeatAck,
        body=HeartbeatMsg,
        errors=(400, 403, 409, 413, 422),
        tag="cluster",
    ),
    Route(
        "POST",
        "/api/node/freeze",
        node_freeze,
        "Freeze this node: no automatic action on any of its instances (persistent)",
        OPERATOR,
        FreezeState,
        tag="node",
    ),
    Route(
        "POST",
        "/api/node/thaw",
        node_thaw,
        "Thaw this node",
        OPERATOR,
        FreezeState,
        tag="node",
    ),
    Route(
        "PUT",
        "/api/cluster/services/{svc}/config",
        peer_config,
        "A configuration distributed by a peer (node certificate only)",
        ROOT,
        ValidationReport,
        body=PeerConfig,
        path_params=(SVC,),
        errors=(400, 403, 413, 422),
        tag="cluster",
    ),
    Route(
        "POST",
        "/api/cluster/services/{svc}/sync",
        peer_sync,
        "A sync sender's call to this node as its target: guard, release, stamp (node "
        "certificate only)",
        ROOT,
        SyncPeerAnswer,
        body=SyncPeerCall,
        path_params=(SVC,),
        errors=(400, 403, 404, 409, 413, 422),
        tag="cluster",
    ),
    Route(
        "GET",
        "/api/services/{svc}/dr",
        dr_facts,
        "DR activation facts: where it runs, data age on the target, what would start",
        GUEST,
        DrFacts,
        path_params=(SVC,),
        query=(
            QueryParam(
                "to",
                "string",
                "The node to activate (default: this node).",
                pattern=NODE_NAME_PATTERN,
            ),
        ),
        errors=(400, 404, 409, 422),
        tag="services",
    ),
    Route(
        "GET",
        "/api/services",
        list_services,
        "Services installed on this node, with their instance status",
        GUEST,
        ServiceList,
        query=(REFRESH,),
        tag="services",
    ),
    Route(
        "GET",
        "/api/services/{svc}",
        service_status,
        "The service's instance status on this node",
        GUEST,
        InstanceStatus,
        path_params=(SVC,),
        query=(REFRESH,),
        errors=(400, 404, 409, 503),
        tag="services",
    ),
    Route(
        "GET",
        "/api/services/{svc}/config",
        get_config,
        "The configuration text, and its evaluation for a node",
        GUEST,
        ConfigView,
        path_params=(SVC,),
        query=(
            QueryParam(
                "node",
                "string",
                "Evaluate as this node (default: this node).",
                pattern=NODE_NAME_PATTERN,
            ),
        ),
        errors=(400, 404),
        tag="services",
    ),
    Route(
        "POST",
        "/api/services/{svc}/config/validate",
        validate_config,
        "Validate a configuration text without installing it",
        GUEST,
        ValidationReport,
        body=ConfigText,
        path_params=(SVC,),
        errors=(400, 413, 422),
        tag="services",
    ),
    Route(
        "PUT",
        "/api/services/{svc}/config",
        put_config,
        "Validate a configuration text and install it (atomically)",
        ROOT,
        ValidationReport,
        body=ConfigText,
        path_params=(SVC,),
        errors=(400, 413, 422),
        tag="services",
    ),
    Route(
        "POST",
        "/api/services/{svc}/actions",
        submit_action,
        "Queue an action on the service's instance",
        OPERATOR,
        ActionAccepted,
        body=ActionRequest,
        status=202,
        path_params=(SVC,),
        errors=(400, 404, 409, 413, 422, 503),
        tag="actions",
    ),
    Route(
        "GET",
        "/api/actions",
        list_actions,
        "Recent actions, newest first",
        GUEST,
        ActionList,
        query=(
            QueryParam(
                "service", "string", "Only this service's actions.", pattern=SERVICE_NAME_PATTERN
            ),
            QueryParam("limit", "integer", "How many.", minimum=1, maximum=1000),
        ),
        errors=(400,),
        tag="actions",
    ),
    Route(
        "GET",
        "/api/actions/{action_id}",
        get_action,
        "An action's state, result and log",
        GUEST,
        ActionOut,
        path_params=(ACTION_ID,),
        query=(
            QueryParam(
                "wait",
                "number",
                "Wait up to this many seconds for the action to end.",
                minimum=0,
                maximum=MAX_WAIT,
            ),
        ),
        errors=(400, 404),
        tag="actions",
    ),
    Route(
        "GET",
        "/api/actions/{action_id}/log",
        get_action_log,
        "An action's log lines",
        GUEST,
        ActionLog,
        path_params=(ACTION_ID,),
        errors=(400, 404),
        tag="actions",
    ),
    Route(
        "GET",
        "/api/events",
        events,
        "Server-sent events: action and instance state changes",
        GUEST,
        query=(
            QueryParam(
                "after",
                "integer",
                "Replay the kept events newer than this number.",
                minimum=0,
                maximum=MAX_EVENT_ID,
            ),
        ),
        content_type="text/event-stream",
        errors=(400,),
        tag="events",
    ),
    Route(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics",
        GUEST,
        content_type="text/plain",
        tag="node",
    ),
)
ROUTES += DRILL_ROUTES
ROUTES += RESTORE_ROUTES
ROUTES += SYNC_ROUTES
