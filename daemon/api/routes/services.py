"""The services installed on this node: the list, an instance's status, DR activation facts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from daemon.api.http import ApiError, Call, QueryParam, Route
from daemon.api.routes.common import (
    GUEST,
    SVC,
    instance_error,
    service_name,
)
from daemon.api.schemas import (
    NODE_NAME_PATTERN,
    DrFacts,
    InstanceStatus,
    ServiceList,
    ServiceSummary,
)
from daemon.cluster.flags import data_ages, is_frozen, last_activation
from daemon.config.errors import ConfigError, Severity
from daemon.node.services import StatusUnavailable, UnknownService
from daemon.service.loader import NotAnInstance


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
    name = service_name(call)
    refresh = call.query_bool("refresh")
    try:
        entry = await call.ctx.services.status(name, refresh=refresh)
    except (UnknownService, ConfigError, NotAnInstance, StatusUnavailable) as exc:
        raise instance_error(name, exc) from None
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
    name = service_name(call)
    to = call.query_str("to", NODE_NAME_PATTERN) or ctx.nodename
    try:
        inst = ctx.services.instance(name)
    except (UnknownService, ConfigError, NotAnInstance) as exc:
        raise instance_error(name, exc) from None
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


REFRESH = QueryParam("refresh", "boolean", "Evaluate the status now instead of using the cache.")


SERVICES_ROUTES: tuple[Route, ...] = (
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
)
