"""Restore points on a target: the record of what each sync run delivered, per resource.

A point is named by the UTC time of the sync run that delivered it
(``2026-12-03T09:00:00Z``): every sync resource of one run shares that name, so that
the service's points are consistent across its resources. Each resource keeps its own
entries (what holds the data: a read-only snapshot, a hard-link tree, image ids) in
``<var dir>/restore/<svc>/<rid>.json``, written atomically; the listing, the choice of
a point by name or time and the grouping are pure.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.config.store import write_atomically

AT_PATTERN = r"[ -~]{1,64}"  # what --at may be: printable, short (parse_time says the rest)
_NAME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class PointError(ValueError):
    """A point asked for that does not exist or cannot be chosen; the message says why."""


@dataclass(frozen=True)
class Entry:
    """What one sync resource holds of one point on this node."""

    name: str  # the point: the UTC time of its sync run
    rid: str
    kind: str  # btrfs (a received snapshot), snapshot (of an rsync dst), tree, images
    ref: str  # the snapshot's or tree's name; for images, "" (see images)
    data_time: float  # when the data was taken on the sender
    subvolume: str = ""  # btrfs kinds: the writable subvolume the point is of
    images: dict[str, str] = field(default_factory=dict)  # image ref -> image id
    size: int | None = None  # exclusive bytes (btrfs) or du bytes (trees); None: unknown

    @property
    def time(self) -> float:
        return point_time(self.name)

    def sized(self, size: int) -> Entry:
        return replace(self, size=size)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def point_name(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def point_time(name: str) -> float:
    return datetime.strptime(name, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def is_point_name(text: str) -> bool:
    return bool(_NAME_RE.match(text))


def parse_time(text: str) -> float:
    """An ISO 8601 time (a bare one is UTC) -> epoch seconds; PointError when malformed."""
    word = text.strip()
    try:
        when = datetime.fromisoformat(word.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise PointError(
            f"{word!r} is neither a restore point's name nor an ISO 8601 time "
            "(e.g. 2026-12-03T09:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


class Index:
    """The entries of one resource on this node (oldest first)."""

    def __init__(self, var_dir: Path, service: str, rid: str) -> None:
        self.path = Path(var_dir) / "restore" / service / f"{rid}.json"
        self.rid = rid

    def entries(self) -> list[Entry]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        found = []
        for item in data if isinstance(data, list) else []:
            try:
                found.append(Entry(**item))
            except TypeError:
                continue
        return sorted(found, key=lambda e: e.name)

    def write(self, entries: Sequence[Entry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ordered = sorted(entries, key=lambda e: e.name)
        write_atomically(self.path, json.dumps([e.as_dict() for e in ordered], indent=1) + "\n")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time (the target's ferryd and a CLI may both keep points)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@dataclass(frozen=True)
class Point:
    """A point of the service on this node: for each resource, its newest entry not newer
    than the point (its own when that resource synced in the point's run)."""

    name: str
    entries: tuple[Entry, ...]
    complete: bool  # every resource that keeps points here has an entry this old

    @property
    def time(self) -> float:
        return point_time(self.name)

    @property
    def own(self) -> tuple[Entry, ...]:
        """The entries of the point's own run (what deleting the point deletes)."""
        return tuple(e for e in self.entries if e.name == self.name)

    @property
    def size(self) -> int | None:
        """The bytes the point's own entries hold (an older entry is counted in its own)."""
        sizes = [e.size for e in self.own]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)

    def entry(self, rid: str) -> Entry | None:
        return next((e for e in self.entries if e.rid == rid), None)

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "name": self.name,
            "time": self.time,
            "age": round(now - self.time, 1),
            "complete": self.complete,
            "resources": sorted(e.rid for e in self.entries),
            "synced": sorted(e.rid for e in self.own),
            "size": self.size,
            "entries": [e.as_dict() for e in self.entries],
        }


def service_points(by_rid: Mapping[str, Sequence[Entry]]) -> list[Point]:
    """The service's points, oldest first: one per run that kept an entry. Resources sync
    on schedules of their own, so a point takes, for each resource, its newest entry not
    newer than the point; it is complete when every resource has one."""
    rids = [rid for rid, entries in by_rid.items() if entries]
    names = sorted({e.name for entries in by_rid.values() for e in entries})
    points = []
    for name in names:
        when = point_time(name)
        entries = []
        for rid in rids:
            older = [e for e in by_rid[rid] if e.time <= when]
            if older:
                entries.append(max(older, key=lambda e: e.time))
        points.append(Point(name, tuple(entries), len(entries) == len(rids)))
    return points


def choose(points: Sequence[Point], asked: str) -> Point:
    """The point asked for: by its name, or the newest point not newer than an ISO time."""
    word = asked.strip()
    if not points:
        raise PointError("no restore point on this node")
    if is_point_name(word):
        for point in points:
            if point.name == word:
                return point
    when = parse_time(word)
    older = [p for p in points if p.time <= when]
    if not older:
        if is_point_name(word):
            raise PointError(
                f"no restore point named {word}, and none older: the oldest is {points[0].name}"
            )
        raise PointError(f"no restore point as old as {word}: the oldest is {points[0].name}")
    return max(older, key=lambda p: p.time)


def at_point(points: Sequence[Point], point: Point, rid: str) -> Entry | None:
    """What resource rid restores for point; None when it has no entry that old."""
    return point.entry(rid)


def newer_than(points: Sequence[Point], point: Point) -> list[Point]:
    return [p for p in points if p.time > point.time]


def describe_choice(points: Sequence[Point], point: Point, now: float | None = None) -> str:
    """What a pre-flight says of a chosen point: its age, and the newer data left aside."""
    now = time.time() if now is None else now
    newer = newer_than(points, point)
    text = f"restore point {point.name} ({human_age(now - point.time)} old)"
    if not point.complete:
        text += ", incomplete: some resources have no point this old and keep their data"
    if newer:
        span = newer[-1].time - point.time
        text += (
            f"; {len(newer)} newer point(s), up to {newer[-1].name}: "
            f"{human_age(span)} of newer data will not be used"
        )
    else:
        text += "; it is the newest point"
    return text


def human_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
