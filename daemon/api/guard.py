"""The connection guard: slow and greedy clients are cut off before they cost the daemon.

aiohttp has no time limit on reading a request head, and none on connections. Here:

* a request head (request line and headers) must be complete ``header_timeout`` after the
  connection opens or the next request's first byte arrives, else 408 and close; the TLS
  handshake has the same limit;
* a body must arrive within ``body_timeout`` plus its size over ``body_min_rate``
  (:func:`read_body`), else 408 and close;
* at most ``max_connections`` TCP connections in all and ``max_client_connections`` per
  client address; past either, a new connection is answered 503 and closed. The unix
  socket (local root) is never refused;
* what aiohttp's parser rejects (a line or header too long, bad bytes) is answered with the
  API's JSON error body and logged at debug level: a client's mistake is not the daemon's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from daemon.api.schemas import ErrorBody

log = logging.getLogger("ferry.api")

# aiohttp's parser limits: a request line or one header line, and the number of headers.
MAX_LINE = 8190
MAX_HEADERS = 128


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    body_min_rate: int = 64 * 1024
    max_connections: int = 2048
    max_client_connections: int = 128


def raw_error(status: int, reason: str, message: str, extra: str = "") -> bytes:
    """A complete HTTP/1.1 answer with the JSON error body, for use below aiohttp's router."""
    body = ErrorBody(error=message).model_dump_json().encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


class ConnectionCounts:
    """Open TCP connections, in all and per client address."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.per_client: Counter[str] = Counter()

    def admit(self, client: str) -> str | None:
        """Count a new connection; why it is refused (then not counted), or None."""
        if self.total >= self.limits.max_connections:
            return f"too many connections ({self.limits.max_connections}, max_connections)"
        if self.per_client[client] >= self.limits.max_client_connections:
            return (
                f"too many connections from {client} "
                f"({self.limits.max_client_connections}, max_client_connections)"
            )
        self.total += 1
        self.per_client[client] += 1
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


class GuardedHandler(RequestHandler):
    """aiohttp's connection protocol with a head timer, connection counting and JSON errors."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = manager.guard
        self.counts = manager.counts
        self.client: str | None = None  # counted TCP client address
        self.head_timer: asyncio.TimerHandle | None = None
        self.in_request = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):  # TCP; the unix socket's peer is '' and never refused
            refused = self.counts.admit(str(peer[0]))
            if refused:
                log.debug("refusing a connection from %s: %s", peer[0], refused)
                self._close_with(
                    raw_error(503, "Service Unavailable", refused, "Retry-After: 5\r\n")
                )
                return
            self.client = str(peer[0])
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.head_timer is None and not self.in_request:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if self.client is not None:
            self.counts.release(self.client)
            self.client = None
        super().connection_lost(exc)

    def request_started(self) -> None:
        """The request head is in: the head timer stops (the body has its own limit)."""
        self._disarm()
        self.in_request = True

    def request_ended(self) -> None:
        self.in_request = False

    def no_lingering(self) -> None:
        """After this answer, close at once instead of reading what is left of the body."""
        self._lingering_time = 0.0

    def _arm(self) -> None:
        self.head_timer = self._loop.call_later(self.guard.header_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_expired(self) -> None:
        self.head_timer = None
        if self.in_request:
            return
        timeout = self.guard.header_timeout
        log.debug("closing a connection from %s: no request head within %gs", self.client, timeout)
        message = f"no complete request head within {timeout:g}s (header_timeout)"
        self._close_with(raw_error(408, "Request Timeout", message))

    def _close_with(self, answer: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            try:
                transport.write(answer)
            except (OSError, RuntimeError):
                pass
        self.force_close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's own refusals (parser errors): a JSON error, a debug line, no traceback."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        text = message or (str(exc) if exc else "bad request")
        log.debug("bad request from %s: %s", request.remote, text)
        body = ErrorBody(error=f"bad request: {text}"[:500])
        response = web.Response(
            body=body.model_dump_json().encode(), status=status, content_type="application/json"
        )
        response.force_close()
        return response


class GuardedServer(web.Server):
    """aiohttp's server, making :class:`GuardedHandler` connections."""

    def __init__(self, *args: Any, guard: Limits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.counts = ConnectionCounts(guard)

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose server is a :class:`GuardedServer`."""

    def __init__(self, app: web.Application, guard: Limits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            guard=self.guard,
            **self._kwargs,
        )


class GuardedTCPSite(web.TCPSite):
    """A TCP site whose TLS handshake is bounded by ``header_timeout`` (aiohttp's TCPSite
    leaves asyncio's 60 s)."""

    def __init__(self, runner: GuardedRunner, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.handshake_timeout = runner.guard.header_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        extra: dict[str, Any] = {}
        if self._ssl_context is not None:
            extra["ssl_handshake_timeout"] = self.handshake_timeout
        self._server = await loop.create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            **extra,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
        else:
            self._bound_port = self._port


class BodyTooSlow(Exception):
    """The body did not arrive at the required rate."""


async def read_body(request: web.Request, limits: Limits, max_size: int) -> bytes:
    """The whole body, within ``body_timeout + received / body_min_rate`` seconds.

    Raises :class:`BodyTooSlow`, or aiohttp's 413 past max_size.
    """
    started = time.monotonic()
    data = bytearray()
    content = request.content
    while True:
        budget = started + limits.body_timeout + len(data) / limits.body_min_rate
        remaining = budget - time.monotonic()
        if remaining <= 0:
            raise BodyTooSlow(
                f"request body too slow: {len(data)} bytes in {time.monotonic() - started:.0f}s "
                f"(body_timeout {limits.body_timeout:g}s, body_min_rate "
                f"{limits.body_min_rate} bytes/s)"
            )
        try:
            async with asyncio.timeout(remaining):
                chunk = await content.readany()
        except TimeoutError:
            continue  # the budget check above words the refusal
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > max_size:
            raise web.HTTPRequestEntityTooLarge(max_size=max_size, actual_size=len(data))


def protocol_of(request: web.Request) -> GuardedHandler | None:
    protocol = request.protocol
    return protocol if isinstance(protocol, GuardedHandler) else None
