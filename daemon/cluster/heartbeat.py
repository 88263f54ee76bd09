"""Heartbeat sender: this node's full state to every peer, every hb_interval (and on change).

Transport: ``POST /api/cluster/heartbeat`` on the peer's TCP listener, over TLS
with this node's certificate as client certificate (the peer accepts only a
node certificate of the cluster CA whose CN is the sending node). Every message
is the full state with a generation number; ``boot`` changes when the daemon
restarts. A receiver keeps the newest generation of the current boot and
ignores older ones, so a lost message is simply repaired by the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import uuid
from typing import TYPE_CHECKING

import aiohttp

from daemon.api.tls import client_context, tls_files
from daemon.cluster.state import ClusterState, LocalNode
from daemon.node.config import NodeConfig, Peer

if TYPE_CHECKING:
    from daemon.api.context import ApiContext

log = logging.getLogger("ferry.heartbeat")

MIN_GAP = 0.2  # at most this often on changes; the interval otherwise


def peer_url(peer: Peer, tls: bool) -> str:
    host = f"[{peer.host}]" if ":" in peer.host else peer.host
    return f"{'https' if tls else 'http'}://{host}:{peer.port}"


def node_ssl(var_dir: os.PathLike[str] | str, tls: bool) -> ssl.SSLContext | bool:
    """The client TLS context of this node (its certificate, the cluster CA)."""
    if not tls:
        return False
    from pathlib import Path

    files = tls_files(Path(var_dir))
    return client_context(files.ca_cert, files.node_cert, files.node_key)


def _load_facts() -> tuple[float, float]:
    try:
        load = os.getloadavg()[2]
    except OSError:
        load = 0.0
    free = 0.0
    try:
        with open("/proc/meminfo") as handle:
            info = dict(line.split(":", 1) for line in handle if ":" in line)
        total = float(info["MemTotal"].split()[0])
        avail = float(info["MemAvailable"].split()[0])
        free = avail / total if total else 0.0
    except (OSError, KeyError, ValueError):
        pass
    return load, free


class Heartbeat:
    """Component: sends the local state to every peer."""

    name = "heartbeat"

    def __init__(self, state: ClusterState, config: NodeConfig) -> None:
        self.state = state
        self.config = config
        self.boot = uuid.uuid4().hex
        self.gen = 0
        self.sent_ok: dict[str, bool] = {}

    async def run(self, ctx: ApiContext) -> None:
        """Send until cancelled."""
        cluster = self.config.cluster
        peers = cluster.peers
        timeout = aiohttp.ClientTimeout(total=max(1.0, min(cluster.hb_timeout / 2, 5.0)))
        connector = aiohttp.TCPConnector(ssl=node_ssl(ctx.var_dir, self.config.node.tls))
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while True:
                load, free = _load_facts()
                frozen = ctx.var_dir.joinpath(NODE_FROZEN).exists()
                self.state.post(LocalNode(frozen, load, free))
                await asyncio.sleep(0)  # let the owner apply before the message is built
                self.gen += 1
                msg = self.state.local_message(self.boot, self.gen, cluster.name)
                body = msg.model_dump_json()
                async with asyncio.TaskGroup() as group:
                    for peer in peers:
                        group.create_task(self._send(session, peer, body))
                await self.state.local_changed(cluster.hb_interval)
                await asyncio.sleep(MIN_GAP)

    async def _send(self, session: aiohttp.ClientSession, peer: Peer, body: str) -> None:
        url = peer_url(peer, self.config.node.tls) + "/api/cluster/heartbeat"
        try:
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                ok = resp.status == 200
                if not ok and self.sent_ok.get(peer.name, True):
                    log.warning("heartbeat to %s: HTTP %s %s", peer.name, resp.status,
                                (await resp.text())[:200])  # fmt: skip
        except (aiohttp.ClientError, TimeoutError, OSError, ssl.SSLError) as exc:
            ok = False
            if self.sent_ok.get(peer.name, True):
                log.info("heartbeat to %s failed: %s", peer.name, exc or type(exc).__name__)
        self.sent_ok[peer.name] = ok


NODE_FROZEN = "node.frozen"  # <var dir>/node.frozen: the node-wide freeze flag
