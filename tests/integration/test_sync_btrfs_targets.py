"""A btrfs sync resource with two targets on disks of their own (n1 sends to n2 and n3,
every node its own disk): after the first run every run is incremental for both targets,
and a target dead for several runs catches up incrementally (the sender kept its pair,
and nothing more). A running transfer shows an estimated total, hence an ETA."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops import FERRY, ferry, own_disks_testbed, sh, sync
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

CONFIG = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[fs#1]
dev = /dev/mapper/svc1.d0
mnt = /srv/svc1/data
mnt_opt = defaults,subvol=data
standby@n2 = true
standby@drpnodes = true

[sync#1]
type = btrfs
target = nodes drpnodes
src = svc1:data
dst = svc1:data
"""
PROGRESS = "/var/lib/ferry/services/svc1/sync/sync#1/progress.json"
SNAPSHOTS = "btrfs subvolume list /srv/svc1/data | grep -c ' path .ferry/svc1/sync#1/' || true"


@pytest.fixture(scope="module")
def own_disks(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = own_disks_testbed(testbed_session, "bt", CONFIG)
    try:
        yield tb
    finally:
        tb.down()


def modes(reports: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    return {r["target"]: (r["mode"], r["bytes"]) for r in reports}


def test_two_own_disk_targets_stay_incremental(own_disks: Testbed) -> None:
    tb = own_disks
    sh(tb, "n1", "head -c 4M /dev/urandom > /srv/svc1/data/big && echo one > /srv/svc1/data/a")
    code, reports = sync(tb, "n1", "all")
    assert code == 0, reports
    assert [r["target"] for r in reports] == ["n2", "n3"]
    for report in reports:
        assert report["mode"] == "full" and report["bytes"] > 4 * 1024 * 1024, reports
        assert "holds no snapshot" in report["reason"]

    # every later run is incremental for both (before the fix: full, alternating)
    for round_ in ("two", "three"):
        sh(tb, "n1", f"echo {round_} > /srv/svc1/data/{round_}")
        code, reports = sync(tb, "n1", "all")
        assert code == 0, reports
        for target, (mode, moved) in modes(reports).items():
            assert mode == "incremental", (target, reports)
            assert moved < 64 * 1024, (target, reports)
        for node in ("n2", "n3"):
            assert sh(tb, node, f"cat /srv/svc1/data/a /srv/svc1/data/{round_}").stdout == (
                f"one\n{round_}\n"
            )
            assert sh(tb, node, "stat -c %s /srv/svc1/data/big").stdout == "4194304\n"
    # one snapshot per run, sent to both: n1 keeps that one, the pair of both targets
    assert sh(tb, "n1", SNAPSHOTS).stdout.strip() == "1"
    names = "btrfs subvolume list /srv/svc1/data | awk '/sync#1\\// {print $NF}'"
    sent = sh(tb, "n1", names).stdout.split()
    assert len(sent) == 1, sent
    for node in ("n2", "n3"):  # and both targets hold it: either can later send to the other
        assert sent[0].rsplit("/", 1)[-1] in sh(tb, node, names).stdout, node


def test_a_dead_target_catches_up_incrementally(own_disks: Testbed) -> None:
    tb = own_disks
    assert sync(tb, "n1", "all")[0] == 0
    tb.kill("n3")
    try:
        for round_ in range(3):
            sh(tb, "n1", f"echo {round_} > /srv/svc1/data/while-n3-dead")
            code, reports = sync(tb, "n1", "all")
            assert code == 1, reports
            assert modes(reports)["n2"][0] == "incremental", reports
            assert modes(reports)["n3"][0] == "skipped", reports
            # n3's pair stays, and nothing piles up beside it
            assert sh(tb, "n1", SNAPSHOTS).stdout.strip() == "2"
    finally:
        tb.revive("n3")
    done = ferry(tb, "n3", "svc1", "startstandby", "--local")
    assert done.returncode == 0, done.stderr
    code, reports = sync(tb, "n1", "all")
    assert code == 0, reports
    assert {t: mode for t, (mode, _) in modes(reports).items()} == {
        "n2": "incremental",
        "n3": "incremental",
    }
    assert sh(tb, "n3", "cat /srv/svc1/data/while-n3-dead").stdout == "2\n"


def test_a_running_transfer_shows_an_estimated_total(own_disks: Testbed) -> None:
    tb = own_disks
    sh(tb, "n1", "head -c 48M /dev/urandom > /srv/svc1/data/estimated && sync")
    tb.netem("n2", "rate", "100mbit")  # about 4 s: the progress is published meanwhile
    totals: list[int] = []
    etas: list[float] = []
    try:
        argv = [FERRY, "svc1", "sync", "all", "--rid", "sync#1", "--target", "n2"]
        proc = tb.popen("n1", *argv, "--local", "-o", "json", stdout=subprocess.PIPE, text=True)
        try:
            while proc.poll() is None:
                published = sh(tb, "n1", f"cat '{PROGRESS}' 2>/dev/null || true").stdout
                if published.strip():
                    seen = json.loads(published)
                    totals.append(int(seen.get("total") or 0))
                    if seen.get("eta") is not None:
                        etas.append(float(seen["eta"]))
                time.sleep(0.3)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
    finally:
        tb.netem("n2", "off")
        sh(tb, "n1", "rm -f /srv/svc1/data/estimated")
    assert proc.returncode == 0, out
    (report,) = json.loads(out)
    assert report["ok"] and report["bytes"] > 48 * 1024 * 1024, report
    estimated = max(totals, default=0)
    assert abs(estimated - report["bytes"]) < report["bytes"] / 100, (totals, report)
    # an ETA while it ran, falling as it went (its value depends on the machine's load)
    assert etas and all(eta >= 0 for eta in etas) and etas[-1] < etas[0], etas
