"""Restore points: names, the choice of a point, the service's grouping (pure), the keeper's
record and pruning (over an in-memory driver), and rsync's hard-link trees (real rsync)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from daemon.restore import catalog, keeper
from daemon.restore.points import (
    Entry,
    Index,
    PointError,
    at_point,
    choose,
    describe_choice,
    parse_time,
    point_name,
    point_time,
    service_points,
)
from daemon.restore.policy import parse_retain
from daemon.sync import stamps
from daemon.sync.rsync import points as rsync_points

T0 = point_time("2026-12-03T09:00:00Z")
HOUR = 3600.0


def entry(rid: str, when: float, ref: str = "") -> Entry:
    return Entry(point_name(when), rid, "tree", ref or point_name(when), when - 5)


# --------------------------------------------------------------------------- names, choice


def test_a_point_is_named_by_its_runs_utc_second() -> None:
    assert point_name(T0 + 0.9) == "2026-12-03T09:00:00Z"
    assert point_time(point_name(T0 + 7 * HOUR)) == T0 + 7 * HOUR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T09:00:00Z", T0),
        ("2026-12-03T10:00:00+01:00", T0),
        ("2026-12-03T09:00:00", T0),  # a bare time is UTC
        ("2026-12-03 09:30", T0 + 1800),
    ],
)
def test_times_parse_as_iso_8601(text: str, expected: float) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-03T09:00:00Z", "09:00", ""])
def test_a_malformed_time_is_a_one_line_error(text: str) -> None:
    with pytest.raises(PointError, match="neither a restore point's name nor an ISO 8601 time"):
        parse_time(text)


def _points() -> list[Any]:
    return service_points(
        {
            "sync#0": [
                entry("sync#0", T0),
                entry("sync#0", T0 + HOUR),
                entry("sync#0", T0 + 2 * HOUR),
            ],
            "sync#1": [entry("sync#1", T0), entry("sync#1", T0 + 2 * HOUR)],
        }
    )


def test_the_service_points_group_the_resources_of_one_run() -> None:
    points = _points()
    assert [p.name for p in points] == [point_name(T0 + h * HOUR) for h in range(3)]
    assert [p.complete for p in points] == [True, True, True]
    assert [len(p.own) for p in points] == [2, 1, 2]
    assert points[0].size is None  # sizes unknown until measured


def test_a_resource_with_no_entry_that_old_makes_a_point_incomplete() -> None:
    sync0 = [entry("sync#0", T0), entry("sync#0", T0 + HOUR)]
    points = service_points({"sync#0": sync0, "sync#1": [entry("sync#1", T0 + HOUR)]})
    assert [p.complete for p in points] == [False, True]
    assert points[0].entry("sync#1") is None
    assert points[0].as_dict(now=T0)["resources"] == ["sync#0"]


def test_a_point_is_chosen_by_name_or_by_time() -> None:
    points = _points()
    assert choose(points, point_name(T0 + HOUR)).name == point_name(T0 + HOUR)
    # a time: the newest point not newer than it
    assert choose(points, "2026-12-03T10:59:59Z").name == point_name(T0 + HOUR)
    assert choose(points, "2030-01-01T00:00:00Z").name == point_name(T0 + 2 * HOUR)


def test_a_time_older_than_every_point_is_refused_naming_the_oldest() -> None:
    with pytest.raises(
        PointError, match=r"no restore point as old as .*the oldest is 2026-12-03T09"
    ):
        choose(_points(), "2026-12-01T00:00:00+00:00")
    with pytest.raises(PointError, match="no restore point named 2020-01-01T00:00:00Z"):
        choose(_points(), "2020-01-01T00:00:00Z")
    with pytest.raises(PointError, match="no restore point on this node"):
        choose([], "2026-12-03T09:00:00Z")


def test_an_incomplete_point_takes_the_missing_resources_newest_older_entry() -> None:
    points = _points()
    middle = points[1]
    assert at_point(points, middle, "sync#0") == middle.entry("sync#0")
    found = at_point(points, middle, "sync#1")
    assert found is not None and found.name == point_name(T0)
    assert at_point(points, points[0], "sync#9") is None


def test_the_preflight_says_the_age_and_the_newer_data_left_aside() -> None:
    points = _points()
    text = describe_choice(points, points[0], now=T0 + 3 * HOUR)
    assert "3h0m old" in text and "2 newer point(s)" in text and "2h0m of newer data" in text
    assert "the newest point" in describe_choice(points, points[-1], now=T0 + 3 * HOUR)
    lacking = service_points({"sync#0": [entry("sync#0", T0)], "sync#1": [entry("sync#1", T0 + 1)]})
    assert "incomplete" in describe_choice(lacking, lacking[0], now=T0 + 3 * HOUR)


# --------------------------------------------------------------------------- the keeper


class MemoryDriver:
    """A sync resource whose points' data is a set of names (pure logic of the keeper)."""

    def __init__(self, var_dir: Path, retain: str = "2h", retain_min: float = 0.0) -> None:
        self.rid = "sync#1"
        self.values: dict[str, Any] = {
            "retain": parse_retain(retain),
            "retain_min": retain_min,
            "retain_free_min": 10.0,
        }
        self._var = var_dir
        self.data: set[str] = set()
        self.free = 50.0
        self.refuse: set[str] = set()

    @property
    def sync_dir(self) -> Path:
        return self._var / "sync"

    @property
    def var_dir(self) -> Path:
        return self._var

    @property
    def service(self) -> str:
        return "svc1"

    async def point_entry(self, name: str, stamp: Any) -> Entry | None:
        self.data.add(name)
        return Entry(name, self.rid, "tree", name, stamp.started)

    async def drop_entry(self, entry: Entry) -> None:
        if entry.name in self.refuse:
            raise OSError("busy")
        self.data.discard(entry.name)
        self.free += 10.0

    async def measure_entries(self, entries: list[Entry]) -> dict[str, int]:
        return {e.name: 1000 for e in entries}

    async def points_free(self) -> float | None:
        return self.free


def stamp_at(when: float) -> stamps.Stamp:
    return stamps.Stamp(when - 5, when + 1, 10, 6, "incremental", "n1", "n3", when)


async def test_the_keeper_records_each_run_and_prunes_by_the_policy(tmp_path: Path) -> None:
    driver = MemoryDriver(tmp_path, retain="2h")
    for minutes in (0, 20, 40, 60, 80, 100, 120):
        await keeper.keep(driver, stamp_at(T0 + minutes * 60), now=T0 + minutes * 60 + 1)
    names = [e.name for e in keeper.index_of(driver).entries()]
    # 2h: the newest of the 09:xx and 10:xx hours... counted from 11:00: hours 10 and 11
    assert names == [point_name(T0 + 100 * 60), point_name(T0 + 120 * 60)]
    assert driver.data == set(names)  # pruned points' data went with their record
    assert all(e.size == 1000 for e in keeper.index_of(driver).entries())


async def test_retain_min_keeps_every_young_point(tmp_path: Path) -> None:
    driver = MemoryDriver(tmp_path, retain="1h", retain_min=HOUR)
    for minutes in (0, 10, 20):
        await keeper.keep(driver, stamp_at(T0 + minutes * 60), now=T0 + minutes * 60)
    await keeper.prune(driver, now=T0 + 25 * 60)
    assert len(keeper.index_of(driver).entries()) == 3


async def test_a_point_whose_data_cannot_go_stays_listed(tmp_path: Path) -> None:
    driver = MemoryDriver(tmp_path, retain="1h")
    await keeper.keep(driver, stamp_at(T0), now=T0)
    driver.refuse.add(point_name(T0))
    await keeper.keep(driver, stamp_at(T0 + 3 * HOUR), now=T0 + 3 * HOUR)
    names = [e.name for e in keeper.index_of(driver).entries()]
    assert names == [point_name(T0), point_name(T0 + 3 * HOUR)]
    driver.refuse.clear()
    await keeper.prune(driver, now=T0 + 3 * HOUR)  # retried at the next prune
    assert [e.name for e in keeper.index_of(driver).entries()] == [point_name(T0 + 3 * HOUR)]


async def test_the_space_guard_prunes_the_oldest_but_never_the_newest(tmp_path: Path) -> None:
    driver = MemoryDriver(tmp_path, retain="30d", retain_min=30 * 86400)
    for hours in range(4):
        await keeper.keep(driver, stamp_at(T0 + hours * HOUR), now=T0 + hours * HOUR)
    driver.free = 1.0  # each drop frees 10 %: under 10 % takes one drop... then stays
    await keeper.prune(driver, now=T0 + 4 * HOUR)
    names = [e.name for e in keeper.index_of(driver).entries()]
    assert names == [point_name(T0 + h * HOUR) for h in (1, 2, 3)]
    assert "retain_free_min" in keeper.guard_warning(driver) and keeper.guard_count(driver) == 1
    driver.free = -1000.0  # a full disk: everything but the newest goes
    await keeper.prune(driver, now=T0 + 4 * HOUR)
    assert [e.name for e in keeper.index_of(driver).entries()] == [point_name(T0 + 3 * HOUR)]


async def test_the_catalog_refuses_to_delete_the_newest_or_an_unknown_point(
    tmp_path: Path,
) -> None:
    driver = MemoryDriver(tmp_path, retain="30d", retain_min=30 * 86400)
    for hours in range(3):
        await keeper.keep(driver, stamp_at(T0 + hours * HOUR), now=T0 + hours * HOUR)

    class Here:
        name, node = "svc1", "n3"
        var_dir = tmp_path
        sync_rids = {"sync#1"}
        resources = {"sync#1": driver}

    with pytest.raises(PointError, match="newest restore point"):
        await catalog.delete(Here(), point_name(T0 + 2 * HOUR))
    with pytest.raises(PointError, match="no restore point"):
        await catalog.delete(Here(), "2026-01-01T00:00:00Z")
    assert await catalog.delete(Here(), point_name(T0)) == ["sync#1"]
    listed = catalog.listing(Here(), point_name(T0 + HOUR))
    assert [p["name"] for p in listed["points"]] == [point_name(T0 + h * HOUR) for h in (2, 1)]
    assert listed["chosen"]["name"] == point_name(T0 + HOUR)
    taken = catalog.request_takeover(Here(), point_name(T0 + HOUR), "test")
    assert taken == {"restore_point": point_name(T0 + HOUR), "resources": ["sync#1"]}
    assert catalog.listing(Here())["pending"]["point"] == point_name(T0 + HOUR)


def test_an_unreadable_index_is_no_point(tmp_path: Path) -> None:
    index = Index(tmp_path, "svc1", "sync#1")
    index.path.parent.mkdir(parents=True)
    index.path.write_text("{torn")
    assert index.entries() == []


# --------------------------------------------------------------------------- rsync trees

needs_rsync = pytest.mark.skipif(shutil.which("rsync") is None, reason="no rsync binary")


def _replace(path: Path, text: str) -> None:
    """As rsync writes a changed file: a new inode renamed over the old one."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.rename(tmp, path)


@needs_rsync
async def test_an_rsync_point_elsewhere_is_a_hard_link_tree(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    (dst / "sub").mkdir(parents=True)
    (dst / "a.txt").write_text("known a")
    (dst / "sub" / "b.txt").write_text("known b")
    work = tmp_path / "work"
    a = await rsync_points.keep(point_name(T0), str(dst), "sync#1", work, "svc1", T0)
    assert a.kind == "tree"
    tree = dst / rsync_points.TREES / a.ref
    assert (tree / "a.txt").stat().st_ino == (dst / "a.txt").stat().st_ino  # no data copied
    # the next run changes a file, deletes one and adds one
    _replace(dst / "a.txt", "ENCRYPTED")
    (dst / "sub" / "b.txt").unlink()
    (dst / "new.txt").write_text("new")
    b = await rsync_points.keep(point_name(T0 + HOUR), str(dst), "sync#1", work, "svc1", T0)
    assert not (dst / rsync_points.TREES / b.ref / rsync_points.TREES).exists()  # not nested
    assert (tree / "a.txt").read_text() == "known a"
    sizes = await rsync_points.sizes([a, b], str(dst), work, "svc1")
    assert sizes[a.name] > 0  # its own copy of b.txt and of the old a.txt
    await rsync_points.restore(a, str(dst), work, "svc1")
    assert (dst / "a.txt").read_text() == "known a"
    assert (dst / "sub" / "b.txt").read_text() == "known b"
    assert not (dst / "new.txt").exists()
    assert (dst / rsync_points.TREES / b.ref / "new.txt").exists()  # no point was destroyed
    await rsync_points.drop(a, str(dst), work, "svc1")
    assert not tree.exists() and (dst / rsync_points.TREES / b.ref).is_dir()
