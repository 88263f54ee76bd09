"""``ferry SVC print restorepoints [--node N]``, ``ferry SVC restorepoint delete POINT``,
and the restore point pre-flight of ``takeover --at`` / ``drill --at``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from daemon.cli import client
from daemon.cli.daemon_calls import endpoint
from daemon.cli.errors import EXIT_OK, ActionFailed, UsageError
from daemon.cli.local_instances import instances
from daemon.sync.progress import human_bytes

EXIT_REFUSED = 2


def _query(**values: str | None) -> str:
    pairs = [f"{k}={quote(v, safe='')}" for k, v in values.items() if v]
    return "?" + "&".join(pairs) if pairs else ""


def fetch(
    args: argparse.Namespace,
    service: str,
    at: str | None = None,
    timeout: float = client.DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """The points of service (on --node, or here): through the daemon, else (no daemon
    here) from this node's var dir. UsageError for an ``at`` that chooses none."""
    path = f"/api/services/{quote(service, safe='')}/restorepoints"
    query = _query(node=args.node, at=at)
    try:
        return dict(client.request(endpoint(args), "GET", path + query, timeout=timeout))
    except client.ClientError as exc:
        if 400 <= exc.status < 500:
            raise UsageError(str(exc).removeprefix("at: ")) from None
        if args.server or args.node or exc.status:
            raise ActionFailed(str(exc)) from None
    from daemon.restore import catalog
    from daemon.restore.points import PointError

    try:
        return catalog.listing(instances(args, service)[0], at)
    except PointError as exc:
        raise UsageError(str(exc)) from None


def print_restorepoints(args: argparse.Namespace, selector: str) -> int:
    listed = fetch(args, selector)
    if args.output == "json":
        print(json.dumps(listed, indent=2, default=str))
        return EXIT_OK
    points = listed.get("points") or []
    if not points:
        print(f"{listed.get('service')}: no restore point on {listed.get('node')} yet "
              "(the targets keep one after every sync)")  # fmt: skip
        return EXIT_OK
    print(f"{'restore point':<22} {'age':>8} {'complete':<9} {'size':>10}  resources")
    for point in points:
        size = human_bytes(point["size"]) if point.get("size") is not None else "?"
        print(f"{point['name']:<22} {_age(point.get('age', 0)):>8} "
              f"{'yes' if point.get('complete') else 'no':<9} {size:>10}  "
              f"{' '.join(point.get('resources') or [])}")  # fmt: skip
    if listed.get("pending"):
        print(f"pending: point {listed['pending'].get('point')} becomes the live data at the "
              "next start here")  # fmt: skip
    for warning in listed.get("warnings") or []:
        print(f"warning: {warning}")
    return EXIT_OK


def delete_restorepoint(args: argparse.Namespace, selector: str) -> int:
    name = str(args.point or "")
    path = f"/api/services/{quote(selector, safe='')}/restorepoints/{quote(name, safe='')}"
    try:
        done = client.request(endpoint(args), "DELETE", path + _query(node=args.node))
    except client.ClientError as exc:
        if 400 <= exc.status < 500:
            print(f"ferry: restorepoint delete refused: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        raise ActionFailed(str(exc)) from None
    if args.output == "json":
        print(json.dumps(done, indent=2))
    else:
        print(f"{selector}: restore point {name} deleted on {done.get('node')} "
              f"({' '.join(done.get('resources') or []) or 'no resource held it'})")  # fmt: skip
    return EXIT_OK


def _age(seconds: float) -> str:
    from daemon.restore.points import human_age

    return human_age(float(seconds))
