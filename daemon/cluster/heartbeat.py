"""Heartbeat sender: this node's state to every peer, every hb_interval (and on change).

Transport: ``POST /api/cluster/heartbeat`` on the peer's TCP listener, over TLS
with this node's certificate as client certificate (the peer accepts only a
node certificate of the cluster CA whose CN is the sending node). Every beat
has the next generation number (``boot`` changes when the daemon restarts).
A peer gets a **full** message first, then **patches** (what changed since the
previous generation). It gets a full again: after a send to it failed (it may
have missed a generation), when its own heartbeat says it wants one (it got a
patch it could not apply, or one that would leave its copy unlike ours: every message
carries the digest of our instances, see ``ClusterState``), and every ``FULL_EVERY``
beats (a safety net against anything else). At rest a patch carries the node's facts
only: the bytes on a node's link grow with the nodes, not with the services. Sends to
the peers run side by side; a beat goes out every hb_interval, and at once (at most
every ``MIN_GAP``) when what this node sends changes, the set of nodes it hears included
(see ``ClusterState``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import aiohttp

from daemon.cluster.messages import HeartbeatMsg
from daemon.cluster.state import ClusterState, LocalNode, Snapshot, patch
from daemon.node.config import NodeConfig, Peer
from daemon.tls.authority import tls_files
from daemon.tls.contexts import client_context

log = logging.getLogger("ferry.heartbeat")

MIN_GAP = 0.2  # at most this often on changes; the interval otherwise
FAREWELL_TIMEOUT = 2.0  # how long a stopping daemon waits for its last beat to go
# beats: a full message to every peer at least this often. Rare: the digest in every
# patch finds a copy that went wrong at the next beat (20 beats cost 49 KiB/s on a link
# with 500 services over 12 nodes; the full message is most of it)
FULL_EVERY = 300


class NodeContext(Protocol):
    """What a component that talks to the peers reads of the daemon (the API's context is
    one): where this node keeps its state and TLS material."""

    @property
    def var_dir(self) -> Path: ...


def peer_url(peer: Peer, tls: bool) -> str:
    host = f"[{peer.host}]" if ":" in peer.host else peer.host
    return f"{'https' if tls else 'http'}://{host}:{peer.port}"


def node_ssl(var_dir: os.PathLike[str] | str, tls: bool) -> ssl.SSLContext | bool:
    """The client TLS context of this node (its certificate, the cluster CA)."""
    if not tls:
        return False
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
        self.delivered: dict[str, int] = {}  # peer -> the generation last delivered to it
        self.failing: set[str] = set()  # peers whose last send failed (logged once)
        self.previous: HeartbeatMsg | None = None  # the full message of the last beat
        self.sent: dict[str, int] = {"full": 0, "patch": 0}  # messages delivered, by kind
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self.leaving = 0.0  # set by farewell: the grace the last beat asks for

    def wants_full(self, peer: str, snap: Snapshot) -> bool:
        """Does this peer get the full message of this generation (else the patch)? A patch
        only goes to a peer that got the generation before it."""
        info = snap.nodes.get(peer)
        asked = info is not None and self.state.local in info.full_wanted
        missed = self.delivered.get(peer) != self.gen - 1
        return self.gen % FULL_EVERY == 0 or missed or asked

    def messages(self, cluster: str) -> tuple[HeartbeatMsg, HeartbeatMsg | None]:
        """The next generation: its full message, and the patch from the previous one."""
        self.gen += 1
        full = self.state.local_message(self.boot, self.gen, cluster, self.leaving)
        diff = patch(self.previous, full) if self.previous is not None else None
        self.previous = full
        return full, diff

    async def run(self, ctx: NodeContext) -> None:
        """Send until cancelled. A peer that is slow to answer (cut off: its send waits for
        the timeout) holds up no one: it skips the generations sent meanwhile and gets a
        full message next."""
        cluster = self.config.cluster
        timeout = aiohttp.ClientTimeout(total=max(1.0, min(cluster.hb_timeout / 2, 5.0)))
        connector = aiohttp.TCPConnector(ssl=node_ssl(ctx.var_dir, self.config.node.tls))
        # no User-Agent, Accept, Accept-Encoding: a beat's request carries what it needs
        quiet = ("User-Agent", "Accept", "Accept-Encoding")
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, skip_auto_headers=quiet
        ) as session:
            try:
                while True:
                    load, free = _load_facts()
                    frozen = ctx.var_dir.joinpath(NODE_FROZEN).exists()
                    self.state.post(LocalNode(frozen, load, free))
                    await asyncio.sleep(0)  # let the owner apply before the message is built
                    version = self.state.local_version
                    self.beat(session, cluster.name, cluster.peers)
                    await self.state.local_changed(cluster.hb_interval, since=version)
                    await asyncio.sleep(MIN_GAP)
            finally:
                for task in self._inflight.values():
                    task.cancel()
                await asyncio.gather(*self._inflight.values(), return_exceptions=True)
                await self.farewell(session, cluster.name, cluster.peers, cluster.restart_grace)

    async def farewell(
        self, session: aiohttp.ClientSession, cluster: str, peers: Sequence[Peer], grace: float
    ) -> None:
        """The daemon stops (SIGTERM: a restart, an upgrade) and its services run on: a last
        beat tells the peers so, and for ``grace`` seconds they do not take its silence for
        its death. Never raises: the daemon stops whatever the peers answer. No grace
        (restart_grace = 0): it stops without a word, as before."""
        if grace <= 0:
            return
        self.leaving = grace
        try:
            self.beat(session, cluster, peers)
            await asyncio.wait(list(self._inflight.values()), timeout=FAREWELL_TIMEOUT)
        except Exception as exc:  # a stop goes on
            log.info("farewell heartbeat: %s", exc)
        finally:
            for task in self._inflight.values():
                task.cancel()

    def beat(self, session: aiohttp.ClientSession, cluster: str, peers: Sequence[Peer]) -> None:
        """Build the next generation and start its send to every peer not still busy."""
        full, diff = self.messages(cluster)
        snap = self.state.snapshot
        bodies: dict[str, str] = {}
        for peer in peers:
            busy = self._inflight.get(peer.name)
            if busy is not None and not busy.done():
                continue  # it misses this generation: a full message next time
            kind = "full" if diff is None or self.wants_full(peer.name, snap) else "patch"
            if kind not in bodies:
                message = full if kind == "full" else diff
                assert message is not None
                # the defaults are left out (the receiver's model has them): a patch at
                # rest is the node's facts alone
                bodies[kind] = message.model_dump_json(exclude_defaults=True)
            task = asyncio.create_task(self._send(session, peer, kind, self.gen, bodies[kind]))
            task.add_done_callback(_log_crash)
            self._inflight[peer.name] = task

    async def _send(
        self, session: aiohttp.ClientSession, peer: Peer, kind: str, gen: int, body: str
    ) -> None:
        url = peer_url(peer, self.config.node.tls) + "/api/cluster/heartbeat"
        failed = peer.name in self.failing
        try:
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                ok = resp.status == 200
                if not ok and not failed:
                    log.warning("heartbeat to %s: HTTP %s %s", peer.name, resp.status,
                                (await resp.text())[:200])  # fmt: skip
        except (aiohttp.ClientError, TimeoutError, OSError, ssl.SSLError) as exc:
            ok = False
            if not failed:
                log.info("heartbeat to %s failed: %s", peer.name, exc or type(exc).__name__)
        if ok:
            self.delivered[peer.name] = gen
            self.failing.discard(peer.name)
            self.sent[kind] += 1
        else:  # it may have missed this generation: the next message to it is a full one
            self.delivered.pop(peer.name, None)
            self.failing.add(peer.name)


def _log_crash(task: asyncio.Task[None]) -> None:
    """A send that raised what ``_send`` does not expect: logged (the next beat retries)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("heartbeat send failed unexpectedly", exc_info=task.exception())


NODE_FROZEN = "node.frozen"  # <var dir>/node.frozen: the node-wide freeze flag
