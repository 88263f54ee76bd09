"""`ferry cluster init|issue|join`: one cluster CA, certificates handed out, peers that trust them.

The end-to-end test starts two real ferryd processes on loopback: the node that
joined with a bundle is accepted by the CA node as a peer (heartbeats both ways,
a root request with its certificate), a certificate of another CA is refused.
"""

from __future__ import annotations

import http.client
import json
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from daemon.cli import client
from daemon.tls.authority import (
    TlsError,
    ensure_node_tls,
    init_cluster_ca,
    issue_node_cert,
    tls_files,
)
from daemon.tls.contexts import client_context
from tests.api.ferryd_proc import Ferryd, free_port
from tests.unit.ferry_cli import Result, ferry


def _node_conf(etc: Path, name: str, peers: str = "", listen: str = "") -> None:
    etc.mkdir(parents=True, exist_ok=True)
    text = f"[node]\nname = {name}\nstop_grace = 2s\n{listen}"
    text += f"[cluster]\nname = test\nhb_interval = 1s\nhb_timeout = 4s\n{peers}"
    (etc / "node.conf").write_text(text)


def _cli(base: Path, node: str, *args: str) -> Result:
    return ferry("--config-dir", str(base / node / "etc"), "--var-dir", str(base / node / "var"),
                 *args)  # fmt: skip


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _one_line_refusal(result: Result, *words: str) -> None:
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferry: "), result.err
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def nodes(short_tmp: Path) -> Path:
    _node_conf(short_tmp / "na" / "etc", "na")
    _node_conf(short_tmp / "nb" / "etc", "nb")
    return short_tmp


def test_init_issue_join_hand_a_certificate_of_the_cluster_ca(nodes: Path) -> None:
    made = _cli(nodes, "na", "-o", "json", "cluster", "init")
    assert made.code == 0, made.err
    info = json.loads(made.out)
    a_tls = tls_files(nodes / "na" / "var")
    assert info["node"] == "na" and info["ca_cert"] == str(a_tls.ca_cert)
    assert stat.S_IMODE(a_tls.ca_key.stat().st_mode) == 0o600
    ca = _cert(a_tls.ca_cert)
    assert _cn(ca) == "ferry test CA" and _cn(_cert(a_tls.node_cert)) == "na"
    _cert(a_tls.node_cert).verify_directly_issued_by(ca)

    # A second init refuses and changes nothing; --force makes a new CA.
    _one_line_refusal(_cli(nodes, "na", "cluster", "init"), "already holds the CA", "--force")
    assert _cert(a_tls.ca_cert) == ca

    bundle = nodes / "bundle-nb"
    issued = _cli(nodes, "na", "cluster", "issue", "nb", "--out", str(bundle),
                  "--address", "10.9.8.7", "--address", "nb.example")  # fmt: skip
    assert issued.code == 0, issued.err
    assert sorted(p.name for p in bundle.iterdir()) == ["ca.crt", "nb.crt", "nb.key"]
    assert stat.S_IMODE((bundle / "nb.key").stat().st_mode) == 0o600
    san = _cert(bundle / "nb.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "10.9.8.7" in {str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)}
    assert "nb.example" in san.value.get_values_for_type(x509.DNSName)
    # Issuing again over an existing bundle needs --force.
    _one_line_refusal(_cli(nodes, "na", "cluster", "issue", "nb", "--out", str(bundle)), "--force")

    joined = _cli(nodes, "nb", "cluster", "join", str(bundle))
    assert joined.code == 0, joined.err
    b_var = nodes / "nb" / "var"
    b_tls = tls_files(b_var)
    assert not b_tls.ca_key.exists()
    assert b_tls.ca_cert.read_bytes() == a_tls.ca_cert.read_bytes()
    assert b_tls.node_cert.read_bytes() == (bundle / "nb.crt").read_bytes()
    assert stat.S_IMODE(b_tls.node_key.stat().st_mode) == 0o600

    # ferryd's start on nb keeps the installed certificate and makes no CA of its own.
    before = b_tls.node_cert.read_bytes()
    ensure_node_tls(b_var, "nb", "test", ["127.0.0.1"])
    assert b_tls.node_cert.read_bytes() == before and not b_tls.ca_key.exists()
    # ... even when the certificate lacks a wanted address (warned, not replaced) ...
    ensure_node_tls(b_var, "nb", "test", ["10.1.1.1"])
    assert b_tls.node_cert.read_bytes() == before
    # ... and a node without the CA key cannot issue, nor serve under another name.
    _one_line_refusal(_cli(nodes, "nb", "cluster", "issue", "nc"), "no CA key")
    with pytest.raises(TlsError, match="made for node 'nb'"):
        ensure_node_tls(b_var, "nx", "test")
    assert not b_tls.ca_key.exists()


def test_join_refuses_bad_bundles_and_writes_nothing(nodes: Path, tmp_path: Path) -> None:
    assert _cli(nodes, "na", "cluster", "init").code == 0
    good = nodes / "good"
    assert _cli(nodes, "na", "cluster", "issue", "nb", "--out", str(good)).code == 0
    other = tmp_path / "other"  # another cluster's CA
    init_cluster_ca(other, "other")
    b_tls = tls_files(nodes / "nb" / "var").ca_cert.parent

    def bundle(name: str, cert: Path, key: Path, ca: Path, node: str = "nb") -> Path:
        out = tmp_path / name
        out.mkdir()
        (out / f"{node}.crt").write_bytes(cert.read_bytes())
        (out / f"{node}.key").write_bytes(key.read_bytes())
        (out / "ca.crt").write_bytes(ca.read_bytes())
        return out

    for_nc = nodes / "for-nc"
    assert _cli(nodes, "na", "cluster", "issue", "nc", "--out", str(for_nc)).code == 0
    stranger_cert, stranger_key = issue_node_cert(other, "nb", out_dir=tmp_path / "stranger")
    cases = {
        # the bundle of another node
        "this node is 'nb'": for_nc,
        # a certificate of another CA with the cluster's ca.crt
        "not signed by the cluster CA": bundle(
            "mixed", stranger_cert, stranger_key, good / "ca.crt"
        ),
        # the key of another certificate
        "key does not match": bundle("wrongkey", good / "nb.crt", stranger_key, good / "ca.crt"),
        # a node certificate where the CA should be
        "not a CA certificate": bundle("noca", good / "nb.crt", good / "nb.key", good / "nb.crt"),
        "no such bundle": tmp_path / "missing",
    }
    for expected, path in cases.items():
        _one_line_refusal(_cli(nodes, "nb", "cluster", "join", str(path)), expected)
        assert not b_tls.exists(), expected

    # One PEM file works as well as a directory.
    pem = nodes / "nb.pem"
    assert _cli(nodes, "na", "cluster", "issue", "nb", "--out", str(pem)).code == 0
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert _cli(nodes, "nb", "cluster", "join", str(pem)).code == 0
    assert _cn(_cert(b_tls / "node.crt")) == "nb"


def test_join_drops_a_ferryd_made_ca_but_keeps_an_initialized_one(nodes: Path) -> None:
    assert _cli(nodes, "na", "cluster", "init").code == 0
    bundle = nodes / "bundle"
    assert _cli(nodes, "na", "cluster", "issue", "nb", "--out", str(bundle)).code == 0
    b_var = nodes / "nb" / "var"
    b_tls = tls_files(b_var)
    # nb's ferryd ran before the join: zero-config, it made a CA for itself.
    ensure_node_tls(b_var, "nb", "default")
    assert b_tls.ca_key.exists()
    assert _cli(nodes, "nb", "cluster", "join", str(bundle)).code == 0
    assert not b_tls.ca_key.exists()
    assert b_tls.ca_cert.read_bytes() == tls_files(nodes / "na" / "var").ca_cert.read_bytes()

    # A CA made by 'cluster init' is another cluster's CA: joining needs --force.
    assert _cli(nodes, "nb", "cluster", "init", "--force").code == 0
    own_ca = b_tls.ca_cert.read_bytes()
    _one_line_refusal(_cli(nodes, "nb", "cluster", "join", str(bundle)), "--force")
    assert b_tls.ca_cert.read_bytes() == own_ca and b_tls.ca_key.exists()
    assert _cli(nodes, "nb", "cluster", "join", str(bundle), "--force").code == 0
    assert not b_tls.ca_key.exists()


# ------------------------------------------------------------------ two real ferryd processes


def _get(port: int, ctx: ssl.SSLContext, path: str) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def _peer_state(proc: Ferryd, peer: str) -> str:
    nodes = client.get_cluster(proc.local, timeout=2.0)["nodes"]
    return next(str(n["state"]) for n in nodes if n["name"] == peer)


@pytest.fixture
def two_nodes(short_tmp: Path) -> Iterator[tuple[Ferryd, Ferryd]]:
    ports = {"na": free_port(), "nb": free_port()}
    procs = {}
    for name, peer in (("na", "nb"), ("nb", "na")):
        _node_conf(
            short_tmp / name / "etc",
            name,
            peers=f"peers = {peer}=127.0.0.1:{ports[peer]}\n",
            listen="listen_addr = 127.0.0.1\n",
        )
        (short_tmp / name / "var").mkdir(parents=True)
        procs[name] = Ferryd(short_tmp / name / "etc", short_tmp / name / "var",
                             port=ports[name], env={"FERRY_NODENAME": name})  # fmt: skip
    try:
        yield procs["na"], procs["nb"]
    finally:
        for proc in procs.values():
            proc.ensure_stopped()


def test_joined_node_is_accepted_as_a_peer_by_the_ca_node(
    short_tmp: Path, tmp_path: Path, two_nodes: tuple[Ferryd, Ferryd]
) -> None:
    a, b = two_nodes
    assert _cli(short_tmp, "na", "cluster", "init").code == 0
    bundle = tmp_path / "nb.pem"
    assert _cli(short_tmp, "na", "cluster", "issue", "nb", "--out", str(bundle)).code == 0
    assert _cli(short_tmp, "nb", "cluster", "join", str(bundle)).code == 0
    b_tls = tls_files(b.var_dir)
    installed = b_tls.node_cert.read_bytes()

    a.start()
    b.start()
    # Heartbeats both ways: each node's client certificate is accepted by the other.
    deadline = time.monotonic() + 20
    states = ("", "")
    while time.monotonic() < deadline:
        states = (_peer_state(a, "nb"), _peer_state(b, "na"))
        if states == ("up", "up"):
            break
        time.sleep(0.2)
    assert states == ("up", "up"), f"{states}\n{a.log()}\n{b.log()}"
    # nb's ferryd serves with the installed certificate and made no CA of its own.
    assert b_tls.node_cert.read_bytes() == installed and not b_tls.ca_key.exists()

    # nb's certificate is a root principal on na: a peer route answers past authentication.
    as_b = client_context(b_tls.ca_cert, b_tls.node_cert, b_tls.node_key)
    status, body = _get(a.port, as_b, "/api/node")
    assert status == 200 and body["name"] == "na"
    # na's server certificate is trusted with the CA nb was given.
    status, body = _get(b.port, as_b, "/api/node")
    assert status == 200 and body["name"] == "nb"

    # The same node name under another CA is refused: the TLS handshake fails or 401.
    other = tmp_path / "other"
    init_cluster_ca(other, "test")
    cert, key = issue_node_cert(other, "nb", out_dir=tmp_path / "stranger")
    stranger = client_context(b_tls.ca_cert, cert, key)
    try:
        status, _ = _get(a.port, stranger, "/api/node")
    except (ssl.SSLError, ConnectionError):
        status = 0  # handshake refused
    assert status in (0, 401)
    # Without a client certificate, the route wants credentials.
    status, _ = _get(a.port, client_context(b_tls.ca_cert), "/api/node")
    assert status == 401
