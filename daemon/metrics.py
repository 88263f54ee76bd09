"""Prometheus metrics: the daemon's families, exposed by ``prometheus_client``.

A :class:`Registry` is the daemon's one collector: counters and histograms it
holds are updated by the daemon as things happen; gauges are read at scrape time
from a callback (the owner of the data answers, nothing keeps a copy). A scrape
asks the registry's :meth:`Registry.collect` for the families, in registration
order, and ``prometheus_client.generate_latest`` writes them in the text format
0.0.4 from a private ``CollectorRegistry`` (never the library's global one).

The owners of the data register their gauges: the node's services and their sync
resources (``daemon/node/metrics.py``), the peers (``daemon/cluster/metrics.py``),
restore points and drills (``metrics.py`` of ``daemon/restore`` and ``daemon/drill``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

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
