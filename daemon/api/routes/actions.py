"""Actions: queue one on a service's instance, follow it, list the recent ones."""

from __future__ import annotations

from aiohttp import web

from daemon.actions import ACTION_ID_RE, ActionRecord, RunnerClosed
from daemon.api.http import ApiError, Call, PathParam, QueryParam, Route, json_response
from daemon.api.routes.common import (
    GUEST,
    OPERATOR,
    SVC,
    instance_error,
    service_name,
)
from daemon.api.routes.drills import ask_peer, drill_avail
from daemon.api.schemas import (
    ACTION_ID_PATTERN,
    ActionAccepted,
    ActionList,
    ActionLog,
    ActionOut,
    ActionRequest,
    ActionSummary,
)
from daemon.config.errors import ConfigError
from daemon.config.store import SERVICE_NAME_PATTERN
from daemon.node.services import UnknownService
from daemon.restore import catalog
from daemon.restore.points import PointError
from daemon.service.loader import NotAnInstance

ACTION_ID = PathParam("action_id", ACTION_ID_PATTERN, "Action id, as returned on submission.")


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
        raise instance_error(name, exc) from None
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
    name = service_name(call)
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


ACTIONS_ROUTES: tuple[Route, ...] = (
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
)
