"""The CLI's side of the daemon's REST API: blocking calls over the unix socket or HTTPS.

By default the CLI talks to the local daemon through ``<var dir>/ferryd.sock``
(no token: the socket's permission is the authentication). With
``--server URL --token T`` it talks to any node over TCP, trusting the cluster
CA (``<var dir>/tls/ca.crt`` when readable, else ``ca_file``, else the system
store). Every call has a timeout; every failure is a :class:`ClientError` with
a message fit for the user (and the HTTP status and configuration issues when
the daemon sent them).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_VAR_DIR = Path("/var/lib/ferry")
DEFAULT_TIMEOUT = 30.0
LONG_POLL = 30.0


class ClientError(Exception):
    """A call that failed: no daemon, refused, or an error answer."""

    def __init__(
        self,
        message: str,
        status: int = 0,
        field: str | None = None,
        issues: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.issues = issues or []


@dataclass(frozen=True)
class Endpoint:
    """Where the daemon is: a unix socket, or a URL with a token."""

    socket_path: Path | None = None
    url: str | None = None
    token: str | None = None
    ca_file: Path | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return self.url or f"unix:{self.socket_path}"


def endpoint(
    var_dir: Path | str | None = None,
    server: str | None = None,
    token: str | None = None,
    ca_file: Path | str | None = None,
) -> Endpoint:
    """The endpoint for the CLI's options: ``--server URL --token T``, else the local socket."""
    var = Path(var_dir) if var_dir else DEFAULT_VAR_DIR
    if server is None:
        return Endpoint(socket_path=var / "ferryd.sock")
    parts = urlsplit(server if "://" in server else f"https://{server}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientError(f"--server {server!r}: expected https://HOST:PORT")
    ca = Path(ca_file) if ca_file else None
    if ca is None and (var / "tls" / "ca.crt").is_file():
        ca = var / "tls" / "ca.crt"
    return Endpoint(url=f"{parts.scheme}://{parts.netloc}", token=token, ca_file=ca)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _connection(ep: Endpoint, timeout: float) -> http.client.HTTPConnection:
    if ep.socket_path is not None:
        return _UnixConnection(ep.socket_path, timeout)
    assert ep.url is not None
    parts = urlsplit(ep.url)
    if parts.scheme == "http":
        return http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    ctx = ssl.create_default_context(cafile=str(ep.ca_file) if ep.ca_file else None)
    return http.client.HTTPSConnection(
        parts.hostname or "", parts.port or 7443, timeout=timeout, context=ctx
    )


def _open(
    ep: Endpoint, method: str, path: str, body: Any, timeout: float
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    headers = {"Accept": "application/json", **ep.extra_headers}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if ep.token:
        headers["Authorization"] = f"Bearer {ep.token}"
    conn = _connection(ep, timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        return conn, conn.getresponse()
    except FileNotFoundError:
        conn.close()
        raise ClientError(f"ferryd is not running (no socket {ep.socket_path})") from None
    except ConnectionRefusedError:
        conn.close()
        raise ClientError(
            f"ferryd is not running (connection refused at {ep.describe()})"
        ) from None
    except PermissionError:
        conn.close()
        raise ClientError(f"permission denied on {ep.describe()}: run as root") from None
    except ssl.SSLError as exc:
        conn.close()
        raise ClientError(f"TLS error with {ep.describe()}: {exc.reason or exc}") from None
    except TimeoutError:
        conn.close()
        raise ClientError(f"{ep.describe()} did not answer within {timeout:g}s") from None
    except OSError as exc:
        conn.close()
        raise ClientError(f"cannot reach {ep.describe()}: {exc.strerror or exc}") from None


def request(
    ep: Endpoint,
    method: str,
    path: str,
    body: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """One JSON call; the decoded answer, or ClientError for any failure."""
    conn, response = _open(ep, method, path, body, timeout)
    try:
        raw = response.read()
    except TimeoutError:
        raise ClientError(f"{ep.describe()} did not answer within {timeout:g}s") from None
    finally:
        conn.close()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if response.status >= 400:
        info = data if isinstance(data, dict) else {}
        message = str(info.get("error") or f"HTTP {response.status} {response.reason}")
        raise ClientError(message, response.status, info.get("field"), info.get("issues") or [])
    if data is None and raw:
        raise ClientError(f"{ep.describe()}: answer is not JSON")
    return data


def _svc(service: str) -> str:
    return quote(service, safe="")


# ---------------------------------------------------------------------------- reads


def health(ep: Endpoint, timeout: float = 5.0) -> dict[str, Any]:
    """``GET /api/health``: {status, node, version}."""
    result: dict[str, Any] = request(ep, "GET", "/api/health", timeout=timeout)
    return result


def get_node(ep: Endpoint, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """``GET /api/node``: this node's daemon: name, cluster, uptime, actions, listeners."""
    result: dict[str, Any] = request(ep, "GET", "/api/node", timeout=timeout)
    return result


def get_cluster(ep: Endpoint, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """``GET /api/cluster``: the cluster's name and nodes as this node sees them."""
    result: dict[str, Any] = request(ep, "GET", "/api/cluster", timeout=timeout)
    return result


def list_services(
    ep: Endpoint, refresh: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, Any]]:
    """``GET /api/services``: [{name, node, avail, overall, updated_at, error}]."""
    path = "/api/services" + ("?refresh=true" if refresh else "")
    result: list[dict[str, Any]] = request(ep, "GET", path, timeout=timeout)["services"]
    return result


def get_status(
    ep: Endpoint, service: str, refresh: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """``GET /api/services/{svc}``: the InstanceState dict (+ updated_at) of ``print status``."""
    path = f"/api/services/{_svc(service)}" + ("?refresh=true" if refresh else "")
    result: dict[str, Any] = request(ep, "GET", path, timeout=timeout)
    return result


def get_config(
    ep: Endpoint, service: str, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """``GET /api/services/{svc}/config``: {text, evaluated (for node), valid, issues}."""
    query = f"?{urlencode({'node': node})}" if node else ""
    result: dict[str, Any] = request(
        ep, "GET", f"/api/services/{_svc(service)}/config{query}", timeout=timeout
    )
    return result


def validate_config(
    ep: Endpoint, service: str, text: str, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """``POST .../config/validate``: {valid, issues} for a text, nothing installed."""
    result: dict[str, Any] = request(
        ep,
        "POST",
        f"/api/services/{_svc(service)}/config/validate",
        {"text": text},
        timeout=timeout,
    )
    return result


def put_config(
    ep: Endpoint, service: str, text: str, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """``PUT .../config``: install text; ClientError(status=422, issues=[...]) when invalid."""
    result: dict[str, Any] = request(
        ep, "PUT", f"/api/services/{_svc(service)}/config", {"text": text}, timeout=timeout
    )
    return result


# ---------------------------------------------------------------------------- actions


def get_action(ep: Endpoint, action_id: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """``GET /api/actions/{id}``: state, times, result, error, log."""
    result: dict[str, Any] = request(ep, "GET", f"/api/actions/{action_id}", timeout=timeout)
    return result


def get_action_log(
    ep: Endpoint, action_id: str, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, Any]]:
    """``GET /api/actions/{id}/log``: [{time, level, message}]."""
    result: list[dict[str, Any]] = request(
        ep, "GET", f"/api/actions/{action_id}/log", timeout=timeout
    )["lines"]
    return result


def list_actions(
    ep: Endpoint, service: str | None = None, limit: int = 50, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, Any]]:
    """``GET /api/actions``: recent actions, newest first."""
    query: dict[str, str | int] = {"limit": limit}
    if service:
        query["service"] = service
    result: list[dict[str, Any]] = request(
        ep, "GET", f"/api/actions?{urlencode(query)}", timeout=timeout
    )["actions"]
    return result


def wait_action(ep: Endpoint, action_id: str, timeout: float | None = None) -> dict[str, Any]:
    """Long-poll the action until it ends; after ``timeout`` seconds return it as it is."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = LONG_POLL if deadline is None else max(0.0, deadline - time.monotonic())
        wait = min(LONG_POLL, left)
        record: dict[str, Any] = request(
            ep, "GET", f"/api/actions/{action_id}?wait={wait:.1f}", timeout=wait + DEFAULT_TIMEOUT
        )
        if record["state"] in ("succeeded", "failed"):
            return record
        if deadline is not None and time.monotonic() >= deadline:
            return record


def submit_action(
    ep: Endpoint,
    service: str,
    action: str,
    *,
    rids: list[str] | None = None,
    force: bool = False,
    to: str | None = None,
    target: list[str] | None = None,
    mode: str | None = None,
    check: str | None = None,
    keep: bool = False,
    node: str | None = None,
    at: str | None = None,
    wait: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """``POST /api/services/{svc}/actions``.

    Without ``wait``: {action_id, state: queued, href}. With ``wait``: the action's
    record once it ended (``state`` succeeded or failed, ``error``, ``log``), or as
    it is after ``timeout`` seconds (state queued or running).
    """
    body: dict[str, Any] = {"action": action}
    if rids:
        body["rids"] = list(rids)
    if force:
        body["force"] = True
    if to:
        body["to"] = to
    if target:
        body["target"] = list(target)
    if check is not None:
        body["check"] = check
    if keep:
        body["keep"] = True
    if node:
        body["node"] = node
    if at:
        body["at"] = at
    if mode:
        body["mode"] = mode
    accepted: dict[str, Any] = request(ep, "POST", f"/api/services/{_svc(service)}/actions", body)
    if not wait:
        return accepted
    return wait_action(ep, accepted["action_id"], timeout)


# ---------------------------------------------------------------------------- events


def stream_events(
    ep: Endpoint, after: int | None = None, idle_timeout: float = 60.0
) -> Generator[dict[str, Any], None, None]:
    """``GET /api/events``: yield {seq, kind, time, data} as they come, until the stream ends.

    ``idle_timeout`` bounds the wait for a line (the daemon sends a keepalive every
    15 s). Close the generator to stop listening.
    """
    path = "/api/events" + (f"?after={after}" if after is not None else "")
    conn, response = _open(ep, "GET", path, None, idle_timeout)
    try:
        if response.status >= 400:
            raw = response.read()
            try:
                info = json.loads(raw)
            except ValueError:
                info = {}
            raise ClientError(str(info.get("error") or f"HTTP {response.status}"), response.status)
        data_lines: list[str] = []
        kind = ""
        while True:
            try:
                raw_line = response.readline()
            except TimeoutError:
                raise ClientError(f"no event nor keepalive for {idle_timeout:g}s") from None
            if not raw_line:
                return
            line = raw_line.decode(errors="replace").rstrip("\r\n")
            if line.startswith(":"):
                continue
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data_lines.append(line[5:].strip())
            elif not line and data_lines:
                payload = "\n".join(data_lines)
                data_lines = []
                if kind == "end":
                    return
                try:
                    yield json.loads(payload)
                except ValueError:
                    continue
    finally:
        conn.close()
