"""Restore points of seed use case 3 (rsync into a btrfs dstfs, docker) on the DR node n3,
with --local as an operator without daemons would: known content synced from the flex
primary n2 (point A), then every file overwritten with random bytes and one deleted, synced
(point B); a drill from A and a start from A on n3 serve the known content; bad --at values
are refused with nothing changed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops import ferry, http_status, nginx_serving_data, sh, sync, uc3_testbed
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

CONFIG = nginx_serving_data("uc3-flex-drp")
KNOWN = "known-content-of-point-A"
N3_URL = "http://10.0.3.5/"


def holds_known(tb: Testbed) -> bool:
    """Whether n3's live data holds the known content (it may hold random bytes)."""
    done = sh(tb, "n3", f"grep -q {KNOWN} /srv/svc1/data/www/index.html && echo yes || true")
    return done.stdout.strip() == "yes"


def points(tb: Testbed) -> dict[str, Any]:
    done = ferry(tb, "n3", "svc1", "print", "restorepoints", "-o", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def same_points(now: dict[str, Any], before: dict[str, Any]) -> bool:
    """The same points (their ages aside), the same pending point and last restore."""

    def kept(listing: dict[str, Any]) -> list[Any]:
        return [(p["name"], p["entries"]) for p in listing["points"]]

    return kept(now) == kept(before) and all(
        now[k] == before[k] for k in ("pending", "last_restore")
    )


def page(tb: Testbed, url: str) -> str:
    done = tb.python("n2", "-c", f"import urllib.request;print(urllib.request.urlopen({url!r}, "
                     "timeout=5).read().decode(errors='replace'))", timeout=30)  # fmt: skip
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture(scope="module")
def uc3(testbed_session: Testbed) -> Iterator[tuple[Testbed, str, str]]:
    tb = uc3_testbed(testbed_session, "r3", CONFIG)
    try:
        sh(tb, "n2", f"mkdir -p /srv/svc1/data/www && echo {KNOWN} > /srv/svc1/data/www/index.html"
                     " && echo kept > /srv/svc1/data/www/other.txt")  # fmt: skip
        code, reports = sync(tb, "n2", "all")
        assert code == 0, reports
        a = points(tb)["points"][0]
        time.sleep(1.1)  # points are named by the second
        sh(tb, "n2", "for f in /srv/svc1/data/www/*; do head -c 4096 /dev/urandom > $f; done; "
                     "rm /srv/svc1/data/www/other.txt")  # fmt: skip
        code, reports = sync(tb, "n2", "all")
        assert code == 0, reports
        b = points(tb)["points"][0]
        assert b["name"] > a["name"], (a, b)
        assert not holds_known(tb)
        yield tb, a["name"], b["name"]
    finally:
        tb.down()


def test_each_rsync_run_is_a_read_only_snapshot_point(uc3: tuple[Testbed, str, str]) -> None:
    tb, a, b = uc3
    listed = points(tb)["points"]
    assert [p["name"] for p in listed][:2] == [b, a]
    first = next(p for p in listed if p["name"] == a)
    assert first["complete"], first
    assert {e["rid"]: e["kind"] for e in first["entries"]} == {
        "sync#0": "images",
        "sync#1": "snapshot",
    }
    ref = next(e["ref"] for e in first["entries"] if e["rid"] == "sync#1")
    read_only = sh(tb, "n3", "btrfs subvolume list -r /srv/svc1/data").stdout  # the top level's
    assert f".ferry/svc1/sync#1/{ref}\n" in read_only, (ref, read_only)


def test_bad_at_values_are_refused_and_change_nothing(uc3: tuple[Testbed, str, str]) -> None:
    tb, _, _ = uc3
    before = points(tb)
    for at, said in (
        ("1999-12-31T23:00:00Z", "no restore point"),
        ("yesterday-ish", "neither a restore point's name nor an ISO 8601 time"),
    ):
        for words in (("drill", "--local", "--yes"), ("start", "--local")):
            done = ferry(tb, "n3", "svc1", *words, "--at", at)
            assert done.returncode == 2 and said in done.stderr, (words, at, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert same_points(points(tb), before)
    assert http_status(tb, "n2", N3_URL) != "200"  # nothing started on n3


def test_a_drill_then_a_start_from_point_a_serve_the_known_content(
    uc3: tuple[Testbed, str, str],
) -> None:
    tb, a, b = uc3
    done = ferry(tb, "n3", "svc1", "drill", "--local", "--yes", "--at", a, "-o", "json",
                 "--check", f"wget -qO- {N3_URL}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["result"] == "pass" and report["restore_point"] == a, report
    assert KNOWN in report["check_output"], report["check_output"]
    assert not holds_known(tb)  # untouched

    done = ferry(tb, "n3", "svc1", "start", "--local", "--at", a)
    assert done.returncode == 0, done.stderr
    try:
        assert KNOWN in page(tb, N3_URL)
        assert sh(tb, "n3", "cat /srv/svc1/data/www/other.txt").stdout == "kept\n"
        after = points(tb)
        assert {a, b} <= {p["name"] for p in after["points"]}  # no point destroyed
        assert after["pending"] is None and after["last_restore"]["point"] == a, after
    finally:
        assert ferry(tb, "n3", "svc1", "stop", "--local").returncode == 0
