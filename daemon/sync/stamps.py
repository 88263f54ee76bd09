"""Sync stamps: when the last successful transfer to (or from) a node started, and what it moved.

The sender keeps one stamp per target; the target keeps the stamp of what it
received. Both are written atomically and survive restarts. The start time is
what matters: the data is as old as the moment its transfer began.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from daemon.config.store import write_atomically


@dataclass(frozen=True)
class Stamp:
    started: float  # epoch seconds
    ended: float
    bytes: int
    seconds: float
    mode: str  # "full" or "incremental"
    source: str
    target: str
    run: float = 0.0  # when the sync run began: names the restore point (0: started)

    @property
    def run_time(self) -> float:
        return self.run or self.started

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Stamp:
        data = json.loads(text)
        return cls(
            started=float(data["started"]),
            ended=float(data["ended"]),
            bytes=int(data["bytes"]),
            seconds=float(data["seconds"]),
            mode=str(data["mode"]),
            source=str(data["source"]),
            target=str(data["target"]),
            run=float(data.get("run") or 0.0),
        )


def sync_dir(state_dir: Path, rid: str) -> Path:
    return state_dir / "sync" / rid


def sent_path(state_dir: Path, rid: str, target: str) -> Path:
    return sync_dir(state_dir, rid) / "sent" / f"{target}.json"


def received_path(state_dir: Path, rid: str) -> Path:
    return sync_dir(state_dir, rid) / "received.json"


def read(path: Path) -> Stamp | None:
    """The stamp at path; None when absent or unreadable (a torn file is never written)."""
    try:
        return Stamp.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


HISTORY_SECONDS = 24 * 3600  # what the console's data-age chart shows
HISTORY_MAX_BYTES = 256 * 1024  # past this the history is trimmed to its last day


def history_path(path: Path) -> Path:
    """The stamps written at path over the last day, one JSON line each."""
    return path.with_name(path.stem + ".history")


def write(path: Path, stamp: Stamp) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, stamp.to_json() + "\n")
    _remember(history_path(path), stamp)


def _remember(path: Path, stamp: Stamp) -> None:
    with open(path, "a") as handle:
        handle.write(stamp.to_json() + "\n")
        size = handle.tell()
    if size > HISTORY_MAX_BYTES:
        kept = history(path, time.time() - HISTORY_SECONDS)
        write_atomically(path, "".join(s.to_json() + "\n" for s in kept))


def history(path: Path, since: float) -> list[Stamp]:
    """The stamps of a history file ended at or after since, oldest first (torn lines
    skipped: the history informs, it never decides)."""
    out: list[Stamp] = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            stamp = Stamp.from_json(line)
        except (ValueError, KeyError, TypeError):
            continue
        if stamp.ended >= since:
            out.append(stamp)
    return out
