"""Gaps of the daemon issue, mostly against real ferryd processes on loopback: the
zero-config process's 401 on every non-public route, its host-name node name, the
CLI with --server and --token, the live ``ferry mon``, an SSE client; and the
scheduler's tick where many jobs come due at once (one last-runs write)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.api.auth import create_token
from daemon.cli import client
from daemon.events import EventBus
from daemon.node.services import NodeServices
from daemon.scheduler import jobs
from daemon.scheduler.component import Scheduler
from daemon.scheduler.jobs import LastRuns, last_runs_path
from daemon.tls.authority import tls_files
from daemon.tls.contexts import client_context
from tests.api.conftest import APP_SERVICE, write_dirs
from tests.api.ferryd_proc import Ferryd

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"/api/health", "/api/openapi.json"}
CLI = "import sys; from daemon.cli.main import main; main()"


@pytest.fixture
def zero_config(short_tmp: Path) -> Iterator[Ferryd]:
    """No node.conf, no config or var dir yet, no FERRY_NODENAME."""
    proc = Ferryd(short_tmp / "etc", short_tmp / "var", nodename=None)
    try:
        yield proc.start()
    finally:
        proc.ensure_stopped()


@pytest.fixture
def app_daemon(short_tmp: Path) -> Iterator[Ferryd]:
    """A ferryd process (node n1) with svc1, a service of two app resources."""
    config_dir, var_dir = write_dirs(short_tmp, {"svc1": APP_SERVICE})
    proc = Ferryd(config_dir, var_dir)
    try:
        yield proc.start()
    finally:
        proc.ensure_stopped()


def _https(proc: Ferryd) -> http.client.HTTPSConnection:
    ctx = client_context(tls_files(proc.var_dir).ca_cert)
    return http.client.HTTPSConnection("127.0.0.1", proc.port, timeout=10, context=ctx)


def _call(proc: Ferryd, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = _https(proc)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def _fill(path: str) -> str:
    """Plausible values for the path parameters: a service name, else an id."""
    return re.sub(r"\{([^}]+)\}", lambda m: "svc1" if m.group(1) == "svc" else "1", path)


# ------------------------------------------------------------------ zero-config process


def test_zero_config_process_answers_401_on_every_route_but_the_public_ones(
    zero_config: Ferryd,
) -> None:
    status, doc = _call(zero_config, "GET", "/api/openapi.json")
    assert status == 200
    assert _call(zero_config, "GET", "/api/health")[0] == 200
    checked: list[str] = []
    for path, item in doc["paths"].items():
        for method in item:
            if method.upper() not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                continue
            body: dict[str, Any] | None = {} if method.upper() in ("POST", "PUT", "PATCH") else None
            status, answer = _call(zero_config, method.upper(), _fill(path), body)
            if path in PUBLIC:
                assert status == 200, (method, path, answer)
                continue
            assert status == 401, (method, path, status, answer)
            assert "authentication required" in answer["error"]
            checked.append(f"{method.upper()} {path}")
    # The document covers the whole API, writing and peer routes included.
    for route in (
        "GET /api/node",
        "GET /api/events",
        "POST /api/services/{svc}/actions",
        "PUT /api/services/{svc}/config",
        "POST /api/cluster/heartbeat",
    ):
        assert route in checked
    assert len(checked) >= 15


def test_zero_config_node_name_is_the_short_host_name(zero_config: Ferryd) -> None:
    assert "FERRY_NODENAME" not in (zero_config.env or {})
    expected = socket.gethostname().split(".")[0].lower()
    token = create_token(zero_config.var_dir, "guest", "viewer")
    node = client.get_node(zero_config.tcp(token))
    assert node["name"] == expected
    assert client.health(zero_config.local)["node"] == expected


# ------------------------------------------------------------------ CLI --server --token


def _ferry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ferry CLI as a separate process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_cli_with_server_and_token(app_daemon: Ferryd, short_tmp: Path) -> None:
    var = str(app_daemon.var_dir)
    made = _ferry("--var-dir", var, "token", "create", "--role", "operator", "--name", "ops")
    assert made.returncode == 0, made.stderr
    operator = made.stdout.strip()
    guest = _ferry("--var-dir", var, "token", "create", "--role", "guest", "--name", "g")
    guest_token = guest.stdout.strip()
    assert operator.startswith("fy_") and guest_token.startswith("fy_")
    server = f"https://127.0.0.1:{app_daemon.port}"
    # A remote user's machine: no var dir of that daemon; the cluster CA via SSL_CERT_FILE.
    remote_var = short_tmp / "elsewhere"
    remote_var.mkdir()
    env = {"SSL_CERT_FILE": str(tls_files(app_daemon.var_dir).ca_cert), "FERRY_NODENAME": "x9"}
    remote = ("--var-dir", str(remote_var), "--server", server)

    read = _ferry(*remote, "--token", operator, "mon", "-o", "json", env=env)
    assert read.returncode == 0, read.stderr
    view = json.loads(read.stdout)
    assert view["node"] == "n1" and "svc1" in view["services"]

    started = _ferry(*remote, "--token", operator, "svc1", "start", "--wait", "--time", "30",
                     env=env)  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "svc1: start done" in started.stdout
    assert client.get_status(app_daemon.local, "svc1", refresh=True)["avail"] == "up"

    # print status as that daemon sees its instance (the remote machine has no config)
    tree = _ferry(*remote, "--token", guest_token, "svc1", "print", "status", env=env)
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.splitlines()[0].split() == ["svc1", "up"]
    assert tree.stdout.splitlines()[2].split()[1:3] == ["n1", "up"]
    as_json = _ferry(*remote, "--token", guest_token, "svc*", "print", "status", "-o", "json",
                     env=env)  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)
    assert (status["service"], status["node"], status["avail"]) == ("svc1", "n1", "up")
    assert status["resources"] and all(r["status"] == "up" for r in status["resources"].values())
    nomatch = _ferry(*remote, "--token", guest_token, "zz*", "print", "status", env=env)
    assert nomatch.returncode == 1 and "Traceback" not in nomatch.stderr
    assert f"no service matches 'zz*' on {server}" in nomatch.stderr

    after = _ferry(*remote, "--token", guest_token, "mon", "once", env=env)
    assert after.returncode == 0, after.stderr
    svc_line = next(line for line in after.stdout.splitlines() if line.startswith("  svc1 "))
    assert svc_line.split()[1] == "up"

    refused = _ferry(*remote, "--token", guest_token, "svc1", "stop", env=env)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert refused.stderr.strip() == "ferry: token:g has role guest; this needs operator"
    assert client.get_status(app_daemon.local, "svc1", refresh=True)["avail"] == "up"

    # Without the CA the TLS check fails: a clear line, no traceback.
    untrusted = _ferry(*remote, "--token", operator, "mon", "once",
                       env={"SSL_CERT_FILE": str(remote_var / "none.pem")})  # fmt: skip
    assert untrusted.returncode == 1
    assert "TLS error" in untrusted.stderr and "Traceback" not in untrusted.stderr


# ------------------------------------------------------------------ ferry mon, live


def _svc_cells(output: str, svc: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.startswith(f"  {svc} ")]


def test_mon_redraws_on_a_status_change_and_leaves_cleanly(app_daemon: Ferryd) -> None:
    out_path = app_daemon.var_dir.parent / "mon.out"
    err_path = app_daemon.var_dir.parent / "mon.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        mon = subprocess.Popen(
            [sys.executable, "-c", CLI, "--var-dir", str(app_daemon.var_dir), "mon"],
            stdout=out,
            stderr=err,
            cwd=ROOT,
            # Block-buffered as in `ferry mon | tee`: each redraw must reach the pipe at once.
            env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
        )
    try:
        deadline = time.monotonic() + 15
        while not _svc_cells(out_path.read_text(), "svc1"):
            assert mon.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, "mon drew nothing"
            time.sleep(0.05)
        assert [cells[1] for cells in _svc_cells(out_path.read_text(), "svc1")] == ["down"]
        client.submit_action(app_daemon.local, "svc1", "start")
        deadline = time.monotonic() + 5
        while not any(c[1] == "up" for c in _svc_cells(out_path.read_text(), "svc1")):
            assert mon.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.05)
        draws = _svc_cells(out_path.read_text(), "svc1")
        assert len(draws) >= 2 and draws[-1][1] == "up"
        mon.send_signal(signal.SIGINT)  # Ctrl-C, how a user leaves the live view
        assert mon.wait(10) == 0
        assert "Traceback" not in err_path.read_text()
    finally:
        if mon.poll() is None:
            mon.kill()
            mon.wait(10)


# ------------------------------------------------------------------ SSE from a process


async def test_sse_client_of_a_process_sees_the_status_change_within_a_second(
    app_daemon: Ferryd,
) -> None:
    guest = create_token(app_daemon.var_dir, "guest", "watcher")
    operator = create_token(app_daemon.var_dir, "operator", "actor")
    ctx: ssl.SSLContext = client_context(tls_files(app_daemon.var_dir).ca_cert)
    url = f"https://127.0.0.1:{app_daemon.port}"
    async with (
        aiohttp.ClientSession(
            url,
            headers={"Authorization": f"Bearer {guest}"},
            connector=aiohttp.TCPConnector(ssl=ctx),
        ) as watcher,
        aiohttp.ClientSession(
            url,
            headers={"Authorization": f"Bearer {operator}"},
            connector=aiohttp.TCPConnector(ssl=ctx),
        ) as actor,
    ):
        async with watcher.get("/api/services/svc1?refresh=true") as resp:
            assert (await resp.json())["avail"] == "down"
        async with watcher.get("/api/events") as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"] == "text/event-stream"
            assert (await stream.content.readline()).startswith(b":")
            async with actor.post("/api/services/svc1/actions", json={"action": "start"}) as resp:
                assert resp.status == 202, await resp.text()
            submitted = time.monotonic()
            event: dict[str, Any] = {}
            async with asyncio.timeout(5):
                while not (event.get("kind") == "instance" and event["data"]["avail"] == "up"):
                    line = (await stream.content.readline()).decode().strip()
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
            assert time.monotonic() - submitted < 1.0
            assert event["data"]["service"] == "svc1"
            assert event["data"]["previous"]["avail"] == "down"
    assert (app_daemon.var_dir / "services" / "svc1" / "web").exists()


# ------------------------------------------------------------------ scheduler burst


BURST_SERVICE = """[DEFAULT]
nodes = n1
status_schedule = @60

[app#0]
check = true
"""


@dataclass
class _SchedCtx:
    services: NodeServices
    var_dir: Path
    nodename: str = "n1"


def test_a_tick_of_1000_due_jobs_writes_last_runs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, var = write_dirs(tmp_path, {f"s{i}": BURST_SERVICE for i in range(1000)})
    ctx = _SchedCtx(NodeServices(conf, var, "n1", "c", EventBus()), var)
    path = last_runs_path(var)
    writes: list[Path] = []
    real_write = jobs.write_atomically

    def counting_write(target: Path, text: str) -> None:
        writes.append(target)
        real_write(target, text)

    monkeypatch.setattr(jobs, "write_atomically", counting_write)
    now = datetime(2026, 11, 25, 10, 0, 0)
    due = Scheduler().due_jobs(ctx, LastRuns(path), now)  # type: ignore[arg-type]
    assert len(due) == 1000 and {j.name for j in due} == {"status"}
    assert writes == [path]
    # A restart: every last run is back, nothing is due again before its slot...
    restarted, last = Scheduler(), LastRuns(path)
    assert all(last.get(f"s{i}/status") == now for i in range(1000))
    assert restarted.due_jobs(ctx, last, now + timedelta(minutes=30)) == []  # type: ignore[arg-type]
    assert writes == [path]  # a tick with nothing due writes nothing
    # ...and the next slot's burst is again one write.
    again = restarted.due_jobs(ctx, last, now + timedelta(minutes=61))  # type: ignore[arg-type]
    assert len(again) == 1000 and writes == [path, path]
    assert json.loads(path.read_text())["s999/status"] == (now + timedelta(minutes=61)).timestamp()


async def test_the_first_tick_reads_1000_configurations_without_holding_the_loop(
    tmp_path: Path,
) -> None:
    """Reading 1,000 new configurations lets the loop run between them (heartbeats, API
    calls go on); the tick after reads none again."""
    conf, var = write_dirs(tmp_path, {f"s{i}": BURST_SERVICE for i in range(1000)})
    ctx = _SchedCtx(NodeServices(conf, var, "n1", "c", EventBus()), var)
    sched, turns = Scheduler(), 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    await sched._load_plans(ctx, ctx.services.names())  # type: ignore[arg-type]
    during = turns
    assert during >= 1000  # the other task ran between every two configurations
    assert len(sched._plans) == 1000 and not any(sched._refresh(ctx, f"s{i}") for i in range(9))  # type: ignore[arg-type]
    await sched._load_plans(ctx, ctx.services.names())  # type: ignore[arg-type]
    assert turns - during <= 2  # nothing to read: no yield per service
    other.cancel()
    now = datetime(2026, 11, 25, 10, 0, 0)
    assert len(sched.due_jobs(ctx, LastRuns(last_runs_path(var)), now)) == 1000  # type: ignore[arg-type]
