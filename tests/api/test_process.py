"""The ferryd process: readiness, SIGTERM with an action running, kill -9 and restart,
zero-config start, refusals at start (the systemd unit: tests/unit/test_systemd_units.py)."""

from __future__ import annotations

import json
import signal
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.api.auth import create_token
from daemon.cli import client
from tests.api.conftest import APP_SERVICE, SLOW_SERVICE, write_dirs
from tests.api.ferryd_proc import Ferryd

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ferryd_proc(short_tmp: Path) -> Iterator[Ferryd]:
    config_dir, var_dir = write_dirs(short_tmp, {"svc1": APP_SERVICE, "slow": SLOW_SERVICE})
    proc = Ferryd(config_dir, var_dir)
    try:
        yield proc
    finally:
        proc.ensure_stopped()


def test_sigterm_lets_the_running_action_finish_and_exits_0(ferryd_proc: Ferryd) -> None:
    ferryd_proc.start()
    accepted = client.submit_action(ferryd_proc.local, "slow", "start")
    time.sleep(0.3)
    assert client.get_action(ferryd_proc.local, accepted["action_id"])["state"] == "running"
    started = time.monotonic()
    ferryd_proc.signal(signal.SIGTERM)
    assert ferryd_proc.wait(10) == 0
    assert time.monotonic() - started < 10
    assert not (ferryd_proc.var_dir / "ferryd.sock").exists()
    record = json.loads(
        (ferryd_proc.var_dir / "actions" / f"{accepted['action_id']}.json").read_text()
    )
    assert record["state"] == "succeeded"  # 3 s of work < the 30 s stop_grace
    log = ferryd_proc.log()
    assert "Traceback" not in log
    assert all(json.loads(line)["level"] for line in log.splitlines())


def test_sigterm_cancels_an_action_that_outlives_stop_grace(ferryd_proc: Ferryd) -> None:
    (ferryd_proc.config_dir / "node.conf").write_text("[node]\nstop_grace = 1s\n")
    (ferryd_proc.config_dir / "slow.conf").write_text(
        SLOW_SERVICE.replace("delay = 3", "delay = 60")
    )
    ferryd_proc.start()
    accepted = client.submit_action(ferryd_proc.local, "slow", "start")
    time.sleep(0.3)
    started = time.monotonic()
    ferryd_proc.signal(signal.SIGTERM)
    assert ferryd_proc.wait(10) == 0
    assert time.monotonic() - started < 5
    ferryd_proc.start()
    record = client.get_action(ferryd_proc.local, accepted["action_id"])
    assert record["state"] == "failed"
    assert record["error"] == "cancelled while it ran: ferryd is stopping"
    assert client.get_status(ferryd_proc.local, "slow", refresh=True)["avail"] == "down"


def test_kill_9_then_restart_keeps_tokens_and_records(ferryd_proc: Ferryd) -> None:
    ferryd_proc.start()
    token = create_token(ferryd_proc.var_dir, "operator", "ops")
    remote = ferryd_proc.tcp(token)
    done = client.submit_action(remote, "svc1", "start", wait=True, timeout=10)
    assert done["state"] == "succeeded"
    slow = client.submit_action(remote, "slow", "start")
    ferryd_proc.signal(signal.SIGKILL)
    ferryd_proc.wait(10)
    ferryd_proc.start()  # the stale socket and lock are no obstacle
    remote = ferryd_proc.tcp(token)
    again = client.get_action(remote, done["id"])
    assert again["state"] == "succeeded" and again["log"] == done["log"]
    interrupted = client.get_action(remote, slow["action_id"])
    assert interrupted["state"] == "failed" and "interrupted" in interrupted["error"]
    assert client.get_status(remote, "svc1")["avail"] == "up"


def test_zero_config_start_with_sd_notify(short_tmp: Path) -> None:
    config_dir, var_dir = short_tmp / "etc", short_tmp / "var"  # neither exists yet
    notify_path = short_tmp / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(15)
        proc = Ferryd(config_dir, var_dir, env={"NOTIFY_SOCKET": str(notify_path)})
        try:
            proc.start(wait=False)
            assert notify.recv(1024).startswith(b"READY=1")
            proc.wait_ready()
            node = client.get_node(proc.local)
            assert (node["name"], node["cluster"], node["tls"]) == ("n1", "default", True)
            assert f"https://127.0.0.1:{proc.port}" in node["listen"]
            tls = var_dir / "tls"
            for name, mode in (("ca.key", 0o600), ("node.key", 0o600), ("ca.crt", 0o644)):
                assert stat.S_IMODE((tls / name).stat().st_mode) == mode
            assert stat.S_IMODE((var_dir / "cluster" / "secret").stat().st_mode) == 0o600
            # TLS with the cluster CA: public health, token-protected node.
            assert client.health(proc.tcp(None))["status"] == "ok"
            with pytest.raises(client.ClientError) as info:
                client.get_node(proc.tcp(None))
            assert info.value.status == 401
            assert client.list_services(proc.local) == []
            proc.signal(signal.SIGTERM)
            assert notify.recv(1024) == b"STOPPING=1"
            assert proc.wait(10) == 0
        finally:
            proc.ensure_stopped()


def test_refusals_at_start_are_one_line_and_exit_codes(ferryd_proc: Ferryd) -> None:
    (ferryd_proc.config_dir / "node.conf").write_text("[node]\nlisten_prot = 1\n")
    ferryd_proc.start(wait=False)
    assert ferryd_proc.wait(10) == 2
    assert ferryd_proc.log().strip() == (
        f"ferryd: {ferryd_proc.config_dir}/node.conf:2 [node] listen_prot: unknown keyword "
        "for [node] (did you mean 'listen_port'?)"
    )
    (ferryd_proc.config_dir / "node.conf").unlink()
    ferryd_proc.start()
    second = Ferryd(ferryd_proc.config_dir, ferryd_proc.var_dir)
    second.start(wait=False)
    try:
        assert second.wait(10) == 1
        assert "another ferryd" in second.log() and "Traceback" not in second.log()
    finally:
        second.ensure_stopped()
    # The first one is unharmed.
    assert client.health(ferryd_proc.local)["status"] == "ok"
