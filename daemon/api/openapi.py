"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from daemon.api.http import Route
from daemon.api.schemas import ErrorBody, SseEvent

REF = "#/components/schemas/{model}"
EVENT_STREAM = "text/event-stream"
PEER_TAG = "cluster"  # the routes only a peer's node certificate may call
SSE_TEXT = (
    "A text/event-stream: a greeting comment, then one frame per event (x-sse-event, "
    "SseEvent) and keepalive comments, until an `end` frame or the client leaves."
)
ERROR_TEXT = {
    400: "Bad request: malformed JSON, bad path or query parameter, repeated query parameter, "
    "or a request line or header the HTTP parser refuses",
    401: "No valid credentials",
    403: "The caller's role does not allow this operation",
    404: "No such service, action or route",
    409: "The service's state or configuration does not allow it",
    408: "Request body slower than body_min_rate (the connection is closed)",
    413: "Request body larger than the limit, or a configuration past its section/line limit",
    422: "Well-formed request with wrong content, the field named: what the schema refuses in "
    "a body, or a schema-valid value this node refuses (a configuration with errors, a node "
    "not of the cluster or the service, an option that does not apply to the action)",
    500: "Internal error (a bug)",
    503: "The daemon is stopping, a status took too long, the configuration checks are all "
    "busy, or too many connections (max_connections, max_client_connections)",
}


def _schemas(routes: Sequence[Route]) -> tuple[dict[Any, Any], dict[str, Any]]:
    wanted: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (ErrorBody, "serialization")
    ]
    if any(route.content_type == EVENT_STREAM for route in routes):
        wanted.append((SseEvent, "serialization"))
    for route in routes:
        if route.body is not None:
            wanted.append((route.body, "validation"))
        if route.response is not None:
            wanted.append((route.response, "serialization"))
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    return dict(refs), top.get("$defs", {})


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def anchored(pattern: str) -> str:
    """pattern as the code applies it (re.fullmatch); a JSON Schema pattern is a search."""
    if pattern.startswith("^") and pattern.endswith("$"):
        return pattern
    return f"^(?:{pattern})$"


def _operation(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag] if route.tag else [],
    }
    if route.role is None:
        op["security"] = []
    else:
        op["description"] = f"Role: {route.role.label} or above."
    if route.tag == PEER_TAG:  # a peer's call: a bearer token is refused (403)
        op["security"] = [{"nodeCert": []}]
        op["description"] = "Role: a peer's node certificate only."
    params: list[dict[str, Any]] = []
    for p in route.path_params:
        params.append(
            {
                "name": p.name,
                "in": "path",
                "required": True,
                "description": p.description,
                "schema": {"type": "string", "pattern": anchored(p.pattern)},
            }
        )
    for q in route.query:
        schema: dict[str, Any] = {"type": q.kind}
        if q.minimum is not None:
            schema["minimum"] = q.minimum
        if q.maximum is not None:
            schema["maximum"] = q.maximum
        if q.pattern is not None:
            schema["pattern"] = anchored(q.pattern)
        params.append(
            {
                "name": q.name,
                "in": "query",
                "required": False,
                "description": q.description,
                "schema": schema,
            }
        )
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": _json(refs[(route.body, "validation")])}
    if route.response is not None:
        content = _json(refs[(route.response, "serialization")])
    elif route.content_type == "application/json":
        content = _json(route.extra.get("schema", {"type": "object"}))
    elif route.content_type == EVENT_STREAM:
        # OpenAPI 3.1 has no schema for a stream's items (3.2's itemSchema): the body is a
        # text, and x-sse-event is the schema of each of its events.
        event = refs[(SseEvent, "serialization")]
        content = {
            EVENT_STREAM: {
                "schema": {"type": "string", "description": SSE_TEXT},
                "x-sse-event": event,
            }
        }
    else:
        content = {route.content_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(route.status): {"description": "Success", "content": content}}
    error = _json(refs[(ErrorBody, "serialization")])
    # 400 for every route: aiohttp's parser refuses bad request lines and headers with it.
    codes = set(route.errors) | {400, 500, 503}
    if route.body is not None:
        codes |= {408, 413}  # a body too slow (body_min_rate), too large
    if route.role is not None:
        codes |= {401, 403}
    for code in sorted(codes):
        responses[str(code)] = {"description": ERROR_TEXT.get(code, "Error"), "content": error}
    op["responses"] = responses
    return op


def openapi_document(routes: Iterable[Route], version: str) -> dict[str, Any]:
    """The whole document: paths from the routes, components from their models."""
    routes = list(routes)
    refs, defs = _schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ferryd",
            "version": version,
            "description": "Ferry node daemon. Over TCP, authenticate with a bearer token "
            "(roles root, operator, guest) or a cluster node certificate; "
            "the unix socket needs no token. The web console's session cookie "
            "(`ferry_session`, from a token pasted at /login) is accepted as the token it "
            "came from; a state-changing request made with it must also carry the session's "
            "`X-CSRF-Token` header (403 otherwise).",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "nodeCert": {
                    "type": "mutualTLS",
                    "description": "A node certificate of the cluster CA (role root).",
                },
            },
        },
        "security": [{"bearer": []}, {"nodeCert": []}],
    }
