"""A drill of seed use case 3 (rsync into dstfs, flex primary n2, DR node n3), run with
--local on n3 as an operator without a daemon would: production keeps answering, the check
reaches nginx at n3's address inside the bubble and reads the release synced from n2, a sync
n2 -> n3 during a kept drill succeeds and each side keeps its own data, n3 is left as it was,
and a real start on n3 afterwards works."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.drill_ops import (
    Prober,
    active,
    in_bubble,
    node_state,
    same_state,
)
from tests.integration.ops import ferry, http_status, sh, sync, uc3_testbed
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def uc3(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = uc3_testbed(testbed_session, "d3")
    try:
        sh(tb, "n2", "echo release-1 > /srv/svc1/data/release")
        code, reports = sync(tb, "n2", "all")
        assert code == 0, reports
        yield tb
    finally:
        tb.down()


def test_drill_of_an_rsync_replica_with_local(uc3: Testbed) -> None:
    tb = uc3
    before = node_state(tb, "n3")
    probe = Prober(tb, "n2", "http://10.0.3.3/")  # n1's instance: production
    try:
        check = "wget -qO- http://10.0.3.5/ && cat /srv/svc1/data/release"
        done = ferry(tb, "n3", "svc1", "drill", "--local", "--yes", "--keep", "-o", "json",
                     "--check", check)  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["result"] == "pass" and report["state"] == "kept", report
        assert "ferry testbed: opensvc/nginx" in report["check_output"]
        assert "release-1" in report["check_output"]
        assert {c["rid"]: c["kind"] for c in report["clones"]} == {
            "fs#0": "snapshot",
            "fs#1": "snapshot",
        }
        # the drill's bubble outlived the CLI that made it (--keep): a sync goes on meanwhile
        sh(tb, "n2", "echo release-2 > /srv/svc1/data/release")
        code, reports = sync(tb, "n2", "all")
        assert code == 0, reports
        assert sh(tb, "n3", "cat /srv/svc1/data/release").stdout == "release-2\n"
        assert in_bubble(tb, "n3", "cat /srv/svc1/data/release").stdout == "release-1\n"
        in_bubble(tb, "n3", "echo drill > /srv/svc1/data/drill-wrote")
        assert sh(tb, "n3", "test -e /srv/svc1/data/drill-wrote").returncode == 1
        done = ferry(tb, "n3", "svc1", "drill", "stop", "--local")
        assert done.returncode == 0, done.stderr
    finally:
        seen = probe.stop()
    assert seen and {code for _, code in seen} == {200}, [s for s in seen if s[1] != 200]
    assert active(tb, "n3") is None
    assert same_state(tb, "n3", before)

    # a real start on n3 afterwards (the DR node taking over by hand)
    done = ferry(tb, "n3", "svc1", "start", "--local")
    assert done.returncode == 0, done.stderr
    try:
        assert http_status(tb, "n2", "http://10.0.3.5/") == "200"
        assert sh(tb, "n3", "cat /srv/svc1/data/release").stdout == "release-2\n"
    finally:
        assert ferry(tb, "n3", "svc1", "stop", "--local").returncode == 0
