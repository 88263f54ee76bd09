"""Sync resources of seed use case 1 on the testbed: btrfs and docker from n1 to the DR node n3,
the guards (sender down, target running, dstfs), kill -9 midway, a dead target, late status."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops import REPO, ferry, install, load_seed_images, sh, status, sync
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

CONFIG = (REPO / "conf.d" / "uc1-failover" / "svc1.conf").read_text()
NODES = ("n1", "n2", "n3")
PROGRESS = "/var/lib/ferry/services/svc1/sync/sync#1/progress.json"


def by_rid(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["rid"]: r for r in reports}


@pytest.fixture(scope="module")
def uc1(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = testbed_session
    install(tb, NODES, "svc1", CONFIG)
    load_seed_images(tb, "n1")
    done = ferry(tb, "n1", "svc1", "start", "--local")
    assert done.returncode == 0, done.stderr
    assert ferry(tb, "n3", "svc1", "startstandby", "--local").returncode == 0
    yield tb
    for node in NODES:
        if tb.alive(node):
            ferry(tb, node, "svc1", "stop", "--local", "--force")
            sh(tb, node, "rm -f /etc/ferry/svc1.conf /etc/ferry/svc2.conf")


def test_btrfs_and_docker_bring_data_and_images_to_n3(uc1: Testbed) -> None:
    tb = uc1
    sh(tb, "n1", "echo written-on-n1 > /srv/svc1/data/hello && mkdir -p /srv/svc1/data/d")
    code, reports = sync(tb, "n1", "all")
    assert code == 0, reports
    results = by_rid(reports)
    assert results["sync#0"]["ok"] and results["sync#1"]["ok"]
    assert results["sync#1"]["target"] == "n3"
    assert sh(tb, "n3", "cat /srv/svc1/data/hello").stdout == "written-on-n1\n"
    images = ferry(tb, "n3", "svc1", "docker", "--", "images", "--format", "{{.Repository}}")
    assert {"google/pause", "opensvc/nginx"} <= set(images.stdout.split())

    # the second run is incremental and moves little
    sh(tb, "n1", "echo again > /srv/svc1/data/second")
    code, reports = sync(tb, "n1", "all")
    results = by_rid(reports)
    assert code == 0, reports
    assert results["sync#1"]["mode"] == "incremental"
    assert results["sync#1"]["bytes"] < 64 * 1024
    assert results["sync#0"]["bytes"] == 0
    assert "already holds every image" in results["sync#0"]["reason"]
    assert sh(tb, "n3", "cat /srv/svc1/data/second").stdout == "again\n"

    sender = status(tb, "n1")["resources"]
    assert sender["sync#1"]["status"] == "up"
    assert any("n3: last sync" in line for line in sender["sync#1"]["log"])
    receiver = status(tb, "n3")["resources"]
    assert receiver["sync#1"]["status"] == "up"


def test_sender_whose_service_is_down_refuses(uc1: Testbed) -> None:
    code, reports = sync(uc1, "n2", "all")
    assert code == 1
    assert {r["mode"] for r in reports} == {"skipped"}
    assert all("the service is not up on n2" in r["reason"] for r in reports)


def test_sync_full_forces_a_complete_transfer(uc1: Testbed) -> None:
    code, reports = sync(uc1, "n1", "full", "--rid", "sync#1")
    assert code == 0, reports
    assert reports[0]["mode"] == "full"
    assert "requested" in reports[0]["reason"]


def test_kill_9_midway_keeps_the_target_copy_and_next_run_is_incremental(uc1: Testbed) -> None:
    tb = uc1
    sh(tb, "n1", "echo before-kill > /srv/svc1/data/marker")
    assert sync(tb, "n1", "all", "--rid", "sync#1")[0] == 0
    points_before = restore_points(tb)
    assert points_before, "the target keeps a restore point of every verified run"
    # 200 MiB of new data, and a slow link so that the transfer is surely running when killed
    sh(tb, "n1", "head -c 200M /dev/urandom > /srv/svc1/data/big && sync")
    tb.netem("n3", "rate", "40mbit")
    try:
        for victim in ("sender", "receiver"):
            sh(tb, "n1", f"rm -f '{PROGRESS}'")  # a killed sender leaves its last progress
            proc = tb.popen("n1", *_sync_argv())
            try:
                _wait_for_progress(tb)
                if victim == "sender":
                    proc.kill()
                else:
                    receiver = _wait_for_receiver(tb)
                    sh(tb, "n3", f"kill -9 {receiver}")
            finally:
                proc.wait(timeout=60)
            # the target's copy is the previous one, whole, and still mounted
            assert sh(tb, "n3", "cat /srv/svc1/data/marker").stdout == "before-kill\n"
            assert sh(tb, "n3", "test -e /srv/svc1/data/big").returncode != 0
            assert status(tb, "n3")["resources"]["fs#1"]["status"] == "stdby up"
    finally:
        tb.netem("n3", "off")
    # the killed receive left its half-received subvolume (writable, no received uuid)
    # in the snapshot directory: nothing uses it, and the next run removes it
    _wait_no_receive(tb)
    every, read_only = _received_subvolumes(tb)
    leftovers = every - read_only
    assert len(leftovers) == 1, (every, read_only)
    code, reports = sync(tb, "n1", "all", "--rid", "sync#1")
    assert code == 0, reports
    assert reports[0]["mode"] == "incremental"
    assert sh(tb, "n3", "stat -c %s /srv/svc1/data/big").stdout.strip() == str(200 * 1024 * 1024)
    every, read_only = _received_subvolumes(tb)
    assert every == read_only, (every, read_only)  # no leftover: only verified snapshots
    assert not leftovers & every
    # every earlier restore point is intact and listed, and the new run made one more
    points_after = restore_points(tb)
    assert set(points_before) < set(points_after), (points_before, points_after)
    refs = {e["ref"] for p in points_after.values() for e in p["entries"] if e["rid"] == "sync#1"}
    assert refs <= every, (refs, every)
    sh(tb, "n1", "rm -f /srv/svc1/data/big")


def restore_points(tb: Testbed, node: str = "n3") -> dict[str, dict[str, Any]]:
    """The restore points of sync#1 listed on node, by name."""
    done = ferry(tb, node, "svc1", "print", "restorepoints", "-o", "json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["points"]
    return {p["name"]: p for p in listed if "sync#1" in p["resources"]}


def _received_subvolumes(tb: Testbed) -> tuple[set[str], set[str]]:
    """The subvolumes in sync#1's snapshot directory on n3's disk, all and read-only ones."""

    def names(flags: str) -> set[str]:
        listed = sh(tb, "n3", f"btrfs subvolume list {flags} /srv/svc1/data").stdout
        return {line.rsplit("/", 1)[-1] for line in listed.splitlines() if "/sync#1/" in line}

    return names(""), names("-r")


def _wait_no_receive(tb: Testbed, timeout: float = 60) -> None:
    """Until no btrfs receive runs on n3 (the killed peer's child ends at the stream's end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sh(tb, "n3", "pgrep -f 'btrfs [r]eceive' || true").stdout.split():
            return
        time.sleep(0.2)
    raise AssertionError("btrfs receive still runs on n3")


def _sync_argv() -> list[str]:
    from tests.integration.ops import FERRY

    return [FERRY, "svc1", "sync", "all", "--rid", "sync#1", "--local"]


def _wait_for_progress(tb: Testbed, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sh(tb, "n1", f"test -s '{PROGRESS}'").returncode == 0:
            time.sleep(1)
            return
        time.sleep(0.2)
    raise AssertionError("the transfer never reported progress")


def _wait_for_receiver(tb: Testbed, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = sh(tb, "n3", "pgrep -f 'sync [b]trfs-peer' || true").stdout.split()
        if pids:
            return " ".join(pids)
        time.sleep(0.2)
    raise AssertionError("the receiving side never started")


def test_dead_target_is_a_clear_error_within_the_timeout(uc1: Testbed) -> None:
    tb = uc1
    tb.kill("n3")
    try:
        started = time.monotonic()
        code, reports = sync(tb, "n1", "all")
        assert code == 1
        assert time.monotonic() - started < 60
        for report in reports:
            assert report["mode"] == "skipped"
            assert "state is unknown" in report["reason"]
    finally:
        tb.revive("n3")
        assert ferry(tb, "n3", "svc1", "startstandby", "--local").returncode == 0


def test_status_turns_late_after_sync_max_delay(uc1: Testbed) -> None:
    """Fresh data is up on both sides; once older than sync_max_delay, the sender says
    down (late: n3) and the receiver warn. The delay is shortened after the sync, not
    raced: data age only grows, whatever the machine's load."""
    tb = uc1

    def max_delay(value: str) -> None:
        for node in ("n1", "n3"):
            done = ferry(tb, node, "svc1", "set", "--kw", f"sync#1.sync_max_delay={value}")
            assert done.returncode == 0, done.stderr

    max_delay("1h")
    try:
        assert sync(tb, "n1", "all", "--rid", "sync#1")[0] == 0
        assert status(tb, "n1")["resources"]["sync#1"]["status"] == "up"
        assert status(tb, "n3")["resources"]["sync#1"]["status"] == "up"
        max_delay("2s")
        time.sleep(2.5)
        sender = status(tb, "n1")
        assert sender["resources"]["sync#1"]["status"] == "down"
        assert "late: n3" in sender["resources"]["sync#1"]["log"][0]
        assert sender["avail"] == "up"  # replication problems colour overall, never avail
        assert sender["overall"] == "warn"
        assert status(tb, "n3")["resources"]["sync#1"]["status"] == "warn"
    finally:
        for node in ("n1", "n3"):
            ferry(tb, node, "svc1", "unset", "--kw", "sync#1.sync_max_delay")


SVC2 = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[app#0]
start = touch /var/lib/ferry/svc2.up
stop = rm -f /var/lib/ferry/svc2.up
check = test -f /var/lib/ferry/svc2.up

[sync#0]
src = /srv/svc2/
dst = /srv/svc2
target = drpnodes

[sync#1]
src = /srv/svc2/
dst = /srv/svc2
dstfs = /srv/svc2
target = drpnodes
"""


def test_rsync_guards_target_running_and_dstfs(uc1: Testbed) -> None:
    tb = uc1
    install(tb, NODES, "svc2", SVC2)
    sh(tb, "n1", "mkdir -p /srv/svc2 && echo rsynced > /srv/svc2/file")
    sh(tb, "n3", "mkdir -p /srv/svc2")
    assert ferry(tb, "n1", "svc2", "start", "--local").returncode == 0
    try:
        code, reports = sync(tb, "n1", "all", svc="svc2")
        results = by_rid(reports)
        assert results["sync#0"]["ok"], reports
        assert sh(tb, "n3", "cat /srv/svc2/file").stdout == "rsynced\n"
        assert results["sync#1"]["mode"] == "skipped"
        assert "dstfs /srv/svc2 is not a mounted filesystem on n3" in results["sync#1"]["reason"]
        assert code == 1

        assert ferry(tb, "n3", "svc2", "start", "--local").returncode == 0
        code, reports = sync(tb, "n1", "all", "--rid", "sync#0", svc="svc2")
        assert code == 1
        assert reports[0]["mode"] == "skipped"
        assert "the service is up on the target (app#0)" in reports[0]["reason"]
    finally:
        for node in ("n1", "n3"):
            ferry(tb, node, "svc2", "stop", "--local")
        sh(tb, "n1", "rm -rf /srv/svc2")
        sh(tb, "n3", "rm -rf /srv/svc2")


def test_the_way_back_after_a_dr_activation_is_incremental(uc1: Testbed) -> None:
    """n3 runs the service (DR activated by hand here): its sync goes back to the primary
    site's shared disk, incrementally, and so do the images."""
    tb = uc1
    sh(tb, "n1", "echo from-primary > /srv/svc1/data/origin")
    assert sync(tb, "n1", "all")[0] == 0
    assert ferry(tb, "n1", "svc1", "stop", "--local").returncode == 0
    done = ferry(tb, "n3", "svc1", "start", "--local")
    assert done.returncode == 0, done.stderr
    try:
        sh(tb, "n3", "echo written-during-dr > /srv/svc1/data/dr")
        code, reports = sync(tb, "n3", "all", "--rid", "sync#1")
        assert code == 0, [r["reason"] for r in reports]
        assert [r["target"] for r in reports] == ["n1", "n2"]
        assert all(r["mode"] == "incremental" for r in reports), reports
        # the images too: each primary node's engine filesystem is mounted for the
        # receive (one node after the other: they share the disk), its engine started
        # there, then stopped and unmounted
        code, images = sync(tb, "n3", "all", "--rid", "sync#0")
        assert code == 0, images
        assert [(r["target"], r["ok"]) for r in images] == [("n1", True), ("n2", True)]
        for node in ("n1", "n2"):
            assert sh(tb, node, "grep -c receive /proc/self/mountinfo").stdout.strip() == "0"
    finally:
        assert ferry(tb, "n3", "svc1", "stop", "--local").returncode == 0
        assert ferry(tb, "n3", "svc1", "startstandby", "--local").returncode == 0
        assert ferry(tb, "n1", "svc1", "start", "--local").returncode == 0
    assert sh(tb, "n1", "cat /srv/svc1/data/dr").stdout == "written-during-dr\n"
