"""Split-brain protection: arbitrator votes, and the ``ferryd --arbitrator`` mode.

With ``quorum = true`` a node counts the votes it sees: itself and every alive
peer (one each), plus every arbitrator that answers ``GET <url>/api/health``
with 200 (one each). Without a strict majority of all the votes, the node takes
no automatic start, and with ``split_action = stop`` (the default) it stops the
``orchestrate = ha`` failover instances it runs: the majority side will start
them after hb_timeout + ready_period, and two instances must never run at once.
``split_action = freeze`` keeps them running and takes no automatic action.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web

from daemon.cluster.heartbeat import NodeContext, node_ssl
from daemon.cluster.state import ArbitratorVotes, ClusterState
from daemon.node.config import NodeConfig

log = logging.getLogger("ferry.quorum")


class ArbitratorPoller:
    """Component: asks each arbitrator every hb_interval whether it answers."""

    name = "arbitrators"

    def __init__(self, state: ClusterState, config: NodeConfig) -> None:
        self.state = state
        self.config = config

    async def run(self, ctx: NodeContext) -> None:
        """Poll until cancelled."""
        cluster = self.config.cluster
        urls = list(cluster.arbitrators)
        timeout = aiohttp.ClientTimeout(total=max(1.0, min(cluster.hb_timeout / 2, 5.0)))
        connector = aiohttp.TCPConnector(ssl=node_ssl(ctx.var_dir, self.config.node.tls))
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while True:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self._ask(session, url)) for url in urls]
                self.state.post(ArbitratorVotes(sum(1 for t in tasks if t.result())))
                await asyncio.sleep(cluster.hb_interval)

    async def _ask(self, session: aiohttp.ClientSession, url: str) -> bool:
        try:
            async with session.get(url.rstrip("/") + "/api/health") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.debug("arbitrator %s: %s", url, exc)
            return False


def arbitrator_app(name: str, version: str) -> web.Application:
    """The arbitrator: one public health route, nothing else."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": name, "version": version})

    app = web.Application()
    app.router.add_get("/api/health", health)
    return app


async def run_arbitrator(name: str, host: str, port: int, version: str) -> None:
    """Serve the arbitrator on plain HTTP until cancelled."""
    runner = web.AppRunner(arbitrator_app(name, version), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("arbitrator %s listening on http://%s:%d", name, host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
