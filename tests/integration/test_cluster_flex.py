"""Use case 2 with orchestrate = ha, on a testbed where every node has its own disk: the
daemons keep flex_target instances up, and a change of flex_target is enforced both ways.
(The seed's own use cases 2 and 3 end to end: test_e2e_flex.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.ops import NODES, REPO, ferry, own_disk_cluster, wait
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

UC2 = (
    (REPO / "conf.d" / "seeds" / "uc2-flex" / "svc1.conf")
    .read_text()
    .replace("orchestrate = start\nflex_min_nodes = 3\n", "orchestrate = ha\nflex_target = 2\n")
)


def running(tb: Testbed) -> set[str]:
    up = set()
    for node in NODES:
        done = ferry(tb, node, "svc1", "print", "status", "-o", "json", timeout=60)
        if done.returncode == 0 and json.loads(done.stdout).get("avail") == "up":
            up.add(node)
    return up


@pytest.fixture(scope="module")
def uc2(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = own_disk_cluster(testbed_session, "fx", UC2, NODES)
    try:
        yield tb
    finally:
        tb.down()


def test_flex_target_is_enforced_both_ways(uc2: Testbed) -> None:
    tb = uc2
    done = ferry(tb, "n1", "svc1", "start", "--wait", "--time", "240")
    assert done.returncode == 0, done.stderr + done.stdout
    wait("two flex instances", lambda: running(tb) == {"n1", "n2"})
    assert ferry(tb, "n1", "svc1", "set", "--kw", "DEFAULT.flex_target=3").returncode == 0
    wait("three flex instances", lambda: running(tb) == {"n1", "n2", "n3"}, 90)
    assert ferry(tb, "n2", "svc1", "set", "--kw", "DEFAULT.flex_target=1").returncode == 0
    wait("one flex instance, on the best-ranked node", lambda: running(tb) == {"n1"}, 90)
