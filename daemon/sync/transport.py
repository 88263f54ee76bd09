"""The transport to peers: asyncssh, root key authentication, known hosts, one connection
per peer reused by every transfer, timeouts everywhere, streaming with back-pressure.

In ferryd, the small calls of a sync (the rsync target's guard and destination, its
release, the stamps) go to the peer's own ferryd instead, over the cluster's
authenticated API (:class:`PeerDaemons`): no ssh connection, no Python started on the
target for them. A peer whose daemon does not answer is reached over ssh as by the CLI.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # imported on first use: a third of the CLI's start-up time, and the
    import asyncssh  # target side of a sync (run over ssh) never needs it

CONNECT_TIMEOUT = 10.0
CHUNK = 256 * 1024


class TransportError(Exception):
    """A peer cannot be reached, or a remote command failed.

    ``detail`` is the bare cause (the ssh error, the timeout), for messages that name the
    peer and the command their own way."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class RemoteResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def quote(argv: Sequence[str]) -> str:
    return shlex.join(argv)


class PeerDaemons(Protocol):
    """The peers' ferryd, as the local ferryd reaches them (node certificate)."""

    async def call(
        self, node: str, path: str, body: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None:
        """POST body to path on node's ferryd: its answer, or None when that daemon cannot
        be reached (the caller uses ssh). A daemon that answers with an error raises
        TransportError naming it."""

    async def close(self) -> None:
        """Release the connections."""


class Peers:
    """ssh connections to peers, opened on first use and reused; and, in ferryd, the
    peers' daemons for the small calls."""

    def __init__(
        self,
        user: str = "root",
        known_hosts: str | None = None,
        daemons: PeerDaemons | None = None,
    ) -> None:
        self.user = user
        self.known_hosts = known_hosts or os.path.expanduser("~/.ssh/known_hosts")
        self.daemons = daemons
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._lock = asyncio.Lock()

    async def daemon_call(
        self, node: str, path: str, body: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None:
        """The call answered by node's ferryd, or None: no daemons here, or it is down."""
        if self.daemons is None:
            return None
        return await self.daemons.call(node, path, body, timeout)

    async def connect(self, node: str) -> asyncssh.SSHClientConnection:
        import asyncssh

        async with self._lock:
            conn = self._conns.get(node)
            if conn is not None and not conn.is_closed():
                return conn
            try:
                conn = await asyncssh.connect(
                    node,
                    username=self.user,
                    known_hosts=self.known_hosts,
                    connect_timeout=CONNECT_TIMEOUT,
                    keepalive_interval=10,
                    keepalive_count_max=3,
                )
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                detail = _cause(exc)
                raise TransportError(f"cannot reach {node} over ssh: {detail}", detail) from None
            self._conns[node] = conn
            return conn

    async def run(
        self, node: str, argv: Sequence[str], *, timeout: float, input: bytes | None = None
    ) -> RemoteResult:
        """Run argv on node; the result carries the exit code (no exception on failure)."""
        import asyncssh

        conn = await self.connect(node)
        try:
            async with asyncio.timeout(timeout):
                done = await conn.run(quote(argv), input=input, encoding=None, check=False)
        except TimeoutError:
            detail = f"timed out after {timeout:g}s"
            raise TransportError(f"{node}: {quote(argv)}: {detail}", detail) from None
        except (OSError, asyncssh.Error) as exc:
            detail = _cause(exc)
            raise TransportError(f"{node}: {quote(argv)}: {detail}", detail) from None
        return RemoteResult(
            done.returncode if done.returncode is not None else -1,
            _text(done.stdout),
            _text(done.stderr),
        )

    async def pipe_to(
        self,
        node: str,
        argv: Sequence[str],
        source: AsyncIterator[bytes],
        on_bytes: Callable[[int], None],
    ) -> RemoteResult:
        """Stream source into argv's stdin on node, with back-pressure; the caller bounds time."""
        import asyncssh

        conn = await self.connect(node)
        try:
            process = await conn.create_process(quote(argv), encoding=None)
        except (OSError, asyncssh.Error) as exc:
            detail = _cause(exc)
            raise TransportError(f"{node}: cannot start {quote(argv)}: {detail}", detail) from None
        try:
            async for chunk in source:
                process.stdin.write(chunk)
                await process.stdin.drain()
                on_bytes(len(chunk))
            process.stdin.write_eof()
            done = await process.wait(check=False)
        except BaseException:
            process.kill()
            raise
        return RemoteResult(
            done.returncode if done.returncode is not None else -1,
            _text(done.stdout),
            _text(done.stderr),
        )

    async def close(self) -> None:
        if self.daemons is not None:
            await self.daemons.close()
        for conn in self._conns.values():
            conn.close()
        for conn in self._conns.values():
            await conn.wait_closed()
        self._conns.clear()


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return str(data or "")


def _cause(exc: BaseException) -> str:
    """An exception as an operator reads it (a timeout's own text is empty)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no connection within {CONNECT_TIMEOUT:g}s"
    return str(exc) or type(exc).__name__
