"""The daemon's event bus: state changes, numbered, fanned out to subscribers (SSE).

Publishers (the action runner, the status cache, later the monitor) call
:meth:`EventBus.publish`; it never blocks. Each subscriber has a bounded queue:
a subscriber too slow to keep up is dropped and told so, and may come back with
the last sequence number it saw to replay what it missed from a short history.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

HISTORY = 512
QUEUE_SIZE = 1024


@dataclass(frozen=True)
class Event:
    """One state change. ``kind``: action, instance, config, drill, restorepoints or daemon."""

    seq: int
    kind: str
    time: float
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "time": self.time, "data": self.data}

    def sse(self) -> bytes:
        """The event as a server-sent-events frame."""
        body = json.dumps(self.as_dict(), default=str, separators=(",", ":"))
        return f"id: {self.seq}\nevent: {self.kind}\ndata: {body}\n\n".encode()


class SubscriptionEnded(Exception):
    """The bus closed, or the subscriber fell too far behind and was dropped."""


class Subscription:
    """A subscriber's queue of events."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)
        self.reason = ""

    def _offer(self, event: Event) -> bool:
        try:
            self._queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            return False

    def _end(self, reason: str) -> None:
        self.reason = reason
        # Make room for the end marker: the reader stops there anyway.
        while self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def next(self, timeout: float) -> Event | None:
        """The next event, or None when none came within timeout; SubscriptionEnded at the end."""
        try:
            async with asyncio.timeout(timeout):
                event = await self._queue.get()
        except TimeoutError:
            return None
        if event is None:
            raise SubscriptionEnded(self.reason)
        return event


class EventBus:
    """Numbered events to every subscriber; the last few kept for replay."""

    def __init__(self, history: int = HISTORY, queue_size: int = QUEUE_SIZE) -> None:
        self._seq = itertools.count(1)
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self.closed = False
        self.last_seq = 0

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        event = Event(next(self._seq), kind, time.time(), data)
        self.last_seq = event.seq
        self._history.append(event)
        for sub in list(self._subscribers):
            if not sub._offer(event):
                sub._end("too slow: reconnect with Last-Event-ID to catch up")
                self._subscribers.discard(sub)
        return event

    @contextmanager
    def subscribe(self, after: int | None = None) -> Iterator[Subscription]:
        """Subscribe for the duration of the block; ``after`` replays events newer than it."""
        sub = Subscription(self._queue_size)
        if self.closed:
            sub._end("the daemon is stopping")
        else:
            if after is not None:
                for event in self._history:
                    if event.seq > after:
                        sub._offer(event)
            self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        """End every subscription (daemon stopping)."""
        self.closed = True
        for sub in self._subscribers:
            sub._end("the daemon is stopping")
        self._subscribers.clear()
