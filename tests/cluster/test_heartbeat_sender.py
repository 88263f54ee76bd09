"""The heartbeat sender against real sockets on loopback: a peer that never answers holds up
no one, and misses only what it could not receive."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from daemon.cluster.heartbeat import Heartbeat
from daemon.cluster.state import ClusterState
from daemon.events import EventBus
from daemon.node.config import node_config_from_text


@pytest.fixture
async def answering() -> AsyncIterator[tuple[int, list[dict[str, object]]]]:
    """A peer that answers every heartbeat at once: (port, the messages it got)."""
    got: list[dict[str, object]] = []

    async def beat(request: web.Request) -> web.Response:
        got.append(json.loads(await request.text()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/cluster/heartbeat", beat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield port, got
    await runner.cleanup()


@pytest.fixture
async def silent() -> AsyncIterator[tuple[int, list[socket.socket]]]:
    """A peer that accepts connections and never answers: (port, connections accepted)."""
    accepted: list[socket.socket] = []

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("socket"))

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, accepted
    server.close()


async def test_a_silent_peer_holds_up_no_one_and_gets_a_full_after(
    answering: tuple[int, list[dict[str, object]]], silent: tuple[int, list[socket.socket]]
) -> None:
    (good, got), (bad, accepted) = answering, silent
    text = (
        "[node]\nname = n1\ntls = false\nlisten_addr = 127.0.0.1\n[cluster]\nname = c\n"
        f"peers = n1=127.0.0.1:1 n2=127.0.0.1:{good} n3=127.0.0.1:{bad}\n"
    )
    config = node_config_from_text(text, "node.conf", "n1")
    state = ClusterState("n1", ["n2", "n3"], hb_timeout=3.0, events=EventBus())
    hb = Heartbeat(state, config)
    peers = config.cluster.peers
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as session:
        for _ in range(5):
            hb.beat(session, "c", peers)
            await asyncio.sleep(0.1)
        # n2 got every generation in 0.5 s although the send to n3 hangs (2 s timeout)
        assert [(m["gen"], m.get("kind", "full")) for m in got] == [
            (1, "full"), (2, "patch"), (3, "patch"), (4, "patch"), (5, "patch"),
        ]  # fmt: skip
        assert len(accepted) == 1  # one send in flight to n3, no pile-up
        assert hb.wants_full("n3", state.snapshot)
        await asyncio.sleep(2.2)  # the send to n3 times out
        assert "n3" in hb.failing and "n3" not in hb.delivered
        hb.beat(session, "c", peers)
        await asyncio.sleep(0.1)
        assert got[-1]["gen"] == 6 and got[-1]["kind"] == "patch"
        assert len(accepted) == 2  # a new send to n3, the full message of generation 6
    for task in hb._inflight.values():
        task.cancel()
