"""Transfers on the wire, against real btrfs, rsync, docker and ssh: data identical on
both sides after compressed transfers (full and incremental), fewer bytes on the wire than
data for compressible data, compression scoped to one target only, and a cap that holds a
transfer to its rate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops import (
    NODES,
    REPO,
    ferry,
    install,
    own_disks_testbed,
    sh,
    sync,
    uc3_testbed,
)
from tests.integration.test_sync_btrfs_targets import CONFIG as BTRFS_CONFIG
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

# n2 (the LAN peer) gets the plain stream, n3 (the DR site) a compressed one.
BTRFS = BTRFS_CONFIG + "compress@n3 = zstd\n"
# SQL-dump-like text: compresses well, deterministic
DUMP = "seq 1 {n} | sed 's/.*/INSERT INTO orders VALUES (&, customer-&, paid);/' > {path}"
SUMS = (
    "cd /srv/svc1/data && find . -path ./.ferry -prune -o -type f -print | sort | xargs sha256sum"
)


def reports_by_target(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["target"]: r for r in reports}


@pytest.fixture(scope="module")
def own_disks(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = own_disks_testbed(testbed_session, "wz", BTRFS)
    try:
        yield tb
    finally:
        tb.down()


def test_btrfs_compressed_to_the_dr_site_only_and_identical(own_disks: Testbed) -> None:
    tb = own_disks
    sh(tb, "n1", DUMP.format(n=300_000, path="/srv/svc1/data/dump.sql"))
    sh(tb, "n1", "head -c 2097152 /dev/urandom > /srv/svc1/data/random.bin")
    code, reports = sync(tb, "n1", "full")
    assert code == 0, reports
    by = reports_by_target(reports)
    assert by["n2"]["wire_bytes"] == by["n2"]["bytes"]  # the LAN peer: no compression
    assert by["n3"]["bytes"] == pytest.approx(by["n2"]["bytes"], rel=0.01)
    assert by["n3"]["wire_bytes"] < by["n3"]["bytes"] / 2, by["n3"]
    source = sh(tb, "n1", SUMS).stdout
    assert "dump.sql" in source
    for node in ("n2", "n3"):
        assert sh(tb, node, SUMS).stdout == source, node

    # incremental, compressed, still identical
    sh(tb, "n1", DUMP.format(n=50_000, path="/srv/svc1/data/dump2.sql"))
    code, reports = sync(tb, "n1", "update")
    assert code == 0, reports
    by = reports_by_target(reports)
    assert by["n3"]["mode"] == "incremental" and by["n3"]["wire_bytes"] < by["n3"]["bytes"]
    assert sh(tb, "n3", SUMS).stdout == sh(tb, "n1", SUMS).stdout


def test_a_capped_transfer_keeps_to_its_rate(own_disks: Testbed) -> None:
    tb = own_disks
    install(tb, NODES, "svc1", BTRFS + "bwlimit = 2M\n")
    try:
        sh(tb, "n1", "head -c 8388608 /dev/urandom > /srv/svc1/data/capped.bin")
        code, reports = sync(tb, "n1", "update")
        assert code == 0, reports
        for report in reports:
            assert report["wire_bytes"] > 8 * 1024 * 1024 * 0.95, report
            rate = report["wire_bytes"] / report["seconds"]
            assert rate <= 2 * 1024 * 1024 * 1.1, report  # never faster than the cap
        assert sh(tb, "n3", SUMS).stdout == sh(tb, "n1", SUMS).stdout
    finally:
        install(tb, NODES, "svc1", BTRFS)


@pytest.fixture(scope="module")
def uc3(testbed_session: Testbed) -> Iterator[Testbed]:
    config = (REPO / "conf.d" / "uc3-flex-drp" / "svc1.conf").read_text()
    config = config.replace(
        "[sync#0]\ntype = docker\n", "[sync#0]\ntype = docker\ncompress = lz4\n"
    ).replace("[sync#1]\n", "[sync#1]\ncompress = zstd:6\nbwlimit = 4096\n")
    tb = uc3_testbed(testbed_session, "wu", config)
    try:
        yield tb
    finally:
        tb.down()


def test_rsync_and_docker_compressed_and_identical(uc3: Testbed) -> None:
    tb = uc3
    sh(tb, "n2", DUMP.format(n=200_000, path="/srv/svc1/data/dump.sql"))
    code, reports = sync(tb, "n2", "all")
    assert code == 0, reports
    results = {r["rid"]: r for r in reports}
    assert results["sync#1"]["ok"] and results["sync#0"]["ok"], reports
    size = int(sh(tb, "n2", "stat -c %s /srv/svc1/data/dump.sql").stdout)
    assert results["sync#1"]["wire_bytes"] < size / 3, (results["sync#1"], size)
    assert sh(tb, "n3", SUMS).stdout == sh(tb, "n2", SUMS).stdout
    docker = results["sync#0"]
    assert docker["wire_bytes"] < docker["bytes"], docker
    images = ferry(tb, "n3", "svc1", "docker", "--", "images", "--format", "{{.ID}}")
    local = ferry(tb, "n2", "svc1", "docker", "--", "images", "--format", "{{.ID}}")
    assert set(local.stdout.split()) <= set(images.stdout.split())
