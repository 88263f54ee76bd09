"""Join bundles: what a new node needs to join the cluster's CA.

On the node holding the CA, ``write_bundle`` packs a node's certificate, key and the
CA certificate (``ferry cluster issue``); on the new node, ``install_bundle`` checks
and installs it (``ferry cluster join``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from daemon.tls.authority import (
    INIT_MARK,
    NODE_DAYS,
    TlsError,
    TlsFiles,
    cert_problem,
    common_name,
    issue_node_cert,
    key_pem,
    load_ca,
    signed_by,
    tls_files,
    write_private,
)


@dataclass(frozen=True)
class Bundle:
    """What a node needs to join: its certificate and key, and the cluster CA certificate."""

    node: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate

    def check(self, node: str) -> None:
        """Raise TlsError unless this is a valid bundle for node."""
        try:
            constraints = self.ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca or not signed_by(self.ca, self.ca):
            raise TlsError("the bundled ca.crt is not a CA certificate")
        problem = cert_problem(self.cert, self.ca, node)
        if problem:
            raise TlsError(f"the bundled certificate is {problem}")
        if _public_der(self.key.public_key()) != _public_der(self.cert.public_key()):
            raise TlsError("the bundled key does not match the bundled certificate")


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_bundle(
    var_dir: Path,
    node: str,
    out: Path,
    addresses: Iterable[str] = (),
    kind: Literal["dir", "pem"] = "dir",
    days: int = NODE_DAYS,
) -> list[Path]:
    """Issue node's certificate and write it with its key and ``ca.crt``; return the paths.

    ``dir``: ``out/<node>.crt``, ``out/<node>.key`` (0600) and ``out/ca.crt``.
    ``pem``: one file (0600) holding the node certificate, its key, then the CA certificate.
    """
    files = tls_files(var_dir)
    load_ca(files)  # fail before writing anything when this node cannot sign
    if kind == "pem":
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = issue_node_cert(var_dir, node, addresses, Path(tmp), days)
            data = cert_path.read_bytes() + key_path.read_bytes() + files.ca_cert.read_bytes()
        write_private(out, data, 0o600)
        return [out]
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = issue_node_cert(var_dir, node, addresses, out, days)
    ca_path = out / "ca.crt"
    write_private(ca_path, files.ca_cert.read_bytes(), 0o644)
    return [cert_path, key_path, ca_path]


def _load_key(data: bytes, where: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise TlsError(f"{where}: not a readable private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{where}: not an EC private key")
    return key


def _load_certs(data: bytes, where: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsError(f"{where}: no readable certificate") from None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def read_bundle(path: Path, node: str) -> Bundle:
    """Read a bundle made by :func:`write_bundle` (a directory or one PEM file) for node."""
    if path.is_dir():
        ca_path = path / "ca.crt"
        if not ca_path.is_file():
            raise TlsError(f"{path}: no ca.crt in the bundle")
        cert_path, key_path = path / f"{node}.crt", path / f"{node}.key"
        if not cert_path.is_file():
            others = sorted(p.stem for p in path.glob("*.crt") if p.name != "ca.crt")
            if others:
                raise TlsError(f"{path}: a bundle for {', '.join(others)}, this node is {node!r}")
            raise TlsError(f"{path}: no {node}.crt in the bundle")
        if not key_path.is_file():
            raise TlsError(f"{path}: no {node}.key in the bundle")
        cas = _load_certs(ca_path.read_bytes(), ca_path)
        certs = _load_certs(cert_path.read_bytes(), cert_path)
        key = _load_key(key_path.read_bytes(), key_path)
        if len(cas) != 1 or len(certs) != 1:
            raise TlsError(f"{path}: ca.crt and {node}.crt must hold one certificate each")
        ca, cert = cas[0], certs[0]
    elif path.is_file():
        data = path.read_bytes()
        certs = _load_certs(data, path)
        cas = [c for c in certs if _is_ca(c)]
        leaves = [c for c in certs if not _is_ca(c)]
        if len(cas) != 1 or len(leaves) != 1:
            raise TlsError(f"{path}: expected one node certificate, its key and the CA certificate")
        key = _load_key(data, path)
        ca, cert = cas[0], leaves[0]
    else:
        raise TlsError(f"{path}: no such bundle (a directory or a .pem file)")
    return Bundle(common_name(cert), cert, key, ca)


def install_bundle(var_dir: Path, bundle: Bundle, node: str, *, force: bool = False) -> TlsFiles:
    """Install a checked bundle as this node's TLS material; nothing is written on error.

    A CA key this node holds for another CA is dropped (it no longer matches ``ca.crt``);
    one made by ``ferry cluster init`` is kept unless ``force``: it may be a cluster's CA.
    """
    bundle.check(node)
    files = tls_files(var_dir)
    mark = files.ca_key.parent / INIT_MARK
    drop_key = False
    if files.ca_key.exists():
        try:
            own = _load_key(files.ca_key.read_bytes(), files.ca_key)
            same = _public_der(own.public_key()) == _public_der(bundle.ca.public_key())
        except TlsError:
            same = False
        if not same:
            if mark.exists() and not force:
                raise TlsError(
                    f"{files.ca_key} is the key of a CA made by 'ferry cluster init'; joining "
                    "another CA drops it: use --force"
                )
            drop_key = True
    if drop_key:
        # First, so that a crash midway never leaves a key signing for the wrong ca.crt.
        files.ca_key.unlink()
        mark.unlink(missing_ok=True)
    write_private(files.node_key, key_pem(bundle.key), 0o600)
    write_private(files.node_cert, _pem(bundle.cert), 0o644)
    write_private(files.ca_cert, _pem(bundle.ca), 0o644)
    return files
