"""Flex and standby under the daemons, on testbeds where every node has its own disk.

* Use case 2 with orchestrate = ha: flex_target instances run, and a change of
  flex_target is enforced both ways.
* Use case 3: the DR node's standby filesystems are kept mounted, and come back when
  unmounted by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.integration.ops import REPO, ferry, install, load_seed_images, sh, wait
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

NODES = ("n1", "n2", "n3")
UC2 = (
    (REPO / "conf.d" / "seeds" / "uc2-flex" / "svc1.conf")
    .read_text()
    .replace("orchestrate = start\nflex_min_nodes = 3\n", "orchestrate = ha\nflex_target = 2\n")
)
UC3 = (REPO / "conf.d" / "uc3-flex-drp" / "svc1.conf").read_text()


def statuses(tb: Testbed, node: str) -> dict[str, object]:
    done = ferry(tb, node, "svc1", "print", "status", "-o", "json", timeout=60)
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {}


def running(tb: Testbed) -> set[str]:
    return {n for n in NODES if statuses(tb, n).get("avail") == "up"}


def own_disk_testbed(base: Testbed, tag: str, config: str) -> Testbed:
    root = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{root}-{tag}", prefix=f"{base.prefix}{tag}-")
    tb.up(shared=())
    install(tb, NODES, "svc1", config)
    for node in NODES:
        load_seed_images(tb, node)
        assert ferry(tb, node, "svc1", "stop", "--local", "--force").returncode == 0
    return tb


@pytest.fixture(scope="module")
def uc2(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = own_disk_testbed(testbed_session, "fx", UC2)
    try:
        tb.start_ferryd()
        yield tb
    finally:
        tb.down()


def test_flex_target_is_enforced_both_ways(uc2: Testbed) -> None:
    tb = uc2
    wait("two flex instances", lambda: running(tb) == {"n1", "n2"})
    for node in NODES:
        assert ferry(tb, node, "svc1", "set", "--kw", "DEFAULT.flex_target=3").returncode == 0
    wait("three flex instances", lambda: running(tb) == {"n1", "n2", "n3"})
    for node in NODES:
        assert ferry(tb, node, "svc1", "set", "--kw", "DEFAULT.flex_target=1").returncode == 0
    wait("one flex instance, on the best-ranked node", lambda: running(tb) == {"n1"})


@pytest.fixture(scope="module")
def uc3(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = own_disk_testbed(testbed_session, "sb", UC3)
    try:
        tb.start_ferryd()
        yield tb
    finally:
        tb.down()


def standby_mounted(tb: Testbed) -> bool:
    resources = statuses(tb, "n3").get("resources") or {}
    assert isinstance(resources, dict)
    return all(resources.get(rid, {}).get("status") == "stdby up" for rid in ("fs#0", "fs#1"))


def test_drp_standby_filesystems_are_kept_mounted(uc3: Testbed) -> None:
    tb = uc3
    wait("the boot start on the leader", lambda: "n1" in running(tb))
    wait("n3's standby filesystems mounted by the daemon", lambda: standby_mounted(tb))
    assert "n3" not in running(tb)
    before = mount_ids(tb)
    assert before, "no mount on /srv/svc1/data"
    # One shell command, so the monitor cannot remount in between.
    done = sh(tb, "n3", "umount /srv/svc1/data && ! mountpoint -q /srv/svc1/data")
    assert done.returncode == 0, done.stderr
    wait("n3's standby filesystem back", lambda: mount_ids(tb) - before != set(), limit=60)
    assert standby_mounted(tb)
    assert len(mount_ids(tb)) == 1, "the filesystem is mounted twice"


def mount_ids(tb: Testbed) -> set[str]:
    """Kernel mount ids on /srv/svc1/data in n3's mount namespace (a remount gets a new one)."""
    done = sh(tb, "n3", "awk '$5 == \"/srv/svc1/data\" {print $1}' /proc/self/mountinfo")
    return set(done.stdout.split())
