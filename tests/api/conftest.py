"""An in-process ferryd on loopback (unix socket + TLS), with app-only services."""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.api.auth import create_token
from daemon.daemon import Daemon
from daemon.node.config import node_config_from_text
from daemon.tls.authority import tls_files
from daemon.tls.contexts import client_context

NODE = "n1"

# A service of app resources only: real shell commands, no testbed.
APP_SERVICE = """[DEFAULT]
nodes = n1

[app#web]
start = touch {var}/web
stop = rm -f {var}/web
check = test -f {var}/web

[app#db]
start = touch {var}/db
stop = rm -f {var}/db
check = test -f {var}/db
"""

SLOW_SERVICE = """[DEFAULT]
nodes = n1

[app#slow]
start = sleep {env.delay}; touch {var}/slow
stop = rm -f {var}/slow
check = test -f {var}/slow

[env]
delay = 3
"""


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path: unix socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="fy", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Running:
    """A started in-process daemon and what a test needs to talk to it."""

    daemon: Daemon
    config_dir: Path
    var_dir: Path
    url: str
    ssl: ssl.SSLContext
    tokens: dict[str, str]

    def session(self, role: str | None = "root", **kwargs: Any) -> aiohttp.ClientSession:
        """A TLS session carrying the token of role (None: no credentials)."""
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        connector = aiohttp.TCPConnector(ssl=self.ssl)
        return aiohttp.ClientSession(self.url, headers=headers, connector=connector, **kwargs)

    def unix_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.UnixConnector(path=str(self.daemon.socket_path))
        return aiohttp.ClientSession("http://localhost", connector=connector)

    def write_service(self, name: str, text: str) -> None:
        (self.config_dir / f"{name}.conf").write_text(text)


def write_dirs(base: Path, services: dict[str, str]) -> tuple[Path, Path]:
    config_dir, var_dir = base / "etc", base / "var"
    config_dir.mkdir()
    var_dir.mkdir()
    for name, text in services.items():
        (config_dir / f"{name}.conf").write_text(text)
    return config_dir, var_dir


@pytest.fixture
async def ferryd(short_tmp: Path) -> AsyncIterator[Running]:
    config_dir, var_dir = write_dirs(short_tmp, {"svc1": APP_SERVICE, "slow": SLOW_SERVICE})
    config = node_config_from_text(
        "[node]\nstop_grace = 2s\n[cluster]\npeers = n2\n", "node.conf", NODE
    ).with_listen("127.0.0.1", 0)
    daemon = Daemon(config, config_dir, var_dir)
    await daemon.start()
    tokens = {
        role: create_token(var_dir, role, f"t-{role}") for role in ("root", "operator", "guest")
    }
    ca = tls_files(var_dir).ca_cert
    running = Running(
        daemon,
        config_dir,
        var_dir,
        f"https://127.0.0.1:{daemon.tcp_port}",
        client_context(ca),
        tokens,
    )
    try:
        yield running
    finally:
        await daemon.stop()
