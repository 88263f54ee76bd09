"""Driver behaviours the seed use cases do not reach, on the testbed's nodes.

fs: a device that does not exist, LABEL= resolved on the node (every testbed disk
carries the label svc1: only the node's own /dev/mapper/svc1.d0 is the right one),
a device already mounted elsewhere. ip type netns: the bridge and ipvlan modes.
container: graceful stop and its timeout, rm = true. Each test uses service drv
in the node's own Docker engine and leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from daemon.system.mounts import Mount, parse_mountinfo
from tests.integration.ops import ferry, install, sh, status
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

SVC = "drv"
MNT = "/srv/drv/top"
BY_HAND = "/srv/drv/byhand"
DISK = "/dev/mapper/svc1.d0"

FS = f"""[DEFAULT]
nodes = n1 n2 n3

[fs#0]
dev = {{dev}}
mnt = {MNT}
mnt_opt = subvol=data
"""

IP = """[DEFAULT]
nodes = n1 n2

[container#0]
image = google/pause

[ip#0]
type = netns
netns = container#0
ipdev = {ipdev}
ipname = {ipname}
netmask = 24
{extra}
"""

CONTAINERS = """[DEFAULT]
nodes = n1 n2

[container#0]
image = google/pause
entrypoint = /bin/sh -c
command = "trap '' TERM; while :; do sleep 1; done"
stop_timeout = 3

[container#1]
image = google/pause
stop_timeout = 60

[container#2]
image = google/pause
rm = true
"""


def act(tb: Testbed, node: str, action: str, *args: str) -> Any:
    return ferry(tb, node, SVC, action, "--local", *args)


def statuses(tb: Testbed, node: str) -> dict[str, str]:
    return {rid: r["status"] for rid, r in status(tb, node, SVC)["resources"].items()}


def mount_at(tb: Testbed, node: str, target: str) -> Mount | None:
    found = [m for m in parse_mountinfo(sh(tb, node, "cat /proc/self/mountinfo").stdout)]
    return next((m for m in reversed(found) if m.target == target), None)


def rdev(tb: Testbed, node: str, path: str) -> str:
    done = sh(tb, node, f"stat -L -c %t:%T {path}")
    assert done.returncode == 0, done.stderr
    return str(done.stdout.strip())


def container_pid(tb: Testbed, node: str, name: str) -> str:
    return str(sh(tb, node, f"docker inspect -f '{{{{.State.Pid}}}}' {name}").stdout.strip())


def ns_addresses(tb: Testbed, node: str, name: str) -> str:
    """`ip -o addr` inside the network namespace of a running container."""
    pid = container_pid(tb, node, name)
    assert pid.isdigit() and pid != "0", f"{name} is not running on {node}"
    return str(sh(tb, node, f"nsenter -t {pid} -n ip -o addr show").stdout)


@pytest.fixture
def drv(testbed: Testbed) -> Iterator[Testbed]:
    """The testbed, and after the test: service drv stopped and removed everywhere."""
    yield testbed
    for node in ("n1", "n2", "n3"):
        if not testbed.alive(node):
            continue
        if sh(testbed, node, f"test -e /etc/ferry/{SVC}.conf").returncode == 0:
            act(testbed, node, "stop", "--force")
        names = " ".join(f"{SVC}.container.{n}" for n in range(3))
        sh(testbed, node, f"docker rm -f {names} >/dev/null 2>&1; rm -f /etc/ferry/{SVC}.conf")
        sh(
            testbed,
            node,
            f"umount {BY_HAND} 2>/dev/null; umount {MNT} 2>/dev/null; rm -rf /srv/drv",
        )


def test_fs_missing_device_label_resolution_and_device_mounted_elsewhere(drv: Testbed) -> None:
    tb = drv
    install(tb, ("n1", "n3"), SVC, FS.format(dev="/dev/mapper/nosuch"))
    done = act(tb, "n1", "start")
    assert done.returncode == 1
    assert "fs#0: start failed: device /dev/mapper/nosuch does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert mount_at(tb, "n1", MNT) is None
    assert statuses(tb, "n1") == {"fs#0": "down"}

    install(tb, ("n1",), SVC, FS.format(dev="LABEL=nosuch"))
    done = act(tb, "n1", "start")
    assert done.returncode == 1
    assert "fs#0: start failed: no device has LABEL=nosuch" in done.stderr
    assert mount_at(tb, "n1", MNT) is None

    # Every disk of every node carries the label svc1: the one mounted must be the node's
    # own (n1's is shared with n2; n3, the DRP node, has another).
    install(tb, ("n1", "n3"), SVC, FS.format(dev="LABEL=svc1"))
    for node in ("n1", "n3"):
        done = act(tb, node, "start")
        assert done.returncode == 0, done.stderr
        mount = mount_at(tb, node, MNT)
        assert mount is not None and mount.fstype == "btrfs" and mount.root == "/data"
        assert rdev(tb, node, mount.source) == rdev(tb, node, DISK)
        assert statuses(tb, node) == {"fs#0": "up"}
        assert act(tb, node, "stop").returncode == 0
        assert mount_at(tb, node, MNT) is None
    assert rdev(tb, "n1", DISK) != rdev(tb, "n3", DISK)

    # The same device and subvolume mounted by hand elsewhere on this node: refused, the
    # by-hand mount left as it was.
    made = sh(tb, "n1", f"mkdir -p {BY_HAND} && mount -o subvol=data {DISK} {BY_HAND}")
    assert made.returncode == 0, made.stderr
    install(tb, ("n1",), SVC, FS.format(dev=DISK))
    done = act(tb, "n1", "start")
    assert done.returncode == 1
    assert f"fs#0: start failed: {DISK} is already mounted at {BY_HAND}" in done.stderr
    assert mount_at(tb, "n1", MNT) is None
    by_hand = mount_at(tb, "n1", BY_HAND)
    assert by_hand is not None and by_hand.root == "/data"
    assert rdev(tb, "n1", by_hand.source) == rdev(tb, "n1", DISK)
    assert statuses(tb, "n1") == {"fs#0": "down"}


def test_ip_netns_bridge_mode(drv: Testbed) -> None:
    """ipdev is a bridge (standalone, inside n1): a veth plugged into it, the other end
    in the container's namespace with the address."""
    tb = drv
    made = sh(
        tb,
        "n1",
        "ip link add br-drv type bridge && ip addr add 192.168.77.1/24 dev br-drv"
        " && ip link set br-drv up",
    )
    assert made.returncode == 0, made.stderr
    try:
        install(tb, ("n1",), SVC, IP.format(ipdev="br-drv", ipname="192.168.77.2", extra=""))
        done = act(tb, "n1", "start")
        assert done.returncode == 0, done.stderr
        assert statuses(tb, "n1") == {"container#0": "up", "ip#0": "up"}
        label = status(tb, "n1", SVC)["resources"]["ip#0"]["label"]
        assert label.endswith("(bridge)"), label
        shown = ns_addresses(tb, "n1", "drv.container.0")
        assert " eth0 " in shown and " 192.168.77.2/24 " in shown
        ports = sh(tb, "n1", "ip -o link show master br-drv").stdout.splitlines()
        assert len(ports) == 1 and "veth" in sh(tb, "n1", "ip -d -o link show master br-drv").stdout
        assert tb.exec("n1", "ping", "-c", "1", "-W", "2", "192.168.77.2").returncode == 0

        # ip#0 alone down: the address leaves the namespace, the bridge port goes with it
        assert act(tb, "n1", "stop", "--rid", "ip#0").returncode == 0
        assert statuses(tb, "n1") == {"container#0": "up", "ip#0": "down"}
        assert "192.168.77.2" not in ns_addresses(tb, "n1", "drv.container.0")
        assert sh(tb, "n1", "ip -o link show master br-drv").stdout.strip() == ""

        assert act(tb, "n1", "start", "--rid", "ip#0").returncode == 0
        assert statuses(tb, "n1") == {"container#0": "up", "ip#0": "up"}
        assert " 192.168.77.2/24 " in ns_addresses(tb, "n1", "drv.container.0")
        assert act(tb, "n1", "stop").returncode == 0
        assert statuses(tb, "n1") == {"container#0": "down", "ip#0": "down"}
        assert sh(tb, "n1", "ip -o link show master br-drv").stdout.strip() == ""
        assert tb.exec("n1", "ping", "-c", "1", "-W", "1", "192.168.77.2").returncode != 0
    finally:
        act(tb, "n1", "stop")
        sh(tb, "n1", "ip link del br-drv")


def kernel_has_ipvlan(tb: Testbed, node: str, mode: str) -> bool:
    probe = f"ip link add drvprobe link eth0 type ipvlan mode {mode} && ip link del drvprobe"
    return sh(tb, node, probe).returncode == 0


@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_ip_netns_ipvlan_modes(drv: Testbed, mode: str) -> None:
    tb = drv
    extra = f"mode = ipvlan-{mode}"
    install(tb, ("n1",), SVC, IP.format(ipdev="eth0", ipname="10.0.3.4", extra=extra))
    if not kernel_has_ipvlan(tb, "n1", mode):
        # What an operator gets on such a kernel: a clear error, the container rolled back.
        done = act(tb, "n1", "start")
        assert done.returncode == 1
        assert "ip#0: start failed: this kernel has no ipvlan support" in done.stderr
        assert statuses(tb, "n1") == {"container#0": "down", "ip#0": "down"}
        pytest.skip(f"this kernel has no ipvlan ({mode}): only the clear error was checked")
    done = act(tb, "n1", "start")
    assert done.returncode == 0, done.stderr
    assert statuses(tb, "n1") == {"container#0": "up", "ip#0": "up"}
    assert f"(ipvlan-{mode})" in status(tb, "n1", SVC)["resources"]["ip#0"]["label"]
    assert " 10.0.3.4/24 " in ns_addresses(tb, "n1", "drv.container.0")
    if mode == "l2":
        assert tb.exec("n2", "ping", "-c", "1", "-W", "2", "10.0.3.4").returncode == 0
    assert act(tb, "n1", "stop", "--rid", "ip#0").returncode == 0
    assert statuses(tb, "n1") == {"container#0": "up", "ip#0": "down"}
    assert "10.0.3.4" not in ns_addresses(tb, "n1", "drv.container.0")
    assert act(tb, "n1", "stop").returncode == 0
    assert statuses(tb, "n1") == {"container#0": "down", "ip#0": "down"}


def timed_stop(tb: Testbed, rid: str) -> float:
    started = time.monotonic()
    done = act(tb, "n1", "stop", "--rid", rid)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def exit_code(tb: Testbed, name: str) -> str:
    return str(sh(tb, "n1", f"docker inspect -f '{{{{.State.ExitCode}}}}' {name}").stdout.strip())


def test_container_graceful_stop_timeout_and_rm(drv: Testbed) -> None:
    tb = drv
    install(tb, ("n1",), SVC, CONTAINERS)
    done = act(tb, "n1", "start")
    assert done.returncode == 0, done.stderr
    assert set(statuses(tb, "n1").values()) == {"up"}

    # exits on SIGTERM: stops at once, far within its 60 s stop_timeout
    assert timed_stop(tb, "container#1") < 15
    assert exit_code(tb, "drv.container.1") == "0"

    # ignores SIGTERM: killed once its 3 s stop_timeout is over
    took = timed_stop(tb, "container#0")
    assert 3 <= took < 20, took
    assert exit_code(tb, "drv.container.0") == "137"
    state = status(tb, "n1", SVC)["resources"]["container#0"]
    assert state["status"] == "down" and "exit 137" in " ".join(state["log"])

    # rm = true: gone from docker ps -a as soon as stop returns
    assert timed_stop(tb, "container#2") < 15
    listed = sh(tb, "n1", "docker ps -a --format '{{.Names}}'").stdout.split()
    assert "drv.container.2" not in listed and "drv.container.0" in listed
    assert statuses(tb, "n1") == {
        "container#0": "down",
        "container#1": "down",
        "container#2": "down",
    }
