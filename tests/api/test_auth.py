"""Who may call what: 401 without credentials, 403 below the route's role, node certificates,
the unix socket, and tokens stored hashed."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from pathlib import Path

import aiohttp
import pytest

from daemon.api.auth import Role, TokenError, create_token, list_tokens, revoke_token
from daemon.api.routes import ROUTES
from daemon.tls.authority import issue_node_cert, tls_files
from daemon.tls.contexts import client_context
from tests.api.conftest import Running

PUBLIC = {("GET", "/api/health"), ("GET", "/api/openapi.json")}
ACTION_ID = "0" * 32


def _concrete(path: str) -> str:
    return (
        path.replace("{svc}", "svc1")
        .replace("{action_id}", ACTION_ID)
        .replace("{point}", "2026-12-03T09:00:00Z")
    )


def _body(method: str, path: str) -> dict[str, object] | None:
    if path.endswith("/actions") and method == "POST":
        return {"action": "start"}
    if path.endswith("/config") or path.endswith("/validate"):
        return {"text": "[DEFAULT]\nnodes = n1\n"}
    return None


async def _operations(ferryd: Running) -> list[tuple[str, str]]:
    async with ferryd.session(None) as session, session.get("/api/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    return [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops]


async def test_every_route_but_two_needs_credentials(ferryd: Running) -> None:
    operations = await _operations(ferryd)
    assert len(operations) == len(ROUTES)
    async with ferryd.session(None) as session:
        for method, path in operations:
            async with session.request(method, _concrete(path), json=_body(method, path)) as resp:
                if (method, path) in PUBLIC:
                    assert resp.status == 200, (method, path)
                else:
                    assert resp.status == 401, (method, path)
                    body = await resp.json()
                    assert "authentication required" in body["error"]
                    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_wrong_token_is_401(ferryd: Running) -> None:
    connector = aiohttp.TCPConnector(ssl=ferryd.ssl)
    headers = {"Authorization": "Bearer fy_not-a-token"}
    async with (
        aiohttp.ClientSession(ferryd.url, connector=connector, headers=headers) as session,
        session.get("/api/node") as resp,
    ):
        assert resp.status == 401


async def test_guest_reads_but_gets_403_on_every_writing_route(ferryd: Running) -> None:
    writing = [r for r in ROUTES if r.writes]
    # Every route that changes something is declared as writing.
    assert {(r.method, r.path) for r in writing} == {
        ("PUT", "/api/services/{svc}/config"),
        ("POST", "/api/services/{svc}/actions"),
        ("POST", "/api/node/freeze"),
        ("POST", "/api/node/thaw"),
        ("POST", "/api/cluster/heartbeat"),
        ("PUT", "/api/cluster/services/{svc}/config"),
        ("POST", "/api/cluster/services/{svc}/sync"),
        ("POST", "/api/cluster/services/{svc}/drill"),
        ("POST", "/api/cluster/services/{svc}/restorepoints"),
        ("DELETE", "/api/services/{svc}/restorepoints/{point}"),
    }
    async with ferryd.session("guest") as session:
        for route in writing:
            body = _body(route.method, route.path)
            async with session.request(route.method, _concrete(route.path), json=body) as resp:
                assert resp.status == 403, route.path
                assert "has role guest" in (await resp.json())["error"]
        for route in ROUTES:
            if route.method == "GET" and route.path not in ("/api/events",):
                async with session.get(_concrete(route.path)) as resp:
                    assert resp.status in (200, 404), route.path


async def test_operator_acts_but_cannot_write_config(ferryd: Running) -> None:
    async with ferryd.session("operator") as session:
        async with session.post("/api/services/svc1/actions", json={"action": "start"}) as resp:
            assert resp.status == 202
            action_id = (await resp.json())["action_id"]
        async with session.get(f"/api/actions/{action_id}?wait=10") as resp:
            assert (await resp.json())["state"] == "succeeded"
        async with session.post("/api/services/svc1/actions", json={"action": "stop"}) as resp:
            assert resp.status == 202
            action_id = (await resp.json())["action_id"]
        async with session.get(f"/api/actions/{action_id}?wait=10") as resp:
            record = await resp.json()
            assert record["state"] == "succeeded"
            assert record["requested_by"] == "token:t-operator"
        async with session.put("/api/services/svc1/config", json={"text": "x"}) as resp:
            assert resp.status == 403
    assert not (ferryd.var_dir / "services" / "svc1" / "web").exists()


async def test_unix_socket_is_root_without_token_and_mode_0600(ferryd: Running) -> None:
    mode = stat.S_IMODE(ferryd.daemon.socket_path.stat().st_mode)
    assert mode == 0o600
    assert stat.S_ISSOCK(ferryd.daemon.socket_path.stat().st_mode)
    async with ferryd.unix_session() as session:
        async with session.get("/api/node") as resp:
            assert resp.status == 200
            assert (await resp.json())["name"] == "n1"
        text = "[DEFAULT]\nnodes = n1\n\n[app#x]\nstart = true\n"
        async with session.put("/api/services/new1/config", json={"text": text}) as resp:
            assert resp.status == 200, await resp.text()
    assert (ferryd.config_dir / "new1.conf").read_text() == text


async def test_peer_node_certificate_is_root(ferryd: Running, tmp_path: Path) -> None:
    files = tls_files(ferryd.var_dir)
    cert, key = issue_node_cert(ferryd.var_dir, "n2", out_dir=tmp_path)
    ctx = client_context(files.ca_cert, cert, key)
    async with aiohttp.ClientSession(ferryd.url, connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        async with s.get("/api/cluster") as resp:
            assert resp.status == 200
            nodes = {n["name"]: n for n in (await resp.json())["nodes"]}
            assert nodes["n1"]["local"] and nodes["n2"]["state"] == "unknown"
        async with s.post("/api/services/svc1/actions", json={"action": "stop"}) as resp:
            assert resp.status == 202
    # A node certificate for a node that is not in the cluster grants nothing.
    cert, key = issue_node_cert(ferryd.var_dir, "stranger", out_dir=tmp_path)
    ctx = client_context(files.ca_cert, cert, key)
    async with (
        aiohttp.ClientSession(ferryd.url, connector=aiohttp.TCPConnector(ssl=ctx)) as s,
        s.get("/api/node") as resp,
    ):
        assert resp.status == 401


async def test_new_token_works_without_restart_and_revocation_too(ferryd: Running) -> None:
    token = create_token(ferryd.var_dir, "guest", "late")
    connector = aiohttp.TCPConnector(ssl=ferryd.ssl)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(ferryd.url, connector=connector, headers=headers) as s:
        async with s.get("/api/node") as resp:
            assert resp.status == 200
        assert revoke_token(ferryd.var_dir, "late")
        async with s.get("/api/node") as resp:
            assert resp.status == 401


def test_tokens_are_stored_hashed_mode_0600(tmp_path: Path) -> None:
    token = create_token(tmp_path, "operator", "alice")
    assert re.match(r"^fy_[A-Za-z0-9_-]{40,}$", token)
    path = tmp_path / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_text()
    assert token not in raw
    stored = json.loads(raw)["tokens"][0]
    assert stored["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert list_tokens(tmp_path) == [
        {"name": "alice", "role": "operator", "created": stored["created"]}
    ]
    with pytest.raises(TokenError, match="exists"):
        create_token(tmp_path, "guest", "alice")
    with pytest.raises(ValueError, match="unknown role"):
        create_token(tmp_path, "admin", "bob")
    assert Role.parse("ROOT") is Role.ROOT
