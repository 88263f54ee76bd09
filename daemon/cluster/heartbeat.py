"""Heartbeat sender: this node's state to its peers, every hb_interval (and on change).

Transport: ``POST /api/cluster/heartbeat`` on the peer's TCP listener, over TLS
with this node's certificate as client certificate (the peer accepts only a
node certificate of the cluster CA whose CN is the sending node). Every beat
has the next generation number (``boot`` changes when the daemon restarts).

Between two nodes one beat goes a period: the node whose name sorts first beats the
other, whose answer carries its own state (``PongMsg``: alive, node facts, what it sees
and wants); the second beats the first only when something changed, when the first
stopped beating it, or when the first reads no answers (``pongs``). A peer gets a
**full** message first, then **patches** from the generation it got last (``base``). It
gets a full again: after a send to it failed, when it asks (a patch it could not apply,
or one that would leave its copy unlike ours: every message carries the digest of our
instances, see ``ClusterState``), when its daemon restarted (a new boot: it holds nothing
of us), and every ``FULL_EVERY`` beats (a safety net). At rest a patch carries the
node's facts only: the bytes on a link grow with the nodes, not with the services. Sends
to the peers run side by side; a beat goes out every hb_interval, and at once (at most
every ``MIN_GAP``) when what this node sends changes, the set of nodes it hears included.
A daemon that stops says so in a last beat (``farewell``: restart_grace).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import aiohttp

from daemon.cluster.messages import HeartbeatMsg, PongMsg
from daemon.cluster.state import ClusterState, LocalNode, PeerPong, Snapshot, patch
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
        self.delivered: dict[str, HeartbeatMsg] = {}  # peer -> the full of the gen it got
        self.delivered_boot: dict[str, str] = {}  # peer -> its boot when it got it
        self.failing: set[str] = set()  # peers whose last send failed (logged once)
        self.sent: dict[str, int] = {"full": 0, "patch": 0}  # messages delivered, by kind
        self.skipped = 0  # beats not sent: a peer that beats us hears us in our answers
        state.boot = self.boot
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self.leaving = 0.0  # set by farewell: the grace the last beat asks for

    def wants_full(self, peer: str, snap: Snapshot) -> bool:
        """Does this peer get the full message of this generation (else a patch from the
        generation it got last)?"""
        info = snap.nodes.get(peer)
        asked = info is not None and self.state.local in info.full_wanted
        # a peer that restarted holds nothing of us (and asks nothing: it got no patch)
        restarted = info is not None and info.boot != self.delivered_boot.get(peer, info.boot)
        return self.gen % FULL_EVERY == 0 or peer not in self.delivered or asked or restarted

    def quiet_towards(self, peer: str, diff: HeartbeatMsg, snap: Snapshot, now: float) -> bool:
        """May this beat to peer be left out? Between two nodes one beat a period goes, from
        the one whose name sorts first; the other one's answer carries its state
        (PongMsg). So: peer sorts first, reads our answers, beats us (we heard it within
        the period), and nothing but our node facts changed since what it got."""
        info = snap.nodes.get(peer)
        if info is None or not info.pongs or not peer < self.state.local:
            return False
        if info.last_seen is None or now - info.last_seen > 2 * self.config.cluster.hb_interval:
            return False
        held = self.delivered[peer]
        return not (diff.instances or diff.expects or diff.removed or diff.leaving) and (
            diff.sees == held.sees and diff.full_wanted == held.full_wanted
            and diff.frozen == held.frozen
        )  # fmt: skip

    def message(self, cluster: str) -> HeartbeatMsg:
        """The next generation's full message."""
        self.gen += 1
        return self.state.local_message(self.boot, self.gen, cluster, self.leaving)

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
        """Build the next generation and start its send to every peer not still busy: a full
        message, or a patch from what the peer got last (none when quiet_towards)."""
        full = self.message(cluster)
        snap = self.state.snapshot
        now = time.time()
        bodies: dict[tuple[str, int], str] = {}
        for peer in peers:
            busy = self._inflight.get(peer.name)
            if busy is not None and not busy.done():
                continue  # it misses this generation: a full message next time
            if self.wants_full(peer.name, snap):
                message, key = full, ("full", 0)
            else:
                base = self.delivered[peer.name]
                message, key = patch(base, full), ("patch", base.gen)
                if self.quiet_towards(peer.name, message, snap, now):
                    self.skipped += 1
                    continue
            if key not in bodies:
                # the defaults are left out (the receiver's model has them): a patch at
                # rest is the node's facts alone
                bodies[key] = message.model_dump_json(exclude_defaults=True)
            task = asyncio.create_task(self._send(session, peer, key[0], full, bodies[key]))
            task.add_done_callback(_log_crash)
            self._inflight[peer.name] = task

    async def _send(
        self, session: aiohttp.ClientSession, peer: Peer, kind: str, full: HeartbeatMsg, body: str
    ) -> None:
        url = peer_url(peer, self.config.node.tls) + "/api/cluster/heartbeat"
        failed = peer.name in self.failing
        known = self.state.snapshot.nodes.get(peer.name)
        boot = known.boot if known is not None else ""  # the boot this message goes to
        pong: PongMsg | None = None
        try:
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                ok = resp.status == 200
                if ok:
                    pong = _pong(await resp.read())
                elif not failed:
                    log.warning("heartbeat to %s: HTTP %s %s", peer.name, resp.status,
                                (await resp.text())[:200])  # fmt: skip
        except (aiohttp.ClientError, TimeoutError, OSError, ssl.SSLError) as exc:
            ok = False
            if not failed:
                log.info("heartbeat to %s failed: %s", peer.name, exc or type(exc).__name__)
        if ok:
            self.delivered[peer.name] = full
            self.delivered_boot[peer.name] = boot
            self.failing.discard(peer.name)
            self.sent[kind] += 1
            if pong is not None and pong.node == peer.name:
                self.state.post(PeerPong(pong, time.time()))
        else:  # it may have missed this generation: the next message to it is a full one
            self.delivered.pop(peer.name, None)
            self.failing.add(peer.name)


def _pong(body: bytes) -> PongMsg | None:
    """The peer's state in its answer, when it sends one (an older peer does not)."""
    try:
        state = json.loads(body).get("state")
        return PongMsg.model_validate(state) if state else None
    except (ValueError, AttributeError):  # pydantic's ValidationError is a ValueError
        return None


def _log_crash(task: asyncio.Task[None]) -> None:
    """A send that raised what ``_send`` does not expect: logged (the next beat retries)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("heartbeat send failed unexpectedly", exc_info=task.exception())


NODE_FROZEN = "node.frozen"  # <var dir>/node.frozen: the node-wide freeze flag
