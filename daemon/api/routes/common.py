"""What the route families share: the service path parameter, the roles, peer-only
routes, and how an instance's trouble answers."""

from __future__ import annotations

from daemon.api.auth import Role
from daemon.api.http import ApiError, Call, PathParam
from daemon.api.schemas import Issue
from daemon.config.errors import ConfigError, ConfigIssue, Severity
from daemon.config.store import SERVICE_NAME_PATTERN, service_name_problem
from daemon.node.services import StatusUnavailable, UnknownService

SVC = PathParam("svc", SERVICE_NAME_PATTERN, "Service name.")


def service_name(call: Call, must_exist: bool = True) -> str:
    name = call.request.match_info.get("svc", "")
    problem = service_name_problem(name)
    if problem:
        raise ApiError(400, f"svc: {problem}", field="svc")
    if must_exist and not call.ctx.services.path(name).exists():
        raise ApiError(404, f"no service {name!r} on this node", field="svc")
    return name


def issue_models(issues: list[ConfigIssue]) -> list[Issue]:
    return [Issue.model_validate(i.as_dict()) for i in issues]


def instance_error(name: str, exc: Exception) -> ApiError:
    if isinstance(exc, ConfigError):
        errors = [i for i in exc.issues if i.severity is Severity.ERROR]
        return ApiError(409, f"{name}: the configuration has errors", issues=errors)
    if isinstance(exc, UnknownService):
        return ApiError(404, f"no service {name!r} on this node", field="svc")
    if isinstance(exc, StatusUnavailable):
        return ApiError(503, str(exc))
    return ApiError(409, str(exc))


def require_peer(call: Call, node: str | None = None) -> str:
    principal = call.principal
    if principal is None or principal.via != "node-cert":
        raise ApiError(403, "peer routes accept only a cluster node certificate")
    if node is not None and principal.name != node:
        raise ApiError(403, f"certificate of {principal.name} cannot speak for {node}")
    return principal.name


GUEST, OPERATOR, ROOT = Role.GUEST, Role.OPERATOR, Role.ROOT
