"""The cluster as this node sees it, and what peers send it (heartbeats, distributed
configurations, sync calls): node certificate only."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from daemon.api.context import ApiContext
from daemon.api.http import ApiError, Call, Route
from daemon.api.routes.common import (
    GUEST,
    ROOT,
    SVC,
    instance_error,
    issue_models,
    require_peer,
    service_name,
)
from daemon.api.routes.config import check_text, refuse_invalid
from daemon.api.schemas import (
    ClusterNode,
    ClusterServiceView,
    ClusterStatus,
    HeartbeatAck,
    PeerConfig,
    StatusName,
    SyncPeerAnswer,
    SyncPeerCall,
    ValidationReport,
)
from daemon.cluster.flags import set_flag
from daemon.cluster.messages import HeartbeatMsg, InstanceMsg
from daemon.cluster.state import PeerHeartbeat
from daemon.config.errors import ConfigError
from daemon.config.store import write_atomically
from daemon.node.services import UnknownService
from daemon.resources.base import ResourceError
from daemon.resources.status import Status, cluster_avail
from daemon.service.loader import NotAnInstance
from daemon.sync.base import SyncDriver

log = logging.getLogger("ferry.api")


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


def _cluster_state(call: Call) -> Any:
    if call.ctx.cluster is None:
        raise ApiError(409, "the cluster layer does not run in this ferryd")
    return call.ctx.cluster


async def heartbeat(call: Call) -> HeartbeatAck:
    require_peer(call)  # a token's caller is refused before its body is read
    state = _cluster_state(call)
    msg = await call.body(HeartbeatMsg)
    require_peer(call, msg.node)
    if msg.cluster != call.ctx.node.cluster.name:
        raise ApiError(403, f"{msg.node} belongs to cluster {msg.cluster!r}", field="cluster")
    if msg.node not in {p.name for p in call.ctx.node.cluster.peers}:
        raise ApiError(403, f"{msg.node} is not a peer of this node", field="node")
    state.post(PeerHeartbeat(msg, time.time()))
    return HeartbeatAck(node=call.ctx.nodename, gen=msg.gen, state=state.local_pong())


async def peer_config(call: Call) -> ValidationReport:
    """A configuration pushed by a peer: validated here, installed, not pushed further.

    A service new to this node arrives frozen: an operator thaws (or starts) it.
    """
    peer = require_peer(call)
    name = service_name(call, must_exist=False)
    body = await call.body(PeerConfig)
    result = await check_text(call, name, body.text)
    refuse_invalid(name, result, "the configuration has errors here")
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
    return ValidationReport(service=name, valid=True, issues=issue_models(result.issues))


async def peer_sync(call: Call) -> SyncPeerAnswer:
    """A sender's call to this node as a sync target (daemon/sync/transport.py)."""
    peer = require_peer(call)
    name = service_name(call)
    body = await call.body(SyncPeerCall)
    if body.sender != peer:
        raise ApiError(403, f"certificate of {peer} cannot speak for {body.sender}", field="sender")
    try:
        inst = call.ctx.services.instance(name)
    except (UnknownService, ConfigError, NotAnInstance) as exc:
        raise instance_error(name, exc) from None
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


CLUSTER_ROUTES: tuple[Route, ...] = (
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
)
