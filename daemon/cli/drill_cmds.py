"""``ferry SVC drill``: rehearse a takeover on this node inside a bubble; its reports.

``drill [--check CMD] [--keep] [--yes] [--wait [--time T]] [--node N] [--local]``,
``drill stop``, ``print drills``; and, inside a drill's bubble only, ``drill bubble-up``
and ``drill bubble-down`` (run by the drill itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import quote

from daemon.cli import client
from daemon.cli.daemon_calls import endpoint, follow
from daemon.cli.daemon_cmds import _age
from daemon.cli.errors import EXIT_FAILED, EXIT_OK, ActionFailed, UsageError
from daemon.cli.local_instances import instances, var_dir, with_action_log
from daemon.config.store import config_dir, local_nodename

DRILL_TIME = 900.0  # the CLI follows a drill this long at most by default


def preflight_text(facts: dict[str, Any], check: str) -> str:
    lines = [f"Drill of {facts['service']} on {facts['node']}: a rehearsal in a bubble "
             "(production and replication go on)."]  # fmt: skip
    for rid, age in sorted((facts.get("data_age") or {}).items()):
        lines.append(f"  data of {rid} here: {_age(age)} (the RPO a takeover would have now)")
    if facts.get("restore_choice"):
        lines.append(f"  data: {facts['restore_choice']}")
    lines.append(f"  will start, on clones of the data: {' '.join(facts.get('will_start') or [])}")
    lines.append(f"  check: {check or '(none: set drill_check, or --check CMD)'}")
    lines.append(f"  time limit: {facts.get('timeout', 0):g}s (drill_timeout)")
    return "\n".join(lines)


def report_text(report: dict[str, Any]) -> str:
    """A drill's report in words a non-expert reads."""
    result = str(report.get("result") or "?").upper()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.get("started_at") or 0))
    lines = [f"drill {report.get('id')} of {report.get('service')} on {report.get('node')}: "
             f"{result}"]  # fmt: skip
    if report.get("error"):
        lines.append(f"  failed at {report.get('step')}: {report['error']}")
    lines.append(f"  started {started}, took {report.get('duration_seconds') or '?'}s")
    if report.get("rto_seconds") is not None:
        lines.append(
            f"  RTO measured: every resource up {report['rto_seconds']:.1f}s after the start"
        )
    for rid, age in sorted((report.get("data_age") or {}).items()):
        lines.append(f"  RPO {rid}: data {_age(age)} at the start")
    if report.get("check"):
        lines.append(f"  check: {report['check']} -> exit {report.get('check_exit')}")
        for line in str(report.get("check_output") or "").splitlines()[-5:]:
            lines.append(f"    | {line}")
    for note in report.get("notes") or []:
        lines.append(f"  note: {note}")
    if report.get("state") == "kept":
        lines.append(
            f"  kept: the bubble stays up; ferry {report.get('service')} drill stop ends it"
        )
    return "\n".join(lines)


def default_node(drpnodes: list[str], here: str) -> str:
    """The node a drill rehearses on by default: this node when it is a drpnode of the
    service, else its first drpnode (where a takeover would go), else this node."""
    if here in drpnodes or not drpnodes:
        return here
    return drpnodes[0]


def _one_service(args: argparse.Namespace, selector: str) -> str:
    from daemon.config.store import select

    if args.server:
        return selector
    names = select(config_dir(args.config_dir), selector)
    if len(names) != 1:
        raise UsageError("a drill takes exactly one service")
    return names[0]


def _refused(message: str) -> int:
    print(f"ferry: drill refused: {message}", file=sys.stderr)
    return 2


def drill(args: argparse.Namespace, selector: str) -> int:
    """Run a drill (through the daemon, or --local), print its report."""
    service = _one_service(args, selector)
    here = local_nodename()
    node = args.node or here
    if args.local:
        return _drill_local(args, service, node)
    ep = endpoint(args)
    if args.node and not args.server:
        members = list(instances(args, service)[0].config.members.all_nodes)
        if args.node not in members:
            return _refused(
                f"{args.node} is not a node of {service} (nodes and drpnodes: {' '.join(members)})"
            )
    if not args.node and not args.server:
        node = default_node(list(instances(args, service)[0].config.members.drpnodes), here)
    query = f"?node={node}" if node != here and not args.server else ""
    at_query = (("&" if query else "?") + f"at={quote(args.at, safe='')}") if args.at else ""
    try:
        facts = client.request(ep, "GET", f"/api/services/{service}/drill{query}{at_query}")
    except client.ClientError as exc:
        if 400 <= exc.status < 500:
            return _refused(str(exc))
        raise ActionFailed(str(exc)) from None
    check = args.check if args.check is not None else str(facts.get("check") or "")
    if facts.get("refusal"):
        return _refused(str(facts["refusal"]))
    if args.output != "json":
        print(preflight_text(facts, check), flush=True)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("confirm with --yes (no terminal to ask on)")
        if input(f"Rehearse {service} on {facts['node']}? [y/N] ").strip().lower() not in (
            "y",
            "yes",
        ):
            print("nothing done")
            return EXIT_FAILED
    params: dict[str, Any] = {"keep": bool(args.keep)}
    if query:
        params["node"] = node
    if args.check is not None:
        params["check"] = args.check
    if args.at:
        params["at"] = args.at
    started = time.time() - 5  # the daemon's clock may differ a little
    try:
        accepted = client.submit_action(ep, service, "drill", **params)
    except client.ClientError as exc:
        if 400 <= exc.status < 500:
            return _refused(str(exc))
        raise ActionFailed(str(exc)) from None
    limit = args.time if args.time is not None else DRILL_TIME
    record = follow(ep, accepted["action_id"], limit, quiet=args.output == "json")
    report = (record.get("result") or {}).get("drill")
    if report is None:  # a failed drill's action carries no result: its report is kept
        after = client.request(ep, "GET", f"/api/services/{service}/drill{query}")
        report = after.get("last")
        if report is not None and report.get("started_at", 0) < started:
            report = None  # an older drill's: this one failed before it began
    return _show_report(args, report, record)


def _show_report(
    args: argparse.Namespace, report: dict[str, Any] | None, record: dict[str, Any]
) -> int:
    state = record.get("state")
    if report is None or state not in ("succeeded", "failed"):
        reason = record.get("error") or f"still {state} after the time limit"
        print(f"drill: {reason}", file=sys.stderr)
        if args.output == "json":
            print(json.dumps({"action": record, "drill": report}, indent=2, default=str))
        return EXIT_FAILED
    if args.output == "json":
        print(json.dumps(report, indent=2, default=str))
    else:
        print(report_text(report))
    return EXIT_OK if report.get("result") == "pass" else EXIT_FAILED


def _drill_local(args: argparse.Namespace, service: str, node: str) -> int:
    from daemon.drill.runner import DrillRefused, Drills
    from daemon.events import EventBus

    if node != local_nodename():
        raise UsageError("--local rehearses on this node: --node does not apply")
    with_action_log()
    inst = instances(args, service)[0]

    async def go() -> dict[str, Any]:
        state = await inst.status()
        drills = Drills(var_dir(args), config_dir(args.config_dir), EventBus())
        return await drills.run(inst, str(state.avail), check=args.check, keep=bool(args.keep),
                                at=args.at)  # fmt: skip

    try:
        report = asyncio.run(go())
    except DrillRefused as exc:
        return _refused(str(exc))
    return _show_report(args, report, {"state": "succeeded"})


def drill_stop(args: argparse.Namespace, selector: str) -> int:
    service = _one_service(args, selector)
    if args.local:
        from daemon.drill.runner import DrillRefused, Drills
        from daemon.events import EventBus

        drills = Drills(var_dir(args), config_dir(args.config_dir), EventBus())
        try:
            report = asyncio.run(drills.stop(service))
        except DrillRefused as exc:
            return _refused(str(exc))
        return _show_report(args, report, {"state": "succeeded"})
    ep = endpoint(args)
    here = local_nodename()
    node = args.node or here
    if not args.node and not args.server:
        node = default_node(list(instances(args, service)[0].config.members.drpnodes), here)
    try:
        if node != here and not args.server:
            accepted = client.submit_action(ep, service, "drill-stop", node=node)
        else:
            accepted = client.submit_action(ep, service, "drill-stop")
    except client.ClientError as exc:
        if 400 <= exc.status < 500:
            return _refused(str(exc))
        raise ActionFailed(str(exc)) from None
    record = follow(ep, accepted["action_id"], args.time or 300.0, quiet=True)
    if record.get("state") != "succeeded":
        print(f"ferry: drill stop: {record.get('error')}", file=sys.stderr)
        return EXIT_FAILED
    return _show_report(args, (record.get("result") or {}).get("drill"), record)


def print_drills(args: argparse.Namespace, selector: str) -> int:
    """The recent drills on this node (newest first), from the daemon or the var dir."""
    from daemon.drill.record import DrillStore

    service = _one_service(args, selector)
    if args.server:
        listed = client.request(endpoint(args), "GET", f"/api/services/{service}/drills")
        active, reports = listed.get("active"), list(listed.get("drills") or [])
    else:
        store = DrillStore(var_dir(args))
        record = store.active(service)
        active = record.report() if record is not None else None
        reports = store.history(service)
    if args.output == "json":
        print(json.dumps({"service": service, "active": active, "drills": reports}, indent=2))
        return EXIT_OK
    if active is not None:
        print(f"running: drill {active['id']} (step {active['step']}, state {active['state']})")
    if not reports and active is None:
        print(f"{service}: no drill yet on {local_nodename()} (rehearse: ferry {service} drill)")
    print(f"{'drill':<24} {'result':<7} {'started':<20} {'RTO':>7} {'took':>7}  step / error")
    for r in reports:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.get("started_at") or 0))
        rto = f"{r['rto_seconds']:.1f}s" if r.get("rto_seconds") is not None else "-"
        took = f"{r['duration_seconds']:.1f}s" if r.get("duration_seconds") is not None else "-"
        print(f"{r.get('id', '?'):<24} {r.get('result', '?'):<7} {started:<20} {rto:>7} {took:>7}  "
              f"{r.get('error') or ''}")  # fmt: skip
    return EXIT_OK


# ---------------------------------------------------------------- inside the bubble only


def _bubble_instance(args: argparse.Namespace, selector: str) -> Any:
    from daemon.drill.instance import DrillInstance

    inst = instances(args, selector)[0]
    return DrillInstance(inst.config, inst.node, inst.var_dir)


def bubble_up(args: argparse.Namespace, selector: str) -> int:
    """Start every resource of the service inside the drill's bubble (run by the drill)."""
    from daemon.service.instance import ActionError

    with_action_log()
    inst = _bubble_instance(args, selector)
    try:
        state = asyncio.run(inst.start(lock_wait=5.0))
    except ActionError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(state.as_dict()))
    return EXIT_OK


def bubble_down(args: argparse.Namespace, selector: str) -> int:
    """Stop every resource inside the drill's bubble (run by the drill's teardown)."""
    from daemon.service.instance import ActionError

    with_action_log()
    inst = _bubble_instance(args, selector)
    try:
        asyncio.run(inst.stop(force=True, lock_wait=5.0))
    except ActionError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
