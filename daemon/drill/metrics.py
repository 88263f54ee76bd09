"""The drills in /metrics: an alert can fire when no drill has passed for a week."""

from __future__ import annotations

from daemon.drill.record import PASS, DrillStore
from daemon.metrics import Registry, Sample


def register_drill_gauges(registry: Registry, store: DrillStore, node: str) -> None:
    def last_success() -> list[Sample]:
        out: list[Sample] = []
        for service in store.services():
            passed = [r for r in store.history(service) if r.get("result") == PASS]
            if passed:
                when = passed[0].get("ended_at") or passed[0].get("started_at") or 0.0
                out.append(({"service": service, "node": node}, float(when)))
        return out

    def last_result() -> list[Sample]:
        out: list[Sample] = []
        for service in store.services():
            last = store.last(service)
            if last is not None:
                value = 1.0 if last.get("result") == PASS else 0.0
                out.append(({"service": service, "node": node}, value))
        return out

    def rto() -> list[Sample]:
        out: list[Sample] = []
        for service in store.services():
            last = store.last(service)
            if last is not None and last.get("rto_seconds") is not None:
                out.append(({"service": service, "node": node}, float(last["rto_seconds"])))
        return out

    registry.gauge(
        "ferry_drill_last_success_timestamp_seconds",
        "When the last drill that passed ended (unix time), per service and node.",
        last_success,
    )
    registry.gauge(
        "ferry_drill_last_result",
        "The last drill's result: 1 pass, 0 fail.",
        last_result,
    )
    registry.gauge(
        "ferry_drill_rto_seconds",
        "The last drill's measured RTO: from its start to every resource up in the bubble.",
        rto,
    )
