"""Pure replication decisions: targets, who sends, the guard, stamp-based status, btrfs parents,
docker layer chains and archive reduction."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.config.scoping import Membership
from daemon.resources.status import Status
from daemon.sync import plan
from daemon.sync.btrfs.plan import (
    Snapshot,
    common_parent,
    full_send_reason,
    obsolete,
    snapshot_name,
)
from daemon.sync.docker.layers import (
    archive_layers,
    chain_ids,
    omittable,
    prefix_archive,
    reduce_archive,
    step_plan,
)
from daemon.sync.stamps import Stamp, read, write

M = Membership(nodes=("n1", "n2"), drpnodes=("n3",), flex_primary="n2", drp_flex_primary="n3")


@pytest.mark.parametrize(
    ("pools", "local", "action", "expected"),
    [
        (["nodes", "drpnodes"], "n1", "all", ["n2", "n3"]),
        (["drpnodes"], "n1", "all", ["n3"]),
        (["nodes", "drpnodes"], "n1", "nodes", ["n2"]),
        (["nodes", "drpnodes"], "n1", "drp", ["n3"]),
        (["nodes"], "n1", "drp", []),
        # on the DR site the pools swap: the way back goes to the primary site
        (["nodes", "drpnodes"], "n3", "all", ["n1", "n2"]),
        (["drpnodes"], "n3", "all", ["n1", "n2"]),
        (["nodes"], "n3", "all", []),
        (["drpnodes"], "n3", "drp", ["n1", "n2"]),
    ],
)
def test_targets(pools: list[str], local: str, action: str, expected: list[str]) -> None:
    assert plan.targets(M, pools, local, action) == expected


@pytest.mark.parametrize(
    ("topology", "local", "up", "refused_with"),
    [
        ("failover", "n1", True, ""),
        ("failover", "n1", False, "not up on n1"),
        ("flex", "n2", True, ""),
        ("flex", "n1", True, "not the flex primary (n2)"),
        ("flex", "n3", True, ""),
        ("flex", "n2", False, "not up on n2"),
    ],
)
def test_sender_refusal(topology: str, local: str, up: bool, refused_with: str) -> None:
    reason = plan.sender_refusal(M, topology, local, up)
    assert (reason == "") == (refused_with == "")
    assert refused_with in reason


def res(status: str, standby: bool = False) -> dict[str, object]:
    return {"status": status, "standby": standby}


@pytest.mark.parametrize(
    ("resources", "refused_with"),
    [
        (None, "unknown"),
        ({"fs#0": res("up"), "container#0": res("up")}, "up on the target (container#0, fs#0)"),
        ({"fs#0": res("up"), "container#0": res("down")}, "(fs#0)"),
        ({"fs#0": res("undef")}, "(fs#0)"),
        ({"fs#0": res("stdby up", True), "fs#1": res("stdby down", True)}, ""),
        ({"fs#0": res("stdby up", True), "container#0": res("down"), "sync#0": res("up")}, ""),
        ({"app#0": res("n/a")}, ""),
    ],
)
def test_target_guard(resources: dict[str, dict[str, object]] | None, refused_with: str) -> None:
    reason = plan.target_refusal(resources)
    assert (reason == "") == (refused_with == "")
    assert refused_with in reason


def stamp(started: float) -> Stamp:
    return Stamp(started, started + 5, 100, 5.0, "full", "n1", "n3")


def test_sender_status() -> None:
    now = 10_000.0
    assert plan.sender_status({}, now, 60)[0] is Status.NA
    assert plan.sender_status({"n3": stamp(now - 30)}, now, 60)[0] is Status.UP
    status, log = plan.sender_status({"n3": stamp(now - 90), "n2": stamp(now - 1)}, now, 60)
    assert status is Status.DOWN and log[0] == "warn: late: n3"
    assert plan.sender_status({"n3": None}, now, 60)[0] is Status.DOWN


def test_receiver_status() -> None:
    now = 10_000.0
    assert plan.receiver_status(stamp(now - 30), now, 60)[0] is Status.UP
    assert plan.receiver_status(stamp(now - 90), now, 60)[0] is Status.WARN
    assert plan.receiver_status(None, now, 60)[0] is Status.WARN


def test_stamps_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.json"
    write(path, stamp(5.0))
    assert read(path) == stamp(5.0)
    path.write_text("{torn")
    assert read(path) is None
    assert read(tmp_path / "absent.json") is None


def snap(minute: int, uuid: str, received: str = "") -> Snapshot:
    name = snapshot_name("data", datetime(2026, 11, 25, 1, minute, tzinfo=UTC))
    return Snapshot(name, uuid, received)


def test_common_parent_is_the_newest_shared() -> None:
    local = [snap(1, "u1"), snap(2, "u2"), snap(3, "u3")]
    remote = [snap(1, "r1", "u1"), snap(2, "r2", "u2")]
    assert common_parent(local, remote) == local[1]
    assert common_parent(local, []) is None
    assert "holds no snapshot" in full_send_reason(local, [])
    assert "chain was broken" in full_send_reason(local, [snap(1, "r9", "zz")])
    assert obsolete(local, keep=local[2].name) == [local[0].name, local[1].name]


def test_common_parent_the_way_back() -> None:
    """After a DR activation n3 sends back: its received snapshot pairs with n1's original."""
    n1 = [snap(1, "u1")]
    n3 = [snap(1, "r1", "u1"), snap(5, "r5")]
    assert common_parent(n3, n1) == n3[0]
    # both received the same snapshot from a third node
    assert common_parent([snap(1, "a", "x")], [snap(1, "b", "x")]) is not None


def test_chain_ids_and_omittable() -> None:
    diffs = ["sha256:a", "sha256:b", "sha256:c"]
    chains = chain_ids(diffs)
    assert chains[0] == "sha256:a"
    assert chains[1] == "sha256:" + hashlib.sha256(b"sha256:a sha256:b").hexdigest()
    # the target holds the base (a, b): only c travels
    assert omittable(diffs, set(chains[:2])) == {"sha256:a", "sha256:b"}
    # the same diff on another chain is not enough
    assert omittable(diffs, {chain_ids(["sha256:x", "sha256:b"])[1]}) == set()


def test_reduce_archive_drops_present_layers(tmp_path: Path) -> None:
    layers = {"l1/layer.tar": b"base" * 1000, "l2/layer.tar": b"app" * 10}
    source = tmp_path / "image.tar"
    with tarfile.open(source, "w") as tar:
        for name, data in [*layers.items(), ("manifest.json", json.dumps([{}]).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    base_digest = "sha256:" + hashlib.sha256(layers["l1/layer.tar"]).hexdigest()
    dest = tmp_path / "reduced.tar"
    stats = reduce_archive(source, dest, {base_digest})
    assert (stats.kept, stats.omitted) == (1, 1)
    with tarfile.open(dest) as tar:
        assert sorted(tar.getnames()) == ["l2/layer.tar", "manifest.json"]


def test_reduce_archive_reads_the_manifest(tmp_path: Path) -> None:
    """With a manifest and config, layers are known by position: no hashing, same result."""
    config = {"rootfs": {"diff_ids": ["sha256:base", "sha256:app"]}}
    manifest = [{"Config": "c.json", "Layers": ["l1/layer.tar", "l2/layer.tar"]}]
    files = {
        "l1/layer.tar": b"x" * 100,
        "l2/layer.tar": b"y" * 10,
        "c.json": json.dumps(config).encode(),
        "manifest.json": json.dumps(manifest).encode(),
    }
    source = tmp_path / "image.tar"
    with tarfile.open(source, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    stats = reduce_archive(source, tmp_path / "out.tar", {"sha256:base"})
    assert (stats.kept, stats.omitted, stats.kept_bytes) == (1, 1, 10)


MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("sizes", "present", "expected"),
    [
        ([100, 100, 100], set(), [2]),  # 100 + 100 >= 128: a step, then the image's load
        ([200, 200, 200], set(), [1, 2]),
        ([200, 200, 200], {"l0"}, [2]),  # what the target holds carries nothing
        ([300], set(), []),  # one layer: no step (a layer is docker's unit)
        ([50, 50, 400], set(), []),  # the last layer is never a cut
        ([10, 10, 10, 10], set(), []),  # small: one load
        ([130, 130, 130], {"l0", "l1", "l2"}, []),
    ],
)
def test_step_plan(sizes: list[int], present: set[str], expected: list[int]) -> None:
    layers = [(f"l{i}", size * MIB) for i, size in enumerate(sizes)]
    assert step_plan(layers, present) == expected


def test_prefix_archive_is_the_image_cut_to_its_first_layers(tmp_path: Path) -> None:
    config = {
        "rootfs": {"type": "layers", "diff_ids": ["sha256:a", "sha256:b", "sha256:c"]},
        "history": [{"created_by": "import"}, {"empty_layer": True}, {"created_by": "b"},
                    {"created_by": "c"}],
    }  # fmt: skip
    manifest = [{"Config": "c.json", "RepoTags": ["app:1"],
                 "Layers": ["la/layer.tar", "lb/layer.tar", "lc/layer.tar"]}]  # fmt: skip
    files = {
        "la/layer.tar": b"a" * 100, "lb/layer.tar": b"b" * 200, "lc/layer.tar": b"c" * 300,
        "c.json": json.dumps(config).encode(), "manifest.json": json.dumps(manifest).encode(),
    }  # fmt: skip
    source = tmp_path / "image.tar"
    with tarfile.open(source, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert archive_layers(source) == [("sha256:a", 100), ("sha256:b", 200), ("sha256:c", 300)]
    dest = tmp_path / "step.tar"
    stats = prefix_archive(source, dest, 2, {"sha256:a"}, "ferry-step/svc1:x-2")
    assert (stats.kept, stats.omitted, stats.kept_bytes) == (1, 1, 200)
    with tarfile.open(dest) as tar:
        (entry,) = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert entry["RepoTags"] == ["ferry-step/svc1:x-2"]
        assert entry["Layers"] == ["la/layer.tar", "lb/layer.tar"]
        cut = json.load(tar.extractfile(entry["Config"]))  # type: ignore[arg-type]
        names = sorted(tar.getnames())
    assert cut["rootfs"]["diff_ids"] == ["sha256:a", "sha256:b"]
    assert len([h for h in cut["history"] if not h.get("empty_layer")]) == 2
    # a new image id: the config's digest names it
    assert entry["Config"] == hashlib.sha256(json.dumps(cut).encode()).hexdigest() + ".json"
    assert names == sorted([entry["Config"], "lb/layer.tar", "manifest.json"])
