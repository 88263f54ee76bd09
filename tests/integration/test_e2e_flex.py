"""Seed use cases 2 (flex) and 3 (flex with a DR site) end to end, driven through the CLI
against the daemons as an operator would, each on a testbed of its own where every node has
its own disk: create the service on one node (it reaches the others), load the images,
start, read the status, reach the service from another node, replicate, lose nodes,
activate DR with one command, give back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops import (
    NODES,
    REPO,
    avail,
    check_dr_activated,
    ferry,
    http_status,
    own_disk_cluster,
    sh,
    wait,
)
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed


IPS = {"n1": "10.0.3.3", "n2": "10.0.3.4", "n3": "10.0.3.5"}
UC2 = (REPO / "conf.d" / "seeds" / "uc2-flex" / "svc1.conf").read_text()
UC3 = (
    (REPO / "conf.d" / "uc3-flex-drp" / "svc1.conf")
    .read_text()
    .replace("drpnodes = n3\n", "drpnodes = n3\nsync_schedule = @20s\n", 1)
)


def status(tb: Testbed, node: str) -> dict[str, Any]:
    done = ferry(tb, node, "svc1", "print", "status", "-o", "json", timeout=60)
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {}


def up_on(tb: Testbed) -> set[str]:
    return {n for n in NODES if tb.alive(n) and avail(tb, n) == "up"}


def data_mounts(tb: Testbed, node: str) -> list[str]:
    """The mounts on /srv/svc1/data in node's mount namespace (their kernel mount ids)."""
    done = sh(tb, node, "awk '$5 == \"/srv/svc1/data\" {print $1}' /proc/self/mountinfo")
    return done.stdout.split()


def cluster_view(tb: Testbed, node: str) -> dict[str, Any]:
    """svc1 across the cluster, as `ferry mon` on node shows it."""
    done = ferry(tb, node, "mon", "-o", "json", timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)["services"].get("svc1") or {})


@pytest.fixture(scope="module")
def uc2(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = own_disk_cluster(testbed_session, "e2", UC2, NODES)
    try:
        yield tb
    finally:
        tb.down()


def test_uc2_flex_on_three_nodes(uc2: Testbed) -> None:
    tb = uc2
    # flex_min_nodes = 3 (the deprecated alias of flex_min): the target is 3 instances
    done = ferry(tb, "n1", "svc1", "start", "--wait", "--time", "240")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("svc1 up on the three nodes", lambda: up_on(tb) == set(NODES), 90)
    view = cluster_view(tb, "n2")
    assert (view["avail"], view["reason"]) == ("up", "3 instances up")
    for node, other in (("n1", "n2"), ("n2", "n3"), ("n3", "n1")):
        assert http_status(tb, node, f"http://{IPS[other]}/") == "200"
    # sync#0 targets the drpnodes, and there are none
    sync0 = status(tb, "n2")["resources"]["sync#0"]
    assert sync0["status"] == "n/a" and "info: no target" in sync0["log"]

    tb.kill("n3")
    wait("n1 sees one instance short", lambda: cluster_view(tb, "n1")["avail"] == "warn", 30)
    assert cluster_view(tb, "n1")["reason"] == "2 instances up, outside [3, 3]"
    mon = ferry(tb, "n1", "mon", "once")
    assert "svc1: 2 instances up, outside [3, 3]" in mon.stdout, mon.stdout
    assert http_status(tb, "n1", f"http://{IPS['n2']}/") == "200"  # the others serve on

    tb.revive("n3")
    time.sleep(8)  # past the rejoin grace: orchestrate = start never restarts by itself
    assert avail(tb, "n3") != "up"
    done = ferry(tb, "n3", "svc1", "start", "--wait", "--time", "240")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("svc1 back on n3", lambda: up_on(tb) == set(NODES), 90)
    assert http_status(tb, "n1", f"http://{IPS['n3']}/") == "200"

    done = ferry(tb, "n2", "svc1", "stop", "--wait", "--time", "240")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("svc1 down everywhere", lambda: up_on(tb) == set(), 90)
    assert cluster_view(tb, "n1")["avail"] == "down"


@pytest.fixture(scope="module")
def uc3(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = own_disk_cluster(testbed_session, "e3", UC3, ("n1", "n2"))
    try:
        yield tb
    finally:
        tb.down()


def test_uc3_flex_with_dr_takeover_and_giveback(uc3: Testbed) -> None:
    tb = uc3
    # flex_target defaults to flex_min (1); the flex primary n2 must run to replicate
    done = ferry(tb, "n1", "svc1", "set", "--kw", "DEFAULT.flex_target=2")
    assert done.returncode == 0, done.stderr
    wait(
        "flex_target reaches n3",
        lambda: "flex_target = 2" in sh(tb, "n3", "cat /etc/ferry/svc1.conf").stdout,
        30,
    )
    done = ferry(tb, "n1", "svc1", "start", "--wait", "--time", "240")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("svc1 up on n1 and n2", lambda: up_on(tb) == {"n1", "n2"}, 90)
    assert cluster_view(tb, "n3")["reason"] == "2 instances up"
    assert http_status(tb, "n1", f"http://{IPS['n2']}/") == "200"
    assert http_status(tb, "n2", f"http://{IPS['n1']}/") == "200"
    # the DR node keeps its standby filesystems mounted, the service down
    n3 = status(tb, "n3")
    assert n3["avail"] != "up"
    assert {n3["resources"][r]["status"] for r in ("fs#0", "fs#1")} == {"stdby up"}
    # unmounted by hand (checked in the same shell command, before the daemon can act),
    # the daemon mounts it again, once
    done = sh(tb, "n3", "umount /srv/svc1/data && ! mountpoint -q /srv/svc1/data")
    assert done.returncode == 0, done.stderr
    wait("n3's standby data fs back", lambda: len(data_mounts(tb, "n3")) > 0, 60)
    assert len(data_mounts(tb, "n3")) == 1
    assert status(tb, "n3")["resources"]["fs#1"]["status"] == "stdby up"

    # the scheduler replicates from the flex primary n2 (sync_schedule = @20s)
    sh(tb, "n2", "echo from-n2 > /srv/svc1/data/mark")
    wait(
        "the data on n3", lambda: sh(tb, "n3", "cat /srv/svc1/data/mark").stdout == "from-n2\n", 90
    )

    def images_on_n3() -> set[str]:
        listing = ferry(tb, "n3", "svc1", "docker", "--", "images", "--format", "{{.Repository}}")
        return set(listing.stdout.split())

    wait("the images on n3", lambda: {"google/pause", "opensvc/nginx"} <= images_on_n3(), 90)
    sync1 = status(tb, "n2")["resources"]["sync#1"]
    assert sync1["status"] == "up" and any(
        line.startswith("info: n3: last sync") for line in sync1["log"]
    )
    refused = ferry(tb, "n1", "svc1", "sync", "all", "--wait", "--time", "120")
    assert refused.returncode != 0
    assert "n1 is not the flex primary (n2)" in refused.stderr + refused.stdout
    sh(tb, "n2", "echo final > /srv/svc1/data/mark")
    done = ferry(tb, "n2", "svc1", "sync", "all", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr + done.stdout

    # the primary site is lost: one command on n3
    tb.kill("n1")
    tb.kill("n2")
    time.sleep(4)  # hb_timeout: n3 sees them dead
    done = ferry(tb, "n3", "svc1", "takeover", "--yes", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr + done.stdout
    check_dr_activated(tb, "n3", done.stdout)
    assert sh(tb, "n3", "cat /srv/svc1/data/mark").stdout == "final\n"

    # the primary site is back: n3 serves until the give back
    sh(tb, "n3", "echo written-during-dr > /srv/svc1/data/dr")
    tb.revive("n1")
    tb.revive("n2")
    time.sleep(8)  # past the rejoin grace: the primary nodes start nothing by themselves
    assert up_on(tb) == {"n3"}
    assert http_status(tb, "n1", f"http://{IPS['n3']}/") == "200"
    done = ferry(tb, "n3", "svc1", "giveback", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("svc1 home on n1 and n2", lambda: up_on(tb) == {"n1", "n2"}, 90)
    for node in ("n1", "n2"):
        assert sh(tb, node, "cat /srv/svc1/data/dr").stdout == "written-during-dr\n"
        received = json.loads(
            sh(tb, node, "cat '/var/lib/ferry/services/svc1/sync/sync#1/received.json'").stdout
        )
        assert received["source"] == "n3"
        # the receive mount is gone: only the service's own mount of the data
        mounts = sh(
            tb,
            node,
            "grep -c ' /srv/svc1/data ' /proc/self/mountinfo; grep -c receive /proc/self/mountinfo",
        )
        assert mounts.stdout.split() == ["1", "0"], mounts.stdout
    assert http_status(tb, "n3", f"http://{IPS['n1']}/") == "200"
    # the images went home too: through a receive mount of each node's engine filesystem,
    # whose engine stopped again
    for node in ("n1", "n2"):
        stamp = f"/var/lib/ferry/services/svc1/sync/sync#0/sent/{node}.json"
        assert json.loads(sh(tb, "n3", f"cat '{stamp}'").stdout)["target"] == node
        assert sh(tb, node, "pgrep -f '[d]ata-root /var/lib/ferry/services/svc1/sync'").stdout == ""
    n3 = status(tb, "n3")
    assert n3["avail"] != "up" and n3["resources"]["fs#1"]["status"] == "stdby up"
