"""Sync commands: ``ferry SVC sync all|nodes|drp|update|full`` and the btrfs peer side."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import Any

from daemon.cli.daemon_calls import orchestrated
from daemon.cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from daemon.cli.local_instances import instances, rids, with_action_log
from daemon.resources.base import ResourceError
from daemon.service.instance import Instance
from daemon.sync.base import SyncDriver, TargetReport
from daemon.sync.plan import ACTION_POOLS
from daemon.sync.progress import Progress, human_bytes
from daemon.sync.run import run_sync

SYNC_VERBS = tuple(ACTION_POOLS)


def _sync_resources(instance: Instance, rids: list[str] | None) -> list[SyncDriver]:
    found = [r for r in instance.resources.values() if isinstance(r, SyncDriver)]
    if rids:
        unknown = [rid for rid in rids if rid not in {r.rid for r in found}]
        if unknown:
            raise UsageError(f"no sync resource {', '.join(unknown)} in {instance.name}")
        found = [r for r in found if r.rid in rids]
    return [r for r in found if not r.disabled]


def _terminal_progress(progress: Progress) -> None:
    print(f"\r\033[K{progress.line()}", end="", file=sys.stderr, flush=True)


async def _run_sync(
    instance: Instance, verb: str, rids: list[str] | None, targets: list[str] | None
) -> list[TargetReport]:
    return await run_sync(_sync_resources(instance, rids), verb, targets)


def sync(args: argparse.Namespace, selector: str) -> int:
    """Run a sync action on this node for every selected service and sync resource."""
    verb = args.words[1] if len(args.words) > 1 else ""
    if verb not in SYNC_VERBS:
        raise UsageError(f"sync takes one of: {', '.join(SYNC_VERBS)}")
    if not args.local:
        targets = [t for item in args.target for t in item.split(",") if t] or None
        return orchestrated(args, selector, "sync", mode=verb, rids=rids(args), target=targets)
    with_action_log()
    if sys.stderr.isatty() and args.output != "json":
        SyncDriver.progress_reporter = staticmethod(_terminal_progress)
    targets = [t for item in args.target for t in item.split(",") if t] or None
    out: list[dict[str, Any]] = []
    code = EXIT_OK
    for instance in instances(args, selector):
        reports = asyncio.run(_run_sync(instance, verb, rids(args), targets))
        if sys.stderr.isatty() and args.output != "json":
            print("\r\033[K", end="", file=sys.stderr)
        for report in reports:
            out.append({"service": instance.name, **report.as_dict()})
            if not report.ok:
                code = EXIT_FAILED
            if args.output != "json":
                print(_report_line(instance.name, report))
    if args.output == "json":
        print(json.dumps(out, indent=2))
    return code


def _report_line(service: str, report: TargetReport) -> str:
    head = f"{service} {report.rid} -> {report.target}: {report.mode}"
    if report.ok:
        return f"{head}, {human_bytes(report.bytes)} in {report.seconds:.1f}s" + (
            f" ({report.reason})" if report.reason else ""
        )
    return f"{head}: {report.reason}"


def btrfs_peer(args: argparse.Namespace, selector: str) -> int:
    """The target side of a btrfs sync, run by the sender over ssh: list or receive."""
    from daemon.sync.btrfs.driver import for_peer, peer_list, peer_receive

    verb = args.passthrough[0] if args.passthrough else ""
    asked = rids(args) or []
    if verb not in ("list", "receive") or len(asked) != 1:
        raise UsageError("sync btrfs-peer --rid RID -- list|receive")
    instance = instances(args, selector)[0]
    resource = instance.resources.get(asked[0])
    driver = for_peer(resource)
    if verb == "list":
        try:
            print(json.dumps(asyncio.run(peer_list(driver))))
        except ResourceError as exc:
            print(f"ferry: {exc}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    try:
        warnings = asyncio.run(peer_receive(driver, sys.stdin.fileno()))
    except ResourceError as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def docker_peer(args: argparse.Namespace, selector: str) -> int:
    """The target side of a docker sync, run by the sender over ssh: have or load."""
    import os

    from daemon.sync.docker.driver import for_peer, peer_engine_url, peer_have, peer_release

    verb = args.passthrough[0] if args.passthrough else ""
    asked = rids(args) or []
    if verb not in ("have", "load", "release") or len(asked) != 1:
        raise UsageError("sync docker-peer --rid RID -- have SENDER|load|release")
    instance = instances(args, selector)[0]
    driver = for_peer(instance.resources.get(asked[0]))
    try:
        if verb == "have":
            print(json.dumps(asyncio.run(peer_have(driver, _sender(args)))))
            return EXIT_OK
        if verb == "release":
            asyncio.run(peer_release(driver))
            return EXIT_OK
        url = asyncio.run(peer_engine_url(driver))
    except ResourceError as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.flush()
    os.execvp("docker", ["docker", "-H", url, "load"])
    return EXIT_FAILED  # not reached


def _sender(args: argparse.Namespace) -> str:
    """The sending node, after the verb (receive mounts are made only for the other site)."""
    return str(args.passthrough[1]) if len(args.passthrough) > 1 else ""


def rsync_peer(args: argparse.Namespace, selector: str) -> int:
    """The target side of an rsync sync, run by the sender over ssh: prepare or release."""
    from daemon.sync.rsync.driver import for_peer

    verb = args.passthrough[0] if args.passthrough else ""
    asked = rids(args) or []
    if verb not in ("prepare", "release") or len(asked) != 1:
        raise UsageError("sync rsync-peer --rid RID -- prepare SENDER|release")
    instance = instances(args, selector)[0]
    driver = for_peer(instance.resources.get(asked[0]))
    try:
        if verb == "prepare":
            print(json.dumps(asyncio.run(driver.peer_prepare(_sender(args)))))
        else:
            asyncio.run(driver.peer_release())
    except ResourceError as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def stamp_peer(args: argparse.Namespace, selector: str) -> int:
    """The target side of a stamp, run by the sender over ssh when no ferryd answers:
    record the stamp of a successful transfer (JSON on stdin) and keep its restore point."""
    from daemon.sync.stamps import Stamp

    asked = rids(args) or []
    if len(asked) != 1:
        raise UsageError("sync stamp-peer --rid RID < STAMP.json")
    instance = instances(args, selector)[0]
    driver = instance.resources.get(asked[0])
    if not isinstance(driver, SyncDriver):
        raise UsageError(f"{instance.name}: {asked[0]} is not a sync resource")
    try:
        stamp = Stamp(**json.loads(sys.stdin.read()))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"sync stamp-peer: stdin is not a stamp: {exc}") from None
    try:
        answer = asyncio.run(driver.peer_call("stamp", "", asdict(stamp)))
    except ResourceError as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(answer))
    return EXIT_OK
