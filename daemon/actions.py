"""The action runner: service actions as tracked coroutines, their records and logs.

An action is acknowledged (``202 {action_id}``) only once its record is on disk,
so ``kill -9`` at any moment loses nothing acknowledged: at the next start,
records left queued or running are closed as failed ("interrupted"). Actions run
in-process, at most ``max_concurrent`` at once, each within a time limit. Every
action task is held by the runner and awaited at shutdown; an action's failure
is its record's ``error``, never an unseen exception. Log lines emitted under
the ``ferry`` logger while an action runs are captured into its record.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from daemon.config.store import write_atomically
from daemon.events import EventBus

log = logging.getLogger("ferry.actions")

ACTION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_LOG_LINES = 5000


class ActionState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (ActionState.SUCCEEDED, ActionState.FAILED)


@dataclass
class LogLine:
    time: float
    level: str
    message: str


@dataclass
class ActionRecord:
    """One action: what was asked, by whom, and how it went."""

    id: str
    service: str
    action: str
    params: dict[str, Any]
    requested_by: str
    state: ActionState = ActionState.QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    log: list[LogLine] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = str(self.state)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionRecord:
        lines = [LogLine(**line) for line in data.get("log", [])]
        fields = {k: v for k, v in data.items() if k != "log"}
        fields["state"] = ActionState(fields["state"])
        return cls(**fields, log=lines)

    def add_log(self, level: str, message: str) -> None:
        if len(self.log) < MAX_LOG_LINES:
            self.log.append(LogLine(time.time(), level, message))
        elif len(self.log) == MAX_LOG_LINES:
            self.log.append(LogLine(time.time(), "warning", "log truncated"))


class ActionFailure(Exception):
    """An expected failure of an action: the message becomes the record's error, and
    ``result`` (what it did before failing: a sync's reports) its result."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


class RunnerClosed(Exception):
    """The daemon is stopping and accepts no new action."""


Executor = Callable[[ActionRecord], Awaitable[dict[str, Any]]]


class EndedActions(Protocol):
    """Where the runner counts ended actions, per action and result (the metrics' counter:
    declared here, since the metrics sit above the services that import this module)."""

    def inc(self, amount: float = 1.0, **labels: str) -> None: ...


# The record of the action the current task runs: log lines go there.
_current: contextvars.ContextVar[ActionRecord | None] = contextvars.ContextVar(
    "ferry_action", default=None
)


class ActionLogCapture(logging.Handler):
    """Copies log records emitted while an action runs into that action's record."""

    def emit(self, record: logging.LogRecord) -> None:
        action = _current.get()
        if action is not None:
            action.add_log(record.levelname.lower(), record.getMessage())


class ActionStore:
    """Action records, one JSON file each under ``<var dir>/actions``, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, action_id: str) -> Path:
        return self.directory / f"{action_id}.json"

    def save(self, record: ActionRecord) -> None:
        write_atomically(self._path(record.id), json.dumps(record.as_dict(), default=str))

    def load(self, action_id: str) -> ActionRecord | None:
        if not ACTION_ID_RE.fullmatch(action_id):
            return None
        try:
            return ActionRecord.from_dict(json.loads(self._path(action_id).read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("action record %s unreadable: %s", action_id, exc)
            return None

    def all(self) -> list[ActionRecord]:
        out = []
        for path in self.directory.glob("*.json"):
            record = self.load(path.stem)
            if record is not None:
                out.append(record)
        return sorted(out, key=lambda r: r.created_at)

    def delete(self, action_id: str) -> None:
        self._path(action_id).unlink(missing_ok=True)


class ActionRunner:
    """Runs actions with a concurrency limit and a time limit; owns their records."""

    def __init__(
        self,
        store: ActionStore,
        executor: Executor,
        events: EventBus,
        *,
        max_concurrent: int = 4,
        timeout: float = 3600.0,
        keep: int = 1000,
        counter: EndedActions | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.events = events
        self.timeout = timeout
        self.keep = keep
        self.max_concurrent = max_concurrent
        self._counter = counter
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._records: dict[str, ActionRecord] = {}  # every known record, newest last
        self._ended: dict[str, asyncio.Event] = {}
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def recover(self) -> int:
        """Load records; close those a previous daemon left unfinished. Returns how many."""
        closed = 0
        for record in self.store.all():
            if not record.state.ended:
                record.state = ActionState.FAILED
                record.error = "interrupted: ferryd stopped while the action was queued or running"
                record.ended_at = record.ended_at or time.time()
                self.store.save(record)
                closed += 1
            self._records[record.id] = record
        self._prune()
        return closed

    async def drain(self, grace: float) -> None:
        """Refuse new actions, cancel queued ones, give running ones ``grace`` seconds."""
        self._closed = True
        for action_id, task in list(self._tasks.items()):
            if self._records[action_id].state is ActionState.QUEUED:
                task.cancel()
        pending = set(self._tasks.values())
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=10.0)

    # ------------------------------------------------------------------ queries

    @property
    def running(self) -> int:
        return sum(1 for r in self._active() if r.state is ActionState.RUNNING)

    @property
    def queued(self) -> int:
        return sum(1 for r in self._active() if r.state is ActionState.QUEUED)

    def _active(self) -> list[ActionRecord]:
        return [self._records[i] for i in self._tasks if i in self._records]

    def get(self, action_id: str) -> ActionRecord | None:
        return self._records.get(action_id)

    def recent(self, service: str | None = None, limit: int = 50) -> list[ActionRecord]:
        records = [r for r in self._records.values() if service is None or r.service == service]
        return records[-limit:][::-1]

    async def wait(self, action_id: str, timeout: float) -> ActionRecord | None:
        """The record once the action ended, or as it is after timeout seconds."""
        record = self._records.get(action_id)
        if record is None or record.state.ended:
            return record
        ended = self._ended.setdefault(action_id, asyncio.Event())
        try:
            async with asyncio.timeout(timeout):
                await ended.wait()
        except TimeoutError:
            pass
        return self._records.get(action_id)

    # ------------------------------------------------------------------ submission

    def submit(
        self, service: str, action: str, params: dict[str, Any], requested_by: str
    ) -> ActionRecord:
        """Record the action (on disk) and schedule it; the caller may acknowledge it then."""
        if self._closed:
            raise RunnerClosed("ferryd is stopping: no new action")
        record = ActionRecord(uuid.uuid4().hex, service, action, params, requested_by)
        self.store.save(record)
        self._records[record.id] = record
        self._ended[record.id] = asyncio.Event()
        task = asyncio.create_task(self._run(record), name=f"action-{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(self._forget)
        self._publish(record)
        return record

    def _forget(self, task: asyncio.Task[None]) -> None:
        action_id = task.get_name().removeprefix("action-")
        self._tasks.pop(action_id, None)
        if not task.cancelled() and task.exception() is not None:
            # _run handles everything; reaching this is a bug, and it must be seen.
            log.error("action %s: runner bug: %r", action_id, task.exception())

    def _publish(self, record: ActionRecord) -> None:
        self.events.publish(
            "action",
            {
                "action_id": record.id,
                "service": record.service,
                "action": record.action,
                "state": str(record.state),
                "error": record.error,
            },
        )

    def _transition(self, record: ActionRecord, state: ActionState) -> None:
        record.state = state
        now = time.time()
        if state is ActionState.RUNNING:
            record.started_at = now
        if state.ended:
            record.ended_at = now
            if self._counter is not None:
                self._counter.inc(action=record.action, result=str(state))
        self.store.save(record)
        self._publish(record)
        if state.ended:
            self._ended.pop(record.id, asyncio.Event()).set()
            self._prune()

    async def _run(self, record: ActionRecord) -> None:
        _current.set(record)
        try:
            async with self._slots:
                self._transition(record, ActionState.RUNNING)
                log.info(
                    "%s: %s started (action %s, by %s)",
                    record.service,
                    record.action,
                    record.id,
                    record.requested_by,
                )
                try:
                    async with asyncio.timeout(self.timeout):
                        record.result = await self.executor(record)
                except TimeoutError:
                    record.error = f"timed out after {self.timeout:g}s"
                except ActionFailure as exc:
                    record.error = str(exc)
                    record.result = exc.result
                except Exception as exc:
                    log.exception("%s: %s: unexpected error", record.service, record.action)
                    record.error = f"internal error: {type(exc).__name__}: {exc}"
                if record.error:
                    log.warning("%s: %s failed: %s", record.service, record.action, record.error)
                    self._transition(record, ActionState.FAILED)
                else:
                    log.info("%s: %s succeeded", record.service, record.action)
                    self._transition(record, ActionState.SUCCEEDED)
        except asyncio.CancelledError:
            when = "before it started" if record.started_at is None else "while it ran"
            record.error = f"cancelled {when}: ferryd is stopping"
            self._transition(record, ActionState.FAILED)
            raise

    def _prune(self) -> None:
        ended = [r for r in self._records.values() if r.state.ended]
        for record in ended[: max(0, len(ended) - self.keep)]:
            self.store.delete(record.id)
            del self._records[record.id]
