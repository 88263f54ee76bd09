"""The replication report of a service on this node: per sync resource and peer, the last
transfer and the data age over the last day (what the console charts)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from daemon.api.auth import Role
from daemon.api.http import ApiError, Call, PathParam, QueryParam, Route
from daemon.api.schemas import _Response
from daemon.config.errors import ConfigError
from daemon.config.store import SERVICE_NAME_PATTERN
from daemon.node.services import UnknownService
from daemon.service.loader import NotAnInstance
from daemon.sync import stamps
from daemon.sync.progress import running_transfer

MAX_HOURS = 24
SVC = PathParam("svc", SERVICE_NAME_PATTERN, "Service name.")


class Transfer(_Response):
    """The last successful transfer between this node and one peer."""

    started: float = Field(description="When it started (unix time): the data is this old.")
    ended: float
    bytes: int
    seconds: float
    mode: str = Field(description="full or incremental")


class SyncPeer(_Response):
    peer: str
    direction: Literal["sent", "received"]
    last: Transfer | None = Field(description="None: nothing has gone through yet.")
    age: float | None = Field(description="Seconds since the last transfer started.")
    late: bool = Field(description="age is over sync_max_delay, or nothing arrived yet.")
    age_series: list[list[float]] = Field(
        description="[unix time, data age in seconds] points over the window: the age drops "
        "at each transfer's end and grows until the next one."
    )


class SyncResourceReport(_Response):
    rid: str
    label: str
    max_delay: float = Field(description="sync_max_delay, in seconds.")
    status: str
    running: dict[str, Any] | None = Field(
        default=None, description="The transfer running now: bytes, total, rate, eta."
    )
    peers: list[SyncPeer]


class SyncReport(_Response):
    service: str
    node: str
    hours: float
    resources: list[SyncResourceReport]


def age_series(history: list[stamps.Stamp], since: float, now: float) -> list[list[float]]:
    """The data age from since to now as a sawtooth: at a transfer's end the age is its
    duration (the data is as old as the transfer's start), then it grows by one a second."""
    points: list[list[float]] = []
    previous: stamps.Stamp | None = None
    for stamp in sorted(history, key=lambda s: s.ended):
        if stamp.ended < since:
            previous = stamp
            continue
        if previous is not None:
            if not points:  # the age at the window's start, from the transfer before it
                points.append([since, since - previous.started])
            points.append([stamp.ended, stamp.ended - previous.started])
        points.append([stamp.ended, max(0.0, stamp.ended - stamp.started)])
        previous = stamp
    if previous is not None:
        if not points:  # the last transfer is older than the window: its age at since
            points.append([since, since - previous.started])
        points.append([now, now - previous.started])
    return [[round(t, 3), round(a, 3)] for t, a in points]


def _peer(
    path: Any,
    peer: str,
    direction: Literal["sent", "received"],
    now: float,
    since: float,
    delay: float,
) -> SyncPeer:
    last = stamps.read(path)
    history = stamps.history(stamps.history_path(path), since - MAX_HOURS * 3600)
    if last is not None and all(h.ended != last.ended for h in history):
        history.append(last)  # written before the history existed
    age = None if last is None else max(0.0, now - last.started)
    return SyncPeer(
        peer=peer,
        direction=direction,
        last=None
        if last is None
        else Transfer(
            started=last.started,
            ended=last.ended,
            bytes=last.bytes,
            seconds=last.seconds,
            mode=last.mode,
        ),
        age=age,
        late=age is None or age > delay,
        age_series=age_series(history, since, now),
    )


async def sync_report(call: Call) -> SyncReport:
    name = call.path("svc")
    hours = call.query_number("hours", MAX_HOURS, 0.1, MAX_HOURS)
    try:
        inst = call.ctx.services.instance(name)
    except UnknownService:
        raise ApiError(404, f"no service {name!r} on {call.ctx.nodename}", field="svc") from None
    except (ConfigError, NotAnInstance) as exc:
        raise ApiError(409, f"{name}: {exc}") from None
    now = time.time()
    since = now - hours * 3600
    out: list[SyncResourceReport] = []
    for rid in sorted(inst.sync_rids):
        resource: Any = inst.resources[rid]
        delay = float(resource.max_delay)
        peers: list[SyncPeer] = []
        if await resource.refusal():
            # Not the sender here (as in the resource's status): what this node received.
            received = stamps.received_path(inst.state_dir, rid)
            if received.exists():
                source = stamps.read(received)
                peers.append(
                    _peer(received, source.source if source else "?", "received", now, since, delay)
                )
        else:
            for target in resource.targets():
                path = stamps.sent_path(inst.state_dir, rid, target)
                peers.append(_peer(path, target, "sent", now, since, delay))
        report = await resource.status()
        out.append(
            SyncResourceReport(
                rid=rid,
                label=resource.label(),
                max_delay=delay,
                status=str(report.status),
                running=running_transfer(resource.sync_dir / "progress.json"),
                peers=peers,
            )
        )
    return SyncReport(service=name, node=call.ctx.nodename, hours=hours, resources=out)


SYNC_ROUTES = (
    Route(
        "GET",
        "/api/services/{svc}/sync",
        sync_report,
        "Replication on this node: per sync resource and peer, the last transfer and the data "
        "age over the last hours",
        Role.GUEST,
        SyncReport,
        path_params=(SVC,),
        query=(
            QueryParam(
                "hours", "number", "The window of the age series.", minimum=0.1, maximum=MAX_HOURS
            ),
        ),
        errors=(400, 404, 409),
        tag="services",
    ),
)
