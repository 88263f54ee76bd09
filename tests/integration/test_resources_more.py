"""More drivers on the testbed: ip type host, fs by UUID=, container run options in the node's
engine, a disabled resource."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.ops import ferry, install, sh, status
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

SVC3 = """[DEFAULT]
nodes = n1 n2

[ip#1]
type = host
ipdev = eth0
ipname = 10.0.3.9
netmask = 24

[fs#0]
dev = UUID={uuid}
mnt = /srv/svc3/top
mnt_opt = subvolid=5

[container#0]
image = google/pause
netns = host
environment = GREETING=hello-from-env
volume_mounts = /srv/svc3/vol:/data
entrypoint = /bin/sh -c
command = "echo $GREETING > /data/out; exec sleep 100000"

[app#off]
disable = true
start = touch /srv/svc3/never
"""


@pytest.fixture(scope="module")
def svc3(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = testbed_session
    uuid = sh(tb, "n1", "blkid -s UUID -o value /dev/mapper/svc1.d0").stdout.strip()
    install(tb, ("n1", "n2"), "svc3", SVC3.replace("{uuid}", uuid))
    sh(tb, "n1", "mkdir -p /srv/svc3/vol")
    yield tb
    ferry(tb, "n1", "svc3", "stop", "--local")
    sh(tb, "n1", "rm -rf /srv/svc3 /etc/ferry/svc3.conf")
    sh(tb, "n2", "rm -f /etc/ferry/svc3.conf")


def test_host_ip_uuid_fs_container_options_and_disabled(svc3: Testbed) -> None:
    tb = svc3
    done = ferry(tb, "n1", "svc3", "start", "--local")
    assert done.returncode == 0, done.stderr
    state = status(tb, "n1", "svc3")
    resources = {rid: r["status"] for rid, r in state["resources"].items()}
    assert resources == {
        "ip#1": "up",
        "fs#0": "up",
        "container#0": "up",
        "app#off": "n/a",
    }
    assert state["resources"]["app#off"]["disabled"] is True
    assert sh(tb, "n1", "test -e /srv/svc3/never").returncode != 0
    assert tb.exec("n2", "ping", "-c", "1", "-W", "2", "10.0.3.9").returncode == 0
    assert {"data", "docker"} <= set(sh(tb, "n1", "ls /srv/svc3/top").stdout.split())
    assert sh(tb, "n1", "cat /srv/svc3/vol/out").stdout == "hello-from-env\n"

    # a second start is a no-op; the duplicate-address guard protects other nodes
    assert ferry(tb, "n1", "svc3", "start", "--local").returncode == 0
    dup = ferry(tb, "n2", "svc3", "start", "--local", "--rid", "ip#1")
    assert dup.returncode == 1
    assert "10.0.3.9 already answers on the network" in dup.stderr

    assert ferry(tb, "n1", "svc3", "stop", "--local").returncode == 0
    assert tb.exec("n2", "ping", "-c", "1", "-W", "1", "10.0.3.9").returncode != 0
    assert sh(tb, "n1", "grep -c ' /srv/svc3/top ' /proc/self/mountinfo").stdout.strip() == "0"
