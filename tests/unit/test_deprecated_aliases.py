"""Deprecated spellings (SPEC 2.1, 2.5) load with a located notice and give the canonical value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.ferry_cli import Result, ferry

# alias line, canonical keyword, value evaluated for n1
ALIASES = [
    ("cluster_type = flex", "topology", "flex"),
    ("flex_max_nodes = 2", "flex_max", "2"),
    ("flex_min_nodes = 2", "flex_min", "2"),
]


def write(tmp_path: Path, alias_line: str) -> Path:
    text = f"[DEFAULT]\nnodes = n1 n2 n3\n{alias_line}\n[fs#0]\ndev = /dev/sdb\nmnt = /srv/a\n"
    (tmp_path / "svc.conf").write_text(text)
    return tmp_path


def on_svc(directory: Path, *args: str) -> Result:
    return ferry("--config-dir", str(directory), "svc", *args)


@pytest.mark.parametrize(("alias_line", "canonical", "value"), ALIASES)
def test_alias_loads_with_a_notice(
    tmp_path: Path, alias_line: str, canonical: str, value: str
) -> None:
    alias = alias_line.split()[0]
    directory = write(tmp_path, alias_line)
    result = on_svc(directory, "validate", "config", "-o", "json")
    assert result.code == 0, result.out
    issues = json.loads(result.out)["issues"]
    assert all(i["severity"] == "notice" for i in issues), issues
    deprecated = [i for i in issues if "deprecated" in str(i["message"])]
    assert len(deprecated) == 1, issues
    assert deprecated[0]["keyword"] == alias
    assert deprecated[0]["line"] == 3
    assert deprecated[0]["hint"] == f"write {canonical!r}"
    text = on_svc(directory, "validate", "config")
    assert f"notice: {directory}/svc.conf:3 [DEFAULT] {alias}: " in text.out


@pytest.mark.parametrize(("alias_line", "canonical", "value"), ALIASES)
def test_alias_gives_the_canonical_value(
    tmp_path: Path, alias_line: str, canonical: str, value: str
) -> None:
    directory = write(tmp_path, alias_line)
    got = on_svc(directory, "get", "--kw", f"DEFAULT.{canonical}", "--eval", "--impersonate", "n1")
    assert (got.code, got.out) == (0, f"{value}\n")
    evaluated = on_svc(directory, "print", "config", "--eval", "--impersonate", "n1", "-o", "json")
    default = json.loads(evaluated.out)["DEFAULT"]
    assert str(default[canonical]) == value
    assert default["topology"] == "flex"  # cluster_type says so; a flex_* alias infers it
    assert alias_line.split()[0] not in default


def test_cluster_type_is_a_candidate_checked_keyword(tmp_path: Path) -> None:
    """The alias is the same keyword: its value is checked against topology's candidates."""
    directory = write(tmp_path, "cluster_type = ring")
    result = on_svc(directory, "validate", "config")
    assert result.code == 2
    assert f"{directory}/svc.conf:3 [DEFAULT] cluster_type: 'ring' is not one of" in result.out


def test_cluster_type_failover_is_not_flex(tmp_path: Path) -> None:
    directory = write(tmp_path, "cluster_type = failover")
    got = on_svc(directory, "get", "--kw", "DEFAULT.topology", "--eval")
    assert (got.code, got.out) == (0, "failover\n")


def test_flex_max_nodes_below_flex_min_is_raised(tmp_path: Path) -> None:
    """SPEC 2.5: flex_max is clamped to at least flex_min, whatever its spelling."""
    directory = write(tmp_path, "flex_min = 3\nflex_max_nodes = 1")
    got = on_svc(directory, "get", "--kw", "DEFAULT.flex_max", "--eval")
    assert (got.code, got.out) == (0, "3\n")


def test_alias_and_canonical_together_is_an_error(tmp_path: Path) -> None:
    directory = write(tmp_path, "flex_max = 2\nflex_max_nodes = 3")
    result = on_svc(directory, "validate", "config")
    assert result.code == 2
    assert f"{directory}/svc.conf:4 [DEFAULT] flex_max_nodes: set twice: also at line 3" in (
        result.out
    )
