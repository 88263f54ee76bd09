"""A service instance on this node: its resources, their order, the actions and the status.

Start order is by group (``ip``, ``disk``, ``fs``, ``container``, ``app``), by
rid within a group; a resource that lives inside another (an ``ip`` of type
``netns`` inside ``container#0``) starts right after it. Stop is the exact
reverse. Sync resources take no part in start and stop.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.resources.base import Resource, ResourceError, StatusReport
from daemon.resources.container_docker.engine import Engine
from daemon.resources.status import Status, as_standby, demote_sync, fold, start_succeeded
from daemon.restore import pending
from daemon.service.config import ServiceConfig
from daemon.service.lock import action_lock
from daemon.service.registry import START_ORDER

log = logging.getLogger("ferry.action")

STATUS_TIMEOUT = 30.0
DEFAULT_LOCK_WAIT = 30.0

DRIVER_MODULES: dict[tuple[str, str], str] = {
    ("fs", ""): "daemon.resources.fs.driver",
    ("container", "docker"): "daemon.resources.container_docker.driver",
    ("ip", "netns"): "daemon.resources.ip_netns.driver",
    ("ip", "host"): "daemon.resources.ip_host.driver",
    ("app", "forking"): "daemon.resources.app.driver",
    ("sync", "rsync"): "daemon.sync.rsync.driver",
    ("sync", "btrfs"): "daemon.sync.btrfs.driver",
    ("sync", "docker"): "daemon.sync.docker.driver",
}


class ActionError(Exception):
    """An instance action failed; the message names the resource and shows the output tail."""


@dataclass
class ResourceState:
    rid: str
    label: str
    status: Status
    standby: bool
    optional: bool
    disabled: bool
    monitor: bool
    log: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "label": self.label,
            "standby": self.standby,
            "optional": self.optional,
            "disabled": self.disabled,
            "monitor": self.monitor,
            "log": self.log,
        }


@dataclass
class InstanceState:
    service: str
    node: str
    avail: Status
    overall: Status
    resources: dict[str, ResourceState]

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "node": self.node,
            "avail": str(self.avail),
            "overall": str(self.overall),
            "resources": {rid: r.as_dict() for rid, r in self.resources.items()},
        }


def start_sequence(resources: Iterable[tuple[str, str]]) -> list[str]:
    """Order (rid, start_after) pairs: group order, rid order, dependents right after."""

    def rank(rid: str) -> tuple[int, str]:
        group = rid.split("#", 1)[0]
        order = START_ORDER.index(group) if group in START_ORDER else len(START_ORDER)
        return order, rid

    pairs = dict(resources)
    base = sorted(
        (rid for rid, after in pairs.items() if not after or after not in pairs), key=rank
    )
    dependents: dict[str, list[str]] = {}
    for rid, after in sorted(pairs.items(), key=lambda pair: rank(pair[0])):
        if after and after in pairs:
            dependents.setdefault(after, []).append(rid)
    out: list[str] = []

    def place(rid: str) -> None:
        out.append(rid)
        for child in dependents.get(rid, []):
            place(child)

    for rid in base:
        place(rid)
    return out


def instance_status(
    service: str, node: str, states: dict[str, ResourceState], sync_rids: set[str]
) -> InstanceState:
    """avail folds the non-optional resources; overall adds optional ones, syncs and warnings."""
    avail = fold(
        s.status
        for rid, s in states.items()
        if not s.optional and not s.disabled and rid not in sync_rids
    )
    overall_parts = [avail]
    for rid, s in states.items():
        if s.disabled:
            continue
        if rid in sync_rids:
            overall_parts.append(demote_sync(s.status))
        elif s.optional:
            overall_parts.append(s.status)
        if any(line.startswith(("warn:", "error:")) for line in s.log):
            overall_parts.append(Status.WARN)
    avail = Status.NA if avail is Status.UNDEF else avail
    overall = fold(overall_parts)
    return InstanceState(service, node, avail, overall, states)


class Instance:
    """The service's instance on this node."""

    def __init__(self, config: ServiceConfig, node: str, var_dir: Path) -> None:
        self.config = config
        self.node = node
        self.name = config.name
        self.var_dir = var_dir
        self.state_dir = var_dir / "services" / config.name
        self.resources: dict[str, Resource] = {}
        for rid in config.resource_ids():
            resource = self._build(rid)
            if resource is not None:
                self.resources[rid] = resource

    def _build(self, rid: str) -> Resource | None:
        bound = self.config.sections[rid]
        assert bound.manifest is not None
        module_name = DRIVER_MODULES.get((bound.group, bound.manifest.type))
        if module_name is None:
            return None
        values = {
            kw.name: self.config.value(rid, kw.name, self.node) for kw in bound.manifest.keywords
        }
        module = importlib.import_module(module_name)
        driver: type[Resource] = module.Driver
        return driver(rid, values, self)

    def value(self, section: str, keyword: str) -> Any:
        """A keyword of this service, evaluated for this node."""
        return self.config.value(section, keyword, self.node)

    @property
    def sync_rids(self) -> set[str]:
        return {rid for rid in self.config.resource_ids() if rid.startswith("sync#")}

    def ordered(self) -> list[Resource]:
        pairs = [(rid, r.start_after()) for rid, r in self.resources.items() if not r.is_sync]
        return [self.resources[rid] for rid in start_sequence(pairs)]

    # ---------------------------------------------------------------------------- status

    async def own_report(self, resource: Resource) -> StatusReport:
        """The resource's status report, standby not applied; never raises: a driver that
        fails or hangs gives undef with the reason in the log."""
        try:
            async with asyncio.timeout(STATUS_TIMEOUT):
                return await resource.status()
        except TimeoutError:
            return StatusReport(
                Status.UNDEF, [f"error: status timed out after {STATUS_TIMEOUT:g}s"]
            )
        except Exception as exc:  # a driver bug must not break the whole status
            return StatusReport(Status.UNDEF, [f"error: {_reason(exc)}"])

    async def _own_status(self, resource: Resource) -> Status:
        return (await self.own_report(resource)).status

    async def resource_state(self, resource: Resource) -> ResourceState:
        if resource.disabled:
            report = StatusReport(Status.NA)
        else:
            report = await self.own_report(resource)
        status = as_standby(report.status) if resource.standby else report.status
        return ResourceState(
            rid=resource.rid,
            label=_safe_label(resource),
            status=status,
            standby=resource.standby,
            optional=resource.optional,
            disabled=resource.disabled,
            monitor=resource.monitor,
            log=report.log,
        )

    async def status(self) -> InstanceState:
        states = {}
        syncs = sorted((r for r in self.resources.values() if r.is_sync), key=lambda r: r.rid)
        for resource in [*self.ordered(), *syncs]:
            states[resource.rid] = await self.resource_state(resource)
        return instance_status(self.name, self.node, states, self.sync_rids)

    # --------------------------------------------------------------------------- actions

    def _select(self, rids: Sequence[str] | None) -> list[Resource]:
        ordered = self.ordered()
        if not rids:
            return ordered
        unknown = [rid for rid in rids if rid not in self.resources]
        if unknown:
            known = ", ".join(r.rid for r in ordered)
            raise ActionError(
                f"no resource {', '.join(unknown)} in {self.name} (resources: {known})"
            )
        return [r for r in ordered if r.rid in rids]

    def _refuse_disabled(self) -> None:
        if self.value("DEFAULT", "disable"):
            raise ActionError(f"{self.name} is disabled (DEFAULT.disable): no action is taken")

    async def _apply_restore_point(self) -> None:
        """A takeover --at (or a drill --at) asked for a restore point: make it the live
        data before anything starts (daemon/restore/pending.py)."""
        engines = [getattr(r, "engine", None) for r in self.resources.values()]
        engine = next((e for e in engines if isinstance(e, Engine)), None)
        try:
            await pending.apply(self.var_dir, self.name, self.resources, engine)
        except pending.RestoreError as exc:
            raise ActionError(str(exc)) from None

    async def start(
        self,
        rids: Sequence[str] | None = None,
        *,
        standby_only: bool = False,
        lock_wait: float = DEFAULT_LOCK_WAIT,
    ) -> InstanceState:
        """Start resources in order; roll back what this start started when one fails."""
        self._refuse_disabled()
        action = "startstandby" if standby_only else "start"
        async with action_lock(self.state_dir, action, lock_wait):
            for resource in self.resources.values():
                try:
                    await resource.clear_leftovers()
                except (ResourceError, OSError) as exc:
                    raise ActionError(f"{resource.rid}: {exc}") from None
            if not standby_only and rids is None:
                await self._apply_restore_point()
            started: list[Resource] = []
            for resource in self._select(rids):
                if resource.disabled or (standby_only and not resource.standby):
                    continue
                if await self._own_status(resource) is Status.UP:
                    continue
                try:
                    log.info("%s %s: start %s", self.name, resource.rid, _safe_label(resource))
                    await resource.start()
                    started.append(resource)
                except Exception as exc:  # a driver's bug too: roll back, name the resource
                    if resource.optional:
                        log.warning(
                            "%s %s: start failed (optional): %s",
                            self.name,
                            resource.rid,
                            _reason(exc),
                        )
                        continue
                    await self._rollback(started)
                    raise ActionError(f"{resource.rid}: start failed: {_reason(exc)}") from None
            state = await self.status()
            if not rids and not standby_only and not start_succeeded(state.avail):
                down = [
                    rid
                    for rid, s in state.resources.items()
                    if s.status not in (Status.UP, Status.STDBY_UP, Status.NA) and not s.optional
                ]
                raise ActionError(f"started, but avail is {state.avail}: {', '.join(down)} not up")
            return state

    async def _rollback(self, started: list[Resource]) -> None:
        if not self.value("DEFAULT", "rollback"):
            log.warning("%s: rollback = false: leaving started resources up", self.name)
            return
        for resource in reversed(started):
            try:
                log.info("%s %s: rollback: stop", self.name, resource.rid)
                await resource.stop()
            except Exception as exc:  # go on with the others whatever this one raised
                log.error("%s %s: rollback stop failed: %s", self.name, resource.rid, _reason(exc))

    async def stop(
        self,
        rids: Sequence[str] | None = None,
        *,
        force: bool = False,
        lock_wait: float = DEFAULT_LOCK_WAIT,
    ) -> InstanceState:
        """Stop in reverse order; standby resources stay up unless force."""
        self._refuse_disabled()
        async with action_lock(self.state_dir, "stop", lock_wait):
            for resource in reversed(self._select(rids)):
                if resource.disabled or (resource.standby and not force):
                    continue
                # Drivers' stop is idempotent: called even when down, so that a driver can
                # tidy up what it shares (the container driver stops an idle private engine).
                if await self._own_status(resource) is not Status.DOWN:
                    log.info("%s %s: stop %s", self.name, resource.rid, _safe_label(resource))
                try:
                    await resource.stop()
                except Exception as exc:  # a driver's bug too: name the resource
                    if resource.optional:
                        log.warning(
                            "%s %s: stop failed (optional): %s",
                            self.name,
                            resource.rid,
                            _reason(exc),
                        )
                        continue
                    raise ActionError(f"{resource.rid}: stop failed: {_reason(exc)}") from None
            return await self.status()


def _safe_label(resource: Resource) -> str:
    try:
        return resource.label()
    except Exception as exc:
        return f"({type(exc).__name__}: {exc})"


def _reason(exc: Exception) -> str:
    """What an operator reads: a driver's own errors as they are, anything else with its
    type (an unexpected exception is a driver bug, and its type says which)."""
    text = str(exc)
    if isinstance(exc, ResourceError | OSError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
