"""Pure decisions of a drill: when it is refused, how each filesystem is cloned, which
received snapshot it starts from, the bubble bridge's address, the report, the schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ini
from daemon.drill.bubble import BubbleError, bridge_address
from daemon.drill.clones import (
    OVERLAY,
    SNAPSHOT,
    CloneError,
    _nested,
    newest_received,
    plan_clone,
    removal_script,
)
from daemon.drill.record import DrillRecord, DrillStore
from daemon.drill.runner import refusal
from daemon.scheduler.jobs import service_jobs
from daemon.service.config import EvalContext, ServiceConfig
from daemon.system.mounts import Mount

MEMBERS = ["n1", "n2", "n3"]
AGES = {"sync#0": 30.0, "sync#1": 31.0}


@pytest.mark.parametrize(
    ("node", "avail", "ages", "active", "expected"),
    [
        ("n3", "down", AGES, False, ""),
        ("n3", "stdby up", AGES, False, ""),
        ("n3", "n/a", {"sync#0": None, "sync#1": 5.0}, False, ""),
        ("n9", "down", AGES, False, "n9 is not a node of svc1"),
        ("n3", "up", AGES, False, "svc1 is up on n3"),
        ("n3", "warn", AGES, False, "svc1 is warn on n3"),
        ("n3", "down", {"sync#0": None, "sync#1": None}, False, "no sync resource has delivered"),
        ("n3", "down", {}, False, "it has no sync resource"),
        ("n3", "down", AGES, True, "runs on n3 already"),
        ("n9", "up", AGES, True, "n9 is not a node"),  # the first reason that applies
    ],
)
def test_refusal(
    node: str, avail: str, ages: dict[str, float | None], active: bool, expected: str
) -> None:
    record = DrillRecord("20261203T000000-abc123", "svc1", node, 0.0) if active else None
    why = refusal("svc1", node, MEMBERS, avail, ages, record)
    if expected:
        assert expected in why and "\n" not in why
    else:
        assert why == ""


def _mount(fstype: str, root: str = "/data", source: str = "/dev/mapper/svc1.d0") -> Mount:
    return Mount(root, "/srv/svc1/data", fstype, source, "rw", "rw")


def test_plan_clone_btrfs_snapshot_of_the_received_data() -> None:
    clone = plan_clone("fs#1", "/srv/svc1/data", _mount("btrfs"), "svc1", "D1", {"data": "sync#1"})
    assert clone.kind == SNAPSHOT and clone.sync_rid == "sync#1" and clone.subvolume == "data"
    assert clone.path == ".ferry/svc1/drills/D1/fs_1"
    assert clone.device == "/dev/mapper/svc1.d0"


def test_plan_clone_btrfs_without_a_btrfs_sync_clones_the_subvolume() -> None:
    clone = plan_clone("fs#0", "/srv/svc1/docker", _mount("btrfs", "/docker"), "svc1", "D1", {})
    assert clone.kind == SNAPSHOT and clone.sync_rid == "" and clone.subvolume == "docker"


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "overlay"])
def test_plan_clone_elsewhere_is_an_overlay(fstype: str) -> None:
    clone = plan_clone("fs#1", "/srv/svc1/data", _mount(fstype, "/"), "svc1", "D1", {})
    assert clone.kind == OVERLAY


def test_plan_clone_refuses_what_is_not_mounted_or_the_top_level() -> None:
    with pytest.raises(CloneError, match="nothing is mounted at /srv/svc1/data"):
        plan_clone("fs#1", "/srv/svc1/data", None, "svc1", "D1", {})
    with pytest.raises(CloneError, match="top level"):
        plan_clone("fs#1", "/srv/svc1/data", _mount("btrfs", "/"), "svc1", "D1", {})


def test_clone_record_round_trip() -> None:
    clone = plan_clone("fs#1", "/srv/svc1/data", _mount("btrfs"), "svc1", "D1", {"data": "sync#1"})
    assert type(clone).from_dict(clone.as_dict()) == clone


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], ""),
        ([("data@20261203T010000.000000", True, True)], "data@20261203T010000.000000"),
        (
            [
                ("data@20261203T010000.000000", True, True),
                ("data@20261203T020000.000000", True, True),
            ],
            "data@20261203T020000.000000",
        ),
        (  # an interrupted receive (writable, no received uuid) is never the clone's source
            [
                ("data@20261203T010000.000000", True, True),
                ("data@20261203T020000.000000", False, False),
            ],
            "data@20261203T010000.000000",
        ),
        ([("data@20261203T010000.000000", True, False)], ""),  # the sender's own snapshot
    ],
)
def test_newest_received(entries: list[tuple[str, bool, bool]], expected: str) -> None:
    assert newest_received(entries) == expected


def test_nested_subvolumes_below_a_path() -> None:
    listing = (
        "ID 258 gen 8 top level 256 path docker/btrfs/subvolumes/aa\n"
        "ID 259 gen 9 top level 256 path <FS_TREE>/docker/btrfs/subvolumes/bb\n"
        "ID 260 gen 9 top level 5 path dockerish/other\n"
    )
    assert _nested(listing, "docker") == [
        "docker/btrfs/subvolumes/aa",
        "docker/btrfs/subvolumes/bb",
    ]


def test_removal_script_names_only_the_drills_clones() -> None:
    clone = plan_clone("fs#1", "/srv/svc1/data", _mount("btrfs"), "svc1", "D1", {})
    script = removal_script([clone], "svc1", "D1", "/var/lib/ferry/drills/svc1/D1")
    assert ".ferry/svc1/drills/D1/" in script and "subvolid=5" in script
    assert removal_script([], "svc1", "D1", "/w").endswith("exit $rc")


@pytest.mark.parametrize(
    ("ipname", "prefix", "gateway", "taken", "expected"),
    [
        ("10.0.3.3", 24, "10.0.3.1", set(), "10.0.3.1/24"),
        ("10.0.3.3", 24, "", {"10.0.3.3"}, "10.0.3.1/24"),
        ("10.0.3.1", 24, "", {"10.0.3.1", "10.0.3.2"}, "10.0.3.3/24"),
        ("192.168.7.9", 30, "", set(), "192.168.7.10/30"),
    ],
)
def test_bridge_address(
    ipname: str, prefix: int, gateway: str, taken: set[str], expected: str
) -> None:
    assert bridge_address(ipname, prefix, gateway, taken) == expected


def test_bridge_address_without_room() -> None:
    with pytest.raises(BubbleError, match="no free address"):
        bridge_address("10.0.0.1", 31, "", {"10.0.0.0", "10.0.0.1"})


def test_history_is_bounded_newest_first(tmp_path: Path) -> None:
    store = DrillStore(tmp_path)
    for i in range(60):
        record = DrillRecord(f"D{i:02d}", "svc1", "n3", float(i), result="pass", bubble_pid=7)
        store.save(record)
        assert store.active("svc1") is not None
        store.finish(record)
        assert store.active("svc1") is None
    history = store.history("svc1")
    assert len(history) == 50 and history[0]["id"] == "D59"
    assert "bubble_pid" not in history[0] and history[0]["state"] == "ended"
    assert store.last_report("svc1") == history[0]


CONFIG = """[DEFAULT]
nodes = n1 n2
drpnodes = n3 n4
drill_schedule = @1h

[app#0]
start = true
"""


@pytest.mark.parametrize(("node", "has_drill"), [("n3", True), ("n4", False), ("n1", False)])
def test_the_drill_job_is_on_the_first_drpnode(node: str, has_drill: bool) -> None:
    svc = ServiceConfig(ini.load_bytes(CONFIG.encode(), "svc1.conf"), name="svc1",
                        context=EvalContext(nodename=node))  # fmt: skip
    jobs = {job.name: job for job in service_jobs(svc, node)}
    assert ("drill" in jobs) is has_drill
    if has_drill:
        assert jobs["drill"].schedule_text == "@1h" and jobs["drill"].error == ""
