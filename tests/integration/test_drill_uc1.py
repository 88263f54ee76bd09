"""Drills of seed use case 1 (btrfs + docker) on the DR node n3, through the daemons: production
on n1 keeps answering, the drill's check reaches nginx inside the bubble and reads the data
synced before, a sync to n3 during a kept drill neither touches nor is touched by its clones,
n3 is left as it was; refusals; a drill cut short by kill -9 of ferryd is cleaned up at its
restart; a real takeover tears a kept drill down first and works."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from tests.integration.drill_ops import (
    Prober,
    active,
    api_get,
    drill,
    in_bubble,
    metric,
    metrics,
    node_state,
    same_state,
)
from tests.integration.ops import (
    FERRY,
    REPO,
    avail,
    ferry,
    http_status,
    sh,
    status,
    uc1_ha_testbed,
    wait,
)
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

CONFIG = (REPO / "conf.d" / "uc1-failover" / "svc1.conf").read_text()
SERVICE_URL = "http://10.0.3.3/"
CHECK = (
    "wget -qO- http://10.0.3.3/ && cat /srv/svc1/data/mark && "
    "! ping -c 1 -W 1 10.0.3.11 >/dev/null 2>&1 && echo isolated"
)
APP_ONLY = """[DEFAULT]
nodes = n1
drpnodes = n3

[app#0]
start = true
check = false
"""


def standby_up(tb: Testbed, node: str) -> bool:
    resources = status(tb, node)["resources"]
    return all(resources[rid]["status"] == "stdby up" for rid in ("fs#0", "fs#1"))


@pytest.fixture(scope="module")
def cluster(testbed_session: Testbed) -> Iterator[Testbed]:
    mark = "echo synced-before-the-drill > /srv/svc1/data/mark"
    tb = uc1_ha_testbed(testbed_session, "dr", CONFIG, on_n1=mark)
    try:
        yield tb
    finally:
        sh(tb, "n1", "rm -f /tmp/ferry-dr-svc2.conf")
        tb.down()


def test_drill_while_production_serves_and_replication_goes_on(cluster: Testbed) -> None:
    tb = cluster
    before = node_state(tb, "n3")
    probe = Prober(tb, "n2", SERVICE_URL)
    try:
        code, report, err = drill(tb, "n3", "--keep", "--check", CHECK)
        assert code == 0, err
        assert report is not None and report["result"] == "pass", report
        assert "ferry testbed: opensvc/nginx" in report["check_output"]  # nginx in the bubble
        assert "synced-before-the-drill" in report["check_output"]  # the data synced from n1
        assert "isolated" in report["check_output"]  # n1's address unreachable from inside
        assert report["rto_seconds"] > 0 and report["state"] == "kept"
        assert set(report["data_age"]) == {"sync#0", "sync#1"}
        assert all(age is not None for age in report["data_age"].values())

        # while it runs: a second drill is refused, a sync to n3 succeeds and each side
        # keeps its own data
        code, _, err = drill(tb, "n3")
        assert code == 2 and "runs on n3 already" in err, err
        sh(tb, "n1", "echo written-during-the-drill > /srv/svc1/data/mark2")
        in_bubble(tb, "n3", "echo the-drill-wrote-this > /srv/svc1/data/drill-wrote")
        done = ferry(tb, "n1", "svc1", "sync", "all", "--wait", "--time", "300")
        assert done.returncode == 0, done.stderr
        assert sh(tb, "n3", "cat /srv/svc1/data/mark2").stdout == "written-during-the-drill\n"
        assert sh(tb, "n3", "test -e /srv/svc1/data/drill-wrote").returncode == 1
        inside = in_bubble(tb, "n3", "cat /srv/svc1/data/drill-wrote; test -e /srv/svc1/data/mark2")
        assert inside.stdout == "the-drill-wrote-this\n" and inside.returncode == 1
        assert sh(tb, "n1", "test -e /srv/svc1/data/drill-wrote").returncode == 1

        # the report everywhere an operator or an alert looks
        shown = ferry(tb, "n3", "svc1", "print", "status")
        assert "last drill: pass" in shown.stdout, shown.stdout
        text = metrics(tb, "n3")
        kept = metric(text, "ferry_drill_last_result", service="svc1", node="n3")
        assert kept is None, text  # still kept
        done = ferry(tb, "n3", "svc1", "drill", "stop")
        assert done.returncode == 0, done.stderr
        assert "PASS" in done.stdout
    finally:
        seen = probe.stop()
    assert len(seen) >= (seen[-1][0] - seen[0][0]) and seen, seen  # at least one a second
    assert {code for _, code in seen} == {200}, [s for s in seen if s[1] != 200]
    assert active(tb, "n3") is None
    text = metrics(tb, "n3")
    assert metric(text, "ferry_drill_last_result", service="svc1", node="n3") == 1, text
    assert "ferry_drill_last_success_timestamp_seconds{" in text
    assert metric(text, "ferry_drill_rto_seconds", service="svc1", node="n3") is not None
    listed = json.loads(ferry(tb, "n3", "svc1", "print", "drills", "-o", "json").stdout)
    assert listed["drills"][0]["result"] == "pass" and listed["active"] is None
    document = json.loads(api_get(tb, "n3", "/api/services/svc1"))
    assert document["last_drill"]["id"] == report["id"]
    assert document["last_drill"]["result"] == "pass"
    stream = api_get(tb, "n3", "/api/events?after=0", read_for=2.0)
    drill_events = [
        json.loads(line.removeprefix("data: "))["data"]
        for block in stream.split("\n\n")
        if "event: drill" in block
        for line in block.splitlines()
        if line.startswith("data: ")
    ]
    assert any(e.get("result") == "pass" and e.get("state") == "ended" for e in drill_events), (
        stream[-2000:]
    )
    assert same_state(tb, "n3", before)


def test_refusals_and_failing_checks_change_nothing(cluster: Testbed) -> None:
    tb = cluster
    before = node_state(tb, "n3")
    code, _, err = drill(tb, "n1", "--node", "n1")
    assert code == 2 and "svc1 is up on n1" in err, err
    code, _, err = drill(tb, "n3", "--node", "n9")
    assert code == 2 and "n9 is not a node of svc1" in err, err
    code, _, err = drill(tb, "n3", svc="nosuch")
    assert code == 2 and "nosuch" in err and len(err.strip().splitlines()) == 1, err
    tb.exec("n1", "sh", "-c", "cat > /tmp/ferry-dr-svc2.conf", input=APP_ONLY, check=True)
    assert ferry(tb, "n1", "svc2", "create", "--config", "/tmp/ferry-dr-svc2.conf").returncode == 0
    wait("svc2 on n3", lambda: sh(tb, "n3", "test -f /etc/ferry/svc2.conf").returncode == 0, 30)
    code, _, err = drill(tb, "n3", svc="svc2")
    assert code == 2 and "no replicated data has arrived on n3" in err, err
    assert active(tb, "n3") is None and same_state(tb, "n3", before)

    code, report, err = drill(tb, "n3", "--check", "echo broken-app; exit 3")
    assert code == 1, err
    assert report["result"] == "fail" and report["step"] == "check", report
    assert "exited 3" in report["error"] and "broken-app" in report["check_output"]
    assert same_state(tb, "n3", before)

    done = ferry(tb, "n1", "svc1", "set", "--kw", "drill_timeout@n3=15s")
    assert done.returncode == 0, done.stderr
    conf = "cat /etc/ferry/svc1.conf"
    wait("the timeout on n3", lambda: "drill_timeout@n3" in sh(tb, "n3", conf).stdout, 30)
    try:
        started = time.monotonic()
        code, report, err = drill(tb, "n3", "--check", "sleep 600")
        assert code == 1, err
        assert time.monotonic() - started < 60
        assert report["result"] == "fail" and "drill_timeout" in report["error"], report
    finally:
        assert ferry(tb, "n1", "svc1", "unset", "--kw", "drill_timeout@n3").returncode == 0
    assert active(tb, "n3") is None and same_state(tb, "n3", before)


def test_a_drill_asked_on_n1_runs_on_the_first_drpnode(cluster: Testbed) -> None:
    tb = cluster
    before = node_state(tb, "n3")
    code, report, err = drill(tb, "n1", "--check", "wget -qO- http://10.0.3.3/")
    assert code == 0, err
    assert report["node"] == "n3" and report["result"] == "pass", report
    listed = json.loads(ferry(tb, "n1", "svc1", "print", "drills", "-o", "json").stdout)
    assert listed["drills"] == []  # n1 asked; n3 rehearsed and keeps the report
    code, _, err = drill(tb, "n1", "--node", "n2")  # the shared disk is n1's: nothing here
    assert code == 2 and "no replicated data has arrived on n2" in err, err
    code, report, err = drill(tb, "n1", "--check", "exit 4")
    assert code == 1 and report is not None and report["node"] == "n3", err
    assert report["step"] == "check" and "exited 4" in report["error"]
    assert same_state(tb, "n3", before)


def test_a_drill_cut_short_by_kill_9_is_cleaned_at_restart(cluster: Testbed) -> None:
    tb = cluster
    before = node_state(tb, "n3")
    running = tb.popen("n3", FERRY, "svc1", "drill", "--yes", "--check", "sleep 120")
    try:
        wait("the drill's check", lambda: (active(tb, "n3") or {}).get("step") == "check", 120)
        ferryd = tb.state().node("n3").daemons["ferryd"]
        os.kill(ferryd.pid, 9)
        wait("ferryd dead", lambda: not ferryd.alive(), 10)
    finally:
        running.wait(timeout=60)
    assert active(tb, "n3") is not None  # what a crash leaves: the record, the bubble, clones
    assert node_state(tb, "n3") != before
    tb.stop_ferryd(["n3"])
    tb.start_ferryd(["n3"])
    wait("the leftovers gone", lambda: active(tb, "n3") is None, 30)
    assert same_state(tb, "n3", before)
    listed = json.loads(ferry(tb, "n3", "svc1", "print", "drills", "-o", "json").stdout)
    assert listed["drills"][0]["result"] == "fail"
    assert "cut short" in listed["drills"][0]["error"]


def test_a_drill_whose_bubble_died_with_ferryd_is_cleaned_at_restart(cluster: Testbed) -> None:
    """As after a reboot: ferryd and every process of the bubble gone, the clones on disk."""
    tb = cluster
    before = node_state(tb, "n3")
    code, report, err = drill(tb, "n3", "--keep")
    assert code == 0 and report["state"] == "kept", err
    record = active(tb, "n3")
    assert record is not None
    ferryd = tb.state().node("n3").daemons["ferryd"]
    os.kill(ferryd.pid, 9)
    sh(tb, "n3", f"kill -9 {record['bubble_pid']}")
    wait("ferryd and the bubble dead", lambda: not ferryd.alive(), 10)
    assert node_state(tb, "n3")["drill_clones"] != "0"  # left on the disk
    tb.stop_ferryd(["n3"])
    tb.start_ferryd(["n3"])
    wait("the leftovers gone", lambda: active(tb, "n3") is None, 30)
    assert same_state(tb, "n3", before)


def test_drill_schedule_runs_drills_on_the_drpnode(cluster: Testbed) -> None:
    tb = cluster
    done = ferry(tb, "n1", "svc1", "set", "--kw", "DEFAULT.drill_schedule=@1",
                 "--kw", "DEFAULT.drill_check=wget -qO- http://10.0.3.3/")  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        shown = ferry(tb, "n3", "svc1", "print", "schedule", "-o", "json")
        jobs = {job["job"]: job for job in json.loads(shown.stdout)}
        assert jobs["drill"]["schedule"] == "@1" and jobs["drill"]["action"] == "drill"

        def scheduled() -> bool:
            listed = json.loads(ferry(tb, "n3", "svc1", "print", "drills", "-o", "json").stdout)
            return any(r.get("requested_by") == "scheduler" and r.get("result") == "pass"
                       for r in listed["drills"])  # fmt: skip

        wait("a scheduled drill on n3", scheduled, 120)
    finally:
        done = ferry(tb, "n1", "svc1", "unset", "--kw", "DEFAULT.drill_schedule",
                     "--kw", "DEFAULT.drill_check")  # fmt: skip
        assert done.returncode == 0, done.stderr
    wait("no drill running", lambda: active(tb, "n3") is None, 120)


def test_a_real_takeover_tears_a_kept_drill_down_and_works(cluster: Testbed) -> None:
    tb = cluster
    code, report, err = drill(tb, "n3", "--keep", "--check", "wget -qO- http://10.0.3.3/")
    assert code == 0 and report["state"] == "kept", err
    in_bubble(tb, "n3", "echo the-drill-wrote-this > /srv/svc1/data/drill-wrote")
    sh(tb, "n1", "echo written-before-the-takeover > /srv/svc1/data/mark3")
    done = ferry(tb, "n3", "svc1", "takeover", "--yes", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "torn down first" in done.stderr, done.stderr
    wait("svc1 up on n3", lambda: avail(tb, "n3") == "up", 90)
    # n2 may still hold n1's MAC for the address a moment (no gratuitous ARP yet)
    wait("the service answering from n3", lambda: http_status(tb, "n2", SERVICE_URL) == "200", 60)
    # the primary was alive: the final sync brought everything, and nothing of the drill
    assert sh(tb, "n3", "cat /srv/svc1/data/mark3").stdout == "written-before-the-takeover\n"
    assert sh(tb, "n3", "test -e /srv/svc1/data/drill-wrote").returncode == 1
    assert active(tb, "n3") is None
    listed = json.loads(ferry(tb, "n3", "svc1", "print", "drills", "-o", "json").stdout)
    assert "ended by a real takeover" in listed["drills"][0]["error"]
    state = node_state(tb, "n3")
    assert state["drill_clones"] == "0" and state["drill_runs"] == []
