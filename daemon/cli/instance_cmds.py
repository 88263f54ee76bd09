"""Instance commands run on this node: start, stop, startstandby, print status."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from daemon.cli.daemon_calls import orchestrated
from daemon.cli.errors import EXIT_FAILED, EXIT_OK, ActionFailed, UsageError
from daemon.cli.local_instances import instances, rids, var_dir, with_action_log
from daemon.service.instance import ActionError, Instance, InstanceState
from daemon.service.lock import LockBusy


async def _act(instance: Instance, action: str, args: argparse.Namespace) -> InstanceState:
    wait = float(args.lock_wait)
    if action == "start":
        return await instance.start(rids(args), lock_wait=wait)
    if action == "startstandby":
        return await instance.start(rids(args), standby_only=True, lock_wait=wait)
    return await instance.stop(rids(args), force=args.force, lock_wait=wait)


def _run_action(args: argparse.Namespace, selector: str, action: str) -> int:
    if not args.local:
        params: dict[str, object] = {"rids": rids(args), "force": args.force}
        return orchestrated(args, selector, action, **params)
    with_action_log()
    code = EXIT_OK
    results = []
    for instance in instances(args, selector):
        try:
            state = asyncio.run(_act(instance, action, args))
            results.append({"service": instance.name, "ok": True, "status": state.as_dict()})
        except (ActionError, LockBusy) as exc:
            print(f"{instance.name}: {action} failed: {exc}", file=sys.stderr)
            results.append({"service": instance.name, "ok": False, "error": str(exc)})
            code = EXIT_FAILED
    if args.output == "json":
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    return code


def start(args: argparse.Namespace, selector: str) -> int:
    """start; with --local --at POINT, from a restore point (the DR activation by hand,
    without a daemon: the point becomes the live data, then everything starts)."""
    if args.at:
        if not args.local:
            raise UsageError("start --at needs --local (through the daemon: takeover --at)")
        if args.rid:
            raise UsageError("start --at starts every resource: --rid does not apply")
        from daemon.restore import catalog
        from daemon.restore.points import PointError

        for instance in instances(args, selector):
            try:
                chosen = catalog.request_takeover(instance, args.at, "cli start --at")
            except PointError as exc:
                raise UsageError(str(exc)) from None
            if args.output != "json":
                print(f"{instance.name}: starting from restore point {chosen['restore_point']}")
        code = _run_action(args, selector, "start")
        if code != EXIT_OK:
            from daemon.restore import pending

            for instance in instances(args, selector):
                pending.cancel(instance.var_dir, instance.name)
        return code
    return _run_action(args, selector, "start")


def stop(args: argparse.Namespace, selector: str) -> int:
    return _run_action(args, selector, "stop")


def startstandby(args: argparse.Namespace, selector: str) -> int:
    return _run_action(args, selector, "startstandby")


FLAG_LETTERS = (("monitor", "M"), ("disabled", "D"), ("optional", "O"), ("standby", "S"))


def render_tree(state: dict[str, Any]) -> str:
    """The human view of an InstanceState dict (local or from a daemon's API): service,
    instance, then one line per resource with flags and label."""
    lines = [f"{state['service']:<34} {state['overall']}"]
    lines.append("`- instances")
    lines.append(f"   `- {state['node']:<28} {state['avail']:<10} overall {state['overall']}")
    resources: dict[str, dict[str, Any]] = state["resources"]
    for index, (rid, res) in enumerate(resources.items()):
        last = index == len(resources) - 1
        branch = "`-" if last else "|-"
        flags = "".join(letter if res.get(name) else "." for name, letter in FLAG_LETTERS)
        lines.append(f"      {branch} {rid:<14} {flags} {res['status']:<10} {res['label']}")
        pad = "   " if last else "|  "
        lines += [f"      {pad}   {entry}" for entry in res.get("log", [])]
    drill = state.get("last_drill")
    if drill:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(drill.get("started_at") or 0))
        rto = drill.get("rto_seconds")
        text = f"last drill: {drill.get('result') or drill.get('state')} {when}"
        if rto is not None:
            text += f", RTO {rto:.1f}s"
        if drill.get("error"):
            text += f" ({drill['error']})"
        lines.append(text)
    return "\n".join(lines)


def show_statuses(args: argparse.Namespace, states: list[dict[str, Any]]) -> int:
    """Print InstanceState dicts: JSON (one object, or a list for several) or trees."""
    if args.output == "json":
        print(json.dumps(states if len(states) > 1 else states[0], indent=2))
    else:
        print("\n\n".join(render_tree(s) for s in states))
    return EXIT_OK


def print_status(args: argparse.Namespace, selector: str) -> int:
    """This node's instances, evaluated here (no daemon needed)."""
    from daemon.drill.record import DrillStore

    drills = DrillStore(var_dir(args))
    states = []
    for inst in instances(args, selector):
        state = asyncio.run(inst.status()).as_dict()
        state["last_drill"] = drills.last_report(inst.name)
        states.append(state)
    return show_statuses(args, states)


def docker_passthrough(args: argparse.Namespace, selector: str) -> int:
    """``ferry SVC docker -- ARGS``: the docker CLI against the service's engine.

    The service-private engine is started when needed (its filesystem must be mounted),
    so that an operator can load or inspect images: ``docker save IMG | ferry svc1 docker -- load``.
    """
    from daemon.resources.container_docker.engine import EngineError, engine_for

    selected = instances(args, selector)
    if len(selected) != 1:
        raise UsageError("docker takes exactly one service")
    instance = selected[0]
    engine = engine_for(instance.state_dir, instance.value("DEFAULT", "docker_data_dir"))
    try:
        asyncio.run(engine.ensure_started())
    except EngineError as exc:
        raise ActionFailed(str(exc)) from None
    argv = ["docker", "-H", engine.url, *args.words[1:], *args.passthrough]
    sys.stdout.flush()
    os.execvp("docker", argv)
    return EXIT_FAILED  # not reached


def print_schedule(args: argparse.Namespace, selector: str) -> int:
    """The scheduled jobs of each service on this node, their last and next runs."""
    from datetime import datetime

    from daemon.scheduler.jobs import LastRuns, last_runs_path, next_time, service_jobs

    last = LastRuns(last_runs_path(var_dir(args)))
    now = datetime.now().replace(microsecond=0)
    rows = []
    for instance in instances(args, selector):
        for job in service_jobs(instance.config, instance.node):
            previous = last.get(job.key)
            upcoming = next_time(job, now, previous, instance.node)
            rows.append(
                {
                    "service": instance.name,
                    "job": job.name,
                    "action": {"status": "status refresh", "drill": "drill"}.get(
                        job.name, "sync all"
                    ),
                    "schedule": job.schedule_text,
                    "last_run": previous.isoformat(timespec="seconds") if previous else None,
                    "next_run": upcoming.isoformat(timespec="seconds") if upcoming else None,
                    "error": job.error,
                }
            )
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'service':<12} {'job':<10} {'schedule':<22} {'last run':<20} next run")
    for row in rows:
        next_text = row["next_run"] or ("never" if not row["error"] else f"error: {row['error']}")
        print(
            f"{row['service']:<12} {row['job']:<10} {row['schedule'] or '(never)':<22} "
            f"{row['last_run'] or '-':<20} {next_text}"
        )
    return EXIT_OK
