"""A service's configuration: read it evaluated, validate a text, install one (parsed and
checked in a worker process, never on the event loop)."""

from __future__ import annotations

from daemon.api.checker import CheckerBusy, CheckTimeout
from daemon.api.http import ApiError, Call, QueryParam, Route
from daemon.api.routes.common import (
    GUEST,
    ROOT,
    SVC,
    issue_models,
    service_name,
)
from daemon.api.schemas import (
    NODE_NAME_PATTERN,
    ConfigText,
    ConfigView,
    ValidationReport,
)
from daemon.cluster import distribute
from daemon.config.errors import Severity
from daemon.config.store import write_atomically
from daemon.service.check import CheckResult, sections_problem
from daemon.service.config import EvalContext


def _context(call: Call, node: str | None = None) -> EvalContext:
    ctx = call.ctx
    return EvalContext(
        nodename=node or ctx.nodename, clustername=ctx.node.cluster.name, var_dir=str(ctx.var_dir)
    )


async def check_text(
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


def refuse_invalid(name: str, result: CheckResult, message: str) -> None:
    if not result.valid:
        errors = [i for i in result.issues if i.severity is Severity.ERROR]
        raise ApiError(422, f"{name}: {message}", field="text", issues=errors)


async def get_config(call: Call) -> ConfigView:
    name = service_name(call)
    node = call.query_str("node", NODE_NAME_PATTERN) or call.ctx.nodename
    path = call.ctx.services.path(name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ApiError(404, f"no service {name!r} on this node", field="svc") from None
    text = data.decode("utf-8", errors="replace")
    result = await check_text(call, name, text, node, evaluate=True)
    return ConfigView(
        service=name,
        path=str(path),
        text=text,
        node=node,
        valid=result.valid and result.evaluated is not None,
        evaluated=result.evaluated,
        issues=issue_models(result.issues),
    )


async def validate_config(call: Call) -> ValidationReport:
    name = service_name(call, must_exist=False)
    body = await call.body(ConfigText)
    result = await check_text(call, name, body.text)
    return ValidationReport(service=name, valid=result.valid, issues=issue_models(result.issues))


async def put_config(call: Call) -> ValidationReport:
    name = service_name(call, must_exist=False)
    body = await call.body(ConfigText)
    result = await check_text(call, name, body.text)
    refuse_invalid(name, result, "the configuration has errors; nothing written")
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
        service=name, valid=True, issues=issue_models(result.issues), distributed=distributed
    )


CONFIG_ROUTES: tuple[Route, ...] = (
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
)
