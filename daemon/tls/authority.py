"""The cluster's certificate authority and node certificates (TLS on the TCP listener).

``init_cluster_ca`` makes the CA once (``ferry cluster init``); ``issue_node_cert``
signs a node's certificate with it, usable as server and as client certificate:
peers authenticate to each other with it (mutual TLS). Keys are EC P-256, stored
mode 0600 under ``<var dir>/tls``; every file is written atomically. A joined node
has no ``ca.key``: ``ensure_node_tls`` keeps its installed certificate and never
makes a CA of its own (joining: :mod:`daemon.tls.bundle`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("ferry.tls")

CA_DAYS = 3650
NODE_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)
NODE_UNIT = "node"  # organizational unit that marks a node certificate
INIT_MARK = "ca.init"  # present when the CA was made by `ferry cluster init` (not ferryd's own)


class TlsError(ValueError):
    """TLS material is missing, does not fit, or cannot be made here; the message says why."""


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


def write_private(path: Path, data: bytes, mode: int) -> None:
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


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def has_ca(var_dir: Path) -> bool:
    """Does this node hold a CA it can sign with (certificate and key)?"""
    files = tls_files(var_dir)
    return files.ca_cert.exists() and files.ca_key.exists()


def init_cluster_ca(var_dir: Path, cluster_name: str = "default", *, force: bool = False) -> Path:
    """Create the cluster CA under ``<var dir>/tls`` unless it exists; return its certificate.

    With ``force`` a new CA replaces the existing one (certificates it signed stop
    being trusted by nodes that install the new ``ca.crt``).
    """
    files = tls_files(var_dir)
    if not force and has_ca(var_dir):
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
    write_private(files.ca_key, key_pem(key), 0o600)
    write_private(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files.ca_cert


def ca_name(path: Path) -> str:
    """The CA certificate's common name, for messages."""
    try:
        return common_name(x509.load_pem_x509_certificate(path.read_bytes())) or "?"
    except (OSError, ValueError):
        return "?"


@dataclass(frozen=True)
class InitResult:
    ca_cert: Path
    ca_key: Path
    node_cert: Path
    node_key: Path
    replaced: bool  # an existing CA was replaced (--force)


def init_cluster(
    var_dir: Path,
    cluster_name: str,
    node: str,
    addresses: Iterable[str] = (),
    *,
    force: bool = False,
) -> InitResult:
    """``ferry cluster init``: a new cluster CA and this node's certificate signed by it.

    Refuses (TlsError) when this node already has a CA certificate, its own or a
    joined one, unless ``force``.
    """
    files = tls_files(var_dir)
    existed = files.ca_cert.exists()
    if existed and not force:
        kind = "holds the CA" if files.ca_key.exists() else "joined the CA"
        raise TlsError(
            f"{files.ca_cert.parent}: this node already {kind} {ca_name(files.ca_cert)!r}; "
            "--force makes a new one (certificates of the old one stop being trusted)"
        )
    init_cluster_ca(var_dir, cluster_name, force=True)
    write_private(files.ca_key.parent / INIT_MARK, f"{cluster_name}\n".encode(), 0o600)
    cert, key = issue_node_cert(var_dir, node, addresses)
    return InitResult(files.ca_cert, files.ca_key, cert, key, existed)


def load_ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if not files.ca_key.exists():
        raise TlsError(
            f"{files.ca_key}: no CA key on this node: certificates are issued on the node "
            "where 'ferry cluster init' ran"
        )
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{files.ca_key}: not an EC private key")
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
    ca_cert, ca_key = load_ca(files)
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
    write_private(key_path, key_pem(key), 0o600)
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _unit(cert: x509.Certificate) -> str:
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return str(units[0].value) if units else ""


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def cert_problem(cert: x509.Certificate, ca: x509.Certificate, node: str) -> str:
    """Why cert is not a valid node certificate of ca for node; '' when it is."""
    if not signed_by(cert, ca):
        return "not signed by the cluster CA"
    if _unit(cert) != NODE_UNIT:
        return "not a node certificate (OU is not 'node')"
    name = common_name(cert)
    if name != node:
        return f"made for node {name!r}, this node is {node!r}"
    now = _now()
    if cert.not_valid_after_utc <= now:
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d}"
    if cert.not_valid_before_utc > now + dt.timedelta(minutes=5):
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    return ""


def missing_names(cert: x509.Certificate, node: str, addresses: Iterable[str]) -> set[str]:
    """The names and addresses of the node (see _alt_names) its certificate does not carry."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        present: set[str] = set()
    else:
        present = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
        present |= set(san.get_values_for_type(x509.DNSName))
    wanted = {str(n.value) for n in _alt_names(node, addresses)}
    return wanted - present


def _installed_problem(files: TlsFiles, node: str, addresses: Iterable[str]) -> str:
    """Why this node's certificate must be replaced; '' when it fits."""
    if not (files.node_cert.exists() and files.node_key.exists()):
        return "no node certificate"
    try:
        cert = x509.load_pem_x509_certificate(files.node_cert.read_bytes())
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    except ValueError:
        return "unreadable certificate"
    problem = cert_problem(cert, ca, node)
    if problem:
        return problem
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return f"expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    missing = missing_names(cert, node, addresses)
    if missing:
        return f"does not name {', '.join(sorted(missing))}"
    return ""


def ensure_node_tls(
    var_dir: Path, node: str, cluster_name: str, addresses: Iterable[str] = ()
) -> TlsFiles:
    """The CA and this node's certificate, made on first start and renewed when stale.

    A node with no TLS material at all makes its own CA (the zero-configuration
    single-node cluster). A node holding the CA key (re)issues its certificate when
    it no longer fits. A joined node (``ca.crt`` without ``ca.key``) keeps the
    certificate it was given while it is valid, warning when it should be replaced;
    without a valid one it raises :class:`TlsError`.
    """
    addresses = list(addresses)
    files = tls_files(var_dir)
    if not files.ca_cert.exists():
        init_cluster_ca(var_dir, cluster_name)
    problem = _installed_problem(files, node, addresses)
    if not problem:
        return files
    if files.ca_key.exists():
        issue_node_cert(var_dir, node, addresses)
        return files
    hint = f"run 'ferry cluster issue {node}' on the CA node, then 'ferry cluster join BUNDLE' here"
    try:
        cert = x509.load_pem_x509_certificate(files.node_cert.read_bytes())
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    except (OSError, ValueError):
        pass
    else:
        if files.node_key.exists() and not cert_problem(cert, ca, node):
            # Still valid, only expiring soon or missing a name: keep serving with it.
            log.warning("%s %s: %s", files.node_cert, problem, hint)
            return files
    raise TlsError(f"{files.node_cert}: {problem}; this node holds no CA key: {hint}")
