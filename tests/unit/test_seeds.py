"""The three seed configurations load verbatim and report exactly their real problems."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.ferry_cli import ferry

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "conf.d" / "seeds"
# The user's seed document lives in shared/, beside the clone (CI copies it there too).
SEED_TEXT = ROOT.parent / "shared" / "seed" / "sync-resources.txt"


@pytest.mark.parametrize("case", ["uc1-failover", "uc2-flex", "uc3-flex-drp"])
def test_seed_files_are_verbatim(case: str) -> None:
    if not SEED_TEXT.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SEED_TEXT} is missing: CI must copy shared/ beside the clone")
        pytest.skip(f"the user's seed document {SEED_TEXT} is not beside this checkout")
    text = (SEEDS / case / "svc1.conf").read_text().rstrip("\n")
    assert text in SEED_TEXT.read_text()


def validate(directory: Path) -> tuple[int, list[dict[str, object]]]:
    result = ferry("--config-dir", str(directory), "svc1", "validate", "config", "-o", "json")
    return result.code, json.loads(result.out)["issues"]


@pytest.mark.parametrize("case", ["uc1-failover", "uc3-flex-drp"])
def test_failover_seeds_name_n3_and_dev(case: str) -> None:
    code, issues = validate(SEEDS / case)
    errors = [i for i in issues if i["severity"] == "error"]
    assert code == 2
    assert [(e["section"], e["keyword"], e["node"]) for e in errors] == [
        ("fs#0", "dev", "n3"),
        ("fs#1", "dev", "n3"),
    ]
    for error in errors:
        assert "no value for node n3" in str(error["message"])
        assert "dev@nodes" in str(error["hint"])
        lines = (SEEDS / case / "svc1.conf").read_text().splitlines()
        assert lines[int(str(error["line"])) - 1].startswith("dev@nodes")


def test_flex_seed_passes_with_topology_notice() -> None:
    code, issues = validate(SEEDS / "uc2-flex")
    assert code == 0
    assert all(i["severity"] == "notice" for i in issues)
    notices = " ".join(str(i["message"]) for i in issues)
    assert "topology inferred as flex" in notices
    assert "deprecated" in notices  # flex_min_nodes


def test_text_output_is_one_line_per_problem() -> None:
    result = ferry("--config-dir", str(SEEDS / "uc1-failover"), "svc1", "validate", "config")
    lines = result.out.strip().splitlines()
    assert result.code == 2
    assert len(lines) == 2
    assert lines[0].endswith(
        "svc1.conf:26 [fs#0] dev: no value for node n3 "
        "(only dev@nodes is set; add dev@n3 or dev@drpnodes)"
    )


@pytest.mark.parametrize("case", ["uc1-failover", "uc3-flex-drp"])
def test_runnable_variants_pass(case: str) -> None:
    code, issues = validate(ROOT / "conf.d" / case)
    assert code == 0, issues
    assert not [i for i in issues if i["severity"] == "error"]


def test_runnable_variants_only_add_commented_lines() -> None:
    for case in ("uc1-failover", "uc3-flex-drp"):
        seed = (SEEDS / case / "svc1.conf").read_text().splitlines()
        variant = (ROOT / "conf.d" / case / "svc1.conf").read_text().splitlines()
        added = list(variant)
        for line in seed:
            added.remove(line)
        real = [line for line in added if line.strip() and not line.startswith("#")]
        for line in real:
            above = variant[variant.index(line) - 1]
            assert above.startswith("#"), f"{case}: added line {line!r} has no comment above"


def test_get_eval_impersonate_on_flex_seed() -> None:
    result = ferry(
        "--config-dir",
        str(SEEDS / "uc2-flex"),
        "svc1",
        "get",
        "--kw",
        "ip#0.ipname",
        "--eval",
        "--impersonate",
        "n2",
    )
    assert (result.code, result.out) == (0, "10.0.3.4\n")


@pytest.mark.parametrize(("node", "ip"), [("n1", "10.0.3.3"), ("n3", "10.0.3.5")])
def test_print_config_eval_impersonate(node: str, ip: str) -> None:
    result = ferry(
        "--config-dir",
        str(SEEDS / "uc2-flex"),
        "svc1",
        "print",
        "config",
        "--eval",
        "--impersonate",
        node,
        "-o",
        "json",
    )
    data = json.loads(result.out)
    assert data["ip#0"]["ipname"] == ip
    assert data["DEFAULT"]["topology"] == "flex"
    assert data["DEFAULT"]["flex_min"] == 3
    assert data["sync#0"]["target"] == ["drpnodes"]


def test_get_raw_value_keeps_scope() -> None:
    result = ferry(
        "--config-dir", str(SEEDS / "uc1-failover"), "svc1", "get", "--kw", "fs#0.dev@nodes"
    )
    assert (result.code, result.out) == (0, "/dev/mapper/svc1.d0\n")


def test_uc3_notices_a_flex_primary_that_never_runs(tmp_path: Path) -> None:
    """Use case 3 as written: flex_target defaults to 1, so with the nodes-order placement
    only n1 runs, and the flex primary n2 (the only sender) never does."""
    text = (ROOT / "conf.d" / "uc3-flex-drp" / "svc1.conf").read_text()
    (tmp_path / "svc1.conf").write_text(text)
    code, issues = validate(tmp_path)
    assert code == 0
    notice = [i for i in issues if i["keyword"] == "flex_primary"]
    assert len(notice) == 1 and notice[0]["severity"] == "notice"
    assert "flex_primary n2 is not among the first flex_target (1) nodes (n1)" in str(
        notice[0]["message"]
    )
    assert notice[0]["hint"] == "set flex_target = 2, or flex_primary = n1"
    (tmp_path / "svc1.conf").write_text(
        text.replace("flex_primary = n2\n", "flex_primary = n2\nflex_target = 2\n")
    )
    _, issues = validate(tmp_path)
    assert not [i for i in issues if i["keyword"] == "flex_primary"]
