"""The target side of an rsync sync (rsync-peer prepare): where it lets rsync write, and
when it refuses. The cases that need no mount; the receive mount itself is exercised on the
testbed (tests/integration/test_e2e_flex.py, the giveback of use case 3)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.config.ini import parse
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.instance import Instance
from daemon.sync.rsync.driver import Driver

BASE = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[app#a]
start = touch {var}/a
stop = rm -f {var}/a
check = test -f {var}/a

[fs#1]
dev = /dev/ferry-test-no-such-device
mnt = /ferry-test-not-mounted/data
%s

[sync#1]
src = /srv/x/
dst = %s
dstfs = /ferry-test-not-mounted/data
target = drpnodes
"""


def driver(tmp_path: Path, fs_extra: str = "", dst: str = "/ferry-test-not-mounted/data") -> Driver:
    text = BASE % (fs_extra, dst)
    context = EvalContext("n1", var_dir=str(tmp_path))
    svc = ServiceConfig(parse(text, str(tmp_path / "svc1.conf")), context=context)
    (tmp_path / "services" / "svc1").mkdir(parents=True, exist_ok=True)
    resource = Instance(svc, "n1", tmp_path).resources["sync#1"]
    assert isinstance(resource, Driver)
    return resource


@pytest.mark.parametrize(
    ("fs_extra", "dst", "running", "expected"),
    [
        # a standby provider found down is a fault to report, never worked around
        ("standby = true", "/ferry-test-not-mounted/data", False, "fs#1 is standby here"),
        # the service runs here: nothing is mounted for a receive
        ("", "/ferry-test-not-mounted/data", True, "the service is up here"),
        # dst outside dstfs: no rewriting into the provider
        ("", "/elsewhere", False, "no fs resource of the service holds /elsewhere"),
        # a provider that cannot be mounted: said so, with the resource
        ("", "/ferry-test-not-mounted/data", False, "mounting fs#1 on n1 for the receive failed"),
        # a sender of the same site may share the disk: never mounted for it
        ("", "/ferry-test-not-mounted/data", False, "n2 and n1 are on one site"),
    ],
)
def test_prepare_gives_no_destination(
    tmp_path: Path, fs_extra: str, dst: str, running: bool, expected: str
) -> None:
    sync = driver(tmp_path, fs_extra, dst)
    if running:
        (tmp_path / "services" / "svc1" / "a").touch()
    sender = "n2" if "one site" in expected else "n3"
    answer = asyncio.run(sync.peer_prepare(sender))
    assert answer["dest"] is None and answer["receive_mount"] is False
    assert expected in answer["dest_error"]
    assert (
        "dstfs /ferry-test-not-mounted/data is not a mounted filesystem on n1 ("
        in (answer["dest_error"])
    )
    assert not Path(sync.receive_path()).is_mount()


def test_prepare_without_dstfs_writes_to_dst(tmp_path: Path) -> None:
    sync = driver(tmp_path)
    sync.values.pop("dstfs")
    answer = asyncio.run(sync.peer_prepare("n3"))
    assert (answer["dest"], answer["receive_mount"]) == ("/ferry-test-not-mounted/data", False)
    assert "resources" in answer
