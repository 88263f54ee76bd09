"""The pieces every route is made of: the route declaration, the call, JSON errors.

A :class:`Route` declares method, path, role, body and response models; the
same declarations serve the router (:mod:`daemon.api.app`) and the OpenAPI
document (:mod:`daemon.api.openapi`). A handler receives a :class:`Call` that
validates path, query and body, raising :class:`ApiError` (a 4xx naming the
field) for anything wrong.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from daemon.api.auth import Principal, Role
from daemon.api.guard import read_body
from daemon.api.schemas import ErrorBody, FieldProblem, Issue
from daemon.config.errors import ConfigIssue

if TYPE_CHECKING:
    from daemon.api.context import ApiContext

MAX_BODY = 1024 * 1024 + 4096  # a 1 MiB configuration text plus its JSON envelope
MAX_NUMBER_TEXT = 40  # no number a route takes is longer (a float's repr is at most 24)
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
M = TypeVar("M", bound=BaseModel)
Handler = Callable[["Call"], Awaitable[BaseModel | web.StreamResponse]]


class ApiError(Exception):
    """A refused request: HTTP status, message, and the field at fault when there is one."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        problems: list[FieldProblem] | None = None,
        issues: list[ConfigIssue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(
            error=message,
            field=field,
            problems=problems or [],
            issues=[Issue.model_validate(i.as_dict()) for i in issues or []],
        )
        self.headers = headers or {}


def json_response(model: BaseModel, status: int = 200, **kwargs: Any) -> web.Response:
    return web.Response(
        body=model.model_dump_json().encode(),
        status=status,
        content_type="application/json",
        **kwargs,
    )


def error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(ErrorBody(error=message, field=field), status, headers=headers)


@dataclass(frozen=True)
class PathParam:
    name: str
    pattern: str
    description: str


@dataclass(frozen=True)
class QueryParam:
    name: str
    kind: str  # boolean, number, integer, string
    description: str
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Route:
    """One operation of the API."""

    method: str
    path: str
    handler: Handler
    summary: str
    role: Role | None  # None: public
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    status: int = 200
    path_params: tuple[PathParam, ...] = ()
    query: tuple[QueryParam, ...] = ()
    content_type: str = "application/json"
    errors: tuple[int, ...] = ()
    tag: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        """Changes something on the node (the guest role may never call it)."""
        return self.role is not None and self.role > Role.GUEST

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")


def _problems(exc: ValidationError) -> list[FieldProblem]:
    out = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = ".".join(str(part) for part in error["loc"]) or "body"
        out.append(FieldProblem(field=loc, message=error["msg"]))
    return out


class Call:
    """A request being served: its caller, validated parameters and body."""

    def __init__(
        self, request: web.Request, ctx: ApiContext, route: Route, principal: Principal | None
    ) -> None:
        self.request = request
        self.ctx = ctx
        self.route = route
        self.principal = principal

    @property
    def caller(self) -> str:
        return self.principal.label if self.principal else "anonymous"

    def path(self, name: str) -> str:
        value = self.request.match_info.get(name, "")
        for param in self.route.path_params:
            if param.name == name and not re.fullmatch(param.pattern, value):
                raise ApiError(
                    400, f"{name}: {value[:80]!r} does not match {param.pattern}", field=name
                )
        return value

    def _query(self, name: str) -> str | None:
        values = self.request.query.getall(name, [])
        if len(values) > 1:
            raise ApiError(400, f"{name}: given {len(values)} times", field=name)
        return values[0] if values else None

    def query_bool(self, name: str, default: bool = False) -> bool:
        text = self._query(name)
        if text is None:
            return default
        # The document's boolean, as JSON writes it: a client's 1 or yes is refused, not guessed.
        if text in ("true", "false"):
            return text == "true"
        raise ApiError(400, f"{name}: {text[:40]!r} is not a boolean (true or false)", field=name)

    def query_number(self, name: str, default: float, low: float, high: float) -> float:
        """The parameter as the route declares it: an integer, or a decimal number."""
        text = self._query(name)
        if text is None:
            return default
        declared = next((q for q in self.route.query if q.name == name), None)
        integer = declared is not None and declared.kind == "integer"
        # float() also takes "1_0", " 1", "nan", "infinity" and non-ASCII digits: not JSON.
        syntax, what = (_INTEGER, "an integer") if integer else (_NUMBER, "a number")
        if len(text) > MAX_NUMBER_TEXT or not syntax.fullmatch(text):
            raise ApiError(400, f"{name}: {text[:40]!r} is not {what}", field=name)
        value = int(text) if integer else float(text)  # an int: 2**53 + 1 is no float
        if not low <= value <= high:
            raise ApiError(400, f"{name}: {text[:40]} is not within {low:g}..{high:g}", field=name)
        return float(value)

    def query_str(self, name: str, pattern: str) -> str | None:
        text = self._query(name)
        if text is not None and not re.fullmatch(pattern, text):
            raise ApiError(400, f"{name}: {text[:80]!r} does not match {pattern}", field=name)
        return text

    async def body(self, model: type[M]) -> M:
        """The request body validated as model; 400 for broken JSON, 422 for wrong content."""
        # Read at the node's minimum rate (BodyTooSlow: 408); 413 past MAX_BODY.
        data = await read_body(self.request, self.ctx.limits, MAX_BODY)
        if not data.strip():
            raise ApiError(400, "empty request body: a JSON object is expected", field="body")
        try:
            return model.model_validate_json(data)
        except ValidationError as exc:
            problems = _problems(exc)
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise ApiError(400, "malformed JSON", field="body") from None
            first = problems[0]
            raise ApiError(
                422, f"{first.field}: {first.message}", field=first.field, problems=problems
            ) from None
