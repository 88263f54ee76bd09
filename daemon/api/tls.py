"""The cluster's certificate authority and node certificates (TLS on the TCP listener).

``init_cluster_ca`` makes the CA once (``ferry cluster init``); ``issue_node_cert``
signs a node's certificate with it, usable as server and as client certificate:
peers authenticate to each other with it (mutual TLS). Keys are EC P-256, stored
mode 0600 under ``<var dir>/tls``; every file is written atomically.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
NODE_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)
NODE_UNIT = "node"  # organizational unit that marks a node certificate


@dataclass(frozen=True)
class TlsFiles:
    """Where the node's TLS material lives."""

    ca_cert: Path
    ca_key: Path
    node_cert: Path
    node_key: Path


def tls_files(var_dir: Path) -> TlsFiles:
    base = var_dir / "tls"
    return TlsFiles(base / "ca.crt", base / "ca.key", base / "node.crt", base / "node.key")


def _write_private(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def init_cluster_ca(var_dir: Path, cluster_name: str = "default") -> Path:
    """Create the cluster CA under ``<var dir>/tls`` unless it exists; return its certificate."""
    files = tls_files(var_dir)
    if files.ca_cert.exists() and files.ca_key.exists():
        return files.ca_cert
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"ferry cluster {cluster_name}"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"ferry {cluster_name} CA"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(files.ca_key, _key_pem(key), 0o600)
    _write_private(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files.ca_cert


def _load_ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.ca_key}: not an EC private key")
    return cert, key


def _alt_names(node: str, addresses: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for item in (node, "localhost", "127.0.0.1", "::1", *addresses):
        if not item or item in seen or item in ("0.0.0.0", "::"):
            continue
        seen.add(item)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(item)))
        except ValueError:
            names.append(x509.DNSName(item))
    return names


def issue_node_cert(
    var_dir: Path,
    node: str,
    addresses: Iterable[str] = (),
    out_dir: Path | None = None,
    days: int = NODE_DAYS,
) -> tuple[Path, Path]:
    """Sign a certificate for node with the cluster CA; return (certificate, key) paths.

    By default the files are this node's (``<var dir>/tls/node.crt``, ``node.key``);
    with ``out_dir`` they are written there as ``<node>.crt`` and ``<node>.key``
    (a certificate for another node, to copy to it).
    """
    files = tls_files(var_dir)
    ca_cert, ca_key = _load_ca(files)
    key = ec.generate_private_key(ec.SECP256R1())
    orgs = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(orgs[0].value) if orgs else "ferry cluster"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, NODE_UNIT),
            x509.NameAttribute(NameOID.COMMON_NAME, node),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_alt_names(node, addresses)), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    if out_dir is None:
        cert_path, key_path = files.node_cert, files.node_key
    else:
        cert_path, key_path = out_dir / f"{node}.crt", out_dir / f"{node}.key"
    _write_private(key_path, _key_pem(key), 0o600)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def _needs_new_cert(files: TlsFiles, node: str, addresses: Iterable[str]) -> bool:
    if not (files.node_cert.exists() and files.node_key.exists()):
        return True
    try:
        cert = x509.load_pem_x509_certificate(files.node_cert.read_bytes())
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    except ValueError:
        return True
    if cert.issuer != ca.subject:
        return True
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != node:
        return True
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return True
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    present = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    present |= set(san.get_values_for_type(x509.DNSName))
    wanted = {str(n.value) for n in _alt_names(node, addresses)}
    return not wanted <= present


def ensure_node_tls(
    var_dir: Path, node: str, cluster_name: str, addresses: Iterable[str] = ()
) -> TlsFiles:
    """The CA and this node's certificate, made on first start and renewed when stale."""
    addresses = list(addresses)
    init_cluster_ca(var_dir, cluster_name)
    files = tls_files(var_dir)
    if _needs_new_cert(files, node, addresses):
        issue_node_cert(var_dir, node, addresses)
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS server: this node's certificate; client certificates optional, checked against the CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
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
