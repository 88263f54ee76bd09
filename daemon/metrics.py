"""Prometheus metrics in the text exposition format, without a client library.

A :class:`Registry` holds families: counters and histograms updated by the
daemon as things happen, gauges computed at scrape time by a callback (the
owner of the data answers), and families declared with no samples yet (sync
metrics, filled by the sync issue).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

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

    def declare(self, name: str, kind: str, help: str) -> None:
        """A family with no samples yet (its owner arrives later)."""
        self._add(Family(name, kind, help))

    def render(self) -> str:
        lines: list[str] = []
        for family in self._families.values():
            lines += family.lines()
        return "\n".join(lines) + "\n"


# Sync metric families: declared now so dashboards can be written; the sync issue fills them.
SYNC_FAMILIES = (
    (
        "ferry_sync_last_success_timestamp_seconds",
        "gauge",
        "Start time of the last successful transfer, per service, resource and target.",
    ),
    ("ferry_sync_data_age_seconds", "gauge", "Age of the data on the target."),
    ("ferry_sync_bytes", "counter", "Bytes moved by sync transfers."),
    ("ferry_sync_duration_seconds", "histogram", "Duration of sync transfers."),
    ("ferry_sync_failures", "counter", "Failed sync transfers."),
)


def declare_sync_families(registry: Registry) -> None:
    for name, kind, help in SYNC_FAMILIES:
        registry.declare(name, kind, help)
