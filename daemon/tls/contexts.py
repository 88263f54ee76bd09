"""The SSL contexts: the TCP listener's, and a client's (a peer, or the CLI over TCP); the
node a verified client certificate names."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.tls.authority import NODE_UNIT, TlsFiles

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS server: this node's certificate; client certificates optional, checked against the CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2: forward-secret AEAD suites only (OpenSSL's default list still has CBC ones);
    # TLS 1.3 suites are all AEAD and not affected by set_ciphers.
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.load_cert_chain(files.node_cert, files.node_key)
    ctx.load_verify_locations(cafile=str(files.ca_cert))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_context(
    ca_file: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """TLS client trusting ca_file (else the system store); with cert and key, as a node."""
    ctx = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
    )
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def peer_node_name(peercert: Mapping[str, Any] | None) -> str | None:
    """The node named by a verified client certificate (OU=node), else None."""
    if not peercert:
        return None
    attrs: dict[str, str] = {}
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            attrs[name] = value
    if attrs.get("organizationalUnitName") != NODE_UNIT:
        return None
    return attrs.get("commonName") or None
