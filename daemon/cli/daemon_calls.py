"""Calls to a ferryd from the CLI's options: its endpoint (the local socket, or ``--server``
with ``--token``), its failures as ActionFailed, the selected services as it knows them,
and an action submitted, then followed to its end with ``--wait``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from daemon.cli import client
from daemon.cli.errors import EXIT_FAILED, EXIT_OK, ActionFailed
from daemon.cli.local_instances import var_dir
from daemon.config.store import SelectorError, config_dir, select, select_among

POLL = 0.5


def endpoint(args: argparse.Namespace) -> client.Endpoint:
    return client.endpoint(var_dir=str(var_dir(args)), server=args.server, token=args.token)


def call(fn: Any, *a: Any, **kw: Any) -> Any:
    """fn(*a, **kw), a ClientError becoming ActionFailed (exit 1)."""
    try:
        return fn(*a, **kw)
    except client.ClientError as exc:
        raise ActionFailed(str(exc)) from None


def services(args: argparse.Namespace, selector: str) -> list[str]:
    """The selected names: from the config dir, or with --server from that daemon's list."""
    if not args.server:
        return select(config_dir(args.config_dir), selector)

    # a remote daemon knows its services (no local config dir needed); globs match its list
    def known() -> list[str]:
        return [s["name"] for s in call(client.list_services, endpoint(args))]

    try:
        return select_among(known, selector, f"on {args.server}")
    except SelectorError as exc:  # as the daemon's own answers: a failure (exit 1)
        raise ActionFailed(str(exc)) from None


def follow(ep: client.Endpoint, action_id: str, limit: float | None, quiet: bool) -> dict[str, Any]:
    """Wait for an action to end, printing its log lines as they come."""
    deadline = None if limit is None else time.monotonic() + limit
    shown = 0
    while True:
        record: dict[str, Any] = call(client.get_action, ep, action_id)
        lines = record.get("log") or []
        if not quiet:
            for line in lines[shown:]:
                text = line.get("message", json.dumps(line)) if isinstance(line, dict) else line
                print(text, file=sys.stderr)
        shown = len(lines)
        if record.get("state") in ("succeeded", "failed"):
            return record
        if deadline is not None and time.monotonic() > deadline:
            return record
        time.sleep(POLL)


def orchestrated(args: argparse.Namespace, selector: str, action: str, **params: Any) -> int:
    """Submit an action to the daemon; with --wait, follow it to its end."""
    ep = endpoint(args)
    code = EXIT_OK
    results = []
    for service in services(args, selector):
        accepted = call(client.submit_action, ep, service, action, **params)
        action_id = accepted["action_id"]
        if not args.wait:
            results.append({"service": service, **accepted})
            if args.output != "json":
                print(f"{service}: {action} submitted as action {action_id} "
                      f"(follow: ferry {service} {action} ... --wait)")  # fmt: skip
            continue
        record = follow(ep, action_id, args.time, quiet=args.output == "json")
        results.append({"service": service, **record})
        state = record.get("state")
        if state != "succeeded":
            code = EXIT_FAILED
            reason = record.get("error") or f"still {state} after {args.time}s"
            print(f"{service}: {action} failed: {reason}", file=sys.stderr)
        elif args.output != "json":
            print(f"{service}: {action} done")
    if args.output == "json":
        print(json.dumps(results if len(results) > 1 else results[0], indent=2, default=str))
    return code
