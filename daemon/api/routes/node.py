"""This node: health, the OpenAPI document, its status, freeze and thaw, ``/metrics``."""

from __future__ import annotations

import time

from aiohttp import web

from daemon.api.http import Call, Route
from daemon.api.routes.common import (
    GUEST,
    OPERATOR,
)
from daemon.api.schemas import (
    ActionCounts,
    FreezeState,
    Health,
    NodeStatus,
)
from daemon.cluster.flags import NODE_FROZEN, set_flag


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


async def _node_freeze(call: Call, frozen: bool) -> FreezeState:
    ctx = call.ctx
    set_flag(ctx.var_dir / NODE_FROZEN, frozen)
    ctx.events.publish("node", {"node": ctx.nodename, "frozen": frozen, "by": call.caller})
    return FreezeState(node=ctx.nodename, frozen=frozen)


async def node_freeze(call: Call) -> FreezeState:
    return await _node_freeze(call, True)


async def node_thaw(call: Call) -> FreezeState:
    return await _node_freeze(call, False)


async def metrics(call: Call) -> web.Response:
    registry = call.ctx.metrics.registry
    return web.Response(
        body=registry.exposition(),
        headers={"Content-Type": registry.content_type, "X-Content-Type-Options": "nosniff"},
    )


NODE_ROUTES: tuple[Route, ...] = (
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
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics",
        GUEST,
        content_type="text/plain",
        tag="node",
    ),
)
