"""Running a drill on this node: refuse, bubble, clones, start inside, check, report, teardown.

The steps, each named in the report when it fails:

1. ``refuse``: the service is up here, the node is not one of the service's, no replicated
   data has arrived, another drill of the service runs (:func:`refusal`);
2. ``bubble``: the bubble's namespaces (:mod:`daemon.drill.bubble`);
3. ``clone``: a writable clone of every filesystem of the service, mounted in the bubble
   (:mod:`daemon.drill.clones`);
4. ``start``: the service's resources started inside the bubble, in order, by ``ferry SVC
   drill bubble-up`` run there (:mod:`daemon.drill.instance`); the time from the drill's
   start to this point is the measured RTO;
5. ``check``: the user's check (``drill_check`` or ``--check``) inside the bubble; exit 0
   passes;
6. ``teardown`` (unless kept): the resources stopped inside, the bubble ended (every
   process in it goes), the clones deleted, the drill's dir removed.

``drill_timeout`` bounds steps 1-5. The record on disk lists what exists before it is made
(:mod:`daemon.drill.record`), so a drill cut short (ferryd killed, a reboot) is torn down
by the next ferryd (:meth:`Drills.recover`). A real start of the service on this node ends
a drill first (:meth:`Drills.abort`): it never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from daemon.drill import clones as clones_mod
from daemon.drill.bubble import BRIDGE, Bubble, BubbleError, bridge_address, create
from daemon.drill.clones import OVERLAY, SNAPSHOT, Clone, CloneError, Cloner, plan_clone
from daemon.drill.record import FAIL, PASS, DrillRecord, DrillStore, instance_var_dir
from daemon.events import EventBus
from daemon.restore import catalog, pending
from daemon.restore.points import Entry, PointError
from daemon.service.instance import Instance
from daemon.sync import stamps
from daemon.sync.rsync.points import TREES
from daemon.system import mounts
from daemon.system.command import CommandError
from daemon.system.net import prefix_length

log = logging.getLogger("ferry.drill")

OUTPUT_TAIL = 20
TEARDOWN_TIMEOUT = 120.0
RUNNING = ("up", "warn")


class DrillRefused(Exception):
    """The drill cannot run here; the one-line message says why (nothing was changed)."""


class DrillFailed(Exception):
    """A step failed (its name is the record's step); the message is its error."""


def data_age(inst: Instance, now: float) -> dict[str, float | None]:
    """Per sync resource, how old this node's received data is (None: never received)."""
    out: dict[str, float | None] = {}
    for rid in sorted(inst.sync_rids):
        stamp = stamps.read(stamps.received_path(inst.state_dir, rid))
        out[rid] = None if stamp is None else round(max(0.0, now - stamp.started), 3)
    return out


def refusal(
    service: str,
    node: str,
    members: list[str],
    avail: str,
    ages: dict[str, float | None],
    active: DrillRecord | None,
) -> str:
    """Why a drill of ``service`` cannot run on ``node``, or '' when it can (pure)."""
    if node not in members:
        return f"{node} is not a node of {service} (nodes and drpnodes: {' '.join(members)})"
    if active is not None:
        return (
            f"a drill of {service} runs on {node} already (drill {active.id}, "
            f"started {time.strftime('%H:%M:%S', time.localtime(active.started_at))}): "
            f"ferry {service} drill stop ends it"
        )
    if avail in RUNNING:
        return f"{service} is {avail} on {node}: a drill rehearses only where the service is not up"
    if not ages or all(age is None for age in ages.values()):
        why = "it has no sync resource" if not ages else "no sync resource has delivered to it"
        return f"no replicated data has arrived on {node} yet ({why}): nothing to rehearse with"
    return ""


def at_point_clone(clone: Clone, inst: Instance, entries: list[Entry]) -> Clone:
    """A clone of a restore point's data (drill --at) where the point holds this fs's data:
    a snapshot of the point's snapshot, or an overlay over the point's tree."""
    for entry in entries:
        if clone.kind == SNAPSHOT and entry.subvolume and entry.subvolume == clone.subvolume:
            return replace(clone, point=f".ferry/{inst.name}/{entry.rid}/{entry.ref}")
        dst = str(inst.resources[entry.rid].values.get("dst") or "") if entry.kind == "tree" else ""
        if clone.kind == OVERLAY and dst and os.path.normpath(dst) == clone.mnt:
            return replace(clone, lower=f"{clone.mnt}/{TREES}/{entry.ref}")
    return clone


def _tail(text: str, lines: int = OUTPUT_TAIL) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Drills:
    """This node's drills: at most one per service; the bubbles of kept ones."""

    def __init__(
        self,
        var_dir: Path,
        config_dir: Path,
        events: EventBus,
        *,
        clustername: str = "default",
    ) -> None:
        self.var_dir = var_dir
        self.config_dir = config_dir
        self.events = events
        self.clustername = clustername
        self.store = DrillStore(var_dir)
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._entries: dict[str, list[Entry]] = {}  # drill id -> the point's entries (--at)
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ queries

    def active(self, service: str) -> DrillRecord | None:
        return self.store.active(service)

    def last(self, service: str) -> dict[str, Any] | None:
        """The newest report: the drill running or kept, else the last one ended."""
        return self.store.last_report(service)

    def refusal(self, inst: Instance, avail: str) -> str:
        ages = data_age(inst, time.time())
        members = list(inst.config.members.all_nodes)
        return refusal(inst.name, inst.node, members, avail, ages, self.active(inst.name))

    # ------------------------------------------------------------------ run

    async def run(
        self,
        inst: Instance,
        avail: str,
        *,
        check: str | None = None,
        keep: bool = False,
        requested_by: str = "",
        progress: Callable[[str], None] | None = None,
        at: str | None = None,
    ) -> dict[str, Any]:
        """Run one drill of ``inst`` on this node; its report (``result`` pass or fail).
        DrillRefused before anything is made."""
        lock = self._locks.setdefault(inst.name, asyncio.Lock())
        if lock.locked():
            raise DrillRefused(f"a drill of {inst.name} runs on {inst.node} already")
        async with lock:
            why = self.refusal(inst, avail)
            if why:
                raise DrillRefused(why)
            point_name = ""
            entries: list[Entry] = []
            if at is not None:
                try:
                    point, entries = catalog.entries_at(inst, at)
                except PointError as exc:
                    raise DrillRefused(str(exc)) from None
                point_name = point.name
            now = time.time()
            timeout = float(inst.value("DEFAULT", "drill_timeout"))
            record = DrillRecord(
                id=time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + "-" + uuid.uuid4().hex[:6],
                service=inst.name,
                node=inst.node,
                started_at=now,
                check=check
                if check is not None
                else str(inst.value("DEFAULT", "drill_check") or ""),
                keep=keep,
                timeout=timeout,
                requested_by=requested_by,
                data_age=data_age(inst, now),
                restore_point=point_name,
            )
            if point_name:
                record.data_age = {e.rid: round(now - e.data_time, 3) for e in entries}
                self._entries[record.id] = entries
            self.store.save(record)
            self._publish(record)
            say = progress or (lambda line: None)
            log.info("%s: drill %s on %s started", inst.name, record.id, inst.node)
            task = asyncio.current_task()
            if task is not None:
                self._tasks[inst.name] = task
            try:
                try:
                    async with asyncio.timeout(timeout):
                        await self._steps(inst, record, say)
                    record.result, record.step = PASS, "done"
                except TimeoutError:
                    record.result = FAIL
                    record.error = (
                        f"{record.step}: the drill did not end within drill_timeout ({timeout:g}s)"
                    )
                except DrillFailed as exc:
                    record.result = FAIL
                    record.error = f"{record.step}: {exc}"
                except asyncio.CancelledError:
                    record.result = FAIL
                    record.error = (
                        f"{record.step}: cut short (a real start here, or ferryd stopping)"
                    )
                    await asyncio.shield(self._teardown(record))
                    raise
                finally:
                    self._tasks.pop(inst.name, None)
                log.log(
                    logging.INFO if record.result == PASS else logging.WARNING,
                    "%s: drill %s %s%s",
                    inst.name,
                    record.id,
                    record.result,
                    f": {record.error}" if record.error else "",
                )
                if keep:
                    record.state = "kept"
                    record.ended_at = None
                    self.store.save(record)
                    say(f"kept: the bubble stays up; ferry {inst.name} drill stop ends it")
                else:
                    await self._teardown(record)
                self._publish(record)
                return record.report()
            except BaseException:
                if self.store.active(inst.name) is not None and not keep:
                    await asyncio.shield(self._teardown(record))
                raise

    async def _steps(self, inst: Instance, record: DrillRecord, say: Callable[[str], None]) -> None:
        work = self.store.work_dir(inst.name, record.id)
        record.step = "bubble"
        self.store.save(record)
        try:
            bubble = await create(record.id)
        except BubbleError as exc:
            raise DrillFailed(str(exc)) from None
        record.bubble_pid, record.bubble_ticks = bubble.pid, bubble.ticks
        self.store.save(record)
        say(f"bubble: namespaces held by pid {bubble.pid}, network: lo and {BRIDGE} only")

        record.step = "clone"
        plans = self._plan_clones(inst, record, self._entries.get(record.id, []))
        record.clones = [c.as_dict() for c in plans]
        self.store.save(record)  # before they exist: a crash now still removes them
        work.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            made = await Cloner(bubble, inst.name, str(work)).make(plans)
        except (CloneError, BubbleError) as exc:
            raise DrillFailed(str(exc)) from None
        record.clones = [c.as_dict() for c in made]
        self.store.save(record)
        for clone in made:
            what = f"snapshot of {clone.source}" if clone.kind == "snapshot" else "overlay"
            say(f"clone: {clone.rid} at {clone.mnt}: {what}")

        record.step = "network"
        await self._wire(inst, bubble)

        record.step = "start"
        self.store.save(record)
        images = [e for e in self._entries.pop(record.id, []) if e.kind == "images"]
        if images:  # the bubble's engine tags the point's images first (see pending.py)
            pending.request(instance_var_dir(record.id), inst.name, record.restore_point,
                            images, f"drill {record.id}")  # fmt: skip
        result = await self._inside(inst, record, "bubble-up")
        if not result.ok:
            raise DrillFailed(
                _tail(result.stderr or result.stdout, 8) or f"exit {result.returncode}"
            )
        record.up_at = time.time()
        record.rto_seconds = round(record.up_at - record.started_at, 3)
        say(f"start: every resource up in the bubble {record.rto_seconds:.1f}s after the start")

        record.step = "check"
        self.store.save(record)
        if not record.check:
            record.notes.append("no check: set drill_check (or --check CMD) to test the service")
            say("check: none set (drill_check): only the start was rehearsed")
            return
        env = {"FERRY_SVCNAME": inst.name, "FERRY_NODENAME": inst.node, "FERRY_DRILL": record.id}
        remaining = max(1.0, record.started_at + record.timeout - time.time())
        try:
            done = await bubble.run(
                "/bin/sh", "-c", record.check, timeout=remaining, check=False, env=env
            )
        except CommandError as exc:
            raise DrillFailed(str(exc)) from None
        except BubbleError as exc:
            raise DrillFailed(str(exc)) from None
        record.check_exit = done.returncode
        record.check_output = _tail("\n".join(p for p in (done.stdout, done.stderr) if p.strip()))
        say(f"check: exit {done.returncode}")
        if done.returncode != 0:
            raise DrillFailed(
                f"the check exited {done.returncode}: {_tail(record.check_output, 3)}"
            )

    def _plan_clones(
        self, inst: Instance, record: DrillRecord, entries: list[Entry]
    ) -> list[Clone]:
        btrfs_syncs: dict[str, str] = {}
        for rid in sorted(inst.sync_rids):
            resource = inst.resources.get(rid)
            if resource is None or resource.disabled or resource.values.get("type") != "btrfs":
                continue
            _, _, path = str(resource.values.get("dst") or "").partition(":")
            btrfs_syncs.setdefault(path.strip("/"), rid)
        plans = []
        for rid, resource in sorted(inst.resources.items()):
            if resource.group != "fs" or resource.disabled:
                continue
            mnt = str(resource.values["mnt"]).rstrip("/") or "/"
            try:
                plans.append(
                    plan_clone(rid, mnt, mounts.mounted_at(mnt), inst.name, record.id, btrfs_syncs)
                )
            except CloneError as exc:
                raise DrillFailed(str(exc)) from None
        return [at_point_clone(c, inst, entries) for c in plans] if entries else plans

    async def _wire(self, inst: Instance, bubble: Bubble) -> None:
        """The bubble's bridge takes an address in each ip resource's subnet (its gateway)."""
        taken = {str(r.values.get("ipname")) for r in inst.resources.values() if r.group == "ip"}
        done: set[str] = set()
        for resource in inst.resources.values():
            if resource.group != "ip" or resource.disabled:
                continue
            try:
                prefix = prefix_length(str(resource.values.get("netmask") or "24"))
                address = bridge_address(
                    str(resource.values["ipname"]),
                    prefix,
                    str(resource.values.get("gateway") or ""),
                    taken,
                )
                if address in done:
                    continue
                await bubble.run("ip", "addr", "add", address, "dev", BRIDGE)
                done.add(address)
            except (ValueError, BubbleError, CommandError) as exc:
                raise DrillFailed(f"{resource.rid}: {exc}") from None

    async def _inside(
        self, inst: Instance, record: DrillRecord, verb: str, timeout: float | None = None
    ) -> Any:
        """``ferry SVC drill VERB`` run inside the bubble, with the drill's own var dir."""
        bubble = Bubble(record.bubble_pid, record.bubble_ticks)
        var = instance_var_dir(record.id)
        argv = [sys.executable, "-m", "daemon.cli.main", "--config-dir", str(self.config_dir),
                "--var-dir", str(var), inst.name, "drill", verb]  # fmt: skip
        limit = timeout or max(1.0, record.started_at + record.timeout - time.time())
        env = {"FERRY_NODENAME": inst.node}
        try:
            return await bubble.run(*argv, timeout=limit, check=False, env=env)
        except CommandError as exc:
            raise DrillFailed(str(exc)) from None
        except BubbleError as exc:
            raise DrillFailed(str(exc)) from None

    # ------------------------------------------------------------------ teardown

    async def _teardown(self, record: DrillRecord, graceful: bool = True) -> None:
        """Stop inside, end the bubble, delete the clones, remove the drill's dir; the
        report joins the history. Errors are noted in the report, never raised."""
        started = time.monotonic()
        bubble = Bubble(record.bubble_pid, record.bubble_ticks)
        if graceful and record.bubble_pid and bubble.alive() and record.up_at is not None:
            with contextlib.suppress(DrillFailed):
                inst = self._instance_or_none(record.service)
                if inst is not None:
                    done = await self._inside(inst, record, "bubble-down", timeout=TEARDOWN_TIMEOUT)
                    if not done.ok:
                        record.notes.append(
                            f"teardown: stop in the bubble: {_tail(done.stderr, 3)}"
                        )
        if record.bubble_pid:
            try:
                await bubble.end()
            except BubbleError as exc:
                record.notes.append(f"teardown: {exc}")
        work = self.store.work_dir(record.service, record.id)
        clones = [Clone.from_dict(c) for c in record.clones]
        try:
            await clones_mod.remove(clones, record.service, record.id, str(work))
        except CloneError as exc:
            record.notes.append(f"teardown: {exc}")
            log.error("%s: drill %s: %s", record.service, record.id, exc)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(instance_var_dir(record.id), ignore_errors=True)
        record.teardown_seconds = round(time.monotonic() - started, 3)
        record.ended_at = time.time()
        self.store.finish(record)
        log.info(
            "%s: drill %s torn down in %.1fs", record.service, record.id, record.teardown_seconds
        )

    def _instance_or_none(self, service: str) -> Instance | None:
        from daemon.config.store import local_nodename
        from daemon.service.loader import load_instance

        try:
            return load_instance(
                self.config_dir, self.var_dir, service, local_nodename(), self.clustername
            )
        except Exception:
            return None

    async def stop(self, service: str) -> dict[str, Any]:
        """End a kept drill (drill stop); its report."""
        record = self.store.active(service)
        if record is None:
            raise DrillRefused(f"no drill of {service} runs on this node")
        if record.state == "running":
            raise DrillRefused(
                f"the drill {record.id} of {service} is still running (it ends by itself, "
                "within drill_timeout)"
            )
        await self._teardown(record)
        self._publish(record)
        return record.report()

    async def abort(self, service: str, why: str) -> bool:
        """A real start of the service here: end its drill at once, whatever it does."""
        record = self.store.active(service)
        if record is None:
            return False
        log.warning("%s: %s: the drill %s is torn down first", service, why, record.id)
        task = self._tasks.get(service)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(task), 30)
        record = self.store.active(service)
        if record is not None:
            record.result = record.result or FAIL
            record.error = record.error or f"{record.step}: ended by {why}"
            await self._teardown(record, graceful=False)
            self._publish(record)
        return True

    async def recover(self) -> int:
        """At ferryd's start: tear down what drills cut short left (from their records)."""
        count = 0
        for record in self.store.all_active():
            record.result = record.result or FAIL
            if not record.error:
                record.error = f"{record.step}: cut short (ferryd stopped or the node rebooted)"
            log.warning("%s: drill %s was cut short: tearing it down", record.service, record.id)
            await self._teardown(record, graceful=False)
            self._publish(record)
            count += 1
        return count

    def _publish(self, record: DrillRecord) -> None:
        self.events.publish(
            "drill",
            {
                "service": record.service,
                "node": record.node,
                "drill_id": record.id,
                "state": record.state,
                "step": record.step,
                "result": record.result or None,
                "error": record.error or None,
                "rto_seconds": record.rto_seconds,
            },
        )
