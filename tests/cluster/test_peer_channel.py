"""The authenticated peer channel: only a node certificate of the cluster, of a configured
peer, speaking for itself, may post heartbeats or push configurations; whatever else is
refused and leaves the cluster state and the config dir as they were."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.api.auth import create_token
from daemon.cluster.messages import ExpectMsg, HeartbeatMsg, InstanceMsg
from daemon.tls.authority import init_cluster_ca, issue_node_cert, tls_files
from daemon.tls.contexts import client_context
from tests.cluster.conftest import Cluster, MakeCluster, Node, app_service, eventually


def _evil(node: str = "n2", cluster: str = "test") -> dict[str, Any]:
    """A heartbeat that would do harm if it landed: a new running instance, and an expect
    stopping svc1 (newest of all)."""
    return HeartbeatMsg(
        node=node,
        cluster=cluster,
        boot="evil",
        gen=1,
        sent_at=0.0,
        instances={"svc1": InstanceMsg(avail="up"), "evil": InstanceMsg(avail="up")},
        expects={"svc1": ExpectMsg(value="stopped", stamp=9e9, origin=node)},
    ).model_dump(mode="json")


async def _post(
    node: Node,
    path: str,
    body: dict[str, Any],
    *,
    cert: tuple[Path, Path] | None = None,
    token: str = "",
    method: str = "POST",
) -> int | str:
    """The HTTP status, or 'tls' when the TLS handshake itself refused the client."""
    ca = tls_files(node.var_dir).ca_cert
    context = client_context(ca, *(cert or (None, None)))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"https://127.0.0.1:{node.config.node.listen_port}{path}"
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
            session.request(method, url, json=body, headers=headers) as resp,
        ):
            await resp.read()
            return resp.status
    except (aiohttp.ClientConnectionError, ssl.SSLError, ConnectionError):
        return "tls"


def _cert(ca_dir: Path, node: str, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    return issue_node_cert(ca_dir, node, ["127.0.0.1"], out_dir=out)


async def _untouched(cluster: Cluster) -> None:
    """n1's cluster state knows nothing of n2 (never heard) nor of the injected data."""
    _, body = await cluster["n1"].api("GET", "/api/cluster")
    n2 = next(n for n in body["nodes"] if n["name"] == "n2")
    assert (n2["state"], n2["gen"]) == ("unknown", 0)
    assert "evil" not in body["services"]
    svc1 = body["services"]["svc1"]
    assert svc1["expect"] is None and set(svc1["instances"]) == {"n1"}
    assert not (cluster["n1"].var_dir / "services" / "svc1" / "frozen").exists()


@pytest.fixture
async def one_up(make_cluster: MakeCluster) -> Cluster:
    """n1 runs (svc1 installed, orchestrate = no: nothing moves by itself); n2, n3 never do."""
    cluster = await make_cluster(("n1", "n2", "n3"))
    cluster.install("svc1", app_service("n1 n2", orchestrate="no"), on=["n1"])
    await cluster.start("n1")

    async def reported() -> bool:
        _, body = await cluster["n1"].api("GET", "/api/cluster")
        return "n1" in body["services"].get("svc1", {}).get("instances", {})

    await eventually(reported, 10, "n1 reports svc1")
    return cluster


async def test_heartbeats_from_anything_but_a_peer_certificate_are_refused(
    one_up: Cluster,
) -> None:
    cluster, n1 = one_up, one_up["n1"]
    ca_dir, base = cluster.base / "ca", cluster.base / "certs"
    other_ca = cluster.base / "other-ca"
    init_cluster_ca(other_ca, "other")
    root = create_token(n1.var_dir, "root", "root-token")
    operator = create_token(n1.var_dir, "operator", "operator-token")
    route = "/api/cluster/heartbeat"
    attempts: dict[str, int | str] = {
        # a node certificate of another cluster's CA, with a peer's name
        "wrong cluster CA": await _post(n1, route, _evil(), cert=_cert(other_ca, "n2", base / "o")),
        # a certificate of our CA, but for a node that is no peer of n1
        "not a peer": await _post(n1, route, _evil("n9"), cert=_cert(ca_dir, "n9", base / "9")),
        # a peer's certificate speaking for another peer
        "n3 as n2": await _post(n1, route, _evil("n2"), cert=_cert(ca_dir, "n3", base / "3")),
        # a peer's certificate, a message of another cluster
        "other cluster name": await _post(
            n1, route, _evil("n2", "other"), cert=_cert(ca_dir, "n2", base / "2")
        ),
        # bearer tokens, even root and operator, are no node certificate
        "root token": await _post(n1, route, _evil(), token=root),
        "operator token": await _post(n1, route, _evil(), token=operator),
        "nothing": await _post(n1, route, _evil()),
    }
    assert attempts == {
        "wrong cluster CA": "tls",
        "not a peer": 401,
        "n3 as n2": 403,
        "other cluster name": 403,
        "root token": 403,
        "operator token": 403,
        "nothing": 401,
    }
    await _untouched(cluster)
    # The control: the same message with n2's own certificate lands.
    legit = await _post(n1, route, _evil(), cert=_cert(ca_dir, "n2", base / "2"))
    assert legit == 200
    _, body = await n1.api("GET", "/api/cluster")
    assert next(n for n in body["nodes"] if n["name"] == "n2")["state"] == "up"
    assert body["services"]["svc1"]["expect"]["value"] == "stopped"


async def test_pushed_configs_are_validated_before_install(one_up: Cluster) -> None:
    cluster, n1 = one_up, one_up["n1"]
    n2_cert = _cert(cluster.base / "ca", "n2", cluster.base / "certs")
    broken = "[DEFAULT]\nnodes = n1 n2\norchestrate = sometimes\n[app#a]\nstart = true\n"
    route = "/api/cluster/services/{}/config"
    # a new service: refused, nothing written, not even its frozen flag
    status = await _push(n1, route.format("new1"), broken, n2_cert)
    assert status[0] == 422, status
    assert "new1: the configuration has errors here" in status[1]["error"]
    assert any("orchestrate" in str(issue) for issue in status[1]["issues"]), status[1]
    assert not (n1.config_dir / "new1.conf").exists()
    assert not (n1.var_dir / "services" / "new1").exists()
    # an installed service: the broken replacement is refused, the installed text stays
    before = (n1.config_dir / "svc1.conf").read_text()
    status = await _push(n1, route.format("svc1"), broken, n2_cert)
    assert status[0] == 422, status
    assert (n1.config_dir / "svc1.conf").read_text() == before
    # a root token cannot push a peer config
    root = create_token(n1.var_dir, "root", "root-token")
    assert await _post(n1, route.format("new2"), {"text": "x", "origin": "n2"},
                       token=root, method="PUT") == 403  # fmt: skip
    assert not (n1.config_dir / "new2.conf").exists()


async def _push(
    node: Node, path: str, text: str, cert: tuple[Path, Path]
) -> tuple[int, dict[str, Any]]:
    context = client_context(tls_files(node.var_dir).ca_cert, *cert)
    url = f"https://127.0.0.1:{node.config.node.listen_port}{path}"
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.put(url, json={"text": text, "origin": "n2"}) as resp,
    ):
        return resp.status, await resp.json(content_type=None)
