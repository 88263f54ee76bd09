"""The btrfs sender's retention: which snapshots stay so that every target, even one dead
for a while, gets an incremental send; a table, a property, and a simulated history of
runs driven by the same pure functions as the driver (common parent, retention, and the
receiver keeping only its newest). And the size estimate read from a no-data stream."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.sync.btrfs.plan import (
    Snapshot,
    common_parent,
    obsolete,
    ordered,
    retention,
    snapshot_name,
)
from daemon.sync.btrfs.stream import MAGIC, SendSize

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def name(minute: int) -> str:
    return snapshot_name("data", T0 + timedelta(minutes=minute))


def own(minute: int) -> Snapshot:
    return Snapshot(name(minute), f"u{minute}")


def received(minute: int) -> Snapshot:
    return Snapshot(name(minute), f"r{minute}", f"x{minute}")


S1, S2, S3, S4 = own(1), own(2), own(3), own(4)


@pytest.mark.parametrize(
    ("snapshots", "confirmed", "targets", "new", "pins", "deleted"),
    [
        pytest.param(
            [S1, S2, S3],
            {"n2": S3.name, "n3": S2.name},
            ["n2", "n3"],
            S3.name,
            {"n2": S3.name, "n3": S2.name},
            [S1.name],
            id="the bug: n3's pair stays after n2 confirmed the new one",
        ),
        pytest.param(
            [S1, S2, S3, S4],
            {"n2": S4.name, "n3": S1.name},
            ["n2", "n3"],
            S4.name,
            {"n2": S4.name, "n3": S1.name},
            [S2.name, S3.name],
            id="a dead target keeps its old pair, nothing in between",
        ),
        pytest.param(
            [S1, S2],
            {"n2": S2.name, "n3": S2.name},
            ["n2", "n3"],
            S2.name,
            {"n2": S2.name, "n3": S2.name},
            [S1.name],
            id="one snapshot can be the pair of several targets",
        ),
        pytest.param(
            [S1, S2, S3],
            {"n2": S2.name, "n3": S1.name},
            ["n2", "n3"],
            "",
            {"n2": S2.name, "n3": S1.name},
            [S3.name],
            id="before a run: a snapshot no target holds (a failed send) goes",
        ),
        pytest.param(
            [S1, S2],
            {"n2": S2.name, "n3": ""},
            ["n2", "n3"],
            S2.name,
            {"n2": S2.name, "n3": ""},
            [S1.name],
            id="a target known to share nothing pins nothing",
        ),
        pytest.param(
            [received(1), S2],
            {"n1": S2.name},
            ["n1", "n2"],
            S2.name,
            {"n1": S2.name, "n2": name(1)},
            [],
            id="unknown target (DR node just took over): the received snapshot stays",
        ),
        pytest.param(
            [S1, S2, S3],
            {"n2": S3.name},
            ["n2", "n3"],
            S3.name,
            {"n2": S3.name, "n3": S2.name},
            [S1.name],
            id="unknown target, no received snapshot: the newest older than new",
        ),
        pytest.param(
            [S2, S3],
            {"n2": S3.name, "n3": S1.name},
            ["n2", "n3"],
            S3.name,
            {"n2": S3.name, "n3": S2.name},
            [],
            id="a pin whose snapshot is gone is unknown again",
        ),
        pytest.param(
            [S1],
            {},
            ["n2", "n3"],
            S1.name,
            {"n2": "", "n3": ""},
            [],
            id="first run: nothing older to keep",
        ),
        pytest.param(
            [S1, S2, S3],
            {"n2": S3.name, "old": S1.name},
            ["n2"],
            S3.name,
            {"n2": S3.name},
            [S1.name, S2.name],
            id="a node no longer a target pins nothing",
        ),
        pytest.param(
            [S1, Snapshot("not-ferrys", "z"), S2],
            {"n2": S2.name},
            ["n2"],
            S2.name,
            {"n2": S2.name},
            [S1.name],
            id="names that are not Ferry's are never deleted",
        ),
    ],
)
def test_retention(
    snapshots: list[Snapshot],
    confirmed: dict[str, str],
    targets: list[str],
    new: str,
    pins: dict[str, str],
    deleted: list[str],
) -> None:
    kept = retention(snapshots, confirmed, targets, new)
    assert kept.pins == pins
    assert kept.delete == deleted


@given(
    count=st.integers(0, 8),
    picks=st.dictionaries(st.sampled_from(["n1", "n2", "n3", "n4"]), st.integers(-1, 9)),
    new_at=st.integers(-1, 9),
)
def test_retention_keeps_every_pair_and_is_bounded(
    count: int, picks: dict[str, int], new_at: int
) -> None:
    snapshots = [own(m) if m % 3 else received(m) for m in range(count)]
    confirmed = {t: name(m) if m >= 0 else "" for t, m in picks.items()}
    new = name(new_at) if 0 <= new_at < count else ""
    targets = ["n1", "n2", "n3"]
    kept = retention(snapshots, confirmed, targets, new)
    present = {s.name for s in snapshots}
    remaining = present - set(kept.delete)
    assert set(kept.delete) <= present
    assert set(kept.pins) == set(targets)
    assert {p for p in kept.pins.values() if p} <= remaining
    assert not new or new in remaining
    for target in targets:  # a known pair that is still here is never touched
        pair = confirmed.get(target)
        if pair and pair in present:
            assert kept.pins[target] == pair
    assert len(remaining) <= len(targets) + 1


# A simulated history ------------------------------------------------------------------


@dataclass
class Node:
    """One side's snapshot directory and (as a sender) its record of pairs."""

    snapshots: list[Snapshot] = field(default_factory=list)
    pairs: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    nodes: dict[str, Node]
    clock: int = 0

    def run(self, sender: str, to: Sequence[str], targets: Sequence[str]) -> list[str]:
        """One sync run as the driver does it: one snapshot, sent to each of ``to`` in turn
        (``targets``: the resource's targets, for retention); 'full' or 'incremental' each."""
        src = self.nodes[sender]
        modes, new = [], ""
        for target in to:
            dst = self.nodes[target]
            common = common_parent(src.snapshots, dst.snapshots)
            src.pairs[target] = common.name if common else ""
            self._prune(src, targets, new)
            if not new:
                self.clock += 1
                new = name(self.clock)
                src.snapshots.append(Snapshot(new, f"{sender}-{self.clock}"))
            sent = next(s for s in src.snapshots if s.name == new)
            got = Snapshot(new, f"{target}-{self.clock}", sent.received_uuid or sent.uuid)
            dst.snapshots.append(got)  # the receiver keeps only what it verified last
            gone = obsolete(dst.snapshots, keep=got.name)
            dst.snapshots = [s for s in dst.snapshots if s.name not in gone]
            src.pairs[target] = new
            self._prune(src, targets, new)
            modes.append("incremental" if common else "full")
        return modes

    def send(self, sender: str, target: str, targets: Sequence[str]) -> str:
        """A run to one target."""
        return self.run(sender, [target], targets)[0]

    def _prune(self, node: Node, targets: Sequence[str], new: str) -> None:
        kept = retention(node.snapshots, node.pairs, targets, new)
        node.pairs = kept.pins
        node.snapshots = [s for s in ordered(node.snapshots) if s.name not in kept.delete]


def test_two_targets_stay_incremental_and_a_dead_one_catches_up() -> None:
    world = World({n: Node() for n in ("n1", "n2", "n3")})
    targets = ["n2", "n3"]
    assert world.run("n1", targets, targets) == ["full", "full"]
    for _ in range(3):
        assert world.run("n1", targets, targets) == ["incremental"] * 2
        assert len(world.nodes["n1"].snapshots) == 1  # the run's, shared by both
    # n3 is dead for ten runs: n1 keeps its pair (and no more than that)
    for _ in range(10):
        assert world.send("n1", "n2", targets) == "incremental"
        assert len(world.nodes["n1"].snapshots) == 2
    assert world.run("n1", targets, targets) == ["incremental"] * 2


def test_the_way_back_after_a_dr_activation_stays_incremental() -> None:
    """n3 takes over with no record of its own while n1 is still down: the snapshot it
    received from n1 stays for n1 (an unknown target) while n3 sends to n2, and the way
    back to n1 is incremental when n1 returns."""
    world = World({n: Node() for n in ("n1", "n2", "n3")})
    for _ in range(3):
        world.run("n1", ["n2", "n3"], ["n2", "n3"])
    back = ["n1", "n2"]  # n3's targets once it runs the service
    # n1 is down; n2 (its own disk) shares n1's last run snapshot with n3: incremental
    assert world.send("n3", "n2", back) == "incremental"
    assert world.send("n3", "n2", back) == "incremental"
    assert world.send("n3", "n1", back) == "incremental"
    assert world.run("n3", back, back) == ["incremental"] * 2
    # giveback: n1 sends to n3 again, from what it received
    assert world.send("n1", "n3", ["n2", "n3"]) == "incremental"


# The size estimate ----------------------------------------------------------------------


def command(kind: int, *attrs: tuple[int, bytes]) -> bytes:
    payload = b"".join(struct.pack("<HH", a, len(v)) + v for a, v in attrs)
    return struct.pack("<IHI", len(payload), kind, 0) + payload


def update_extent(path: bytes, offset: int, size: int) -> bytes:
    return command(22, (15, path), (18, struct.pack("<Q", offset)), (4, struct.pack("<Q", size)))


def test_send_size_counts_the_data_the_real_stream_carries() -> None:
    stream = b"".join(
        [
            MAGIC + struct.pack("<I", 1),
            command(3, (15, b"f")),  # mkfile: a size attribute elsewhere is not data
            command(17, (15, b"f"), (4, struct.pack("<Q", 1 << 40))),  # truncate
            update_extent(b"f", 0, 5000),
            command(16, (15, b"g"), (24, struct.pack("<Q", 9999))),  # clone: no data
            update_extent(b"d/h", 4096, 3),
            command(21),
        ]
    )
    for step in (1, 7, len(stream)):
        size = SendSize()
        for at in range(0, len(stream), step):
            size.feed(stream[at : at + step])
        assert (size.data, size.total) == (5003, len(stream) + 5003)


def test_send_size_refuses_what_is_not_a_stream() -> None:
    with pytest.raises(ValueError, match="not a btrfs send stream"):
        SendSize().feed(b"ERROR: cannot open" + bytes(20))
