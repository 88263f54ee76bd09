"""set/unset edit one entry in place, keep comments and order, and refuse invalid values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.ferry_cli import ferry

ORIGINAL = """# Service one, see the runbook
[DEFAULT]
nodes = n1 n2
; the DR site
drpnodes = n3

[fs#0]
# shared disk
dev = /dev/sdb
mnt = /srv/a
start_cmd_is_not_here = no
"""


@pytest.fixture
def svc_dir(tmp_path: Path) -> Path:
    text = ORIGINAL.replace("start_cmd_is_not_here = no\n", "")
    (tmp_path / "svc1.conf").write_text(text)
    os.chmod(tmp_path / "svc1.conf", 0o640)
    return tmp_path


def run(directory: Path, *args: str) -> tuple[int, str, str]:
    result = ferry("--config-dir", str(directory), "svc1", *args)
    return result.code, result.out, result.err


def test_set_existing_keeps_everything_else(svc_dir: Path) -> None:
    before = (svc_dir / "svc1.conf").read_text()
    code, _, err = run(svc_dir, "set", "--kw", "fs#0.mnt=/srv/b")
    assert code == 0, err
    after = (svc_dir / "svc1.conf").read_text()
    assert after == before.replace("mnt = /srv/a", "mnt = /srv/b")
    assert oct((svc_dir / "svc1.conf").stat().st_mode & 0o777) == "0o640"


def test_set_new_keyword_goes_at_end_of_its_section(svc_dir: Path) -> None:
    code, _, err = run(svc_dir, "set", "--kw", "DEFAULT.orchestrate=ha")
    assert code == 0, err
    lines = (svc_dir / "svc1.conf").read_text().splitlines()
    assert lines[lines.index("drpnodes = n3") + 1] == "orchestrate = ha"
    assert lines[0] == "# Service one, see the runbook"


def test_set_scoped_and_new_section_then_round_trip(svc_dir: Path) -> None:
    before = (svc_dir / "svc1.conf").read_text()
    assert run(svc_dir, "set", "--kw", "fs#0.mnt@n3=/srv/drp")[0] == 0
    assert run(svc_dir, "set", "--kw", "app#web.start=/bin/true")[0] == 0
    code, out, _ = run(svc_dir, "get", "--kw", "fs#0.mnt", "--eval", "--impersonate", "n3")
    assert (code, out) == (0, "/srv/drp\n")
    assert run(svc_dir, "unset", "--kw", "fs#0.mnt@n3")[0] == 0
    assert run(svc_dir, "unset", "--kw", "app#web.start")[0] == 0
    after = (svc_dir / "svc1.conf").read_text()
    assert after == before + "\n[app#web]\n"


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ("DEFAULT.orchestrate=always", "'always' is not one of"),
        ("fs#0.mnt_opts=defaults", "did you mean 'mnt_opt'"),
        ("DEFAULT.topology@n1=flex", "cannot be scoped"),
        ("fs#0.standby=perhaps", "not a boolean"),
        ("volume#0.size=1g", "unknown resource group"),
        ("fs#0.mnt={fs#0.dev}{mnt}", "reference loop"),
        ("DEFAULT.drpnodes=n2", "in both nodes and drpnodes"),
    ],
)
def test_invalid_set_writes_nothing(svc_dir: Path, kw: str, words: str) -> None:
    before = (svc_dir / "svc1.conf").read_bytes()
    code, out, err = run(svc_dir, "set", "--kw", kw)
    assert code == 2
    assert words in out + err
    assert (svc_dir / "svc1.conf").read_bytes() == before
    assert sorted(p.name for p in svc_dir.iterdir()) == ["svc1.conf"]  # no temp file left


def test_unset_required_is_refused(svc_dir: Path) -> None:
    before = (svc_dir / "svc1.conf").read_bytes()
    code, out, err = run(svc_dir, "unset", "--kw", "fs#0.mnt")
    assert code == 2
    assert "mnt: required, and not set" in out + err
    assert (svc_dir / "svc1.conf").read_bytes() == before


def test_unset_missing_keyword_fails(svc_dir: Path) -> None:
    code, _, err = run(svc_dir, "unset", "--kw", "fs#0.mnt_opt")
    assert code == 1
    assert "not set" in err


def test_set_multi_line_value_round_trips(svc_dir: Path) -> None:
    assert run(svc_dir, "set", "--kw", "DEFAULT.comment=line one\nline two")[0] == 0
    code, out, _ = run(svc_dir, "get", "--kw", "DEFAULT.comment")
    assert (code, out) == (0, "line one\nline two\n")


@pytest.mark.parametrize(
    "args",
    [
        ("set",),
        ("set", "--kw", "fs#0.mnt"),
        ("unset", "--kw", "fs#0.mnt=/x"),
        ("get", "--kw", "a", "--kw", "b"),
        ("get", "--kw", "fs#0.mnt", "--impersonate", "n2"),
        ("validate", "config", "--kw", "x"),
        ("frobnicate",),
    ],
)
def test_usage_errors_exit_2(svc_dir: Path, args: tuple[str, ...]) -> None:
    before = (svc_dir / "svc1.conf").read_bytes()
    code, _, err = run(svc_dir, *args)
    assert code == 2
    assert err.startswith("ferry: usage:")
    assert (svc_dir / "svc1.conf").read_bytes() == before
