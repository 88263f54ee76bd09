"""The sync resources of this node's services in /metrics (per service, sync resource and
target: last success, data age, bytes and duration of the last success, running), read
at scrape time from the stamps and progress files the sync drivers write."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from daemon.config.errors import ConfigError
from daemon.metrics import Registry, Sample
from daemon.node.services import NodeServices, UnknownService
from daemon.service.loader import NotAnInstance
from daemon.sync import stamps
from daemon.sync.base import SyncDriver
from daemon.sync.progress import running_transfer

SYNC_FAMILIES = (
    (
        "ferry_sync_last_success_timestamp_seconds",
        "Start time of the last successful transfer (the data is as old as this).",
    ),
    ("ferry_sync_data_age_seconds", "Age of the data on the target: now minus that start time."),
    ("ferry_sync_last_bytes", "Bytes moved by the last successful transfer."),
    ("ferry_sync_last_duration_seconds", "Duration of the last successful transfer."),
    ("ferry_sync_running", "1 while a transfer to the target runs, else 0 (sending side)."),
)
SYNC_CACHE_SECONDS = 1.0  # one scrape reads the stamps once for all its families


@dataclass(frozen=True)
class SyncRow:
    """One sync resource and target as this node knows it.

    A sending row (``source`` = this node) per target of the resource, with the
    stamp of the last success to it and whether a transfer to it runs now; a
    receiving row (``target`` = this node) when this node holds a received stamp.
    """

    service: str
    rid: str
    source: str
    target: str
    started: float | None = None
    bytes: int | None = None
    seconds: float | None = None
    running: bool | None = None  # None on a receiving row

    @property
    def labels(self) -> dict[str, str]:
        return {"service": self.service, "rid": self.rid, "source": self.source,
                "target": self.target}  # fmt: skip


def sync_rows(services: NodeServices) -> list[SyncRow]:
    """Every sync resource of the services installed here, from its stamps and progress file."""
    rows: list[SyncRow] = []
    for name in services.names():
        try:
            instance = services.instance(name)
        except (UnknownService, ConfigError, NotAnInstance, OSError, ValueError):
            continue  # not a service of this node, or broken: its status says so
        node = instance.node
        for resource in instance.resources.values():
            if not isinstance(resource, SyncDriver) or resource.disabled:
                continue
            rid = resource.rid
            running = running_transfer(resource.sync_dir / "progress.json")
            moving = str(running.get("target")) if running else None
            for target, stamp in resource.last_success().items():
                row = SyncRow(name, rid, node, target, running=moving == target)
                if stamp is not None:
                    row = replace(row, started=stamp.started, bytes=stamp.bytes,
                                  seconds=stamp.seconds)  # fmt: skip
                rows.append(row)
            received = stamps.read(stamps.received_path(resource.state_dir, rid))
            if received is not None:
                rows.append(SyncRow(name, rid, received.source, node, received.started,
                                    received.bytes, received.seconds))  # fmt: skip
    return rows


class _SyncView:
    """The sync rows, read at most once per SYNC_CACHE_SECONDS."""

    def __init__(self, read: Callable[[], list[SyncRow]], clock: Callable[[], float]) -> None:
        self.read = read
        self.clock = clock
        self._rows: list[SyncRow] = []
        self._at: float | None = None

    def rows(self) -> list[SyncRow]:
        now = time.monotonic()
        if self._at is None or now - self._at >= SYNC_CACHE_SECONDS:
            self._rows, self._at = self.read(), now
        return self._rows

    def samples(self, family: str) -> list[Sample]:
        out: list[Sample] = []
        for row in self.rows():
            if family == "ferry_sync_running":
                if row.running is not None:
                    out.append((row.labels, 1.0 if row.running else 0.0))
                continue
            if row.started is None:
                continue  # never succeeded: no time, age, size or duration to tell
            value = {
                "ferry_sync_last_success_timestamp_seconds": row.started,
                "ferry_sync_data_age_seconds": max(0.0, self.clock() - row.started),
                "ferry_sync_last_bytes": float(row.bytes or 0),
                "ferry_sync_last_duration_seconds": float(row.seconds or 0.0),
            }[family]
            out.append((row.labels, value))
        return out


def register_sync_gauges(
    registry: Registry, services: NodeServices, clock: Callable[[], float] = time.time
) -> None:
    """Fill the sync families from the stamps and progress files of this node's services.

    A second call is a no-op.
    """
    if registry.collects(SYNC_FAMILIES[0][0]):
        return
    view = _SyncView(lambda: sync_rows(services), clock)
    for name, help in SYNC_FAMILIES:
        registry.gauge(name, help, functools.partial(view.samples, name))
