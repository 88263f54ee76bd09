"""What a node will use: a service's keywords evaluated and converted for that node."""

from __future__ import annotations

from typing import Any

from daemon.service.config import ServiceConfig


def evaluated_config(svc: ServiceConfig, node: str) -> dict[str, dict[str, Any]]:
    """The keywords set for node (in the section or inherited), evaluated and converted."""
    out: dict[str, dict[str, Any]] = {}
    for name, bound in svc.sections.items():
        values: dict[str, Any] = {}
        if bound.manifest is None:
            for key in bound.variants:
                values[key] = svc.text(name, key, node)
        else:
            for keyword in bound.manifest.keywords:
                if svc.find_entry(name, keyword.name, node) is not None or (
                    name == "DEFAULT" and keyword.name in ("nodes", "topology")
                ):
                    values[keyword.name] = svc.value(name, keyword.name, node)
        out[name] = values
    return out
