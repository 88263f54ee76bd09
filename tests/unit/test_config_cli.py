"""Config commands around the edges: raw print config, where configs are found, ferry doc."""

from __future__ import annotations

import json
import uuid
from itertools import pairwise
from pathlib import Path

import pytest

from tests.unit.ferry_cli import ferry

# As a user writes it: comments, blank lines, a deprecated spelling, scoped keys, references
# and a multi-line value. Raw print must show all of it untouched, nothing evaluated.
WRITTEN = """# svc1: the web front
[DEFAULT]
nodes = n1 n2
drpnodes = n3
; old spelling, kept on purpose
flex_min_nodes = 2

[env]
port = 8080

[fs#0]
dev@nodes = /dev/mapper/svc1.d0
dev@n3 = /dev/sdb
mnt = /srv/{svcname}

[app#web]
start = /bin/run --port {env.port}
  --verbose
"""


@pytest.fixture
def svc_dir(tmp_path: Path) -> Path:
    (tmp_path / "svc1.conf").write_text(WRITTEN)
    return tmp_path


def test_raw_print_config_is_the_file_as_written(svc_dir: Path) -> None:
    result = ferry("--config-dir", str(svc_dir), "svc1", "print", "config")
    assert (result.code, result.err) == (0, "")
    assert result.out == WRITTEN
    assert (svc_dir / "svc1.conf").read_text() == WRITTEN


def test_raw_print_config_json_keeps_sections_keys_and_values_as_written(svc_dir: Path) -> None:
    result = ferry("--config-dir", str(svc_dir), "svc1", "print", "config", "-o", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert list(data) == ["DEFAULT", "env", "fs#0", "app#web"]
    assert data["DEFAULT"] == {"nodes": "n1 n2", "drpnodes": "n3", "flex_min_nodes": "2"}
    assert data["fs#0"] == {
        "dev@nodes": "/dev/mapper/svc1.d0",
        "dev@n3": "/dev/sdb",
        "mnt": "/srv/{svcname}",
    }
    assert data["app#web"]["start"].split() == ["/bin/run", "--port", "{env.port}", "--verbose"]


def test_raw_and_evaluated_print_differ_where_they_should(svc_dir: Path) -> None:
    """The evaluated view resolves scopes, references and aliases; the raw one does not."""
    raw = ferry("--config-dir", str(svc_dir), "svc1", "print", "config", "-o", "json")
    as_n3 = ("--eval", "--impersonate", "n3", "-o", "json")
    evaluated = ferry("--config-dir", str(svc_dir), "svc1", "print", "config", *as_n3)
    assert evaluated.code == 0, evaluated.err
    data = json.loads(evaluated.out)
    assert data["fs#0"]["dev"] == "/dev/sdb"
    assert data["fs#0"]["mnt"] == "/srv/svc1"
    assert data["DEFAULT"]["flex_min"] == 2
    assert json.loads(raw.out)["fs#0"]["mnt"] == "/srv/{svcname}"


def test_raw_print_shows_a_config_with_errors(tmp_path: Path) -> None:
    """Looking is not acting: the raw view of a broken config is what helps fix it."""
    text = "[DEFAULT]\nnodes = n1\n[fs#0]\ndev = /dev/sdb\nmnt = /srv\nmnt_opts = ro\n"
    (tmp_path / "svc.conf").write_text(text)
    assert ferry("--config-dir", str(tmp_path), "svc", "validate", "config").code == 2
    result = ferry("--config-dir", str(tmp_path), "svc", "print", "config")
    assert (result.code, result.out) == (0, text)


# ------------------------------------------------------------------ where configs live


@pytest.fixture
def no_config_dir_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """FERRY_CONFIG_DIR unset, and a service name that cannot exist in /etc/ferry."""
    monkeypatch.delenv("FERRY_CONFIG_DIR", raising=False)
    return f"ferry-unit-{uuid.uuid4().hex}"


@pytest.mark.parametrize(
    "action",
    [
        ("validate", "config"),
        ("print", "config"),
        ("print", "config", "--eval"),
        ("get", "--kw", "DEFAULT.nodes"),
    ],
)
def test_default_config_dir_is_etc_ferry(no_config_dir_env: str, action: tuple[str, ...]) -> None:
    name = no_config_dir_env
    existed = Path("/etc/ferry").exists()
    result = ferry(name, *action)
    assert result.code == 2
    lines = (result.out + result.err).splitlines()
    assert lines == [f"/etc/ferry/{name}.conf: no such file"]
    assert Path("/etc/ferry").exists() == existed
    assert not Path(f"/etc/ferry/{name}.conf").exists()


def test_set_on_a_missing_service_in_etc_ferry_writes_nothing(no_config_dir_env: str) -> None:
    """set edits an existing service (create makes one): it fails, naming the default path."""
    name = no_config_dir_env
    existed = Path("/etc/ferry").exists()
    result = ferry(name, "set", "--kw", "DEFAULT.nodes=n1", "--local")
    assert result.code == 1
    assert f"/etc/ferry/{name}.conf does not exist" in result.err
    assert Path("/etc/ferry").exists() == existed
    assert not Path(f"/etc/ferry/{name}.conf").exists()


def test_ferry_config_dir_selects_the_directory(
    svc_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_CONFIG_DIR", str(svc_dir))
    assert ferry("svc1", "validate", "config").code == 0
    got = ferry("svc1", "get", "--kw", "DEFAULT.drpnodes")
    assert (got.code, got.out) == (0, "n3\n")
    assert ferry("svc1", "print", "config").out == WRITTEN
    assert ferry("svc1", "set", "--kw", "DEFAULT.orchestrate=ha", "--local").code == 0
    assert "orchestrate = ha\n" in (svc_dir / "svc1.conf").read_text()
    missing = ferry("nosuch", "validate", "config")
    assert (missing.code, missing.out) == (2, f"{svc_dir}/nosuch.conf: no such file\n")


def test_config_dir_option_wins_over_the_environment(
    svc_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path_factory.mktemp("other")
    (other / "svc1.conf").write_text("[DEFAULT]\nnodes = n7\n")
    monkeypatch.setenv("FERRY_CONFIG_DIR", str(svc_dir))
    assert ferry("svc1", "get", "--kw", "DEFAULT.nodes").out == "n1 n2\n"
    got = ferry("--config-dir", str(other), "svc1", "get", "--kw", "DEFAULT.nodes")
    assert (got.code, got.out) == (0, "n7\n")


# ------------------------------------------------------------------ ferry doc


DRIVERS = (
    "DEFAULT",
    "fs",
    "ip.host",
    "ip.netns",
    "container.docker",
    "app.forking",
    "sync.rsync",
    "sync.btrfs",
    "sync.docker",
)


def test_doc_without_keyword_lists_drivers_and_their_keywords() -> None:
    """Each driver on a 'label: help' line, its keywords indented on the next one."""
    result = ferry("doc")
    assert (result.code, result.err) == (0, "")
    lines = result.out.splitlines()
    by_driver = {
        head.split(":")[0]: below.split()
        for head, below in pairwise(lines)
        if head[:1].strip() and below.startswith("    ")
    }
    assert set(by_driver) == set(DRIVERS)
    assert {"dev", "mnt", "mnt_opt", "standby"} <= set(by_driver["fs"])
    assert {"nodes", "drpnodes", "encapnodes", "topology", "flex_min", "flex_max"} <= set(
        by_driver["DEFAULT"]
    )
    assert {"src", "dst", "target", "schedule"} <= set(by_driver["sync.btrfs"])
    assert {"netns", "ipname", "gateway"} <= set(by_driver["ip.netns"])
    assert "flex_min_nodes" not in by_driver["DEFAULT"]  # aliases are not keywords of their own
    assert "ferry doc <keyword>" in result.out
