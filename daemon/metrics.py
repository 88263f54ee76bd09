"""Prometheus metrics in the text exposition format, without a client library.

A :class:`Registry` holds families: counters and histograms updated by the
daemon as things happen, gauges computed at scrape time by a callback (the
owner of the data answers).

The sync families (per service, sync resource and target: last success, data
age, bytes and duration of the last success, running) are read at scrape time
from the stamps and progress files the sync drivers write (``daemon/sync``); the
peer families (alive, frozen per node) from the cluster state's snapshot.
"""

from __future__ import annotations

import bisect
import functools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daemon.cluster.state import ClusterState
    from daemon.node.services import NodeServices

Labels = tuple[tuple[str, str], ...]
Sample = tuple[dict[str, str], float]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels | dict[str, str], extra: tuple[str, str] | None = None) -> str:
    items = list(labels.items() if isinstance(labels, dict) else labels)
    if extra:
        items.append(extra)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass
class Family:
    name: str
    kind: str  # counter, gauge, histogram
    help: str

    def header(self) -> list[str]:
        # Text format 0.0.4: a counter's family is named with its _total suffix.
        name = f"{self.name}_total" if self.kind == "counter" else self.name
        return [f"# HELP {name} {self.help}", f"# TYPE {name} {self.kind}"]

    def lines(self) -> list[str]:
        return self.header()


@dataclass
class Counter(Family):
    label_names: tuple[str, ...] = ()
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple((n, labels[n]) for n in self.label_names)
        self.values[key] = self.values.get(key, 0.0) + amount

    def lines(self) -> list[str]:
        out = self.header()
        for key, value in sorted(self.values.items()):
            out.append(f"{self.name}_total{_labels(key)} {_number(value)}")
        return out


@dataclass
class _Buckets:
    counts: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class Histogram(Family):
    label_names: tuple[str, ...] = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    series: dict[Labels, _Buckets] = field(default_factory=dict)

    def observe(self, value: float, **labels: str) -> None:
        key = tuple((n, labels[n]) for n in self.label_names)
        entry = self.series.get(key)
        if entry is None:
            entry = self.series[key] = _Buckets([0] * len(self.buckets))
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            entry.counts[index] += 1
        entry.total += value
        entry.count += 1

    def lines(self) -> list[str]:
        out = self.header()
        for key, entry in sorted(self.series.items()):
            running = 0
            for bound, count in zip(self.buckets, entry.counts, strict=True):
                running += count
                out.append(f"{self.name}_bucket{_labels(key, ('le', _number(bound)))} {running}")
            out.append(f"{self.name}_bucket{_labels(key, ('le', '+Inf'))} {entry.count}")
            out.append(f"{self.name}_sum{_labels(key)} {_number(entry.total)}")
            out.append(f"{self.name}_count{_labels(key)} {entry.count}")
        return out


@dataclass
class CallbackGauge(Family):
    collect: Callable[[], Iterable[Sample]] = lambda: ()

    def lines(self) -> list[str]:
        out = self.header()
        for labels, value in self.collect():
            out.append(f"{self.name}{_labels(labels)} {_number(value)}")
        return out


class Registry:
    """The daemon's metric families, rendered in registration order."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}

    def _add(self, family: Family) -> None:
        existing = self._families.get(family.name)
        # A family declared empty (by declare) is a placeholder its owner replaces.
        if existing is not None and type(existing) is not Family:
            raise ValueError(f"metric {family.name} registered twice")
        self._families[family.name] = family

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        family = Counter(name, "counter", help, tuple(labels))
        self._add(family)
        return family

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> Histogram:
        family = Histogram(name, "histogram", help, tuple(labels), buckets)
        self._add(family)
        return family

    def gauge(self, name: str, help: str, collect: Callable[[], Iterable[Sample]]) -> None:
        self._add(CallbackGauge(name, "gauge", help, collect))

    def collects(self, name: str) -> bool:
        """Is a family of that name registered?"""
        return name in self._families

    def render(self) -> str:
        lines: list[str] = []
        for family in self._families.values():
            lines += family.lines()
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- sync and peers

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
PEER_FAMILIES = (
    ("ferry_cluster_node_alive", "1 when the node is alive as this node sees it, else 0."),
    ("ferry_cluster_node_frozen", "1 when the node is frozen (no automatic action), else 0."),
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
    from daemon.config.errors import ConfigError
    from daemon.node.services import UnknownService
    from daemon.service.loader import NotAnInstance
    from daemon.sync import stamps
    from daemon.sync.base import SyncDriver
    from daemon.sync.progress import running_transfer

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


def peer_samples(state: ClusterState, field_name: str) -> list[Sample]:
    """One sample per node of the cluster state (this node included): alive or frozen, 0/1."""
    nodes = state.snapshot.nodes
    return [
        ({"node": name}, 1.0 if getattr(info, field_name) else 0.0)
        for name, info in sorted(nodes.items())
    ]


def register_peer_gauges(registry: Registry, state: ClusterState) -> None:
    """Per node of the cluster: alive and frozen, from the cluster state's snapshot."""
    if registry.collects(PEER_FAMILIES[0][0]):
        return
    for (name, help), field_name in zip(PEER_FAMILIES, ("alive", "frozen"), strict=True):
        registry.gauge(name, help, functools.partial(peer_samples, state, field_name))
