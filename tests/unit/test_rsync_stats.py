"""What the rsync driver reads from rsync: bytes on the wire from --stats, progress (bytes and
a total estimated from the percentage) from --info=progress2, and the mode it reports.

Outputs come from the real rsync binary run here between temporary directories, and the
driver's whole transfer runs too, through a stand-in for ssh that runs the remote side
locally."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from daemon.config.ini import parse
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.instance import Instance
from daemon.sync import base
from daemon.sync.progress import Progress
from daemon.sync.rsync import driver as rsync
from daemon.sync.transport import Peers, RemoteResult

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="no rsync binary")

# rsync 3.2.7's --stats of a first copy (default human-readable level: grouped digits)
SAMPLE = """
Number of files: 3 (reg: 2, dir: 1)
Number of created files: 2 (reg: 2)
Number of deleted files: 0
Number of regular files transferred: 2
Total file size: 3,145,731 bytes
Total transferred file size: 3,145,731 bytes
Literal data: 3,145,731 bytes
Matched data: 0 bytes
File list size: 0
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 3,146,690
Total bytes received: 57

sent 3,146,690 bytes  received 57 bytes  899,070.57 bytes/sec
total size is 3,145,731  speedup is 1.00
"""

MiB = 1024 * 1024


def test_wire_bytes_of_a_fixed_sample() -> None:
    assert rsync.wire_bytes(SAMPLE) == 3_146_690 + 57
    assert rsync.wire_bytes(SAMPLE.replace(",", "")) == 3_146_690 + 57  # --no-human-readable
    assert rsync.wire_bytes(SAMPLE.replace(",", ".")) == 3_146_690 + 57  # a decimal-comma locale
    assert rsync.wire_bytes("rsync error: some files could not be transferred\n") == 0


def summary_bytes(stats: str) -> int:
    """The same count from rsync's closing 'sent N bytes  received M bytes' line."""
    match = re.search(r"^sent ([\d,]+) bytes\s+received ([\d,]+) bytes", stats, re.MULTILINE)
    assert match, stats
    return int(match.group(1).replace(",", "")) + int(match.group(2).replace(",", ""))


def run_rsync(*args: str) -> str:
    done = subprocess.run(["rsync", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("numbers", [[], ["--no-human-readable"]])
def test_wire_bytes_of_real_rsync_runs(tmp_path: Path, numbers: list[str]) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "big").write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    (src / "small").write_text("hello\n")
    # --whole-file off: rsync between local directories sends whole files by default
    argv = ["-rt", "--stats", "--no-whole-file", *numbers, f"{src}/", str(dst)]

    first = run_rsync(*argv)
    assert rsync.wire_bytes(first) == summary_bytes(first)
    assert 2 * MiB < rsync.wire_bytes(first) < 2 * MiB + 64 * 1024

    again = run_rsync(*argv)  # nothing changed: only the file list moves
    assert rsync.wire_bytes(again) == summary_bytes(again)
    assert rsync.wire_bytes(again) < 4096

    (src / "small").write_text("hello again\n")
    changed = run_rsync(*argv)
    assert rsync.wire_bytes(changed) == summary_bytes(changed)
    assert rsync.wire_bytes(changed) < 8192


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (b"         32,768   1%    0.00kB/s    0:00:00  ", (32768, 1)),
        (b"      1,081,344  34% 1000.98kB/s    0:00:02  ", (1081344, 34)),
        (b"      3,145,731 100%  990.23kB/s    0:00:03 (xfr#2, to-chk=0/3)", (3145731, 100)),
        (b"        3145731 100%  990.23kB/s    0:00:03 (xfr#2, to-chk=0/3)", (3145731, 100)),
        (b"              0   0%    0.00kB/s    0:00:00 (xfr#0, ir-chk=1000/1001)", (0, 0)),
        (b"Total bytes sent: 3,146,690", None),
        (b"sending incremental file list", None),
        (b"", None),
    ],
)
def test_progress2_lines(line: bytes, parsed: tuple[int, int] | None) -> None:
    assert rsync.progress_line(line) == parsed


@pytest.mark.parametrize(
    ("full", "sent_before", "expected"),
    [
        (False, False, ("full", "first transfer")),
        (False, True, ("incremental", "")),
        (True, False, ("full", "requested (sync full)")),
        (True, True, ("full", "requested (sync full)")),
    ],
)
def test_transfer_mode(full: bool, sent_before: bool, expected: tuple[str, str]) -> None:
    assert rsync.transfer_mode(full, sent_before) == expected


# The driver's whole transfer, ssh aside -------------------------------------------------------

FAKE_SSH = """#!/bin/sh
# rsync runs: <this> [-l user] host rsync --server ...; run the server side here instead
while [ "$1" = "-l" ]; do shift 2; done
shift
exec "$@"
"""

CONFIG = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[app#a]
start = touch {var}/a
stop = rm -f {var}/a
check = test -f {var}/a

[sync#1]
src = %(src)s/
dst = %(dst)s
target = drpnodes
bwlimit = 2048
options = -h
"""


class TargetPeers(Peers):
    """The target's side of the guard and the stamp, from memory."""

    def __init__(self, dest: Path) -> None:
        super().__init__()
        self.dest = dest

    async def run(
        self, node: str, argv: Sequence[str], *, timeout: float, input: bytes | None = None
    ) -> RemoteResult:
        answer = {"resources": {}, "dest": str(self.dest), "receive_mount": False}
        return RemoteResult(0, json.dumps(answer), "")


@pytest.fixture
def driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> rsync.Driver:
    ssh = tmp_path / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(0o755)
    monkeypatch.setattr(rsync, "SSH", str(ssh))

    async def no_master(cls: Any, target: str, socket: Path) -> rsync._SshMaster:
        return cls(None, socket)

    monkeypatch.setattr(rsync._SshMaster, "open", classmethod(no_master))
    monkeypatch.setattr(base, "WATCH_EVERY", 0.1)
    (tmp_path / "src").mkdir()
    text = CONFIG % {"src": tmp_path / "src", "dst": tmp_path / "dst"}
    context = EvalContext("n1", var_dir=str(tmp_path))
    svc = ServiceConfig(parse(text, str(tmp_path / "svc1.conf")), context=context)
    (tmp_path / "services" / "svc1").mkdir(parents=True)
    (tmp_path / "services" / "svc1" / "a").touch()  # the service is up here: it sends
    resource = Instance(svc, "n1", tmp_path).resources["sync#1"]
    assert isinstance(resource, rsync.Driver)
    return resource


def test_the_driver_reports_modes_bytes_and_progress(tmp_path: Path, driver: rsync.Driver) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB at 2 MiB/s: progress lines 1 s apart
    (src / "data").write_bytes(payload)
    seen: list[tuple[int, int | None, float | None]] = []
    driver.progress_reporter = lambda p: seen.append((p.moved, p.total, p.eta))
    peers = TargetPeers(dst)

    # the first copy to an empty target is a full one, whatever the action
    [first] = asyncio.run(driver.sync("update", peers))
    assert (first.ok, first.mode, first.reason) == (True, "full", "first transfer"), first
    assert (dst / "data").read_bytes() == payload
    assert 4 * MiB <= first.bytes < 4 * MiB + 64 * 1024  # the -h in options changed nothing
    # rsync's percentage gave a total, hence an ETA, while it ran
    assert any(total is not None and eta is not None for _, total, eta in seen), seen
    last_total = [total for _, total, _ in seen if total][-1]
    assert 0.9 * 4 * MiB < last_total < 1.1 * 4 * MiB

    [again] = asyncio.run(driver.sync("all", peers))
    assert (again.ok, again.mode, again.reason) == (True, "incremental", ""), again
    assert again.bytes < 4096

    [full] = asyncio.run(driver.sync("full", peers))
    assert (full.ok, full.mode, full.reason) == (True, "full", "requested (sync full)"), full
    assert not (driver.sync_dir / "progress.json").exists()


def test_progress_from_a_real_progress2_stream(tmp_path: Path) -> None:
    """The lines rsync prints, fed to Progress as the driver does: a total and an ETA."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").write_bytes(bytes(range(256)) * (8 * 1024))  # 2 MiB at 4 MiB/s
    out = run_rsync("-r", "--bwlimit=4096", "--info=progress2", f"{src}/", str(tmp_path / "d"))
    progress = Progress("n3")
    steps = []
    for line in re.split(r"[\r\n]", out):
        parsed = rsync.progress_line(line.encode())
        if parsed is not None:
            progress.set(*parsed)
            steps.append((progress.moved, progress.total))
    assert len(steps) >= 2, out
    assert steps[-1] == (2 * MiB, 2 * MiB)
    assert all(total is not None and total >= moved for moved, total in steps if moved)
