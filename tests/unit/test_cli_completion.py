"""Shell completion: ferry run as the shell runs it (argcomplete's environment), and the
script ``ferry completion bash|zsh`` prints, sourced in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli.completion import literal_hashes
from daemon.restore.points import Entry, Index
from tests.unit.ferry_cli import ferry

ROOT = Path(__file__).resolve().parents[2]
SVC1 = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[fs#0]
type = flag

[fs#1]
type = flag

[sync#1]
type = rsync
src = /srv/a
"""


def complete(line: str, *, env: dict[str, str] | None = None) -> list[str]:
    """What ferry offers for the line, the cursor at its end (as bash asks it)."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"ferry-complete-{os.getpid()}"
    shell_env = {
        **os.environ,
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": "bash",
        "_ARGCOMPLETE_SUPPRESS_SPACE": "1",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        "FERRY_NODENAME": "n1",
        **(env or {}),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "daemon.cli.main"],
            env=shell_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr
        text = out.read_text()
    finally:
        out.unlink(missing_ok=True)
    return text.split("\v") if text else []


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "svc1.conf").write_text(SVC1)
    (etc / "web.conf").write_text("[DEFAULT]\nnodes = n1\n")
    (etc / "node.conf").write_text("[node]\nname = n1\n")
    return etc


def test_an_action_completes() -> None:
    assert complete("ferry svc1 sy") == ["sync"]
    assert complete("ferry svc1 sync f") == ["full"]
    assert "stop" in complete("ferry svc1 drill ")
    assert "bubble-up" not in complete("ferry svc1 drill ")  # internal: run by Ferry only


def test_service_names_from_the_config_dir(config_dir: Path) -> None:
    offered = complete(f"ferry --config-dir {config_dir} ")
    assert {"svc1", "web", "doc", "daemon", "cluster"} <= set(offered)
    assert "node" not in offered  # node.conf is not a service
    assert complete("ferry s", env={"FERRY_CONFIG_DIR": str(config_dir)}) == ["svc1"]
    assert complete("ferry svc1,", env={"FERRY_CONFIG_DIR": str(config_dir)}) == ["svc1,web"]


def test_rids_and_nodes_of_the_service(config_dir: Path) -> None:
    env = {"FERRY_CONFIG_DIR": str(config_dir)}
    assert complete("ferry svc1 start --rid ", env=env) == ["fs#0", "fs#1", "sync#1"]
    assert complete("ferry svc1 stop --rid fs#", env=env) == ["fs#0", "fs#1"]
    assert complete("ferry svc1 stop --rid fs#0,", env=env) == ["fs#0,fs#1", "fs#0,sync#1"]
    assert complete("ferry svc1 switch --to ", env=env) == ["n1", "n2", "n3"]
    assert complete("ferry svc1 sync all --target n", env=env) == ["n1", "n2", "n3"]


def test_restore_points_from_the_var_dir(config_dir: Path, tmp_path: Path) -> None:
    var = tmp_path / "var"
    Index(var, "svc1", "sync#1").write(
        [
            Entry(name, "sync#1", "snapshot", name, 0.0)
            for name in ("2024-05-01T10:00:00Z", "2024-05-02T10:00:00Z")
        ]
    )
    line = f"ferry --config-dir {config_dir} --var-dir {var} svc1 "
    newest_first = ["2024-05-02T10:00:00Z", "2024-05-01T10:00:00Z"]
    assert complete(line + "takeover --at ") == newest_first
    assert complete(line + "restorepoint delete ") == newest_first
    assert complete(line + "restorepoint delete 2024-05-01") == ["2024-05-01T10:00:00Z"]


def test_what_cannot_be_read_completes_nothing(tmp_path: Path) -> None:
    (tmp_path / "svc1.conf").write_bytes(b"\xff\xfe[DEFAULT\nnodes = \x00")
    env = {"FERRY_CONFIG_DIR": str(tmp_path), "FERRY_VAR_DIR": str(tmp_path / "none")}
    assert complete("ferry svc1 start --rid ", env=env) == []
    assert complete("ferry svc1 switch --to ", env=env) == []
    assert complete("ferry svc1 takeover --at ", env=env) == []
    assert complete("ferry nosuch stop --rid ", env=env) == []
    assert complete("ferry --config-dir /nonexistent/ferry s") == []


def test_options_of_the_action_only() -> None:
    offered = complete("ferry svc1 sync all --")
    assert "--target" in offered and "--rid" in offered
    assert "--kw" not in offered and "--eval" not in offered


def test_literal_hashes() -> None:
    assert literal_hashes("ferry svc1 start --rid fs#0,fs#", 31) == (
        "ferry svc1 start --rid fs\\#0,fs\\#",
        33,
    )
    assert literal_hashes("ferry 'a#b' #c", 14) == ("ferry 'a#b' #c", 14)


def test_completion_scripts() -> None:
    bash = ferry("completion", "bash")
    assert bash.code == 0 and "complete " in bash.out and "_python_argcomplete" in bash.out
    zsh = ferry("completion", "zsh")
    assert zsh.code == 0 and "compdef" in zsh.out
    assert ferry("completion", "fish").code == 2


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_through_the_printed_script(config_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "ferry.bash"
    script.write_text(ferry("completion", "bash").out)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    wrapper = tmp_path / "bin" / "ferry"  # 'ferry' on PATH, as the package installs it
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\ncd {ROOT} && exec {sys.executable} -m daemon.cli.main "$@"\n')
    wrapper.chmod(0o755)
    ask = (
        f"source {script}\n"
        'COMP_LINE="ferry svc1 sy"; COMP_POINT=${#COMP_LINE}\n'
        "COMP_WORDS=(ferry svc1 sy); COMP_CWORD=2\n"
        "_python_argcomplete ferry sy svc1\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
    env["FERRY_CONFIG_DIR"] = str(config_dir)
    done = subprocess.run(["bash", "-c", ask], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["sync"], done.stderr


def test_a_run_imports_neither_argcomplete_nor_the_handlers() -> None:
    code = (
        "import sys; from daemon.cli.parser import parse; "
        "parse(['svc1', 'sync', 'all', '--wait']); "
        "print(sorted(m for m in ('argcomplete', 'daemon.cli.sync_cmds', "
        "'daemon.service.instance') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
