"""Keeping restore points on a target: record the run's point, prune by the policy, guard
the free space. Runs on the target after every verified transfer (the sender's stamp
call); a failure here is logged and never fails the sync.

Order, so that a crash in between over-retains and never loses: the new point is
recorded before anything is pruned; a pruned point leaves the record only once its
data is gone (a point whose data could not be deleted stays listed, and is retried).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from daemon.config.store import write_atomically
from daemon.restore.points import Entry, Index, Point, point_name, service_points
from daemon.restore.policy import Policy, pruned

log = logging.getLogger("ferry.restore")


class PointKeeper(Protocol):
    """What a sync driver offers the keeper (see SyncDriver's restore point hooks)."""

    rid: str
    values: dict[str, Any]

    @property
    def sync_dir(self) -> Path: ...

    @property
    def var_dir(self) -> Path: ...

    @property
    def service(self) -> str: ...

    async def point_entry(self, name: str, stamp: Any) -> Entry | None: ...

    async def drop_entry(self, entry: Entry) -> None: ...

    async def measure_entries(self, entries: list[Entry]) -> dict[str, int]: ...

    async def points_free(self) -> float | None: ...


def index_of(driver: PointKeeper) -> Index:
    return Index(driver.var_dir, driver.service, driver.rid)


def guard_path(driver: PointKeeper) -> Path:
    return driver.sync_dir / "restore-guard.json"


async def keep(driver: PointKeeper, stamp: Any, now: float | None = None) -> str:
    """Keep the point of the run stamp stands for, then prune; its name, '' for none."""
    name = point_name(stamp.run_time)
    try:
        entry = await driver.point_entry(name, stamp)
    except Exception as exc:  # a point not kept must not fail the sync: said loudly
        log.warning("%s %s: restore point %s not kept: %s", driver.service, driver.rid, name, exc)
        return ""
    if entry is None:
        return ""
    index = index_of(driver)
    with index.locked():
        entries = index.entries()
        replaced = [e for e in entries if e.name == name and e.ref != entry.ref]
        index.write([*[e for e in entries if e.name != name], entry])
    for old in replaced:  # two runs in one second: the later one is the point
        await _drop(driver, old)
    log.info("%s %s: restore point %s kept", driver.service, driver.rid, name)
    await prune(driver, now)
    return name


async def prune(driver: PointKeeper, now: float | None = None) -> list[str]:
    """Prune by the policy, then by the space guard; refresh the sizes. Returns the
    names pruned."""
    now = time.time() if now is None else now
    policy: Policy = driver.values["retain"]
    min_age = float(driver.values["retain_min"])
    index = index_of(driver)
    entries = index.entries()
    when = {e.name: datetime.fromtimestamp(e.time, UTC) for e in entries}
    going = set(pruned(when.values(), datetime.fromtimestamp(now, UTC), policy, min_age))
    done = []
    for entry in entries:
        if when[entry.name] in going and await _drop(driver, entry):
            done.append(entry.name)
    if done:
        log.info("%s %s: pruned restore points %s (retain = %s, retain_min = %gs)",
                 driver.service, driver.rid, " ".join(done), policy.render(), min_age)  # fmt: skip
    done += await _guard_space(driver)
    await _measure(driver)
    return done


async def _guard_space(driver: PointKeeper) -> list[str]:
    """Prune the oldest points beyond the newest while free space is under the floor."""
    floor = float(driver.values["retain_free_min"])
    pruned_names: list[str] = []
    free = await driver.points_free()
    while free is not None and free < floor:
        entries = index_of(driver).entries()
        if len(entries) <= 1:
            break
        oldest = entries[0]
        if not await _drop(driver, oldest):
            break
        pruned_names.append(oldest.name)
        free = await driver.points_free()
    if pruned_names:
        message = (
            f"free space under retain_free_min ({floor:g}%): pruned the oldest restore "
            f"points {' '.join(pruned_names)}; {free if free is not None else 0:.1f}% free now"
        )
        log.warning("%s %s: %s", driver.service, driver.rid, message)
        record = _read_guard(driver)
        guard_path(driver).parent.mkdir(parents=True, exist_ok=True)
        write_atomically(
            guard_path(driver),
            json.dumps({"time": time.time(), "message": message, "pruned": pruned_names,
                        "count": int(record.get("count", 0)) + len(pruned_names)}) + "\n",
        )  # fmt: skip
    return pruned_names


def _read_guard(driver: PointKeeper) -> dict[str, Any]:
    try:
        data = json.loads(guard_path(driver).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def guard_warning(driver: PointKeeper, within: float = 86400.0) -> str:
    """The space guard's last warning, if it pruned within the last day."""
    record = _read_guard(driver)
    if record and time.time() - float(record.get("time", 0)) < within:
        return str(record.get("message", ""))
    return ""


def guard_count(driver: PointKeeper) -> int:
    return int(_read_guard(driver).get("count", 0))


async def _drop(driver: PointKeeper, entry: Entry) -> bool:
    """Delete one entry's data, then its record; False (logged) when the data stays."""
    try:
        await driver.drop_entry(entry)
    except Exception as exc:
        log.warning("%s %s: restore point %s not pruned yet: %s",
                    driver.service, driver.rid, entry.name, exc)  # fmt: skip
        return False
    index = index_of(driver)
    with index.locked():
        index.write(
            [e for e in index.entries() if not (e.name == entry.name and e.ref == entry.ref)]
        )
    return True


async def _measure(driver: PointKeeper) -> None:
    index = index_of(driver)
    entries = index.entries()
    try:
        sizes = await driver.measure_entries(entries)
    except Exception as exc:
        log.debug("%s %s: sizes of the restore points unknown: %s", driver.service, driver.rid, exc)
        return
    if not sizes:
        return
    with index.locked():
        current = index.entries()
        index.write([e.sized(sizes[e.name]) if e.name in sizes else e for e in current])


async def delete(driver: PointKeeper, name: str) -> bool:
    """An operator's delete of point name for this resource (the caller refuses the newest)."""
    entry = next((e for e in index_of(driver).entries() if e.name == name), None)
    return entry is not None and await _drop(driver, entry)


def points_of(var_dir: Path, service: str, rids: list[str]) -> list[Point]:
    return service_points({rid: Index(var_dir, service, rid).entries() for rid in rids})
