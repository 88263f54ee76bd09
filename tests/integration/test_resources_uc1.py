"""Seed use case 1 (failover, docker micro-containers) acted locally on the testbed's nodes.

n1 and n2 share /dev/mapper/svc1.d0; n3 (drpnode) has its own disk under the same
name. Everything here is real: btrfs mounts, a service-private dockerd on the
shared disk, a macvlan address inside the pause container's namespace, busybox
httpd answering from it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.ops import REPO, ferry, http_status, install, load_seed_images, sh, status
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

CONFIG = (REPO / "conf.d" / "uc1-failover" / "svc1.conf").read_text()
NODES = ("n1", "n2", "n3")
ENGINE_RUN = "/var/lib/ferry/services/svc1/docker"  # the private engine's pid file and socket


def resource_status(tb: Testbed, node: str) -> dict[str, str]:
    """Statuses of the resources that start and stop (sync resources are checked elsewhere)."""
    resources = status(tb, node)["resources"].items()
    return {rid: r["status"] for rid, r in resources if not rid.startswith("sync#")}


def private_engine_runs(tb: Testbed, node: str) -> bool:
    """Whether the service's private dockerd runs on node (by its pid file, then by any
    dockerd process with the service's data root)."""
    pid = sh(tb, node, f"cat {ENGINE_RUN}/dockerd.pid 2>/dev/null").stdout.strip()
    if pid.isdigit() and sh(tb, node, f"test -e /proc/{pid}").returncode == 0:
        return True
    ps = sh(tb, node, "ps -eo args").stdout.splitlines()
    return any("dockerd" in line and "/srv/svc1/docker" in line for line in ps)


def force_stop_everywhere(tb: Testbed) -> None:
    for node in NODES:
        if tb.alive(node):
            ferry(tb, node, "svc1", "stop", "--local", "--force")


@pytest.fixture(scope="module")
def uc1(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = testbed_session
    install(tb, NODES, "svc1", CONFIG)
    # The private engine on the shared disk starts empty: load the seed images once, the way
    # an operator would (the docker sync resource does this towards the DR node).
    load_seed_images(tb, "n1")
    assert ferry(tb, "n1", "svc1", "stop", "--local", "--force").returncode == 0
    yield tb
    force_stop_everywhere(tb)
    for node in NODES:
        if tb.alive(node):
            sh(tb, node, "rm -f /etc/ferry/svc1.conf")


def test_start_on_n1_serves_http_and_stop_undoes_it(uc1: Testbed) -> None:
    tb = uc1
    done = ferry(tb, "n1", "svc1", "start", "--local")
    assert done.returncode == 0, done.stderr
    assert resource_status(tb, "n1") == {
        "ip#0": "up",
        "fs#0": "up",
        "fs#1": "up",
        "container#0": "up",
        "container#1": "up",
    }
    mounts = sh(tb, "n1", "grep ' /srv/svc1/' /proc/self/mountinfo").stdout
    assert "/docker /srv/svc1/docker" in mounts and "/data /srv/svc1/data" in mounts
    engine = sh(tb, "n1", f"cat {ENGINE_RUN}/dockerd.pid").stdout.strip()
    assert engine.isdigit()
    # the private engine keeps its data on the service's filesystem
    argv = sh(tb, "n1", f"tr '\\0' ' ' < /proc/{engine}/cmdline").stdout.split()
    assert argv[0].endswith("dockerd") and "--data-root" in argv
    assert argv[argv.index("--data-root") + 1] == "/srv/svc1/docker"
    root = sh(
        tb, "n1", f"docker -H unix://{ENGINE_RUN}/docker.sock info -f '{{{{.DockerRootDir}}}}'"
    )
    assert root.stdout.strip() == "/srv/svc1/docker", root.stderr
    assert http_status(tb, "n2", "http://10.0.3.3/") == "200"
    tree = ferry(tb, "n1", "svc1", "print", "status").stdout
    assert "container#1" in tree and "10.0.3.3/24 on eth0 in container#0" in tree

    done = ferry(tb, "n1", "svc1", "stop", "--local")
    assert done.returncode == 0, done.stderr
    assert set(resource_status(tb, "n1").values()) == {"down"}
    assert sh(tb, "n1", "grep -c ' /srv/svc1/' /proc/self/mountinfo").stdout.strip() == "0"
    assert sh(tb, "n1", f"test -e /proc/{engine}").returncode != 0  # private engine stopped
    assert http_status(tb, "n2", "http://10.0.3.3/") != "200"
    # the stop order is the exact reverse of the start order
    starts = [line.split()[1].rstrip(":") for line in done.stderr.splitlines() if ": stop " in line]
    assert starts == ["container#1", "ip#0", "container#0", "fs#1", "fs#0"]


def test_n2_finds_the_same_engine_data(uc1: Testbed) -> None:
    tb = uc1
    done = ferry(tb, "n2", "svc1", "start", "--local")
    assert done.returncode == 0, done.stderr
    try:
        assert status(tb, "n2")["avail"] == "up"
        images = ferry(tb, "n2", "svc1", "docker", "--", "images", "--format", "{{.Repository}}")
        assert {"google/pause", "opensvc/nginx"} <= set(images.stdout.split())
        assert "load" not in done.stderr and "pull" not in done.stderr
        assert http_status(tb, "n1", "http://10.0.3.3/") == "200"
    finally:
        assert ferry(tb, "n2", "svc1", "stop", "--local").returncode == 0


def test_drp_node_standby_mounts_its_own_disk(uc1: Testbed) -> None:
    tb = uc1
    done = ferry(tb, "n3", "svc1", "startstandby", "--local")
    assert done.returncode == 0, done.stderr
    state = resource_status(tb, "n3")
    assert state["fs#0"] == "stdby up" and state["fs#1"] == "stdby up"
    # and nothing else: no container, no address, no private engine
    assert state["container#0"] == "down" and state["ip#0"] == "down"
    assert state["container#1"] == "down"
    assert not private_engine_runs(tb, "n3")
    # mounted from n3's own disk: another filesystem than the one n1 and n2 share
    uuid = "blkid -s UUID -o value /dev/mapper/svc1.d0"
    assert sh(tb, "n3", uuid).stdout.strip() != sh(tb, "n1", uuid).stdout.strip()
    assert sh(tb, "n3", "grep -c ' /srv/svc1/data ' /proc/self/mountinfo").stdout.strip() == "1"
    assert ferry(tb, "n3", "svc1", "stop", "--local").returncode == 0
    assert resource_status(tb, "n3")["fs#1"] == "stdby up"  # stop leaves standby resources
    assert ferry(tb, "n3", "svc1", "stop", "--local", "--force").returncode == 0
    state = resource_status(tb, "n3")
    assert state["fs#0"] == "stdby down" and state["fs#1"] == "stdby down"
    assert sh(tb, "n3", "grep -c ' /srv/svc1/' /proc/self/mountinfo").stdout.strip() == "0"


def test_missing_image_rolls_back_and_names_container1(uc1: Testbed) -> None:
    tb = uc1
    bad = "container#1.image=opensvc/missing:1"
    assert ferry(tb, "n1", "svc1", "set", "--kw", bad).returncode == 0
    try:
        done = ferry(tb, "n1", "svc1", "start", "--local")
        assert done.returncode == 1
        assert "container#1: start failed" in done.stderr
        assert "opensvc/missing:1 is not in" in done.stderr
        state = resource_status(tb, "n1")
        assert state["fs#0"] == "down" and state["fs#1"] == "down" and state["ip#0"] == "down"
        assert state["container#0"] == "down"
    finally:
        ferry(tb, "n1", "svc1", "set", "--kw", "container#1.image=opensvc/nginx:build5")


def test_container_killed_by_hand_shows_down_and_warn(uc1: Testbed) -> None:
    tb = uc1
    assert ferry(tb, "n1", "svc1", "start", "--local").returncode == 0
    try:
        killed = ferry(tb, "n1", "svc1", "docker", "--", "kill", "svc1.container.1")
        assert killed.returncode == 0, killed.stderr
        state = status(tb, "n1")
        assert state["resources"]["container#1"]["status"] == "down"
        assert state["avail"] == "warn"
    finally:
        assert ferry(tb, "n1", "svc1", "stop", "--local").returncode == 0


def test_occupied_mount_point_is_a_clear_error(uc1: Testbed) -> None:
    tb = uc1
    sh(tb, "n1", "mkdir -p /srv/svc1/data && mount -t tmpfs squatter /srv/svc1/data")
    try:
        done = ferry(tb, "n1", "svc1", "start", "--local")
        assert done.returncode == 1
        assert (
            "fs#1: start failed: mount point /srv/svc1/data is occupied by squatter" in done.stderr
        )
        assert resource_status(tb, "n1")["fs#0"] == "down"  # rolled back
    finally:
        sh(tb, "n1", "umount /srv/svc1/data")
