"""Restore points of seed use case 1 (btrfs + docker) on the DR node n3, through the daemons:
known content synced (point A), then every file overwritten with random bytes and some
deleted, synced (point B); a drill from A serves the known content while production runs;
bad --at values are refused with nothing changed; a takeover from A on n3 serves the known
content, destroys no point, and the way back to n1 is incremental."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.drill_ops import Prober, drill, metric, metrics
from tests.integration.ops import (
    avail,
    ferry,
    load_seed_images,
    nginx_serving_data,
    sh,
    status,
    wait,
)
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

# Seed use case 1, nginx serving the replicated data (its /www from /srv/svc1/data/www).
CONFIG = nginx_serving_data("uc1-failover")
URL = "http://10.0.3.3/"
KNOWN = "known-content-of-point-A"
# 64 KiB, so that its data is an extent of its own (btrfs inlines small files)
WRITE_KNOWN = (
    f"mkdir -p /srv/svc1/data/www && (echo {KNOWN}; head -c 65536 /dev/zero | tr '\\0' x) "
    "> /srv/svc1/data/www/index.html && echo kept > /srv/svc1/data/www/other.txt"
)


def holds_known(tb: Testbed) -> bool:
    """Whether n3's live data holds the known content (it may hold random bytes)."""
    done = sh(tb, "n3", f"grep -q {KNOWN} /srv/svc1/data/www/index.html && echo yes || true")
    return done.stdout.strip() == "yes"


def points(tb: Testbed, node: str = "n3") -> list[dict[str, Any]]:
    done = ferry(tb, node, "svc1", "print", "restorepoints", "-o", "json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["points"])


def served(tb: Testbed) -> str:
    done = tb.python("n2", "-c", f"import urllib.request;print(urllib.request.urlopen({URL!r}, "
                     "timeout=5).read().decode(errors='replace'))", timeout=30)  # fmt: skip
    return done.stdout if done.returncode == 0 else ""


def standby_up(tb: Testbed) -> bool:
    resources = status(tb, "n3")["resources"]
    return all(resources[rid]["status"] == "stdby up" for rid in ("fs#0", "fs#1"))


def sync_all(tb: Testbed) -> None:
    done = ferry(tb, "n1", "svc1", "sync", "all", "--wait", "--time", "300", "-o", "json")
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)["result"]["reports"]
    assert {(r["rid"], r["target"]) for r in reports if r["ok"]} == {
        ("sync#0", "n3"),
        ("sync#1", "n3"),
    }, reports


@pytest.fixture(scope="module")
def cluster(testbed_session: Testbed) -> Iterator[Testbed]:
    base = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{base}-rp", prefix=f"{testbed_session.prefix}rp-")
    tb.up()
    try:
        tb.start_ferryd()
        tb.exec("n1", "sh", "-c", "cat > /tmp/ferry-rp-svc1.conf", input=CONFIG, check=True)
        created = ferry(tb, "n1", "svc1", "create", "--config", "/tmp/ferry-rp-svc1.conf")
        assert created.returncode == 0, created.stderr
        load_seed_images(tb, "n1")
        assert ferry(tb, "n1", "svc1", "stop", "--local", "--force").returncode == 0
        done = ferry(tb, "n1", "svc1", "set", "--kw", "DEFAULT.orchestrate=ha")
        assert done.returncode == 0, done.stderr
        done = ferry(tb, "n1", "svc1", "start", "--wait", "--time", "120")
        assert done.returncode == 0, done.stderr
        wait("svc1 up on n1", lambda: avail(tb, "n1") == "up", 60)
        sh(tb, "n1", WRITE_KNOWN)
        wait("n3's standby filesystems", lambda: standby_up(tb), 60)
        yield tb
    finally:
        sh(tb, "n1", "rm -f /tmp/ferry-rp-svc1.conf")
        tb.down()


@pytest.fixture(scope="module")
def two_points(cluster: Testbed) -> tuple[str, str]:
    tb = cluster
    wait("the known content served on n1", lambda: KNOWN in served(tb), 60)
    sync_all(tb)
    a = points(tb)[0]
    assert a["complete"] and set(a["resources"]) == {"sync#0", "sync#1"}, points(tb)
    time.sleep(1.1)  # points are named by the second
    # ransomware: every file overwritten with random bytes, one deleted
    sh(tb, "n1", "for f in /srv/svc1/data/www/*; do head -c 4096 /dev/urandom > $f; done; "
                 "rm /srv/svc1/data/www/other.txt")  # fmt: skip
    sync_all(tb)
    b = points(tb)[0]
    assert b["name"] > a["name"]
    assert not holds_known(tb)  # replicated
    return a["name"], b["name"]


def test_every_run_is_a_point_listed_with_its_resources_and_size(
    cluster: Testbed, two_points: tuple[str, str]
) -> None:
    tb = cluster
    a, b = two_points
    listed = points(tb)
    names = [p["name"] for p in listed]
    assert names == sorted(names, reverse=True), names  # newest first
    assert {a, b} <= set(names), names  # (the scheduler's own runs may add points)
    first = next(p for p in listed if p["name"] == a)
    kinds = {e["rid"]: e["kind"] for e in first["entries"]}
    assert kinds == {"sync#0": "images", "sync#1": "btrfs"}, first
    assert first["size"] is not None and first["size"] >= 65536  # A alone holds the known file
    # the image of A is tagged, so that no prune of the engine removes it
    listing = ("docker", "--", "images", "--format", "{{.Repository}}:{{.Tag}}")
    shown = ferry(tb, "n3", "svc1", *listing)
    assert shown.returncode == 0, shown.stderr
    tags = shown.stdout
    assert "ferry-restore/svc1:" in tags, tags
    # an alert can watch them
    text = metrics(tb, "n3")
    assert metric(text, "ferry_restore_points", service="svc1", node="n3"), text
    assert "ferry_restore_point_oldest_age_seconds{" in text
    shown = ferry(tb, "n3", "svc1", "print", "restorepoints")
    assert a in shown.stdout and "yes" in shown.stdout, shown.stdout


def test_bad_at_values_are_refused_and_change_nothing(
    cluster: Testbed, two_points: tuple[str, str]
) -> None:
    tb = cluster
    before = points(tb)
    for at, said in (
        ("2000-01-01T00:00:00Z", "no restore point"),
        ("last tuesday", "neither a restore point's name nor an ISO 8601 time"),
        ("2001-02-03T04:05:06Z", "no restore point"),
    ):
        done = ferry(tb, "n3", "svc1", "takeover", "--yes", "--at", at)
        assert done.returncode == 2 and said in done.stderr, (at, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        code, _, err = drill(tb, "n3", "--at", at)
        assert code == 2 and said in err, (at, err)
    done = ferry(tb, "n3", "svc1", "restorepoint", "delete", two_points[1])
    assert done.returncode == 2 and "newest" in done.stderr, done.stderr
    assert {p["name"] for p in before} <= {p["name"] for p in points(tb)}  # none deleted
    assert avail(tb, "n1") == "up" and avail(tb, "n3") != "up"
    listed = json.loads(ferry(tb, "n3", "svc1", "print", "restorepoints", "-o", "json").stdout)
    assert listed["pending"] is None


def test_a_drill_from_point_a_serves_the_known_content(
    cluster: Testbed, two_points: tuple[str, str]
) -> None:
    tb = cluster
    a, _ = two_points
    probe = Prober(tb, "n2", URL)
    try:
        code, report, err = drill(tb, "n3", "--at", a, "--check", "wget -qO- http://10.0.3.3/")
    finally:
        seen = probe.stop()
    assert code == 0, err
    assert report["result"] == "pass" and report["restore_point"] == a, report
    assert KNOWN in report["check_output"], report["check_output"]
    assert {c for _, c in seen} == {200}, seen  # production answered throughout
    assert KNOWN not in served(tb)  # and still serves its own (encrypted) data


def test_a_takeover_from_point_a_serves_it_and_destroys_no_point(
    cluster: Testbed, two_points: tuple[str, str]
) -> None:
    tb = cluster
    a, b = two_points
    done = ferry(tb, "n3", "svc1", "takeover", "--yes", "--at", a, "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"restore point {a}" in done.stdout and "newer data will not be used" in done.stdout
    wait("svc1 up on n3", lambda: avail(tb, "n3") == "up", 90)
    wait("point A's content served from n3", lambda: KNOWN in served(tb), 60)
    assert sh(tb, "n3", "cat /srv/svc1/data/www/other.txt").stdout == "kept\n"
    assert avail(tb, "n1") != "up"
    names = {p["name"] for p in points(tb)}
    assert {a, b} <= names, names  # the final sync's data is a newer point, not lost
    listed = json.loads(ferry(tb, "n3", "svc1", "print", "restorepoints", "-o", "json").stdout)
    assert listed["pending"] is None and listed["last_restore"]["point"] == a

    # the way back: n3 sends to n1 incrementally (the chain never broke)
    done = ferry(tb, "n3", "svc1", "sync", "all", "--wait", "--time", "300", "-o", "json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    reports = record["result"]["reports"]
    btrfs = [r for r in reports if r["rid"] == "sync#1" and r["target"] == "n1"]
    assert btrfs and btrfs[0]["mode"] == "incremental", reports
