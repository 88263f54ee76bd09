"""Transfer progress: bytes, rate, ETA; shared with status readers through a small file."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from daemon.config.store import write_atomically

PUBLISH_EVERY = 1.0


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def total_from_percent(moved: int, percent: int) -> int | None:
    """The size a transfer's percentage implies (moved is percent % of it); None at 0 %,
    which says nothing. An estimate: as coarse as the percentage is."""
    if percent <= 0:
        return None
    return max(moved, moved * 100 // min(percent, 100))


@dataclass
class Progress:
    """Bytes moved by one transfer; ``total`` is an estimate when known."""

    target: str
    total: int | None = None
    moved: int = 0
    started: float = field(default_factory=time.monotonic)
    last_change: float = field(default_factory=time.monotonic)
    path: Path | None = None  # where status readers find it
    _published: float = 0.0

    def add(self, count: int) -> None:
        if count <= 0:
            return
        self.moved += count
        self.last_change = time.monotonic()
        self.publish()

    def set(self, moved: int, percent: int | None = None) -> None:
        """Bytes moved so far; with the transfer's own percentage, the total estimated."""
        if percent is not None:
            self.total = total_from_percent(moved, percent) or self.total
        if moved > self.moved:
            self.add(moved - self.moved)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.moved / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if not self.total or self.rate <= 0 or self.moved >= self.total:
            return None
        return (self.total - self.moved) / self.rate

    def stalled_for(self) -> float:
        return time.monotonic() - self.last_change

    def line(self) -> str:
        text = f"{self.target}: {human_bytes(self.moved)}"
        if self.total:
            text += f" of ~{human_bytes(self.total)}"
        text += f", {human_bytes(self.rate)}/s"
        if self.eta is not None:
            text += f", ETA {self.eta:.0f}s"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "bytes": self.moved,
            "total": self.total,
            "rate": round(self.rate, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
            "pid": os.getpid(),
            "updated": time.time(),
        }

    def publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.path is None or (not force and now - self._published < PUBLISH_EVERY):
            return
        self._published = now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(self.as_dict()))

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def running_transfer(path: Path) -> dict[str, object] | None:
    """The progress a running transfer published, None when none runs."""
    try:
        data = json.loads(path.read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(data)
