"""Calls from this ferryd to a peer's ferryd for a sync (``PeerDaemons`` of
daemon/sync/transport.py), over the cluster's TLS API with this node's certificate.

A peer that is not in node.conf, or whose daemon does not answer, gives None: the sync
then reaches that node over ssh, as the CLI does.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import aiohttp

from daemon.cluster.heartbeat import node_ssl, peer_url
from daemon.node.config import NodeConfig
from daemon.sync.transport import TransportError

log = logging.getLogger("ferry.sync")


class PeerDaemonClient:
    """One aiohttp session to the peers' daemons, opened on the first call."""

    def __init__(self, config: NodeConfig, var_dir: os.PathLike[str] | str) -> None:
        self.peers = {p.name: p for p in config.cluster.peers}
        self.tls = config.node.tls
        self.var_dir = var_dir
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=node_ssl(self.var_dir, self.tls))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def call(
        self, node: str, path: str, body: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None:
        peer = self.peers.get(node)
        if peer is None:
            return None
        url = f"{peer_url(peer, self.tls)}{path}"
        try:
            session = self._open()
            async with session.post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                data = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            log.info("%s's ferryd does not answer (%s): using ssh", node, exc or type(exc).__name__)
            return None
        if status != 200 or not isinstance(data, dict):
            error = data.get("error", "?") if isinstance(data, dict) else str(data)[:200]
            raise TransportError(f"{node}'s ferryd refused {path} ({status}): {error}", error)
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
