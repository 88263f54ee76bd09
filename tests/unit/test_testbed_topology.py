"""The testbed's topology from what ``up`` is asked: ranges, sites, shared disks, pairs,
light nodes, disk size (pure data), the CLI's options, and the state file's record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.testbed import __main__ as cli
from tests.testbed import cluster, topology
from tests.testbed.cluster import Testbed
from tests.testbed.state import State
from tests.testbed.topology import (
    DISK_SIZE,
    Topology,
    describe,
    pairs_in,
    parse_nodes,
    parse_sites,
    parse_size,
    plan,
)

N1_12 = tuple(f"n{k}" for k in range(1, 13))


@pytest.mark.parametrize(
    ("text", "nodes"),
    [
        ("n1,n2,n3", ("n1", "n2", "n3")),
        ("n1-n3", ("n1", "n2", "n3")),
        ("n1-n12", N1_12),
        ("n5, n1-n2 ,n9-n9", ("n5", "n1", "n2", "n9")),
        ("n7", ("n7",)),
    ],
)
def test_node_lists_take_ranges(text: str, nodes: tuple[str, ...]) -> None:
    assert parse_nodes(text) == nodes


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("n3-n1", "range 'n3-n1' runs backwards"),
        ("n1,n1-n2", "n1 given twice in 'n1,n1-n2'"),
        ("n1-x4", "node names are n1 .. n200, not 'x4'"),
        ("n0", "node names are n1 .. n200, not 'n0'"),
        ("n1-n201", "node names are n1 .. n200, not 'n201'"),
        (",", "no node in ','"),
    ],
)
def test_bad_node_lists_say_why(text: str, error: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_nodes(text)
    assert str(raised.value) == error


def test_sites_are_comma_separated_ranges_or_nodes_joined_by_plus() -> None:
    assert parse_sites("n1-n6,n7-n12") == (N1_12[:6], N1_12[6:])
    assert parse_sites("n1-n2+n5,n3,n4") == (("n1", "n2", "n5"), ("n3",), ("n4",))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("n1-n6,n6-n12", "n6 is in two sites (1 and 2)"),
        ("n1-n3,,n4", "site 2 has no node in 'n1-n3,,n4'"),
        ("n1+n1", "n1 given twice in 'n1,n1'"),
    ],
)
def test_bad_sites_say_why(text: str, error: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_sites(text)
    assert str(raised.value) == error


@pytest.mark.parametrize(
    ("text", "size"),
    [("512M", 512 * 1024**2), ("3G", DISK_SIZE), ("1.5g", 3 * 1024**3 // 2), ("1000", 1000)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_describe_writes_runs_of_three_or_more_as_ranges() -> None:
    assert describe(("n1", "n2", "n3", "n5", "n7", "n8", "n12")) == "n1-n3,n5,n7,n8,n12"
    assert parse_nodes(describe(N1_12)) == N1_12


def test_defaults_are_those_of_before() -> None:
    """n1 n2 n3, n1 and n2 sharing the disk; a flat shared list is one group; () is none."""
    assert plan() == Topology() == Topology(("n1", "n2", "n3"), (("n1", "n2"),), "ferry-")
    assert plan(["n1", "n2"], ("n1", "n2")).shared_groups == (("n1", "n2"),)
    assert plan(["n1", "n2"], ()).shared_groups == ()
    assert plan(["n1"]).shared_groups == ()
    assert plan(["n4", "n5", "n6"]).disks() == ["n4+n5", "n6"]
    assert Topology().shared == ("n1", "n2")


def test_two_sites_in_pairs_with_light_nodes() -> None:
    topo = plan(sites="n1-n6,n7-n12", pairs=True, light="n7-n12", disk_size="512M")
    assert topo.nodes == N1_12
    assert topo.sites == (N1_12[:6], N1_12[6:])
    assert topo.shared_groups == tuple(N1_12[k : k + 2] for k in range(0, 12, 2))
    assert topo.disks() == ["n1+n2", "n3+n4", "n5+n6", "n7+n8", "n9+n10", "n11+n12"]
    assert (topo.site_of("n6"), topo.site_of("n7"), topo.disk_group("n10")) == (1, 2, ("n9", "n10"))
    assert [topo.is_light(n) for n in ("n6", "n7", "n12")] == [False, True, True]
    assert topo.disk_size == 512 * 1024**2
    # the same from Python lists
    same = plan(sites=["n1-n6", N1_12[6:]], pairs=True, light=["n7-n9", "n10-n12"])
    assert same == plan(sites="n1-n6,n7-n12", pairs=True, light="n7-n12")


def test_pairs_stay_within_a_site_and_leave_an_odd_one_alone() -> None:
    assert pairs_in([("n1", "n2", "n3"), ("n4", "n5")]) == (("n1", "n2"), ("n4", "n5"))
    topo = plan(sites="n1-n3,n4-n5", pairs=True)
    assert topo.disks() == ["n1+n2", "n3", "n4+n5"]
    assert plan("n1-n5", pairs=True).disks() == ["n1+n2", "n3+n4", "n5"]  # no sites: one


def test_several_shared_groups_and_the_nodes_of_sites() -> None:
    topo = plan("n1-n5", [("n1", "n2"), "n3-n5"])
    assert topo.shared_groups == (("n1", "n2"), ("n3", "n4", "n5"))
    assert topo.disks() == ["n1+n2", "n3+n4+n5"]
    assert topo.disk_group("n4") == ("n3", "n4", "n5") and topo.shared == topo.nodes
    assert plan(sites=[("n2",), ("n1",)]).nodes == ("n2", "n1")
    by_site = plan(sites="n3-n5,n1-n2")  # by default the first site's first two share
    assert (by_site.nodes, by_site.shared_groups) == (
        ("n3", "n4", "n5", "n1", "n2"),
        (("n3", "n4"),),
    )
    assert plan("n1,n2", sites="n2,n1").nodes == ("n1", "n2")


@pytest.mark.parametrize(
    ("asked", "error"),
    [
        ({"sites": "n1-n6,n6-n12"}, "n6 is in two sites (1 and 2)"),
        ({"sites": ["n1-n3", "n3"]}, "n3 is in two sites (1 and 2)"),
        ({"nodes": "n1-n7", "sites": "n1-n6"}, "nodes in no site: n7 (every node must be in one)"),
        ({"nodes": "n1-n6", "sites": "n1-n3,n4-n7"}, "site nodes not in the testbed: n7"),
        (
            {"sites": "n1-n6,n7-n12", "shared": [("n6", "n7")]},
            "shared group n6,n7 spans sites: a disk is in one",
        ),
        (
            {"shared": [("n1", "n2"), ("n2", "n3")]},
            "n2 is in two shared groups (n1,n2 and n2,n3): a node sees one disk",
        ),
        ({"shared": "n1,n5"}, "shared nodes not in the testbed: n5"),
        ({"pairs": True, "shared": "n1,n2"}, "give either shared disk groups or pairs, not both"),
        ({"light": "n9"}, "light nodes not in the testbed: n9"),
        ({"disk_size": "64M"}, "disk size 64M is below btrfs's minimum (use 128M or more)"),
        ({"disk_size": "3X"}, "bad size '3X' (e.g. 512M, 3G)"),
    ],
)
def test_what_up_refuses_says_why_in_one_line(asked: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError) as raised:
        plan(**asked)
    assert str(raised.value) == error


def test_state_records_the_topology_and_reads_the_old_record(tmp_path: Path) -> None:
    topo = plan(sites="n1-n6,n7-n12", pairs=True, light="n7-n12", disk_size="512M")
    path = tmp_path / "state.json"
    State(topology=topo).save(path)
    loaded = State.load(path)
    assert loaded is not None and loaded.topology == topo
    old = '{"topology": {"nodes": ["n1", "n2", "n3"], "shared": ["n1", "n2"], "prefix": "ferry-"}}'
    path.write_text(old)
    loaded = State.load(path)
    assert loaded is not None and loaded.topology == Topology()
    path.write_text(old.replace('["n1", "n2"], "prefix"', '[], "prefix"'))
    loaded = State.load(path)
    assert loaded is not None and loaded.topology.shared_groups == ()


class UpCalled(Exception):
    """Raised where ``up`` would start making things."""


@pytest.fixture
def no_bringup(monkeypatch: pytest.MonkeyPatch) -> list[Topology]:
    """The topologies ``up`` planned; it stops before taking the state dir (its first act)."""
    planned: list[Topology] = []

    def recording_plan(*args: Any, **kwargs: Any) -> Topology:
        planned.append(topology.plan(*args, **kwargs))
        return planned[-1]

    def locked(self: Testbed, create: bool = False) -> Any:
        raise UpCalled

    monkeypatch.delenv("FERRY_TESTBED_PREFIX", raising=False)
    monkeypatch.setattr(cluster, "plan", recording_plan)
    monkeypatch.setattr(Testbed, "_locked", locked)
    return planned


def test_cli_up_options_reach_the_topology(no_bringup: list[Topology]) -> None:
    argv = ["up", "--sites", "n1-n6,n7-n12", "--pairs", "--light", "n7-n12", "--disk-size", "512M"]
    with pytest.raises(UpCalled):
        cli.main(argv)
    assert no_bringup == [plan(sites="n1-n6,n7-n12", pairs=True, light="n7-n12", disk_size="512M")]
    with pytest.raises(UpCalled):
        cli.main(["up", "--nodes", "n1-n4", "--shared", "n1,n2", "--shared", "n3-n4"])
    assert no_bringup[-1].shared_groups == (("n1", "n2"), ("n3", "n4"))
    with pytest.raises(UpCalled):
        cli.main(["up", "--shared", "none"])
    assert no_bringup[-1] == plan(shared=())
    with pytest.raises(UpCalled):
        cli.main(["up"])
    assert no_bringup[-1] == Topology()


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["--nodes", "n1-n7", "--sites", "n1-n6"],
            "nodes in no site: n7 (every node must be in one)",
        ),
        (["--shared", "n1,n2", "--pairs"], "give either shared disk groups or pairs, not both"),
        (["--shared", "none", "--shared", "n1,n2"], "--shared none excludes other --shared groups"),
    ],
)
def test_cli_refuses_in_one_line(
    no_bringup: list[Topology], capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    assert cli.main(["up", *argv]) == 1
    assert capsys.readouterr().err == f"testbed: {error}\n"
    assert no_bringup == []


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--nodes", "n3-n1"], "argument --nodes: range 'n3-n1' runs backwards"),
        (["--sites", "n1-n6,n6-n12"], "argument --sites: n6 is in two sites (1 and 2)"),
        (["--light", "n7,x"], "argument --light: node names are n1 .. n200, not 'x'"),
        (["--disk-size", "lots"], "argument --disk-size: bad size 'lots' (e.g. 512M, 3G)"),
    ],
)
def test_cli_option_errors_name_the_option(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["up", *argv])
    assert capsys.readouterr().err.splitlines()[-1] == f"python -m tests.testbed up: error: {error}"
