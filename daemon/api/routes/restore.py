"""The restore point routes: the listing (with the choice an ``at`` makes), a delete, and
the peer route through which another node's points are listed or deleted.

Points are kept by the targets after every sync (daemon/restore/keeper.py); a takeover
or a drill from one takes ``at`` on ``POST /api/services/{svc}/actions``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from daemon.api.auth import Role
from daemon.api.http import ApiError, Call, PathParam, QueryParam, Route
from daemon.api.routes.drills import SVC, _instance
from daemon.api.schemas import NODE_NAME_PATTERN, _Request, _Response
from daemon.cluster.peer_client import PeerDaemonClient
from daemon.restore import catalog
from daemon.restore.points import AT_PATTERN, PointError
from daemon.sync.transport import TransportError

# Anchored, ASCII digits: pydantic searches a pattern, and Python's \d takes any digit.
POINT = PathParam(
    "point", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", "A restore point's name."
)
PEER_TIMEOUT = 120.0


class RestorePointList(_Response):
    """The service's restore points on a node, newest first."""

    service: str
    node: str
    points: list[dict[str, Any]] = Field(
        description="name, time, age (s), complete (every resource has an entry this "
        "old), resources (those it covers), synced (those of its own run), size (bytes of its "
        "own run's entries, None: unknown), entries (per resource, its newest entry not newer "
        "than the point: name, kind, ref, data_time, size)."
    )
    pending: dict[str, Any] | None = Field(
        default=None, description="A takeover's point waiting for the next start here."
    )
    last_restore: dict[str, Any] | None = Field(
        default=None, description="The last point made the live data here."
    )
    warnings: list[str] = Field(default_factory=list, description="The space guard's warnings.")
    chosen: dict[str, Any] | None = Field(default=None, description="With at: the point chosen.")
    choice: str | None = Field(
        default=None, description="With at: its age and how much newer data it leaves aside."
    )


class RestorePointDeleted(_Response):
    service: str
    node: str
    deleted: str
    resources: list[str] = Field(description="The resources whose data of the point went.")


class RestorePeerCall(_Request):
    op: Literal["list", "delete"]
    at: str | None = Field(default=None, min_length=1, max_length=64)
    point: str | None = Field(default=None, pattern=POINT.pattern)


def _node(call: Call) -> str | None:
    node = call.query_str("node", NODE_NAME_PATTERN)
    return node if node and node != call.ctx.nodename else None


async def _ask(call: Call, node: str, body: dict[str, Any]) -> dict[str, Any]:
    if node not in call.ctx.cluster_nodes:
        raise ApiError(422, f"node: {node} is not a node of this cluster", field="node")
    name = _instance(call).name
    peers = PeerDaemonClient(call.ctx.node, call.ctx.var_dir)
    try:
        answer = await peers.call(
            node, f"/api/cluster/services/{name}/restorepoints", body, PEER_TIMEOUT
        )
    except TransportError as exc:
        raise ApiError(409, f"{node}: {exc.detail or exc}") from None
    finally:
        await peers.close()
    if answer is None:
        raise ApiError(503, f"{node}'s ferryd does not answer")
    return dict(answer)


def _listing(call: Call, at: str | None) -> RestorePointList:
    try:
        return RestorePointList.model_validate(catalog.listing(_instance(call), at))
    except PointError as exc:
        raise ApiError(422, f"at: {exc}", field="at") from None


async def list_restorepoints(call: Call) -> RestorePointList:
    at = call.query_str("at", AT_PATTERN)
    node = _node(call)
    if node:
        body = {"op": "list", **({"at": at} if at else {})}
        return RestorePointList.model_validate(await _ask(call, node, body))
    return _listing(call, at)


async def _delete_here(call: Call, name: str) -> RestorePointDeleted:
    inst = _instance(call)
    try:
        done = await catalog.delete(inst, name)
    except PointError as exc:
        status = 409 if "newest" in str(exc) else 404
        raise ApiError(status, str(exc), field="point") from None
    return RestorePointDeleted(service=inst.name, node=inst.node, deleted=name, resources=done)


async def delete_restorepoint(call: Call) -> RestorePointDeleted:
    name = call.path("point")
    if not re.fullmatch(POINT.pattern, name):
        raise ApiError(400, f"point: {name[:40]!r} is not a restore point's name", field="point")
    node = _node(call)
    if node:
        return RestorePointDeleted.model_validate(
            await _ask(call, node, {"op": "delete", "point": name})
        )
    return await _delete_here(call, name)


async def peer_restorepoints(call: Call) -> Any:
    principal = call.principal
    if principal is None or principal.via != "node-cert":
        raise ApiError(403, "peer routes accept only a cluster node certificate")
    request = await call.body(RestorePeerCall)
    if request.op == "list":
        return _listing(call, request.at)
    if not request.point:
        raise ApiError(422, "delete needs point", field="point")
    return await _delete_here(call, request.point)


NODE_QUERY = QueryParam(
    "node", "string", "The node whose points (default: this node).", pattern=NODE_NAME_PATTERN
)

RESTORE_ROUTES = (
    Route(
        "GET",
        "/api/services/{svc}/restorepoints",
        list_restorepoints,
        "The service's restore points on this node (or node), newest first; with at, the "
        "point a takeover or a drill from it would use",
        Role.GUEST,
        RestorePointList,
        path_params=(SVC,),
        query=(
            NODE_QUERY,
            QueryParam(
                "at",
                "string",
                "A point's name, or an ISO 8601 time (the newest point not newer than it).",
                pattern=AT_PATTERN,
            ),
        ),
        errors=(400, 404, 409, 422, 503),
        tag="restore",
    ),
    Route(
        "DELETE",
        "/api/services/{svc}/restorepoints/{point}",
        delete_restorepoint,
        "Delete a restore point on this node (or node); the newest is never deleted",
        Role.OPERATOR,
        RestorePointDeleted,
        path_params=(SVC, POINT),
        query=(NODE_QUERY,),
        errors=(400, 404, 409, 422, 503),
        tag="restore",
    ),
    Route(
        "POST",
        "/api/cluster/services/{svc}/restorepoints",
        peer_restorepoints,
        "A peer's restore point call: list or delete here (node certificate only)",
        Role.ROOT,
        None,
        body=RestorePeerCall,
        path_params=(SVC,),
        errors=(400, 403, 404, 409, 413, 422, 503),
        tag="cluster",
    ),
)
