"""Seed use case 1 end to end, driven through the CLI against the daemons on n1 n2 n3 (a
testbed of its own), as an operator would: create the service on n1 (it reaches the
others), load the images, turn orchestration on, start, write data, let the scheduler sync
it, fail over when n1 dies (never to n3), no second instance when n1 returns, switch back,
a planned DR switch with the primary alive (nothing lost: a final sync once its writers
stopped), DR takeover on n3 with the primary site dead (data age reported), give back (the
data written during DR travels back incrementally)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from tests.integration.ops import (
    FERRY,
    REPO,
    avail,
    check_dr_activated,
    ferry,
    http_status,
    load_seed_images,
    sh,
    wait,
)
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

CONFIG = (
    (REPO / "conf.d" / "uc1-failover" / "svc1.conf")
    .read_text()
    .replace("drpnodes = n3\n", "drpnodes = n3\nsync_schedule = @20s\n", 1)
)
NODES = ("n1", "n2", "n3")
SERVICE_IP = "10.0.3.3"  # ip#0's ipname, whichever node runs the service


@pytest.fixture(scope="module")
def cluster(testbed_session: Testbed) -> Iterator[Testbed]:
    base = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{base}-c7", prefix=f"{testbed_session.prefix}c7-")
    tb.up()
    try:
        tb.start_ferryd()
        tb.exec("n1", "sh", "-c", "cat > /tmp/svc1.conf", input=CONFIG, check=True)
        created = ferry(tb, "n1", "svc1", "create", "--config", "/tmp/svc1.conf")
        assert created.returncode == 0, created.stderr
        for node in ("n2", "n3"):
            assert sh(tb, node, "test -f /etc/ferry/svc1.conf").returncode == 0
        load_seed_images(tb, "n1")
        assert ferry(tb, "n1", "svc1", "stop", "--local", "--force").returncode == 0
        done = ferry(tb, "n1", "svc1", "set", "--kw", "DEFAULT.orchestrate=ha")
        assert done.returncode == 0, done.stderr
        assert "orchestrate = ha" in sh(tb, "n3", "cat /etc/ferry/svc1.conf").stdout
        yield tb
    finally:
        tb.down()


def test_failover_switch_and_takeover(cluster: Testbed) -> None:
    tb = cluster
    done = ferry(tb, "n1", "svc1", "start", "--wait", "--time", "120")
    assert done.returncode == 0, done.stderr
    wait("svc1 up on n1", lambda: avail(tb, "n1") == "up", 60)
    assert http_status(tb, "n2", f"http://{SERVICE_IP}/") == "200"
    sh(tb, "n1", "echo replicated > /srv/svc1/data/mark")

    # the scheduler replicates (sync_schedule = @20s) from the running node only
    try:
        wait(
            "a scheduled sync to n3",
            lambda: sh(tb, "n3", "cat /srv/svc1/data/mark").stdout == "replicated\n",
            90,
        )
    except AssertionError:
        for node, words in (("n1", "print schedule"), ("n3", "print status"), ("n1", "mon once")):
            print(ferry(tb, node, "svc1", *words.split()).stdout)
        print(sh(tb, "n1", "ls -la /var/lib/ferry/services/svc1/sync/*/").stdout)
        raise
    done = ferry(tb, "n1", "svc1", "sync", "all", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr
    # the images are in the DR node's engine for the service (on its standby fs)
    listing = ferry(tb, "n3", "svc1", "docker", "--", "images", "--format", "{{.Repository}}")
    assert {"google/pause", "opensvc/nginx"} <= set(listing.stdout.split()), listing.stderr

    def never_on_n3() -> None:
        assert avail(tb, "n3") not in ("up", "warn"), "started on the DR node by itself"

    tb.kill("n1")
    took = wait("failover to n2", lambda: avail(tb, "n2") == "up", 60, during=never_on_n3)
    assert took < 3 + 1 + 20  # hb_timeout + ready_period + start, with slack for 2 cores
    assert http_status(tb, "n3", f"http://{SERVICE_IP}/") == "200"  # the same address, on n2
    assert sh(tb, "n2", "cat /srv/svc1/data/mark").stdout == "replicated\n"

    tb.revive("n1")
    time.sleep(8)  # past the rejoin grace: n1 must not start a second instance
    assert avail(tb, "n1") != "up"
    assert avail(tb, "n2") == "up"

    done = ferry(tb, "n2", "svc1", "switch", "--to", "n1", "--yes", "--wait", "--time", "180")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("svc1 back on n1", lambda: avail(tb, "n1") == "up", 60)
    assert avail(tb, "n2") != "up"

    # A planned DR switch, the primary alive: nothing written on n1 is lost, not even what a
    # writer writes as it stops (an app's last words on the data fs, after the bulk sync).
    lw = "/var/lib/ferry/lastwords.up"
    done = ferry(
        tb, "n1", "svc1", "set",
        "--kw", f"app#lw.start=touch {lw}",
        "--kw", f"app#lw.stop=rm -f {lw}; echo {{nodename}} `date +%s%N` > /srv/svc1/data/lw",
        "--kw", f"app#lw.check=test -f {lw}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = ferry(tb, "n1", "svc1", "start", "--local", "--rid", "app#lw")  # a new resource
    assert done.returncode == 0, done.stderr
    assert sh(tb, "n1", f"test -f {lw}").returncode == 0
    sh(tb, "n1", "echo before-the-switch > /srv/svc1/data/planned")
    done = ferry(tb, "n1", "svc1", "switch", "--to", "n3", "--yes", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "stop the containers and apps on n1, final sync to n3" in done.stdout
    wait("svc1 up on n3", lambda: avail(tb, "n3") == "up", 90)
    assert sh(tb, "n3", "cat /srv/svc1/data/planned").stdout == "before-the-switch\n"
    last_words = sh(tb, "n3", "cat /srv/svc1/data/lw").stdout
    assert last_words.startswith("n1 "), last_words  # written by n1's app as it stopped
    assert avail(tb, "n1") != "up"
    done = ferry(tb, "n3", "svc1", "giveback", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("svc1 home on n1 again", lambda: avail(tb, "n1") == "up", 90)
    done = ferry(tb, "n1", "svc1", "unset", "--kw", "app#lw.start", "--kw", "app#lw.stop",
                 "--kw", "app#lw.check")  # fmt: skip
    assert done.returncode == 0, done.stderr

    # the primary site is lost: one command on n3
    done = ferry(tb, "n1", "svc1", "sync", "all", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr
    tb.kill("n1")
    tb.kill("n2")
    time.sleep(4)  # hb_timeout: n3 sees them dead
    # the README's DR runbook, literally: `ferry svc1 takeover`, answer y at its question
    done = tb.exec(
        "n3", "script", "-qec", f"{FERRY} svc1 takeover", "/dev/null", input="y\n", timeout=300
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "runs now on: nowhere" in done.stdout
    check_dr_activated(tb, "n3", done.stdout)
    assert sh(tb, "n3", "cat /srv/svc1/data/mark").stdout == "replicated\n"

    # the primary site is back: give back, the data written during DR goes home
    sh(tb, "n3", "echo written-during-dr > /srv/svc1/data/dr")
    tb.revive("n1")
    tb.revive("n2")
    time.sleep(5)
    assert http_status(tb, "n1", f"http://{SERVICE_IP}/") == "200"  # served from n3
    done = ferry(tb, "n3", "svc1", "giveback", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("svc1 home on n1", lambda: avail(tb, "n1") == "up", 90)
    assert sh(tb, "n1", "cat /srv/svc1/data/dr").stdout == "written-during-dr\n"
    received = json.loads(
        sh(tb, "n1", "cat '/var/lib/ferry/services/svc1/sync/sync#1/received.json'").stdout
    )
    assert received["source"] == "n3" and received["mode"] == "incremental"

    # an operator's stop through the daemon: down everywhere, and frozen so it stays down
    done = ferry(tb, "n1", "svc1", "stop", "--wait", "--time", "120")
    assert done.returncode == 0, done.stderr
    wait("svc1 down on n1", lambda: avail(tb, "n1") == "down", 60)
    time.sleep(5)
    assert all(avail(tb, node) != "up" for node in NODES)
