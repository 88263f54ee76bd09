"""The ferry CLI as a client of a real ferryd: actions with --wait, tokens, daemon status/stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import APP_SERVICE, write_dirs
from tests.api.ferryd_proc import Ferryd
from tests.unit.ferry_cli import ferry


@pytest.fixture
def running(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ferryd]:
    config_dir, var_dir = write_dirs(short_tmp, {"svc1": APP_SERVICE})
    monkeypatch.setenv("FERRY_NODENAME", "n1")
    monkeypatch.setenv("FERRY_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("FERRY_VAR_DIR", str(var_dir))
    daemon = Ferryd(config_dir, var_dir).start()
    try:
        yield daemon
    finally:
        daemon.ensure_stopped()


def test_start_and_stop_through_the_daemon(running: Ferryd) -> None:
    result = ferry("svc1", "start", "--wait", "--time", "30")
    assert result.code == 0, result.err
    assert "svc1: start done" in result.out
    status = json.loads(ferry("svc1", "print", "status", "-o", "json").out)
    assert status["avail"] == "up"
    submitted = ferry("svc1", "stop", "-o", "json")
    assert submitted.code == 0
    action_id = json.loads(submitted.out)["action_id"]
    assert action_id
    result = ferry("svc1", "stop", "--wait", "-o", "json")
    assert result.code == 0
    assert json.loads(result.out)["state"] == "succeeded"


def test_unknown_resource_is_refused_by_the_daemon(running: Ferryd) -> None:
    result = ferry("svc1", "start", "--rid", "app#nope", "--wait")
    assert result.code == 1
    assert "app#nope" in result.err


def test_token_create_and_daemon_status_stop(running: Ferryd) -> None:
    token = ferry("token", "create", "--role", "guest", "--name", "viewer")
    assert token.code == 0 and token.out.strip().startswith("fy_")
    status = ferry("daemon", "status", "-o", "json")
    assert status.code == 0
    assert json.loads(status.out)["node"]["name"] == "n1"
    stopped = ferry("daemon", "stop")
    assert stopped.code == 0 and "stopped" in stopped.out
    again = ferry("daemon", "status")
    assert again.code == 1 and "not running" in again.err


def test_create_and_set_go_through_the_daemon(running: Ferryd, tmp_path: Path) -> None:
    source = tmp_path / "new.conf"
    source.write_text(APP_SERVICE)
    created = ferry("svc2", "create", "--config", str(source))
    assert created.code == 0, created.err
    installed = running.config_dir / "svc2.conf"
    assert installed.read_text() == APP_SERVICE
    again = ferry("svc2", "create", "--config", str(source))
    assert again.code == 1 and "exists already" in again.err
    changed = ferry("svc2", "set", "--kw", "app#web.check=test -e {var}/web")
    assert changed.code == 0, changed.err
    assert "check = test -e {var}/web" in installed.read_text()
    broken = tmp_path / "broken.conf"
    broken.write_text("[DEFAULT]\nnodes = n1\norchestrate = always\n")
    refused = ferry("svc3", "create", "--config", str(broken))
    assert refused.code == 2 and "'always' is not one of" in refused.err
    assert not (running.config_dir / "svc3.conf").exists()
