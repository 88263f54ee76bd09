"""Seed use case 3 (flex with a DR site) on a testbed where every node has its own disk:
the flex primary n2 sends the data with rsync (its --exclude included) and the images to n3;
n1, also running the service, refuses to send and says why."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.ops import (
    FERRY,
    ferry,
    sh,
    status,
    sync,
    uc3_testbed,
    wait,
)
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def uc3(testbed_session: Testbed) -> Iterator[Testbed]:
    # A testbed of its own (no shared disk), beside the session's; a prefix of its own.
    tb = uc3_testbed(testbed_session, "uc3")
    try:
        yield tb
    finally:
        tb.down()


def test_flex_primary_sends_rsync_and_images_to_n3(uc3: Testbed) -> None:
    tb = uc3
    sh(tb, "n2", "mkdir -p /srv/svc1/data/logs && echo app-v2 > /srv/svc1/data/release")
    code, reports = sync(tb, "n2", "all")
    assert code == 0, reports
    results = {r["rid"]: r for r in reports}
    assert results["sync#1"]["ok"] and results["sync#1"]["target"] == "n3"
    assert results["sync#1"]["bytes"] > 0
    assert results["sync#0"]["ok"]
    assert sh(tb, "n3", "cat /srv/svc1/data/release").stdout == "app-v2\n"
    images = ferry(tb, "n3", "svc1", "docker", "--", "images", "--format", "{{.Repository}}")
    assert {"google/pause", "opensvc/nginx"} <= set(images.stdout.split())


def test_n1_refuses_because_it_is_not_the_flex_primary(uc3: Testbed) -> None:
    code, reports = sync(uc3, "n1", "all")
    assert code == 1
    for report in reports:
        assert report["mode"] == "skipped"
        assert "n1 is not the flex primary (n2)" in report["reason"]


def test_dstfs_is_checked_on_the_target(uc3: Testbed) -> None:
    tb = uc3
    assert ferry(tb, "n3", "svc1", "stop", "--local", "--force", "--rid", "fs#1").returncode == 0
    try:
        code, reports = sync(tb, "n2", "all", "--rid", "sync#1")
        assert code == 1
        assert "dstfs /srv/svc1/data is not a mounted filesystem on n3" in reports[0]["reason"]
    finally:
        assert ferry(tb, "n3", "svc1", "startstandby", "--local").returncode == 0


def receive_mounts(tb: Testbed, node: str) -> set[str]:
    """The sync resources with a receive mount on node."""
    pattern = "^/var/lib/ferry/services/svc1/sync/.*/receive$"
    script = f"awk '$5 ~ \"{pattern}\" {{print $5}}' /proc/self/mountinfo"
    return {path.split("/")[-2] for path in sh(tb, node, script).stdout.split()}


def test_leftovers_of_an_interrupted_receive_are_cleared_at_start(uc3: Testbed) -> None:
    """A sender killed between its calls leaves receive mounts (and, for images, the
    service's engine running on one) on a primary node where the service is down: they
    do not keep the service from starting there, the start clears them first."""
    tb = uc3
    assert ferry(tb, "n1", "svc1", "stop", "--local").returncode == 0
    # what a sender's first calls do on the target (prepare, have), never released
    for words in (("rsync-peer", "sync#1", "prepare"), ("docker-peer", "sync#0", "have")):
        peer = ("sync", words[0], "--rid", words[1], "--", words[2])
        # from n2 (same site, the disk may be shared): never mounted for a receive
        done = ferry(tb, "n1", "svc1", *peer, "n2")
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["receive_mount"] is False
        assert "are on one site" in (answer.get("dest_error") or answer.get("engine_error"))
        # from the DR node n3: mounted
        done = ferry(tb, "n1", "svc1", *peer, "n3")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["receive_mount"] is True
    assert receive_mounts(tb, "n1") == {"sync#0", "sync#1"}
    assert sh(tb, "n1", "pgrep -f '[d]ata-root /var/lib/ferry/services/svc1/sync'").stdout
    done = ferry(tb, "n1", "svc1", "start", "--local")
    assert done.returncode == 0, done.stderr
    assert receive_mounts(tb, "n1") == set()
    assert sh(tb, "n1", "grep -c /receive /proc/self/mountinfo").stdout.strip() == "0"
    assert sh(tb, "n1", "pgrep -f '[d]ata-root /var/lib/ferry/services/svc1/sync'").stdout == ""
    assert sh(tb, "n1", "mountpoint -q /srv/svc1/data").returncode == 0
    assert status(tb, "n1")["avail"] == "up"


def test_kill_9_of_the_rsync_sender_midway(uc3: Testbed) -> None:
    """The target keeps its previous copy, no rsync or ssh master outlives the sender, and
    the next run completes."""
    tb = uc3
    sh(tb, "n2", "echo v1 > /srv/svc1/data/release")
    assert sync(tb, "n2", "all", "--rid", "sync#1")[0] == 0
    sh(
        tb,
        "n2",
        "head -c 100M /dev/urandom > /srv/svc1/data/big && echo v2 > /srv/svc1/data/release",
    )
    progress = "/var/lib/ferry/services/svc1/sync/sync#1/progress.json"
    sh(tb, "n2", f"rm -f '{progress}'")
    tb.netem("n3", "rate", "40mbit")  # slow enough that the transfer is surely running
    try:
        proc = tb.popen("n2", FERRY, "svc1", "sync", "all", "--rid", "sync#1", "--local")
        try:
            wait(
                "the transfer running",
                lambda: sh(tb, "n2", f"test -s '{progress}'").returncode == 0,
            )
            proc.kill()
        finally:
            proc.wait(timeout=60)
        wait(
            "no rsync or ssh left on n2",
            lambda: sh(tb, "n2", "pgrep -x rsync || pgrep -x ssh").stdout == "",
            15,
        )
        assert sh(tb, "n3", "cat /srv/svc1/data/release").stdout == "v1\n"
    finally:
        tb.netem("n3", "off")
    code, reports = sync(tb, "n2", "all", "--rid", "sync#1")
    assert code == 0, reports
    assert sh(tb, "n3", "cat /srv/svc1/data/release").stdout == "v2\n"
    assert sh(tb, "n3", "stat -c %s /srv/svc1/data/big").stdout.strip() == str(100 * 1024 * 1024)
    sh(tb, "n2", "rm -f /srv/svc1/data/big")
