"""Who is calling, and what they may do.

* Unix socket: the socket is mode 0600 in the var dir, so whoever can connect
  is local root: role ``root``, no token.
* TCP (TLS): a peer node presents a client certificate signed by the cluster CA
  (OU=node, CN=<node name>, the name being this node or a configured peer):
  role ``root``. A user presents ``Authorization: Bearer <token>``; the token
  carries a role: ``root``, ``operator`` (service actions) or ``guest`` (read).

Tokens are stored as sha256 hashes in ``<var dir>/tokens.json`` (mode 0600),
written atomically under a file lock; the daemon notices new tokens without a
restart. The clear token is shown once, by :func:`create_token`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.api.sessions import COOKIE, Session, SessionStore
from daemon.config.store import write_atomically
from daemon.tls.contexts import peer_node_name

TOKEN_PREFIX = "fy_"
_TOKEN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class Role(IntEnum):
    """Roles, each allowing what the lower ones allow."""

    GUEST = 1
    OPERATOR = 2
    ROOT = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            known = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {text!r} (roles: {known})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: Role
    via: str  # unix, token, node-cert, session
    session: Session | None = None

    @property
    def label(self) -> str:
        return f"{self.via}:{self.name}"


class TokenError(Exception):
    """A token cannot be created or revoked; the message says why."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_path(var_dir: Path) -> Path:
    return var_dir / "tokens.json"


@contextmanager
def _locked(var_dir: Path) -> Iterator[Path]:
    var_dir.mkdir(parents=True, exist_ok=True)
    path = tokens_path(var_dir)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b'{"tokens": []}\n')
            os.fsync(fd)
        finally:
            os.close(fd)
    lock = os.open(var_dir / ".tokens.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(lock)


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise TokenError(f"{path}: unreadable token file: {exc}") from None
    tokens = data.get("tokens", []) if isinstance(data, dict) else []
    return [t for t in tokens if isinstance(t, dict)]


def _write(path: Path, tokens: list[dict[str, Any]]) -> None:
    write_atomically(path, json.dumps({"tokens": tokens}, indent=2) + "\n")


def create_token(var_dir: Path, role: str, name: str) -> str:
    """Create a bearer token holding role; return it in clear (only its hash is stored)."""
    parsed = Role.parse(role)
    if not _TOKEN_NAME_RE.fullmatch(name):
        raise TokenError(f"{name!r} is not a valid token name (letters, digits, _ . @ -)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with _locked(var_dir) as path:
        tokens = _read(path)
        if any(t.get("name") == name for t in tokens):
            raise TokenError(f"a token named {name!r} exists; revoke it first")
        tokens.append(
            {"name": name, "role": parsed.label, "sha256": _hash(token), "created": time.time()}
        )
        _write(path, tokens)
    return token


def revoke_token(var_dir: Path, name: str) -> bool:
    """Remove the token named name; False when there was none."""
    with _locked(var_dir) as path:
        tokens = _read(path)
        kept = [t for t in tokens if t.get("name") != name]
        if len(kept) == len(tokens):
            return False
        _write(path, kept)
    return True


def list_tokens(var_dir: Path) -> list[dict[str, Any]]:
    """Name, role and creation time of every token (never the hashes)."""
    return [
        {"name": t.get("name"), "role": t.get("role"), "created": t.get("created")}
        for t in _read(tokens_path(var_dir))
    ]


class TokenStore:
    """The daemon's view of the token file, re-read when the file changes."""

    def __init__(self, var_dir: Path) -> None:
        self.path = tokens_path(var_dir)
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, Principal] = {}

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._by_hash = None, {}
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        table: dict[str, Principal] = {}
        try:
            entries = _read(self.path)
        except TokenError:
            entries = []  # a broken file grants nothing
        for entry in entries:
            try:
                role = Role.parse(str(entry.get("role", "")))
            except ValueError:
                continue
            digest = str(entry.get("sha256", ""))
            if digest:
                table[digest] = Principal(str(entry.get("name", "?")), role, "token")
        self._stamp, self._by_hash = stamp, table

    def lookup(self, token: str) -> Principal | None:
        self._refresh()
        return self._by_hash.get(_hash(token))

    def lookup_hash(self, digest: str) -> Principal | None:
        """The holder of the token whose hash is digest (a console session's token)."""
        self._refresh()
        return self._by_hash.get(digest)


def token_hash(token: str) -> str:
    return _hash(token)


LOCAL_ROOT = Principal("local", Role.ROOT, "unix")


def authenticate(
    request: web.Request,
    tokens: TokenStore,
    nodes: set[str],
    sessions: SessionStore | None = None,
) -> Principal | None:
    """The caller of request, or None when it proved nothing. A console session's caller
    has ``via`` ``session``: its writes must carry the session's CSRF token."""
    transport = request.transport
    if transport is None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_UNIX:
        return LOCAL_ROOT
    node = peer_node_name(transport.get_extra_info("peercert"))
    if node is not None and node in nodes:
        return Principal(node, Role.ROOT, "node-cert")
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return tokens.lookup(credential.strip())
    cookie = request.cookies.get(COOKIE)
    if sessions is not None and cookie:
        session = sessions.get(cookie)
        holder = tokens.lookup_hash(session.token_sha256) if session is not None else None
        if session is not None and holder is not None:
            return Principal(holder.name, holder.role, "session", session)
    return None
