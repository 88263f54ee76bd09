"""The node's services: their instances (reloaded when a file changes) and their status.

One owner for what the daemon knows about its instances. Status is cached: a
read younger than ``max_age`` is served from the cache, an older one (or an
explicit refresh) evaluates the instance again, one evaluation per service at a
time. Every change of an instance's status is published on the event bus.
The same object executes service actions for the action runner.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.actions import ActionFailure, ActionRecord
from daemon.config.errors import ConfigError
from daemon.config.store import installed_services, service_path
from daemon.events import EventBus
from daemon.service.instance import ActionError, Instance, InstanceState
from daemon.service.loader import NotAnInstance, load_instance
from daemon.service.lock import LockBusy

STATUS_MAX_AGE = 10.0
STATUS_TIMEOUT = 120.0
LOCK_WAIT = 30.0
REFRESH_AFTER_FAILURE = 5.0


class UnknownService(Exception):
    """No configuration file for this service name."""


class StatusUnavailable(Exception):
    """Evaluating the instance's status took too long."""


@dataclass
class StatusEntry:
    state: dict[str, Any]  # InstanceState.as_dict()
    updated_at: float


@dataclass
class _Loaded:
    stamp: tuple[int, int, int]
    instance: Instance | None
    error: ConfigError | NotAnInstance | None


def _fingerprint(state: dict[str, Any]) -> tuple[Any, ...]:
    resources = tuple((rid, r["status"]) for rid, r in state["resources"].items())
    return state["avail"], state["overall"], resources


class NodeServices:
    """Instances of the services installed in the config dir, as seen from this node."""

    def __init__(
        self,
        config_dir: Path,
        var_dir: Path,
        node: str,
        clustername: str,
        events: EventBus,
        *,
        max_age: float = STATUS_MAX_AGE,
        status_timeout: float = STATUS_TIMEOUT,
        parallel: int = 16,
    ) -> None:
        self.config_dir = config_dir
        self.var_dir = var_dir
        self.node = node
        self.clustername = clustername
        self.events = events
        self.max_age = max_age
        self.status_timeout = status_timeout
        self._loaded: dict[str, _Loaded] = {}
        self._status: dict[str, StatusEntry] = {}
        self._status_stamp: dict[str, tuple[int, int, int]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._parallel = asyncio.Semaphore(parallel)

    # ------------------------------------------------------------------ configuration

    def names(self) -> list[str]:
        return installed_services(self.config_dir)

    def path(self, name: str) -> Path:
        return service_path(self.config_dir, name)

    def stamp(self, name: str) -> tuple[int, int, int]:
        """What says the configuration changed (inode, mtime, size); UnknownService when
        the file is gone (its cached instance and status are dropped)."""
        try:
            st = os.stat(self.path(name))
        except FileNotFoundError:
            self._loaded.pop(name, None)
            self._status.pop(name, None)
            raise UnknownService(name) from None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def instance(self, name: str) -> Instance:
        """The instance on this node; UnknownService, ConfigError or NotAnInstance otherwise."""
        stamp = self.stamp(name)
        loaded = self._loaded.get(name)
        if loaded is None or loaded.stamp != stamp:
            try:
                inst = load_instance(
                    self.config_dir, self.var_dir, name, self.node, self.clustername
                )
                loaded = _Loaded(stamp, inst, None)
            except (ConfigError, NotAnInstance) as exc:
                loaded = _Loaded(stamp, None, exc)
            self._loaded[name] = loaded
        if loaded.error is not None:
            raise loaded.error
        assert loaded.instance is not None
        return loaded.instance

    # ------------------------------------------------------------------ status

    def cached(self, name: str) -> StatusEntry | None:
        return self._status.get(name)

    async def status(self, name: str, refresh: bool = False) -> StatusEntry:
        """The instance's status, from the cache when fresh enough."""
        inst = self.instance(name)
        stamp = self.stamp(name)
        entry = self._fresh(name, stamp, refresh, time.time())
        if entry is not None:
            return entry
        asked = time.time()
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            # Someone may have evaluated it while this one waited.
            entry = self._status.get(name)
            if (
                entry is not None
                and entry.updated_at >= asked
                and self._status_stamp.get(name) == stamp
            ):
                return entry
            try:
                async with self._parallel, asyncio.timeout(self.status_timeout):
                    state = await inst.status()
            except TimeoutError:
                raise StatusUnavailable(
                    f"{name}: status took more than {self.status_timeout:g}s"
                ) from None
            return self.record(name, state, stamp)

    def _fresh(
        self, name: str, stamp: tuple[int, int, int], refresh: bool, now: float
    ) -> StatusEntry | None:
        entry = self._status.get(name)
        if refresh or entry is None or self._status_stamp.get(name) != stamp:
            return None
        return entry if now - entry.updated_at < self.max_age else None

    def record(
        self, name: str, state: InstanceState, stamp: tuple[int, int, int] | None = None
    ) -> StatusEntry:
        """Store a freshly evaluated status; publish it when it changed."""
        data = state.as_dict()
        previous = self._status.get(name)
        entry = StatusEntry(data, time.time())
        self._status[name] = entry
        if stamp is not None:
            self._status_stamp[name] = stamp
        else:
            try:
                self._status_stamp[name] = self.stamp(name)
            except UnknownService:
                pass
        if previous is None or _fingerprint(previous.state) != _fingerprint(data):
            self.events.publish(
                "instance",
                {
                    "service": name,
                    "node": self.node,
                    "avail": data["avail"],
                    "overall": data["overall"],
                    "previous": (
                        {"avail": previous.state["avail"], "overall": previous.state["overall"]}
                        if previous
                        else None
                    ),
                },
            )
        return entry

    def forget(self, name: str) -> None:
        """Drop what is cached about a service (its file changed or went away)."""
        self._loaded.pop(name, None)
        self._status.pop(name, None)
        self._status_stamp.pop(name, None)

    # ------------------------------------------------------------------ actions

    def instance_for_action(self, name: str) -> Instance:
        """The instance to act on; ActionFailure with the operator's reason otherwise."""
        try:
            return self.instance(name)
        except UnknownService:
            raise ActionFailure(f"{name}: no such service") from None
        except ConfigError as exc:
            raise ActionFailure(
                "configuration errors:\n" + "\n".join(i.render() for i in exc.issues)
            ) from None
        except NotAnInstance as exc:
            raise ActionFailure(str(exc)) from None

    async def act(self, record: ActionRecord) -> dict[str, Any]:
        """Executor of the action runner: start, stop, startstandby."""
        name = record.service
        inst = self.instance_for_action(name)
        params = record.params
        rids: Sequence[str] | None = params.get("rids") or None
        try:
            if record.action == "start":
                state = await inst.start(rids, lock_wait=LOCK_WAIT)
            elif record.action == "startstandby":
                state = await inst.start(rids, standby_only=True, lock_wait=LOCK_WAIT)
            elif record.action == "stop":
                state = await inst.stop(rids, force=bool(params.get("force")), lock_wait=LOCK_WAIT)
            else:
                raise ActionFailure(f"action {record.action} is not available on this node yet")
        except (ActionError, LockBusy) as exc:
            await self._refresh_quietly(name)
            raise ActionFailure(str(exc)) from None
        except BaseException:
            await self._refresh_quietly(name)
            raise
        return {"status": self.record(name, state).state}

    async def _refresh_quietly(self, name: str) -> None:
        """After a failed or cancelled action, show what is really up (best effort)."""
        try:
            async with asyncio.timeout(REFRESH_AFTER_FAILURE):
                await self.status(name, refresh=True)
        except Exception:  # the action's own error is what matters
            pass
