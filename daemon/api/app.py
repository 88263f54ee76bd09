"""The aiohttp application: routes from the table, authorization, JSON errors, metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError

from daemon.api.auth import Principal, authenticate
from daemon.api.context import ApiContext
from daemon.api.guard import BodyTooSlow, protocol_of
from daemon.api.http import MAX_BODY, ApiError, Call, Route, error_response, json_response
from daemon.api.openapi import openapi_document
from daemon.api.routes import ROUTES
from daemon.api.sessions import CSRF_HEADER

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

log = logging.getLogger("ferry.api")

CLIENT_GONE = 499  # the metrics' code for a request whose client went away (nginx's)
CTX_KEY = web.AppKey("ctx", ApiContext)
WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _endpoint(route: Route, ctx: ApiContext) -> WebHandler:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        principal = None
        if route.role is not None:
            principal = authenticate(request, ctx.tokens, ctx.cluster_nodes, ctx.sessions)
            authorize(route, principal, request)
        result = await route.handler(Call(request, ctx, route, principal))
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result, route.status)

    endpoint.__name__ = route.operation_id
    return endpoint


def authorize(route: Route, principal: Principal | None, request: web.Request) -> None:
    """Refuse (401, 403) a caller that may not call route; the console's pages go through
    this check too."""
    if route.role is None:
        return
    if principal is None:
        raise ApiError(
            401,
            "authentication required: a bearer token, or a cluster node certificate",
            headers={"WWW-Authenticate": 'Bearer realm="ferryd"'},
        )
    if principal.role < route.role:
        raise ApiError(
            403,
            f"{principal.label} has role {principal.role.label}; this needs {route.role.label}",
        )
    session = principal.session
    # A cookie rides along with any request the browser makes: a write must also prove it
    # comes from a console page, which alone can read the session's CSRF token.
    if (
        session is not None
        and request.method not in SAFE_METHODS
        and not session.csrf_ok(request.headers.get(CSRF_HEADER))
    ):
        raise ApiError(403, f"CSRF token missing or wrong (the {CSRF_HEADER} header)")


@web.middleware
async def json_errors(request: web.Request, handler: WebHandler) -> web.StreamResponse:
    """Every error answer is a JSON ErrorBody; an unexpected exception is a logged 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.body, exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow",)}
        message = exc.reason
        if exc.status == 413:
            message = f"request body larger than {MAX_BODY} bytes"
        return error_response(exc.status, message, headers=headers)
    except BodyTooSlow as exc:
        protocol = protocol_of(request)
        if protocol is not None:
            protocol.no_lingering()
        response = error_response(408, str(exc))
        response.force_close()
        return response
    except (ConnectionError, RequestPayloadError) as exc:
        transport = request.transport
        if transport is None or transport.is_closing():
            # The client went away (mid-body, mid-answer): its business, not an error here.
            log.debug("client gone during %s %s: %s", request.method, request.path, exc)
            return web.Response(status=CLIENT_GONE, reason="Client Closed Request")
        response = error_response(400, f"malformed request body: {exc}")
        response.force_close()
        return response
    except Exception as exc:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, f"internal error: {type(exc).__name__} (see the daemon log)")


def _metrics(ctx: ApiContext) -> Middleware:
    @web.middleware
    async def measure(request: web.Request, handler: WebHandler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        protocol = protocol_of(request)
        if protocol is not None:
            protocol.request_started()  # the head is in: the head timer stops
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            info = request.match_info
            resource = info.route.resource if info.http_exception is None else None
            route = resource.canonical if resource is not None else "unmatched"
            elapsed = time.perf_counter() - started
            if route != "/api/events":  # a stream's duration is not a latency
                ctx.metrics.latency.observe(elapsed, method=request.method, route=route)
            ctx.metrics.requests.inc(method=request.method, route=route, code=str(status))
            log.debug("%s %s -> %s (%.1f ms)", request.method, request.path, status, elapsed * 1000)
            if protocol is not None:
                protocol.request_ended()

    return measure


def build_app(ctx: ApiContext) -> web.Application:
    """The API application for ctx; its OpenAPI document is computed once."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_metrics(ctx), json_errors])
    app[CTX_KEY] = ctx
    ctx.openapi = openapi_document(ROUTES, ctx.version)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _endpoint(route, ctx))
    return app
