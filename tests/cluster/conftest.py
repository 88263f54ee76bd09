"""Several in-process ferryd with the cluster layer, on loopback, sharing one cluster CA."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.daemon import Daemon
from daemon.node.config import NodeConfig, node_config_from_text
from daemon.tls.authority import init_cluster_ca, tls_files
from tests.api.ferryd_proc import free_port

HB_INTERVAL, HB_TIMEOUT, READY, REJOIN = 0.2, 1.0, 0.3, 2.0


def app_service(nodes: str, orchestrate: str = "ha", extra: str = "", start: str = "") -> str:
    """A service of one app resource whose state is a file in the node's var dir."""
    start = start or "touch {var}/up"
    return (
        f"[DEFAULT]\nnodes = {nodes}\norchestrate = {orchestrate}\n{extra}\n"
        f"[app#a]\nstart = {start}\nstop = rm -f {{var}}/up\ncheck = test -f {{var}}/up\n"
    )


@dataclass
class Node:
    name: str
    config: NodeConfig
    config_dir: Path
    var_dir: Path
    daemon: Daemon | None = None
    task: asyncio.Task[None] | None = None

    def session(self) -> aiohttp.ClientSession:
        assert self.daemon is not None
        connector = aiohttp.UnixConnector(path=str(self.daemon.socket_path))
        return aiohttp.ClientSession("http://localhost", connector=connector)

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session() as s, s.request(method, path, json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def act(self, svc: str, body: dict[str, Any], wait: float = 30.0) -> dict[str, Any]:
        status, accepted = await self.api("POST", f"/api/services/{svc}/actions", body)
        assert status == 202, accepted
        status, record = await self.api("GET", f"/api/actions/{accepted['action_id']}?wait={wait}")
        assert status == 200
        return dict(record)

    def is_up(self, svc: str) -> bool:
        return (self.var_dir / "services" / svc / "up").exists()


@dataclass
class Cluster:
    base: Path
    nodes: dict[str, Node] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def install(self, svc: str, text: str, on: list[str] | None = None) -> None:
        for name in on or list(self.nodes):
            (self.nodes[name].config_dir / f"{svc}.conf").write_text(text)

    async def start(self, name: str) -> Node:
        node = self.nodes[name]
        daemon = Daemon(node.config, node.config_dir, node.var_dir, cluster=True)
        node.daemon = daemon
        node.task = asyncio.create_task(daemon.run(), name=f"ferryd-{name}")
        deadline = time.monotonic() + 30
        # Ready once both listeners are up: the TCP one (peers) opens after the unix socket,
        # a TLS set-up later (seconds on a loaded machine).
        while not daemon.socket_path.exists() or (daemon.tcp and daemon.tcp_port is None):
            if node.task.done():
                node.task.result()
            assert time.monotonic() < deadline, f"{name} did not start"
            await asyncio.sleep(0.05)
        return node

    async def stop(self, name: str) -> None:
        node = self.nodes[name]
        if node.daemon is not None and node.task is not None:
            node.daemon.request_stop()
            await asyncio.wait_for(node.task, 15)
        node.daemon, node.task = None, None


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str = "condition"
) -> float:
    """Poll check until true; the seconds it took."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def short_base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fc", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


MakeCluster = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def make_cluster(short_base: Path) -> AsyncIterator[MakeCluster]:
    made: list[Cluster] = []

    async def make(names: tuple[str, ...] = ("n1", "n2", "n3"), **cluster_kw: Any) -> Cluster:
        ports = {n: free_port() for n in names}
        peers = " ".join(f"{n}=127.0.0.1:{p}" for n, p in ports.items())
        cluster = Cluster(short_base)
        ca_dir = short_base / "ca"
        init_cluster_ca(ca_dir, "test")
        quorum = cluster_kw.pop("quorum", False)
        for name in names:
            config_dir, var_dir = short_base / name / "etc", short_base / name / "var"
            config_dir.mkdir(parents=True)
            (var_dir / "tls").mkdir(parents=True)
            for f in (tls_files(ca_dir).ca_cert, tls_files(ca_dir).ca_key):
                shutil.copy(f, var_dir / "tls" / f.name)
            text = (
                f"[node]\nname = {name}\nlisten_port = {ports[name]}\nstop_grace = 2s\n"
                f"[cluster]\nname = test\npeers = {peers}\nquorum = {str(quorum).lower()}\n"
            )
            config = node_config_from_text(text, "node.conf", name)
            settings = {
                "hb_interval": HB_INTERVAL,
                "hb_timeout": HB_TIMEOUT,
                "ready_period": READY,
                "rejoin_grace": REJOIN,
                # a stop here stands for a death (no farewell): see test_restart_grace
                "restart_grace": 0.0,
                **cluster_kw,
            }
            config = replace(config, cluster=replace(config.cluster, **settings))
            cluster.nodes[name] = Node(name, config, config_dir, var_dir)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        for name in cluster.nodes:
            await cluster.stop(name)
