"""Issue 16: hostile input, slow clients and a misconfigured host, against a real ferryd on
loopback. Each test plays the attack first described in the issue."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.hostile import measure, text_of
from daemon.api.auth import create_token
from daemon.cli import client
from daemon.tls.authority import tls_files
from tests.api.conftest import APP_SERVICE, write_dirs
from tests.api.ferryd_proc import Ferryd
from tests.unit.ferry_cli import ferry

NODE_CONF = """[node]
header_timeout = 2s
body_timeout = 1s
body_min_rate = 100
max_client_connections = 600
"""


@pytest.fixture(scope="module")
def live() -> Iterator[Ferryd]:
    base = Path(tempfile.mkdtemp(prefix="fyh", dir="/tmp"))
    config_dir, var_dir = write_dirs(base, {"svc1": APP_SERVICE})
    (config_dir / "node.conf").write_text(NODE_CONF)
    proc = Ferryd(config_dir, var_dir)
    try:
        yield proc.start()
    finally:
        proc.ensure_stopped()
        shutil.rmtree(base, ignore_errors=True)


def _ca(proc: Ferryd) -> str:
    return str(tls_files(proc.var_dir).ca_cert)


def _get(proc: Ferryd, path: str, token: str | None, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))  # type: ignore[arg-type]
    url = f"https://127.0.0.1:{proc.port}{path}"
    return requests.get(url, headers=headers, verify=_ca(proc), timeout=10, **kwargs)  # type: ignore[arg-type]


def _error_lines(proc: Ferryd) -> list[str]:
    lines = [json.loads(line) for line in proc.log().splitlines() if line.startswith("{")]
    return [str(e) for e in lines if e.get("level") in ("error", "critical")]


def _raw(proc: Ferryd, data: bytes) -> bytes:
    """Send raw bytes over TLS; everything the daemon answers until it closes."""
    ctx = ssl.create_default_context(cafile=_ca(proc))
    with (
        socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(data)
        out = b""
        while chunk := tls.recv(65536):
            out += chunk
        return out


# ---------------------------------------------------------------------------- 1. CPU on the loop


def test_big_validate_requests_do_not_stall_health(live: Ferryd) -> None:
    token = create_token(live.var_dir, "guest", f"g{time.monotonic_ns()}")
    url = f"https://127.0.0.1:{live.port}"
    # Within the limits: the work goes to a worker process; health keeps its latency.
    figures = asyncio.run(measure(url, token, _ca(live), "long", 3))
    assert figures["validate_status"] == 200
    # The issue's bound is 100 ms; the margin is for a loaded CI machine (bench hostile
    # measures the real figure).
    assert figures["health_p99_ms"] < 250, figures
    # Past the limits: refused at once, the limit named.
    for kind in ("sections", "keywords"):
        answer = requests.post(
            f"{url}/api/services/x/config/validate",
            json={"text": text_of(kind)},
            headers={"Authorization": f"Bearer {token}"},
            verify=_ca(live),
            timeout=30,
        )
        assert answer.status_code == 413, answer.text
        assert "a service may have at most" in answer.json()["error"]


# ---------------------------------------------------------------------------- 2. slow clients


async def _slow_headers(proc: Ferryd, count: int) -> list[float]:
    """count TLS connections sending a header line every second; how long each lived, and
    the latency of /api/health once they are all open."""
    ctx = ssl.create_default_context(cafile=_ca(proc))
    opened: list[float] = []
    all_open = asyncio.Event()

    async def one() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", proc.port, ssl=ctx)
        connected = time.monotonic()
        opened.append(connected)
        if len(opened) == count:
            all_open.set()
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        try:
            for i in range(20):
                writer.write(f"X-Slow-{i}: 1\r\n".encode())
                await writer.drain()
                try:
                    if not await asyncio.wait_for(reader.read(4096), 1.0):
                        break
                    continue  # the 408 answer; then EOF
                except TimeoutError:
                    continue
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
        return time.monotonic() - connected

    async def health_latency() -> float:
        await all_open.wait()
        loop = asyncio.get_running_loop()
        best = 10.0
        for _ in range(3):
            t = time.monotonic()
            await loop.run_in_executor(None, client.health, proc.local)
            best = min(best, time.monotonic() - t)
            await asyncio.sleep(0.1)
        return best

    async with asyncio.timeout(40):
        results = await asyncio.gather(*(one() for _ in range(count)), health_latency())
    return list(results)


def test_slow_header_connections_are_closed_within_the_header_timeout(live: Ferryd) -> None:
    *closed, health = asyncio.run(_slow_headers(live, 500))
    assert len(closed) == 500
    assert max(closed) < 2 + 2, max(closed)  # header_timeout 2 s, seen within a 1 s read
    assert health < 0.5


def test_a_slow_body_is_cut_off(live: Ferryd) -> None:
    token = create_token(live.var_dir, "guest", f"g{time.monotonic_ns()}")
    head = (
        "POST /api/services/x/config/validate HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    ctx = ssl.create_default_context(cafile=_ca(live))
    started = time.monotonic()
    answer = b""
    with (
        socket.create_connection(("127.0.0.1", live.port), timeout=20) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(head + b'{"text": "')
        tls.settimeout(0.5)
        for _ in range(40):  # one byte every half second: 2 bytes/s < body_min_rate
            try:
                tls.sendall(b"x")
                chunk = tls.recv(65536)
                answer += chunk
                if not chunk or b"}" in chunk:
                    break
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                break
    assert time.monotonic() - started < 8
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"body_min_rate" in answer


def test_connections_per_client_are_capped(short_tmp: Path) -> None:
    config_dir, var_dir = write_dirs(short_tmp, {"svc1": APP_SERVICE})
    (config_dir / "node.conf").write_text("[node]\nmax_client_connections = 3\n")
    proc = Ferryd(config_dir, var_dir)
    try:
        proc.start()
        ctx = ssl.create_default_context(cafile=_ca(proc))
        held = []
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", proc.port), timeout=10)
            held.append(ctx.wrap_socket(sock, server_hostname="127.0.0.1"))
        answer = _raw(proc, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"max_client_connections" in answer
        assert client.health(proc.local)["status"] == "ok"  # the unix socket is not capped
        for tls in held:
            tls.close()
        time.sleep(0.3)
        assert _get(proc, "/api/health", None).status_code == 200
    finally:
        proc.ensure_stopped()


# ---------------------------------------------------------------------------- 3. --config-dir


def test_set_with_config_dir_edits_that_directory(
    live: Ferryd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_NODENAME", "n1")
    monkeypatch.setenv("FERRY_VAR_DIR", str(live.var_dir))
    other = tmp_path / "other"
    other.mkdir()
    (other / "svc1.conf").write_text(APP_SERVICE)
    daemons_copy = (live.config_dir / "svc1.conf").read_text()
    result = ferry("--config-dir", str(other), "svc1", "set", "--kw", "app#web.start=true")
    assert result.code == 0, result.err
    assert "start = true" in (other / "svc1.conf").read_text()
    assert (live.config_dir / "svc1.conf").read_text() == daemons_copy
    assert "locally" in result.err
    # The daemon's own directory still goes through the daemon.
    result = ferry("--config-dir", str(live.config_dir), "svc1", "set", "--kw", "app#db.start=true")
    assert result.code == 0, result.err
    assert "start = true" in (live.config_dir / "svc1.conf").read_text()


# ---------------------------------------------------------------------------- 4. line separators


def test_line_separators_do_not_inject_sections(live: Ferryd) -> None:
    for sep in ("\u2028", "\u2029", "\x85", "\v", "\f", "\x1c", "\x1d", "\x1e"):
        text = APP_SERVICE.replace(
            "start = touch {var}/web",
            f"start = /bin/sleep{sep}[app#9]{sep}start = /bin/echo injected",
        )
        with pytest.raises(client.ClientError) as refused:
            client.put_config(live.local, "svc1", text)
        assert refused.value.status == 422
        issue = (refused.value.issues or [{}])[0]
        assert issue["line"] == 5 and "control character" in issue["message"], repr(sep)
        assert "injected" not in (live.config_dir / "svc1.conf").read_text()


def test_cli_set_refuses_a_line_separator(live: Ferryd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_NODENAME", "n1")
    monkeypatch.setenv("FERRY_VAR_DIR", str(live.var_dir))
    before = (live.config_dir / "svc1.conf").read_text()
    kw = "app#web.start=/bin/sleep\u2028[app#9]\u2028start = /bin/echo injected"
    result = ferry("--config-dir", str(live.config_dir), "svc1", "set", "--kw", kw)
    assert result.code != 0
    assert "svc1.conf:" in result.err and "control character U+2028" in result.err
    assert (live.config_dir / "svc1.conf").read_text() == before


# ---------------------------------------------------------------------------- 5. names


def test_service_names_are_checked_whole_and_bounded(live: Ferryd) -> None:
    token = create_token(live.var_dir, "root", f"r{time.monotonic_ns()}")
    url = f"https://127.0.0.1:{live.port}"
    headers = {"Authorization": f"Bearer {token}"}
    for name in ("nl1%0A", "node%0A", "a" * 300, "node"):
        answer = requests.put(
            f"{url}/api/services/{name}/config",
            json={"text": APP_SERVICE},
            headers=headers,
            verify=_ca(live),
            timeout=10,
        )
        assert answer.status_code == 400, (name, answer.text)
        assert answer.json()["field"] == "svc"
    assert sorted(p.name for p in live.config_dir.iterdir()) == ["node.conf", "svc1.conf"]
    assert _error_lines(live) == []


# ---------------------------------------------------------------------------- 6. client errors


def test_client_mistakes_are_json_4xx_without_tracebacks(live: Ferryd) -> None:
    token = create_token(live.var_dir, "guest", f"g{time.monotonic_ns()}")
    answer = _get(live, "/api/events", token, headers={"Last-Event-ID": "9" * 5000})
    assert answer.status_code == 400 and answer.json()["field"] == "Last-Event-ID"
    # Parser-level refusals, no token needed: a header too long, a URL too long, bad bytes.
    for raw in (
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
        b"GET /api/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Bad\x01: 1\r\n\r\n",
    ):
        answer_bytes = _raw(live, raw)
        head, _, body = answer_bytes.partition(b"\r\n\r\n")
        assert b" 400 " in head.split(b"\r\n")[0], answer_bytes[:200]
        assert b"application/json" in head
        assert "error" in json.loads(body)
    # A client that drops in the middle of its body.
    ctx = ssl.create_default_context(cafile=_ca(live))
    with (
        socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            (
                "POST /api/services/x/config/validate HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: 5000\r\n\r\n"
                '{"text": "'
            ).encode()
        )
        time.sleep(0.3)
    time.sleep(0.5)
    metrics = _get(live, "/metrics", token).text
    assert not [m for m in metrics.splitlines() if 'code="500"' in m], metrics
    assert _error_lines(live) == []
    assert "Traceback" not in live.log()


# ---------------------------------------------------------------------------- 7. var dir trust


def test_ferryd_refuses_a_var_dir_others_can_write(short_tmp: Path) -> None:
    config_dir, var_dir = write_dirs(short_tmp, {"svc1": APP_SERVICE})
    os.chmod(var_dir, 0o777)
    proc = Ferryd(config_dir, var_dir).start(wait=False)
    try:
        assert proc.wait(15) == 1
        assert "var dir is not safe" in proc.log() and "writable by group or others" in proc.log()
        os.chmod(var_dir, 0o755)
        create_token(var_dir, "root", "planted")
        os.chown(var_dir / "tokens.json", 1000, 1000)  # another user's token file
        proc.start(wait=False)
        assert proc.wait(15) == 1
        assert "tokens.json is owned by uid 1000" in proc.log()
    finally:
        proc.ensure_stopped()


# ---------------------------------------------------------------------------- 8. TLS suites


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"])
def test_tls12_offers_aead_suites_only(live: Ferryd, cipher: str) -> None:
    ctx = ssl.create_default_context(cafile=_ca(live))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    with (
        socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock,
        pytest.raises(ssl.SSLError),
    ):
        ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with (
        socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
