"""Prometheus metrics: the daemon's families, exposed by ``prometheus_client``.

A :class:`Registry` is the daemon's one collector: counters and histograms it
holds are updated by the daemon as things happen; gauges are read at scrape time
from a callback (the owner of the data answers, nothing keeps a copy). A scrape
asks the registry's :meth:`Registry.collect` for the families, in registration
order, and ``prometheus_client.generate_latest`` writes them in the text format
0.0.4 from a private ``CollectorRegistry`` (never the library's global one).

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

if TYPE_CHECKING:
    from daemon.cluster.state import ClusterState
    from daemon.node.services import NodeServices

Labels = tuple[tuple[str, str], ...]
Sample = tuple[dict[str, str], float]

# What generate_latest writes (CONTENT_TYPE_PLAIN_0_0_4 in recent clients; pyproject allows 0.20).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _bound(value: float) -> str:
    """A bucket's ``le``: 1 and 10 (not 1.0), as before the client library, same series."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass
class Counter:
    """A counter family; exposed as ``<name>_total``."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple((n, labels[n]) for n in self.label_names)
        self.values[key] = self.values.get(key, 0.0) + amount

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.help, labels=self.label_names)
        for key, value in sorted(self.values.items()):
            family.add_metric([v for _, v in key], value)
        return family


@dataclass
class _Buckets:
    counts: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class Histogram:
    """A histogram family: per label set, a count per bucket, the sum and the count."""

    name: str
    help: str
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

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.help, labels=self.label_names)
        for key, entry in sorted(self.series.items()):
            cumulative: list[tuple[str, float]] = []
            running = 0
            for bound, count in zip(self.buckets, entry.counts, strict=True):
                running += count
                cumulative.append((_bound(bound), running))
            cumulative.append(("+Inf", entry.count))
            family.add_metric([v for _, v in key], cumulative, entry.total)
        return family


@dataclass
class CallbackGauge:
    """A gauge family whose samples its owner computes at each scrape."""

    name: str
    help: str
    read: Callable[[], Iterable[Sample]]

    def family(self) -> Metric:
        samples = list(self.read())
        names = tuple(samples[0][0]) if samples else ()
        family = GaugeMetricFamily(self.name, self.help, labels=names)
        for labels, value in samples:
            if tuple(labels) != names:
                raise ValueError(f"{self.name}: labels {sorted(labels)} after {sorted(names)}")
            family.add_metric([labels[n] for n in names], value)
        return family


Family = Counter | Histogram | CallbackGauge


class Registry:
    """The daemon's metric families: a ``prometheus_client`` collector, rendered by it."""

    content_type = CONTENT_TYPE

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}
        self._exposition = CollectorRegistry(auto_describe=False)
        self._exposition.register(self)

    def _add(self, family: Family) -> None:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} registered twice")
        self._families[family.name] = family

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        family = Counter(name, help, tuple(labels))
        self._add(family)
        return family

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> Histogram:
        family = Histogram(name, help, tuple(labels), buckets)
        self._add(family)
        return family

    def gauge(self, name: str, help: str, collect: Callable[[], Iterable[Sample]]) -> None:
        self._add(CallbackGauge(name, help, collect))

    def collects(self, name: str) -> bool:
        """Is a family of that name registered?"""
        return name in self._families

    def collect(self) -> Iterator[Metric]:
        """The families as they are now (prometheus_client's collector interface)."""
        for family in self._families.values():
            yield family.family()

    def exposition(self) -> bytes:
        """The text format 0.0.4 (served as :data:`CONTENT_TYPE`)."""
        return generate_latest(self._exposition)

    def render(self) -> str:
        return self.exposition().decode()


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
