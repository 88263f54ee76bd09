"""The drill routes: the pre-flight of a drill, and the drills' reports.

Drills themselves run as actions (``drill``, ``drill-stop`` on
``POST /api/services/{svc}/actions``): see daemon/drill/runner.py.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from daemon.api.auth import Role
from daemon.api.http import ApiError, Call, PathParam, Route
from daemon.api.schemas import SERVICE_NAME_PATTERN, _Response
from daemon.config.errors import ConfigError, Severity
from daemon.drill.runner import data_age
from daemon.node.services import StatusUnavailable, UnknownService
from daemon.service.loader import NotAnInstance

SVC = PathParam("svc", SERVICE_NAME_PATTERN, "Service name.")


class DrillPreflight(_Response):
    """What a drill of the service on this node would do, or why it cannot run."""

    service: str
    node: str
    refusal: str | None = Field(description="Why a drill cannot run here now (None: it can).")
    data_age: dict[str, float | None] = Field(
        description="Per sync resource, the age of the data here (the RPO a takeover would have)."
    )
    will_start: list[str]
    check: str = Field(description="The check the drill runs (drill_check), '' for none.")
    timeout: float
    active: dict[str, Any] | None = Field(default=None, description="The drill running or kept.")


class DrillList(_Response):
    service: str
    node: str
    active: dict[str, Any] | None = None
    drills: list[dict[str, Any]] = Field(description="Reports of the recent drills, newest first.")


def _instance(call: Call) -> Any:
    name = call.path("svc")
    if not call.ctx.services.path(name).exists():
        raise ApiError(404, f"no service {name!r} on this node", field="svc")
    try:
        return call.ctx.services.instance(name)
    except UnknownService:
        raise ApiError(404, f"no service {name!r} on this node", field="svc") from None
    except ConfigError as exc:
        errors = [i for i in exc.issues if i.severity is Severity.ERROR]
        raise ApiError(409, f"{name}: the configuration has errors", issues=errors) from None
    except NotAnInstance as exc:
        raise ApiError(409, str(exc)) from None


async def drill_avail(call: Call, name: str) -> str:
    """The instance's avail here, fresh enough to decide whether a drill may run."""
    try:
        entry = await call.ctx.services.status(name)
    except StatusUnavailable as exc:
        raise ApiError(503, str(exc)) from None
    return str(entry.state["avail"])


async def drill_preflight(call: Call) -> DrillPreflight:
    drills = call.ctx.drills
    inst = _instance(call)
    avail = await drill_avail(call, inst.name)
    active = drills.active(inst.name) if drills is not None else None
    if drills is None:
        refusal: str | None = "drills run with the cluster layer (ferryd's default)"
    else:
        refusal = drills.refusal(inst, avail) or None
    return DrillPreflight(
        service=inst.name,
        node=inst.node,
        refusal=refusal,
        data_age=data_age(inst, time.time()),
        will_start=[r.rid for r in inst.ordered() if not r.disabled],
        check=str(inst.value("DEFAULT", "drill_check") or ""),
        timeout=float(inst.value("DEFAULT", "drill_timeout")),
        active=active.report() if active is not None else None,
    )


async def list_drills(call: Call) -> DrillList:
    drills = call.ctx.drills
    inst = _instance(call)
    if drills is None:
        return DrillList(service=inst.name, node=inst.node, drills=[])
    active = drills.active(inst.name)
    return DrillList(
        service=inst.name,
        node=inst.node,
        active=active.report() if active is not None else None,
        drills=drills.store.history(inst.name),
    )


DRILL_ROUTES = (
    Route(
        "GET",
        "/api/services/{svc}/drill",
        drill_preflight,
        "Drill pre-flight: what a drill here would rehearse, or why it cannot run now",
        Role.GUEST,
        DrillPreflight,
        path_params=(SVC,),
        errors=(400, 404, 409, 422, 503),
        tag="drills",
    ),
    Route(
        "GET",
        "/api/services/{svc}/drills",
        list_drills,
        "The drills of the service on this node: the one running or kept, the recent reports",
        Role.GUEST,
        DrillList,
        path_params=(SVC,),
        errors=(400, 404, 409),
        tag="drills",
    ),
)
