"""Config distribution: a configuration installed on one node is pushed to the others.

The node where ``PUT /api/services/{svc}/config`` succeeded sends the text to every
other node of the service (nodes and drpnodes) it has a peer address for, on
``PUT /api/cluster/services/{svc}/config`` (node certificate). Each receiver
validates the text for itself before installing it, and never pushes further. A
service new to a receiver is installed frozen there (safer: nothing starts on a
node because a configuration arrived; an operator thaws or starts it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

import aiohttp

from daemon.cluster.heartbeat import NodeContext, node_ssl, peer_url
from daemon.node.config import NodeConfig

PUSH_TIMEOUT = 10.0


class PushContext(NodeContext, Protocol):
    """What a push reads of the daemon (the API's context is one): this node's name and
    node.conf, for the peers' addresses."""

    @property
    def node(self) -> NodeConfig: ...

    @property
    def nodename(self) -> str: ...


async def push(ctx: PushContext, service: str, text: str, nodes: Iterable[str]) -> dict[str, str]:
    """Send text to the service's other nodes; per node, 'installed' or why not."""
    peers = {p.name: p for p in ctx.node.cluster.peers}
    wanted = [n for n in nodes if n != ctx.nodename]
    out: dict[str, str] = {n: "not a peer of this node" for n in wanted if n not in peers}
    body = {"text": text, "origin": ctx.nodename}
    connector = aiohttp.TCPConnector(ssl=node_ssl(ctx.var_dir, ctx.node.node.tls))
    timeout = aiohttp.ClientTimeout(total=PUSH_TIMEOUT)

    async def one(session: aiohttp.ClientSession, name: str) -> None:
        url = f"{peer_url(peers[name], ctx.node.node.tls)}/api/cluster/services/{service}/config"
        try:
            async with session.put(url, json=body) as resp:
                if resp.status == 200:
                    out[name] = "installed"
                else:
                    data = await resp.json(content_type=None)
                    out[name] = f"refused ({resp.status}): {data.get('error', '?')}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            out[name] = f"unreachable: {exc or type(exc).__name__}"

    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        asyncio.TaskGroup() as group,
    ):
        for name in wanted:
            if name in peers:
                group.create_task(one(session, name))
    return out
