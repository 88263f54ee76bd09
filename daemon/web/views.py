"""What the console's pages show, read through the API's own handlers (the same checks,
the same data as the CLI: no second source of truth), and the small judgements a page
makes over it (what needs attention first)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from daemon.api.app import authorize
from daemon.api.auth import Principal
from daemon.api.context import ApiContext
from daemon.api.http import ApiError, Call, Route
from daemon.api.routes import ROUTES
from daemon.sync.plan import seconds_text

ROUTE_BY_ID: dict[str, Route] = {r.operation_id: r for r in ROUTES}


class _ApiRequest:
    """The console's request as an API handler sees it: the path parameters and the query
    of the API call, everything else (caller, transport, headers) the console's."""

    def __init__(self, request: web.Request, path: dict[str, str], query: dict[str, str]) -> None:
        self._request = request
        self.match_info = {**request.match_info, **path}
        self.query = MultiDictProxy(MultiDict(query))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


async def api(
    request: web.Request,
    ctx: ApiContext,
    principal: Principal | None,
    operation: str,
    path: dict[str, str] | None = None,
    **query: str,
) -> dict[str, Any]:
    """The JSON document the API's ``operation`` answers for this request's path parameters
    (or ``path``) and ``query``; ApiError exactly as the API would refuse it."""
    route = ROUTE_BY_ID[operation]
    authorize(route, principal, request)
    sub = cast(web.Request, _ApiRequest(request, path or {}, query))
    result = await route.handler(Call(sub, ctx, route, principal))
    if isinstance(result, web.StreamResponse):  # pragma: no cover - pages call JSON routes
        raise TypeError(f"{operation} streams")
    data: dict[str, Any] = result.model_dump(mode="json")
    return data


async def api_or_none(
    request: web.Request,
    ctx: ApiContext,
    principal: Principal | None,
    operation: str,
    path: dict[str, str] | None = None,
    **query: str,
) -> dict[str, Any] | None:
    """As :func:`api`, None when the API refuses (a panel shows what it can)."""
    try:
        return await api(request, ctx, principal, operation, path, **query)
    except ApiError:
        return None


def age_text(seconds: float | None) -> str:
    """The CLI's way of telling an age (42s, 5m, 3h12m, 2d); "never" for none."""
    return "never" if seconds is None else seconds_text(seconds)


def when_text(stamp: float | None, now: float | None = None) -> str:
    if stamp is None:
        return "—"
    now = time.time() if now is None else now
    return (
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(stamp))} ({age_text(now - stamp)} ago)"
    )


def size_text(count: float | None) -> str:
    if count is None:
        return "—"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


@dataclass
class Attention:
    """One thing a person should look at, worded as the CLI words it."""

    level: str  # "down" (act) or "warn" (look)
    service: str | None
    text: str


@dataclass
class ServiceRow:
    name: str
    avail: str
    reason: str
    running_on: list[str]
    instances: dict[str, dict[str, Any]]
    ages: list[dict[str, Any]] = field(default_factory=list)  # per sync resource and peer
    last_drill: dict[str, Any] | None = None
    frozen: bool = False
    attention: list[Attention] = field(default_factory=list)


def attention_of(cluster: dict[str, Any], rows: list[ServiceRow]) -> list[Attention]:
    """Everything that needs a person, the worst first: quorum, dead nodes, services down,
    late data, failed drills, frozen instances."""
    out: list[Attention] = []
    if not cluster.get("quorum", True):
        seen, total = (cluster.get("votes") or [0, 0])[:2]
        out.append(Attention("down", None, f"no quorum: {seen} of {total} votes seen"))
    for node in cluster.get("nodes", []):
        if node["state"] != "up":
            out.append(Attention("down", None, f"node {node['name']} is {node['state']}"))
        elif node.get("frozen"):
            out.append(Attention("warn", None, f"node {node['name']} is frozen"))
    for row in rows:
        out.extend(row.attention)
    return sorted(out, key=lambda a: 0 if a.level == "down" else 1)


def service_row(name: str, view: dict[str, Any], sync: dict[str, Any] | None,
                status: dict[str, Any] | None) -> ServiceRow:  # fmt: skip
    instances = view.get("instances", {})
    running = sorted(n for n, i in instances.items() if i.get("avail") in ("up", "warn"))
    row = ServiceRow(
        name=name,
        avail=view.get("avail", "undef"),
        reason=view.get("reason", ""),
        running_on=running,
        instances=instances,
        frozen=any(i.get("frozen") for i in instances.values()),
    )
    if row.avail in ("down", "undef") or not running:
        row.attention.append(Attention("down", name, f"{name} is {row.avail}: up nowhere"))
    elif row.avail == "warn":
        why = f" ({row.reason})" if row.reason else ""
        row.attention.append(Attention("warn", name, f"{name} is warn{why}"))
    for resource in (sync or {}).get("resources", []):
        for peer in resource["peers"]:
            entry = {
                "rid": resource["rid"],
                "peer": peer["peer"],
                "direction": peer["direction"],
                "age": peer["age"],
                "age_text": age_text(peer["age"]),
                "late": peer["late"],
                "max_delay": resource["max_delay"],
                "max_delay_text": age_text(resource["max_delay"]),
            }
            row.ages.append(entry)
            if peer["late"]:
                row.attention.append(
                    Attention(
                        "warn",
                        name,
                        f"{name} {resource['rid']}: data on {_holder(entry)} is "
                        f"{entry['age_text']} old (sync_max_delay {entry['max_delay_text']})",
                    )
                )
    if status is not None:
        row.last_drill = status.get("last_drill")
        if row.last_drill and row.last_drill.get("result") == "fail":
            row.attention.append(
                Attention("warn", name, f"{name}: the last drill failed: {row.last_drill['error']}")
            )
    if row.frozen:
        row.attention.append(Attention("warn", name, f"{name} is frozen: no automatic action"))
    return row


def _holder(entry: dict[str, Any]) -> str:
    return "this node" if entry["direction"] == "received" else str(entry["peer"])


WHAT_HAPPENS = {
    "switch": "{svc} stops on {here} and starts on {to}. Its users see it stop for as long as "
    "the stop and the start take.",
    "giveback": "{svc} goes back to its first node: it stops where it runs now and starts "
    "there (the data replicated to the DR node goes back first).",
    "freeze": "{svc} is frozen: the daemons take no automatic action on it (no failover, no "
    "restart) until it is thawed. What runs keeps running.",
    "thaw": "{svc} is thawed: the daemons act on it again (failover, restart of what is down).",
}


def timeline(points: list[dict[str, Any]], now: float | None = None) -> dict[str, Any]:
    """Restore points placed on a line 1000 wide: the window is the oldest point's age,
    rounded up to a whole day or hour, at least 24 h."""
    now = time.time() if now is None else now
    oldest = max((float(p.get("age") or 0) for p in points), default=0.0)
    hours = max(24, int(-(-oldest // 3600)))
    if hours > 48:
        hours = int(-(-hours // 24) * 24)
    span = hours * 3600.0
    marks = [
        {
            "x": round(1000 - 1000 * min(span, float(p.get("age") or 0)) / span, 1),
            "name": p["name"],
            "age": age_text(p.get("age")),
            "complete": bool(p.get("complete")),
        }
        for p in points
    ]
    return {"hours": hours, "marks": marks}
