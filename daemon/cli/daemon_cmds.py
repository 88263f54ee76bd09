"""Commands that go through the daemon: orchestrated service actions, DR activation with its
pre-flight summary, and the node-level commands (daemon, token, mon)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon.cli import client, instance_cmds, restore_cmds
from daemon.cli.daemon_calls import call, endpoint, orchestrated, services
from daemon.cli.errors import EXIT_FAILED, EXIT_OK, ActionFailed, UsageError
from daemon.cli.local_instances import var_dir
from daemon.config.store import config_dir, local_nodename
from daemon.system import process

ACTIVATION_TIME = 900.0  # switch, takeover, giveback wait this long at most by default


def print_status(args: argparse.Namespace, selector: str) -> int:
    """``print status``: evaluated here; with ``--server``, as that daemon sees its instances."""
    if not args.server:
        return instance_cmds.print_status(args, selector)
    ep = endpoint(args)
    states = [call(client.get_status, ep, name) for name in services(args, selector)]
    return instance_cmds.show_statuses(args, states)


def _age(seconds: Any) -> str:
    if seconds is None:
        return "never synced"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s old"
    if seconds < 7200:
        return f"{seconds // 60}m old"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m old"


def preflight_text(service: str, to: str, facts: dict[str, Any]) -> str:
    """What a DR activation will do, in words a non-expert reads before saying yes."""
    running = facts.get("running_on") or []
    alive = facts.get("running_node_alive")
    lines = [f"Activate {service} on {to}."]
    if running:
        state = "alive" if alive else "NOT reachable (dead or cut off)"
        lines.append(f"  runs now on: {', '.join(running)} ({state})")
    else:
        lines.append("  runs now on: nowhere")
    ages = facts.get("data_age") or {}
    for rid, per_node in sorted(ages.items()):
        age = (per_node or {}).get(to)
        lines.append(f"  data of {rid} on {to}: {_age(age)}")
    if running and alive:
        where = ", ".join(running)
        lines.append(f"  plan: sync to {to}, stop the containers and apps on {where}, final sync "
                     f"to {to}, stop on {where}, start on {to}: nothing is lost")  # fmt: skip
    elif running:
        lines.append(f"  plan: start on {to} from its last synced data (data written on "
                     f"{', '.join(running)} since then is not there)")  # fmt: skip
    else:
        lines.append(f"  plan: start on {to}")
    will_start = facts.get("will_start") or []
    if will_start:
        lines.append(f"  will start: {' '.join(will_start)}")
    return "\n".join(lines)


def activate(args: argparse.Namespace, selector: str, action: str) -> int:
    """switch --to N / takeover: show the pre-flight summary, confirm, then submit."""
    if action == "switch" and not args.to:
        raise UsageError("switch needs --to NODE")
    # A DR activation is followed to its end: the operator wants to know it worked.
    args.wait = True
    args.time = args.time if args.time is not None else ACTIVATION_TIME
    to = args.to if action == "switch" else local_nodename()
    ep = endpoint(args)
    at = getattr(args, "at", None)
    for service in services(args, selector):
        facts = call(client.request, ep, "GET", f"/api/services/{service}/dr?to={to}")
        choice = restore_cmds.fetch(args, service, at)["choice"] if at else ""
        if args.output != "json":
            print(preflight_text(service, to, facts), flush=True)
            if choice:
                print(f"  data: {choice}", flush=True)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("confirm with --yes (no terminal to ask on)")
            answer = input(f"Activate {service} on {to}? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("nothing done")
                return EXIT_FAILED
    params: dict[str, Any] = {"to": to} if action == "switch" else {}
    if at:
        params["at"] = at
    code = orchestrated(args, selector, action, **params)
    if code == EXIT_OK and args.wait and args.output != "json":
        for service in services(args, selector):
            _report_activation(ep, service)
    return code


def _report_activation(ep: client.Endpoint, service: str) -> None:
    """After a DR activation: say how old the data was (the RPO), as recorded."""
    try:
        status = client.get_status(ep, service)
    except client.ClientError:
        return
    activation = status.get("last_activation") or {}
    if activation.get("rpo_seconds") is not None:
        print(f"{service}: activated on {activation.get('node', '?')} with data "
              f"{_age(activation['rpo_seconds'])} (RPO, recorded in the service log)")  # fmt: skip


Handler = Callable[[argparse.Namespace, str], int]


def through_daemon(action: str) -> Handler:
    """A CLI handler submitting ``action`` to the daemon (giveback is followed to its end)."""

    def handler(args: argparse.Namespace, selector: str) -> int:
        if action == "giveback":
            args.wait = True
            args.time = args.time if args.time is not None else ACTIVATION_TIME
        return orchestrated(args, selector, action)

    return handler


def activation(action: str) -> Handler:
    """A CLI handler for switch / takeover, with the pre-flight summary."""

    def handler(args: argparse.Namespace, selector: str) -> int:
        return activate(args, selector, action)

    return handler


# ------------------------------------------------------------------------- node commands


def daemon_command(args: argparse.Namespace) -> int:
    """ferry daemon run|status|stop."""
    verb = args.words[0] if args.words else ""
    vdir = var_dir(args)
    if verb == "run":
        argv = ["ferryd", "--config-dir", str(config_dir(args.config_dir)), "--var-dir", str(vdir)]
        os.execvp(sys.executable, [sys.executable, "-m", "daemon.main", *argv[1:]])
    if verb == "status":
        ep = endpoint(args)
        health = call(client.health, ep)
        node = call(client.get_node, ep)
        if args.output == "json":
            print(json.dumps({"health": health, "node": node}, indent=2, default=str))
        else:
            print(f"ferryd on {node.get('name', '?')}: {health.get('status', 'ok')}")
        return EXIT_OK
    if verb == "stop":
        return _stop_daemon(vdir)
    raise UsageError("ferry daemon run|status|stop")


def _stop_daemon(vdir: Path, wait: float = 30.0) -> int:
    try:
        pid = int((vdir / "ferryd.lock").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        print("ferryd is not running", file=sys.stderr)
        return EXIT_OK
    if b"daemon.main" not in cmdline and b"ferryd" not in cmdline:
        print("ferryd is not running (stale lock)", file=sys.stderr)
        return EXIT_OK
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not process.alive(pid):
            print(f"ferryd (pid {pid}) stopped")
            return EXIT_OK
        time.sleep(0.2)
    raise ActionFailed(f"ferryd (pid {pid}) did not stop within {wait:g}s")


def token_command(args: argparse.Namespace) -> int:
    """ferry token create --role ROLE [--name NAME] | list | revoke --name NAME."""
    from daemon.api.auth import TokenError, create_token, list_tokens, revoke_token

    verb = args.words[0] if args.words else ""
    vdir = var_dir(args)
    try:
        if verb == "create":
            if not args.role:
                raise UsageError("token create needs --role root|operator|guest")
            print(create_token(vdir, args.role, args.name or f"{args.role}-{int(time.time())}"))
            return EXIT_OK
        if verb == "list":
            print(json.dumps(list_tokens(vdir), indent=2, default=str))
            return EXIT_OK
        if verb == "revoke":
            if not args.name:
                raise UsageError("token revoke needs --name NAME")
            if not revoke_token(vdir, args.name):
                raise ActionFailed(f"no token named {args.name}")
            return EXIT_OK
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    raise UsageError("ferry token create|list|revoke")


def mon_command(args: argparse.Namespace) -> int:
    """ferry mon: a live view of the cluster, redrawn on every event (Ctrl-C to leave)."""
    ep = endpoint(args)
    once = bool(args.words and args.words[0] == "once")
    if args.output == "json":
        print(json.dumps(call(client.get_cluster, ep), indent=2, default=str))
        return EXIT_OK
    _draw(call(client.get_cluster, ep), clear=not once)
    if once:
        return EXIT_OK
    try:
        for _event in client.stream_events(ep):
            _draw(call(client.get_cluster, ep), clear=True)
    except client.ClientError as exc:
        raise ActionFailed(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def render_cluster(cluster: dict[str, Any]) -> str:
    """The cluster at a glance: nodes, then one line per service with each node's instance."""
    nodes = cluster.get("nodes") or []
    names = [str(n.get("name")) for n in nodes]
    lines = [f"cluster {cluster.get('name', '?')} (seen from {cluster.get('node', '?')})"]
    for n in nodes:
        flags = " frozen" if n.get("frozen") else ""
        lines.append(f"  {n.get('name'):<8} {n.get('state', '?'):<6} load {n.get('load', 0):.2f}"
                     f"{flags}")  # fmt: skip
    lines.append("")
    lines.append(
        f"  {'service':<14}{'avail':<11}" + "".join(f"{name:<22}" for name in names) + "expect"
    )
    notes: list[str] = []
    for svc, data in sorted((cluster.get("services") or {}).items()):
        instances = data.get("instances") or {}
        cells = []
        for name in names:
            inst = instances.get(name)
            if not inst:
                cells.append(f"{'-':<22}")
                continue
            text = str(inst.get("avail", "?"))
            monitor = inst.get("monitor")
            if monitor and monitor != "idle":
                text += f" ({monitor})"
            if inst.get("frozen"):
                text += " *"
            cells.append(f"{text:<22}")
        expect = data.get("expect") or {}
        expect_text = str(expect.get("value") or "")
        if expect.get("outcome"):
            expect_text += f" ({expect['outcome']})"
        avail = str(data.get("avail") or "?")
        lines.append(f"  {svc:<14}{avail:<11}" + "".join(cells) + expect_text)
        if avail == "warn":
            notes.append(f"  {svc}: {data.get('reason', '')}")
    lines.append("  (* frozen)")
    lines += notes
    return "\n".join(lines)


def _draw(cluster: dict[str, Any], clear: bool) -> None:
    if clear and sys.stdout.isatty():
        print("\033[H\033[J", end="")
    print(render_cluster(cluster), flush=True)  # a live view: each redraw shows at once
