"""A link cut in the middle of a transfer (the DR node's cable pulled at the switch),
through ferryd as the scheduler runs it: the action fails within a bounded time saying
the link was lost, the target keeps its previous state, and once the link is back the
next run does not start from zero: btrfs sends incrementally from the same parent, rsync
resumes from the partial file it kept, docker skips the layers it loaded in steps."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops import FERRY, NODES, ferry, install, sh, wait
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

MIB = 1024 * 1024
CONFIG = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[fs#1]
dev = /dev/mapper/svc1.d0
mnt = /srv/svc1/data
mnt_opt = defaults,subvol=data
standby@drpnodes = true

[container#0]
image = cut/app:1
command = sleep 1000000

[sync#0]
type = docker
target = drpnodes
bwlimit = 16M

[sync#1]
type = btrfs
src = svc1:data
dst = svc1:data
target = drpnodes

[sync#2]
src = /srv/cut/
dst = /srv/cut-copy
target = drpnodes
bwlimit = 8M
stall_timeout = 20
"""
# three layers of 80 MiB on busybox: the first two go in a step of their own (STEP 128 MiB)
IMAGE = (
    "set -e; d=$(mktemp -d); mkdir -p $d/root/bin; cp /bin/busybox $d/root/busybox; "
    "for t in sh sleep; do ln -s /busybox $d/root/bin/$t; done; "
    "tar -C $d/root -cf - . | docker import - cut/base:1 >/dev/null; "
    "for i in 1 2 3; do head -c 80M /dev/urandom > $d/l$i.bin; done; "
    "printf 'FROM cut/base:1\\nCOPY l1.bin /l1.bin\\nCOPY l2.bin /l2.bin\\nCOPY l3.bin /l3.bin\\n'"
    " > $d/Dockerfile; DOCKER_BUILDKIT=0 docker build -q -t cut/app:1 $d >/dev/null; rm -rf $d"
)
LOST_WITHIN = 100.0  # ssh's keepalives (30 s) or rsync's --timeout, and the calls after


@pytest.fixture(scope="module")
def cluster(testbed_session: Testbed) -> Iterator[Testbed]:
    root = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{root}-ct", prefix=f"{testbed_session.prefix}ct-")
    tb.up(shared=())
    try:
        sh(tb, "n1", IMAGE, timeout=600)
        sh(tb, "n1", "mkdir -p /srv/cut && echo v1 > /srv/cut/big.bin")
        install(tb, NODES, "svc1", CONFIG)
        done = ferry(tb, "n1", "svc1", "start", "--local")
        assert done.returncode == 0, done.stderr
        done = ferry(tb, "n3", "svc1", "startstandby", "--local")
        assert done.returncode == 0, done.stderr
        tb.start_ferryd()
        yield tb
    finally:
        tb.down()


def action(tb: Testbed, rid: str) -> tuple[int, dict[str, Any]]:
    """sync all of rid through n1's ferryd, followed to its end: (exit, its report)."""
    done = ferry(tb, "n1", "svc1", "sync", "all", "--rid", rid, "--wait", "-o", "json")
    record = json.loads(done.stdout or "{}")
    reports = (record.get("result") or {}).get("reports") or [{}]
    return done.returncode, reports[0]


def cut_midway(tb: Testbed, rid: str, ready: str) -> tuple[float, dict[str, Any], str]:
    """Start a sync of rid through ferryd, cut n3's link once the shell test ready passes on
    n3 (or n1), wait for the action's end: (seconds from cut to end, report, its output)."""
    argv = tb.command("n1", FERRY, "svc1", "sync", "all", "--rid", rid, "--wait", "-o", "json")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        node, test = ready.split(":", 1)
        wait(f"{rid} under way ({test})", lambda: sh(tb, node, test).returncode == 0, 120, None)
        tb.cut("n3")
        cut_at = time.monotonic()
        out, err = proc.communicate(timeout=LOST_WITHIN + 60)
        took = time.monotonic() - cut_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        tb.heal("n3")
    assert proc.returncode == 1, (out, err)
    record = json.loads(out)
    assert "link was lost" in str(record.get("error")), record
    return took, ((record.get("result") or {}).get("reports") or [{}])[0], out


def progress_over(rid: str, count: int) -> str:
    path = f"/var/lib/ferry/services/svc1/sync/{rid}/progress.json"
    return (
        f"n1:python3 -c \"import json,sys; sys.exit(json.load(open('{path}'))['bytes'] < {count})\""
    )


def test_btrfs_cut_keeps_the_target_and_resends_from_the_same_parent(cluster: Testbed) -> None:
    tb = cluster
    sh(
        tb,
        "n1",
        "echo before > /srv/svc1/data/marker && head -c 1M /dev/urandom > /srv/svc1/data/a",
    )
    code, report = action(tb, "sync#1")
    assert code == 0 and report["ok"], report.get("reason")
    sh(tb, "n1", "echo after > /srv/svc1/data/marker && head -c 120M /dev/urandom > "
                 "/srv/svc1/data/big && sync")  # fmt: skip
    # no cap here: the stream goes from btrfs send to ssh without ferryd (its direct path);
    # the link itself is slow
    tb.netem("n3", "rate", "64mbit")
    try:
        took, report, out = cut_midway(tb, "sync#1", progress_over("sync#1", 30 * MIB))
    finally:
        tb.netem("n3", "off")
    assert took < LOST_WITHIN, (took, out)
    assert not report["ok"] and "link was lost" in report["reason"], report
    # the target's data is the previous run's, whole and mounted
    assert sh(tb, "n3", "cat /srv/svc1/data/marker").stdout == "before\n"
    assert sh(tb, "n3", "test -e /srv/svc1/data/big").returncode == 1
    # the chain holds: the next run is incremental, from the same parent
    code, report = action(tb, "sync#1")
    assert code == 0 and report["ok"], report.get("reason")
    assert report["mode"] == "incremental", report
    assert 120 * MIB <= report["bytes"] < 130 * MIB, report
    sums = "cd /srv/svc1/data && sha256sum marker a big"
    assert sh(tb, "n3", sums).stdout == sh(tb, "n1", sums).stdout


def test_rsync_cut_keeps_the_target_and_resumes_from_the_partial_file(cluster: Testbed) -> None:
    tb = cluster
    code, report = action(tb, "sync#2")
    assert code == 0 and report["ok"], report.get("reason")
    assert sh(tb, "n3", "cat /srv/cut-copy/big.bin").stdout == "v1\n"
    size = 160 * MIB
    sh(tb, "n1", f"head -c {size} /dev/urandom > /srv/cut/big.bin")
    took, report, out = cut_midway(tb, "sync#2", progress_over("sync#2", 60 * MIB))
    assert took < LOST_WITHIN, (took, out)
    assert not report["ok"] and "link was lost" in report["reason"], report
    assert sh(tb, "n3", "cat /srv/cut-copy/big.bin").stdout == "v1\n"  # the previous copy
    # the target's rsync, cut off, ends on its --timeout and keeps what it had received
    partial = "/srv/cut-copy/.ferry-partial/big.bin"
    wait("the partial file on n3", lambda: sh(tb, "n3", f"test -s {partial}").returncode == 0, 60)
    kept = int(sh(tb, "n3", f"stat -c %s {partial}").stdout)
    assert kept >= 30 * MIB, kept
    code, report = action(tb, "sync#2")
    assert code == 0 and report["ok"], report.get("reason")
    # only the rest went over the wire (and rsync's checksums of what was kept)
    assert report["wire_bytes"] < size - kept + 8 * MIB, (report, kept)
    sums = "sha256sum /srv/cut/big.bin | cut -d' ' -f1"
    copy = "sha256sum /srv/cut-copy/big.bin | cut -d' ' -f1"
    assert sh(tb, "n3", copy).stdout == sh(tb, "n1", sums).stdout
    assert sh(tb, "n3", "test -e /srv/cut-copy/.ferry-partial").returncode == 1


def test_docker_cut_keeps_the_layers_loaded_in_steps(cluster: Testbed) -> None:
    tb = cluster
    step = "n3:docker images -q ferry-step/svc1 | grep -q ."
    took, report, out = cut_midway(tb, "sync#0", step)
    assert took < LOST_WITHIN, (took, out)
    assert not report["ok"] and "link was lost" in report["reason"], report
    assert sh(tb, "n3", "docker image inspect cut/app:1").returncode != 0  # not there yet
    code, report = action(tb, "sync#0")
    assert code == 0 and report["ok"], report.get("reason")
    # the first two layers (160 MiB) stayed on n3: only the third one went
    assert 80 * MIB <= report["bytes"] < 100 * MIB, report
    image = "docker image inspect -f '{{.Id}}' cut/app:1"
    assert sh(tb, "n3", image).stdout == sh(tb, "n1", image).stdout
    assert sh(tb, "n3", "docker images -q ferry-step/svc1").stdout.strip() == ""
