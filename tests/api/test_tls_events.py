"""The cluster CA and node certificates; the event bus's bounded queues and replay."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from daemon.events import EventBus, SubscriptionEnded
from daemon.tls.authority import ensure_node_tls, init_cluster_ca, issue_node_cert, tls_files
from daemon.tls.contexts import peer_node_name, server_context


def _cn(path: Path) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_ca_once_and_node_cert_renewed_when_it_no_longer_fits(tmp_path: Path) -> None:
    ca = init_cluster_ca(tmp_path, "prod")
    ca_bytes = ca.read_bytes()
    assert init_cluster_ca(tmp_path, "prod").read_bytes() == ca_bytes  # idempotent
    files = ensure_node_tls(tmp_path, "n1", "prod", ["10.0.0.1"])
    first = files.node_cert.read_bytes()
    assert ensure_node_tls(tmp_path, "n1", "prod", ["10.0.0.1"]).node_cert.read_bytes() == first
    ensure_node_tls(tmp_path, "n1", "prod", ["10.0.0.2"])  # new address: new SAN
    assert files.node_cert.read_bytes() != first
    ensure_node_tls(tmp_path, "n9", "prod")  # renamed node
    assert _cn(files.node_cert) == "n9"
    assert files.ca_cert.read_bytes() == ca_bytes
    cert = x509.load_pem_x509_certificate(files.node_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "n9" in san.get_values_for_type(x509.DNSName)
    assert isinstance(server_context(files), ssl.SSLContext)


def test_certificate_for_another_node_and_peer_name(tmp_path: Path) -> None:
    init_cluster_ca(tmp_path)
    cert, key = issue_node_cert(tmp_path, "n2", out_dir=tmp_path)
    assert (cert.name, key.name) == ("n2.crt", "n2.key")
    assert not tls_files(tmp_path).node_cert.exists()
    subject = (
        (("organizationName", "ferry cluster default"),),
        (("organizationalUnitName", "node"),),
        (("commonName", "n2"),),
    )
    assert peer_node_name({"subject": subject}) == "n2"
    assert peer_node_name({"subject": subject[2:]}) is None  # not a node certificate
    assert peer_node_name(None) is None


async def test_slow_subscriber_is_dropped_and_can_replay() -> None:
    bus = EventBus(history=10, queue_size=3)
    with bus.subscribe() as slow, bus.subscribe() as fast:
        for i in range(5):
            bus.publish("action", {"i": i})
            event = await fast.next(0.1)
            assert event is not None and event.data == {"i": i}
        with pytest.raises(SubscriptionEnded, match="too slow"):
            while True:
                await slow.next(0.1)
        assert bus.subscribers == 1
    with bus.subscribe(after=3) as replay:
        got = [await replay.next(0.1) for _ in range(2)]
        assert [e.seq for e in got if e] == [4, 5]
        assert await replay.next(0.05) is None  # nothing more: a keepalive moment
    bus.close()
    with bus.subscribe() as late, pytest.raises(SubscriptionEnded, match="stopping"):
        await late.next(0.1)
    assert asyncio.get_running_loop()  # ran inside the loop
