"""Sync actions of seed use case 1 on the testbed: which targets `sync nodes|drp|update` and
`--target` cover, the rsync modes (a first copy is full), and what a sender shows while a
transfer runs: the progress line in `print status` (bytes, rate, ETA) without a false `down`
alarm, and the progress line of the CLI on a terminal.

The seed's syncs (docker sync#0, btrfs sync#1) go to the DR node n3 only: n2 shares n1's
disk, so it has nothing to receive. An rsync resource added here (sync#2, both pools,
outside the shared disk) shows what `nodes` means from n1: n2, its own site."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops import FERRY, REPO, ferry, install, load_seed_images, sh, status, sync
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

RSYNC = """
[sync#2]
type = rsync
src = /srv/svc1/data/
dst = /srv/svc1-copy
"""
CONFIG = (REPO / "conf.d" / "uc1-failover" / "svc1.conf").read_text() + RSYNC
NODES = ("n1", "n2", "n3")
STATE = "/var/lib/ferry/services/svc1"


def covered(reports: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["rid"], r["target"]) for r in reports]


@pytest.fixture(scope="module")
def uc1(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = testbed_session
    install(tb, NODES, "svc1", CONFIG)
    for node in NODES:  # sync#2 never sent nor received here before
        sh(tb, node, f"rm -rf '{STATE}/sync/sync#2' /srv/svc1-copy")
    load_seed_images(tb, "n1")
    done = ferry(tb, "n1", "svc1", "start", "--local")
    assert done.returncode == 0, done.stderr
    assert ferry(tb, "n3", "svc1", "startstandby", "--local").returncode == 0
    yield tb
    sh(tb, "n1", "rm -f /srv/svc1/data/actions-*")
    for node in NODES:
        if tb.alive(node):
            ferry(tb, node, "svc1", "stop", "--local", "--force")
            sh(tb, node, "rm -rf /etc/ferry/svc1.conf /srv/svc1-copy")


def test_each_action_covers_its_targets(uc1: Testbed) -> None:
    tb = uc1
    sh(tb, "n1", "echo from-n1 > /srv/svc1/data/actions-file")

    # nodes: n1's own site, n2; only sync#2 targets it. A first copy is full.
    code, reports = sync(tb, "n1", "nodes")
    assert code == 0, reports
    assert covered(reports) == [("sync#2", "n2")]
    assert (reports[0]["mode"], reports[0]["reason"]) == ("full", "first transfer")
    assert reports[0]["bytes"] > 0
    assert sh(tb, "n2", "cat /srv/svc1-copy/actions-file").stdout == "from-n1\n"
    assert sh(tb, "n3", "test -e /srv/svc1-copy").returncode != 0  # not a drp action

    # drp: the DR node n3, for every resource
    code, reports = sync(tb, "n1", "drp")
    assert code == 0, reports
    assert covered(reports) == [("sync#0", "n3"), ("sync#1", "n3"), ("sync#2", "n3")]
    assert all(r["ok"] for r in reports), reports
    rsynced = reports[2]
    assert (rsynced["mode"], rsynced["reason"]) == ("full", "first transfer")
    assert sh(tb, "n3", "cat /srv/svc1-copy/actions-file").stdout == "from-n1\n"

    # update (= all): own site first, then the DR site; rsync incremental now everywhere
    sh(tb, "n1", "echo changed > /srv/svc1/data/actions-file")
    code, reports = sync(tb, "n1", "update")
    assert code == 0, reports
    assert covered(reports) == [
        ("sync#0", "n3"), ("sync#1", "n3"), ("sync#2", "n2"), ("sync#2", "n3"),
    ]  # fmt: skip
    assert [r["mode"] for r in reports[2:]] == ["incremental", "incremental"]
    for node in ("n2", "n3"):
        assert sh(tb, node, "cat /srv/svc1-copy/actions-file").stdout == "changed\n"

    # --target narrows any action to the named nodes, never widens it
    code, reports = sync(tb, "n1", "all", "--target", "n3")
    assert code == 0, reports
    assert covered(reports) == [("sync#0", "n3"), ("sync#1", "n3"), ("sync#2", "n3")]
    code, reports = sync(tb, "n1", "nodes", "--target", "n3")
    assert (code, reports) == (0, [])
    code, reports = sync(tb, "n1", "all", "--target", "n2", "--rid", "sync#2")
    assert code == 0, reports
    assert covered(reports) == [("sync#2", "n2")]

    # n2, sharing the disk, does not run the service: it refuses to send, saying why
    code, reports = sync(tb, "n2", "update", "--rid", "sync#2")
    assert code == 1
    assert [r["mode"] for r in reports] == ["skipped"]
    assert "the service is not up on n2" in reports[0]["reason"]


def test_a_running_transfer_shows_in_status_and_on_the_terminal(uc1: Testbed) -> None:
    """While rsync sends 48 MiB over a slowed link to n3: status on n1 shows the running
    transfer with bytes, rate and ETA, warn rather than down although the data is late;
    the CLI on a terminal draws the same line. Once done, late is down again."""
    tb = uc1
    assert ferry(tb, "n1", "svc1", "set", "--kw", "sync#2.sync_max_delay=2s").returncode == 0
    sh(tb, "n1", "head -c 48M /dev/urandom > /srv/svc1/data/actions-big && sync")
    tb.netem("n3", "rate", "40mbit")
    proc: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(3)  # the last sync is older than sync_max_delay now: down
        before = status(tb, "n1")["resources"]["sync#2"]
        assert before["status"] == "down" and before["log"][0].startswith("warn: late:"), before

        # script(1) gives the CLI a terminal; the report (text) follows the progress line
        cli = f"{FERRY} svc1 sync drp --rid sync#2 --local"
        proc = tb.popen("n1", "script", "-qec", cli, "/dev/null", stdout=subprocess.PIPE)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            seen.append(status(tb, "n1")["resources"]["sync#2"])
            time.sleep(0.5)
        output, _ = proc.communicate(timeout=120)
        after = status(tb, "n1")["resources"]["sync#2"]
    finally:
        tb.netem("n3", "off")
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        ferry(tb, "n1", "svc1", "unset", "--kw", "sync#2.sync_max_delay")
    assert proc.returncode == 0, output

    running = [s for s in seen if s["log"][0].startswith("info: transfer running: n3: ")]
    assert running, seen
    assert all(s["status"] == "warn" for s in running), running  # late, but catching up
    line = re.compile(r"n3: \d+\.\d MiB of ~4\d\.\d MiB, [\d.]+ [KM]iB/s, ETA \d+s")
    assert any(line.search(s["log"][0]) for s in running), [s["log"][0] for s in running]
    late = [entry for entry in running[-1]["log"] if entry.startswith("warn: late: ")]
    assert late and "n2" in late[0], running[-1]  # n2 is still late, n3 being caught up

    text = output.decode(errors="replace")
    drawn = [part for part in text.split("\r\x1b[K") if part.startswith("n3: ")]
    assert any(line.match(part) for part in drawn), text
    assert re.search(r"svc1 sync#2 -> n3: (full|incremental), 4\d\.\d MiB in [\d.]+s", text), text
    assert sh(tb, "n3", "stat -c %s /srv/svc1-copy/actions-big").stdout.strip() == str(48 << 20)

    assert after["status"] == "down"  # the stamp counts from the transfer's start
    assert not any(entry.startswith("info: transfer running") for entry in after["log"])


def test_an_unreachable_target_is_refused_saying_so(uc1: Testbed) -> None:
    tb = uc1
    tb.cut("n3")
    try:
        started = time.monotonic()
        code, reports = sync(tb, "n1", "drp", "--rid", "sync#2")
        assert time.monotonic() - started < 60
    finally:
        tb.heal("n3")
    assert code == 1
    assert [r["mode"] for r in reports] == ["skipped"]
    reason = reports[0]["reason"]
    assert reason.startswith("n3 unreachable over ssh: "), reason
    assert reason.endswith("; its state is unknown: not sending"), reason
    assert json.dumps(reports)  # plain data, as the CLI printed it
