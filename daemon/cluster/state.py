"""The cluster data, with one owner: what every node (this one included) last said.

:class:`ClusterState` is mutated only by its own task (:meth:`ClusterState.run`),
from messages posted to its queue: peer heartbeats, this node's instance
reports (from the monitor), operator expects (from the API), arbitrator votes.
Everyone else reads immutable :class:`Snapshot` objects and may wait for the
next one (:meth:`ClusterState.changed`).

Heartbeats: a full message (the sender's whole state) or a patch (what changed since
the sender's previous generation, see :func:`patch`). A patch is applied only on
the generation just before it, of the same boot; any other patch (a gap: a lost
message, a restart of ours, a new boot of the peer) is ignored and the
sender is asked for a full message through ``full_wanted`` in our own heartbeats.
Older or repeated generations are ignored.

Global expects are gossiped: every node re-publishes the newest expect it knows
for each service, so an expect set on one node reaches every node that hears
any node that knows it. Newest = greater stamp; at equal stamps, the one with
an outcome (reached / failed) wins. With a ``store`` path, the expects are kept on disk
(written when they change, read at start): a cluster restarted whole still knows the
operator's last word, and gossips it to a node that was down when it was said.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pydantic

from daemon.cluster.messages import ExpectMsg, HeartbeatMsg, InstanceMsg, PongMsg
from daemon.cluster.placement import NodeFacts
from daemon.config.store import write_atomically
from daemon.events import EventBus

log = logging.getLogger("ferry.cluster")

EXPECTS_FILE = "expects.json"  # <var dir>/expects.json: the global expects, kept


@dataclass(frozen=True)
class Expect:
    """An operator intent for one service, shared by all its nodes."""

    value: str  # "", started, stopped, frozen, thawed, placed, placed@<node>
    stamp: float
    origin: str
    outcome: str = ""  # "", reached, failed
    reason: str = ""
    action_id: str = ""

    @property
    def active(self) -> bool:
        return bool(self.value) and not self.outcome

    def key(self) -> tuple[float, bool]:
        return (self.stamp, bool(self.outcome))

    def to_msg(self) -> ExpectMsg:
        return ExpectMsg(
            value=self.value,
            stamp=self.stamp,
            origin=self.origin,
            outcome=self.outcome,  # type: ignore[arg-type]
            reason=self.reason,
            action_id=self.action_id,
        )

    @classmethod
    def from_msg(cls, msg: ExpectMsg) -> Expect:
        return cls(msg.value, msg.stamp, msg.origin, msg.outcome, msg.reason, msg.action_id)


@dataclass(frozen=True)
class NodeInfo:
    """One node as the cluster state knows it.

    The instances of a dead node are out of every view (:meth:`Snapshot.instances`, the
    API): they are kept only as the base a patch from it applies on (a node declared dead
    while its messages were only late comes back with its next patch, no round trip)."""

    name: str
    alive: bool = False
    alive_since: float = 0.0  # heard alive, this boot of its daemon, since then
    frozen: bool = False
    load: float = 0.0
    free_mem: float = 0.0
    score: float = 0.0
    last_seen: float | None = None
    boot: str = ""
    gen: int = 0
    instances: Mapping[str, InstanceMsg] = field(default_factory=dict)
    sees: frozenset[str] = frozenset()  # the nodes this node hears, as it last said
    full_wanted: frozenset[str] = frozenset()  # the peers it needs a full message from
    witnessed: bool = False  # silent to us, but a live peer still hears it: not dead
    digest: str = ""  # of instances, as its sender said (checked when they changed)
    quiet_until: float = 0.0  # a daemon that said it stops: its silence is not death before
    pongs: bool = False  # it reads our answers to its beats: while it beats, we need not
    stale: bool = False  # alive by its answers, its instances not heard since a silence


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of the cluster data at one moment."""

    local: str
    version: int
    started_at: float
    nodes: Mapping[str, NodeInfo]
    expects: Mapping[str, Expect]
    heard: frozenset[str]  # peers heard at least once since this daemon started
    arbitrator_votes: int = 0
    arbitrators: int = 0
    full_wanted: frozenset[str] = frozenset()  # peers we need a full message from

    def alive(self) -> list[str]:
        return [n for n, info in self.nodes.items() if info.alive]

    def unheard(self) -> frozenset[str]:
        """Nodes whose instances are unknown to us: a live peer hears them and we do not,
        or they answer our beats again after a silence and their state has not come yet."""
        others = [i for n, i in self.nodes.items() if n != self.local and i.alive]
        told = {n for info in others for n in info.sees if n in self.nodes}
        cut = {n for n in told if n != self.local and not self.nodes[n].alive}
        return frozenset(cut | {i.name for i in others if i.stale})

    def facts(self) -> dict[str, NodeFacts]:
        return {
            n: NodeFacts(n, i.alive, i.frozen, i.load, i.free_mem, i.score, i.alive_since)
            for n, i in self.nodes.items()
        }

    def instances(self, service: str) -> dict[str, InstanceMsg]:
        """The service's instances on alive nodes, and the last known ones of nodes we cannot
        hear but a live peer still does (a partition is not a death: never fail over then)."""
        return {
            n: info.instances[service]
            for n, info in self.nodes.items()
            if (info.alive or info.witnessed) and service in info.instances
        }

    def expect(self, service: str) -> Expect | None:
        return self.expects.get(service)

    @property
    def votes(self) -> tuple[int, int]:
        """(seen, total): alive nodes plus answering arbitrators, of all of them."""
        return len(self.alive()) + self.arbitrator_votes, len(self.nodes) + self.arbitrators

    @property
    def has_quorum(self) -> bool:
        seen, total = self.votes
        return 2 * seen > total


# ---------------------------------------------------------------------------- messages in


@dataclass(frozen=True)
class PeerHeartbeat:
    message: HeartbeatMsg
    received_at: float


@dataclass(frozen=True)
class PeerPong:
    message: PongMsg
    received_at: float


@dataclass(frozen=True)
class LocalInstances:
    """This node's instances, all of them (a missing service was removed)."""

    instances: Mapping[str, InstanceMsg]


@dataclass(frozen=True)
class LocalNode:
    frozen: bool
    load: float
    free_mem: float


@dataclass(frozen=True)
class SetExpect:
    service: str
    expect: Expect


@dataclass(frozen=True)
class ArbitratorVotes:
    votes: int


Message = PeerHeartbeat | PeerPong | LocalInstances | LocalNode | SetExpect | ArbitratorVotes


class ClusterState:
    """The single owner of the cluster data (see the module docstring)."""

    def __init__(
        self,
        local: str,
        peers: list[str],
        hb_timeout: float,
        events: EventBus,
        *,
        arbitrators: int = 0,
        clock: float | None = None,
        store: Path | None = None,
    ) -> None:
        self.local = local
        self.boot = ""  # this daemon's boot, as its heartbeats say it (set by Heartbeat)
        self.peers = [p for p in peers if p != local]
        self.hb_timeout = hb_timeout
        self.events = events
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        now = clock if clock is not None else time.time()
        self._nodes: dict[str, NodeInfo] = {
            local: NodeInfo(local, alive=True, alive_since=now, last_seen=now)
        }
        for peer in self.peers:
            self._nodes[peer] = NodeInfo(peer)
        self._store = store
        self._expects: dict[str, Expect] = load_expects(store) if store is not None else {}
        self._expects_dirty = False
        self._heard: set[str] = set()
        self._full_wanted: set[str] = set()  # peers whose patch we could not apply
        self._arbitrators = arbitrators
        self._arbitrator_votes = 0
        self._version = 0
        self._started_at = now
        self._changed = asyncio.Event()
        self._local_changed = asyncio.Event()
        self._local_dirty = False
        self.local_version = 0  # counts the changes of what this node sends
        self._sees: frozenset[str] = frozenset([local])  # the alive set we last sent
        self._snapshot = self._build()

    # ------------------------------------------------------------------ readers

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    async def changed(self, timeout: float) -> Snapshot:
        """The next snapshot, or the current one after timeout seconds."""
        event = self._changed
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass
        return self._snapshot

    async def local_changed(self, timeout: float, since: int | None = None) -> None:
        """Return when what this node sends changed (or after timeout seconds). With
        ``since`` (a :attr:`local_version` read before the last message was built), return
        at once when it changed since then: no change is missed while a message is sent."""
        event = self._local_changed
        if since is not None and since != self.local_version:
            return
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    def peer_state(self, name: str) -> str:
        """'up', 'down' or 'unknown' (never heard): the API's view of a peer."""
        info = self._snapshot.nodes.get(name)
        if info is None or info.last_seen is None:
            return "unknown"
        return "up" if info.alive else "down"

    # ------------------------------------------------------------------ writers (queue)

    def post(self, message: Message) -> None:
        """Hand a message to the owner; never blocks."""
        self._queue.put_nowait(message)

    async def run(self) -> None:
        """Apply messages; expire silent peers. Runs until cancelled."""
        tick = max(0.05, self.hb_timeout / 10)
        while True:
            try:
                async with asyncio.timeout(self._next_wake(time.time(), tick)):
                    message = await self._queue.get()
            except TimeoutError:
                message = None
            changed = self.apply(message, time.time()) if message is not None else False
            while not self._queue.empty():
                changed = self.apply(self._queue.get_nowait(), time.time()) or changed
            changed = self.expire(time.time()) or changed
            if changed:
                self._publish()

    # ------------------------------------------------------------------ the owner's work

    def _next_wake(self, now: float, tick: float) -> float:
        """Seconds until the owner looks again: the tick, or sooner when a peer's silence
        reaches the timeout before (a death is declared on time, not up to a tick late)."""
        due = [
            max(info.last_seen + self.hb_timeout, info.quiet_until) - now
            for name, info in self._nodes.items()
            if name != self.local and info.last_seen is not None and info.alive
        ]
        return max(0.01, min([tick, *(d + 0.01 for d in due)]))

    def _publish(self) -> None:
        if self._expects_dirty and self._store is not None:
            self._expects_dirty = False
            save_expects(self._store, self._expects)
        self._version += 1
        self._snapshot = self._build()
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        sees = frozenset(self._snapshot.alive())
        if sees != self._sees:
            # A witness answers now, not one interval later: a peer waiting to learn whether
            # anyone still hears a silent node decides within milliseconds (failover time).
            self._sees = sees
            self._local_dirty = True
        if self._local_dirty:
            self._local_dirty = False
            self.local_version += 1
            event, self._local_changed = self._local_changed, asyncio.Event()
            event.set()

    def _build(self) -> Snapshot:
        return Snapshot(
            local=self.local,
            version=self._version,
            started_at=self._started_at,
            nodes=dict(self._nodes),
            expects=dict(self._expects),
            heard=frozenset(self._heard),
            arbitrator_votes=self._arbitrator_votes,
            arbitrators=self._arbitrators,
            full_wanted=frozenset(self._full_wanted),
        )

    def apply(self, message: Message, now: float) -> bool:
        """Apply one message; True when the data changed. (Called by the owner, and tests.)"""
        if isinstance(message, PeerHeartbeat):
            return self._heartbeat(message.message, message.received_at)
        if isinstance(message, PeerPong):
            return self._pong(message.message, message.received_at)
        if isinstance(message, LocalInstances):
            info = self._nodes[self.local]
            if dict(info.instances) == dict(message.instances):
                return False
            self._nodes[self.local] = replace(info, instances=dict(message.instances))
            self._local_dirty = True
            return True
        if isinstance(message, LocalNode):
            info = self._nodes[self.local]
            new = replace(info, frozen=message.frozen, load=message.load, free_mem=message.free_mem)
            if new == info:
                return False
            self._nodes[self.local] = new
            return True
        if isinstance(message, SetExpect):
            return self._merge_expect(message.service, message.expect)
        if isinstance(message, ArbitratorVotes):
            if message.votes == self._arbitrator_votes:
                return False
            self._arbitrator_votes = message.votes
            return True
        return False

    def _merge_expect(self, service: str, expect: Expect) -> bool:
        current = self._expects.get(service)
        if current is not None and current.key() >= expect.key():
            return False
        self._expects[service] = expect
        self._local_dirty = True
        self._expects_dirty = True
        if expect.outcome:
            log.info("%s: expect %s %s %s", service, expect.value, expect.outcome, expect.reason)
        self.events.publish(
            "expect",
            {
                "service": service,
                "expect": expect.value,
                "outcome": expect.outcome,
                "reason": expect.reason,
            },
        )
        return True

    def _heartbeat(self, msg: HeartbeatMsg, now: float) -> bool:
        if msg.node not in self._nodes or msg.node == self.local:
            return False
        info = self._nodes[msg.node]
        same_boot = msg.boot == info.boot
        if same_boot and msg.gen <= info.gen:
            return False  # late or duplicate: we hold this generation or a newer one
        if msg.kind == "patch":
            # A patch applies only on the generation it was made from, of the same boot.
            if not (same_boot and (msg.base or msg.gen - 1) == info.gen):
                return self._want_full(msg, info)
            instances = {**info.instances, **msg.instances}
            for service in msg.removed:
                instances.pop(service, None)
            # ... and must leave our copy as the sender's: else ask for the whole state
            # (what makes rare full messages safe; see heartbeat.FULL_EVERY)
            changed = bool(msg.instances or msg.removed)
            ours = instances_digest(instances) if changed else info.digest
            if msg.digest and ours and ours != msg.digest:
                return self._want_full(msg, info, "its digest differs from our copy")
        else:
            instances = dict(msg.instances)
        if msg.node in self._full_wanted:
            self._full_wanted.discard(msg.node)
            self._local_dirty = True
        was_alive = info.alive
        self._nodes[msg.node] = NodeInfo(
            name=msg.node,
            alive=True,
            alive_since=info.alive_since if was_alive and same_boot else now,
            frozen=msg.frozen,
            load=msg.load,
            free_mem=msg.free_mem,
            score=msg.score,
            last_seen=now,
            boot=msg.boot,
            gen=msg.gen,
            instances=instances,
            sees=frozenset(msg.sees),
            full_wanted=frozenset(msg.full_wanted),
            digest=msg.digest or info.digest if msg.kind == "patch" else msg.digest,
            quiet_until=now + msg.leaving if msg.leaving > 0 else 0.0,
            pongs=msg.pongs,
        )
        if msg.leaving > 0:
            log.info("node %s: its daemon stops, its services run on: no failover for %gs",
                     msg.node, msg.leaving)  # fmt: skip
        self._heard.add(msg.node)
        for service, expect in msg.expects.items():
            self._merge_expect(service, Expect.from_msg(expect))
        if not was_alive:
            log.info("node %s is alive", msg.node)
            self.events.publish("node", {"node": msg.node, "state": "alive"})
        return True

    def _pong(self, msg: PongMsg, now: float) -> bool:
        """A peer's answer to our beat: it is alive, with these facts. Only for the boot we
        hold the state of (a restarted peer first sends its full state in a beat)."""
        info = self._nodes.get(msg.node)
        if info is None or msg.node == self.local or not info.boot or msg.boot != info.boot:
            return False
        was_alive = info.alive
        self._nodes[msg.node] = replace(
            info,
            alive=True,
            alive_since=info.alive_since if was_alive else now,
            frozen=msg.frozen,
            load=msg.load,
            free_mem=msg.free_mem,
            score=msg.score,
            last_seen=now,
            sees=frozenset(msg.sees),
            full_wanted=frozenset(msg.full_wanted),
            witnessed=False,
            quiet_until=0.0,
            stale=info.stale or not was_alive,
        )
        if not was_alive:
            # Back from a silence: what we hold of its instances is from before it, and a
            # pong does not carry them (after a partition it may run what we stopped). It
            # lives, its state comes with its next beat: a full one, which we ask for.
            log.info("node %s is alive: asking for its state", msg.node)
            self._full_wanted.add(msg.node)
            self._local_dirty = True
            self.events.publish("node", {"node": msg.node, "state": "alive"})
        return True

    def local_pong(self) -> PongMsg:
        """This node's answer to a peer's beat (see :class:`PongMsg`)."""
        snap = self._snapshot
        info = snap.nodes[self.local]
        return PongMsg(
            node=self.local,
            boot=self.boot,
            frozen=info.frozen,
            load=info.load,
            free_mem=info.free_mem,
            score=info.score,
            sees=sorted(snap.alive()),
            full_wanted=sorted(snap.full_wanted),
        )

    def _want_full(self, msg: HeartbeatMsg, info: NodeInfo, why: str = "") -> bool:
        """A patch we cannot apply (a gap, or a copy that would not match): ignore it, ask
        its sender for a full message (in our own heartbeats, ``full_wanted``); what we
        hold of that node stays as it was."""
        if msg.node in self._full_wanted:
            return False
        held = f"{info.gen} of boot {info.boot[:8]}" if info.boot else "nothing"
        log.info("%s: patch %d of boot %s, we hold %s%s: asking for a full message",
                 msg.node, msg.gen, msg.boot[:8], held, f" ({why})" if why else "")  # fmt: skip
        self._full_wanted.add(msg.node)
        self._local_dirty = True
        return True

    def expire(self, now: float) -> bool:
        """Peers silent for hb_timeout are dead and their data leaves every view, unless a live
        peer still hears them: then they are cut off from us only, their last known
        instances stay in view (so that nothing fails over), until no witness remains."""
        changed = False
        for name, info in list(self._nodes.items()):
            if name == self.local or info.last_seen is None:
                continue
            silent = now - info.last_seen > self.hb_timeout and now >= info.quiet_until
            if not silent or not (info.alive or info.witnessed):
                continue
            witnesses = [
                w
                for w, other in self._nodes.items()
                if w not in (name, self.local)
                and other.alive
                and other.last_seen is not None
                and now - other.last_seen <= self.hb_timeout
                and name in other.sees
            ]
            if witnesses:
                if info.alive or not info.witnessed:
                    self._nodes[name] = replace(info, alive=False, witnessed=True)
                    log.warning(
                        "node %s is silent to us but %s still hears it: not failing over",
                        name,
                        ", ".join(witnesses),
                    )
                    self.events.publish("node", {"node": name, "state": "unreachable"})
                    changed = True
                continue
            self._nodes[name] = replace(info, alive=False, witnessed=False)  # out of views
            log.warning("node %s is dead: silent for %.1fs", name, now - info.last_seen)
            self.events.publish("node", {"node": name, "state": "dead"})
            changed = True
        return changed

    def local_message(
        self, boot: str, gen: int, cluster: str, leaving: float = 0.0
    ) -> HeartbeatMsg:
        """This node's full state, as sent to peers (see :func:`patch` for the patches);
        ``leaving``: the last message of a daemon that stops."""
        snap = self._snapshot
        info = snap.nodes[self.local]
        return HeartbeatMsg(
            leaving=leaving,
            pongs=True,
            node=self.local,
            cluster=cluster,
            boot=boot,
            gen=gen,
            sent_at=time.time(),
            frozen=info.frozen,
            load=info.load,
            free_mem=info.free_mem,
            score=info.score,
            instances=dict(info.instances),
            digest=instances_digest(info.instances),
            expects={s: e.to_msg() for s, e in snap.expects.items()},
            sees=sorted(snap.alive()),
            full_wanted=sorted(snap.full_wanted),
        )


def instances_digest(instances: Mapping[str, InstanceMsg]) -> str:
    """A short digest of a node's instances, the same for the same content wherever it is
    computed (sorted keys, the instances' own fields with their defaults)."""
    canonical = {name: instances[name].model_dump(mode="json") for name in sorted(instances)}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def patch(previous: HeartbeatMsg, current: HeartbeatMsg) -> HeartbeatMsg:
    """The patch that turns ``previous`` (the full message of generation gen - 1) into
    ``current`` (the full message of gen): the instances and expects that changed, the
    services removed; the node facts, ``sees`` and ``full_wanted`` as they are (small)."""
    assert previous.kind == current.kind == "full" and previous.gen < current.gen
    instances = {
        s: i for s, i in current.instances.items() if previous.instances.get(s) != i
    }  # fmt: skip
    expects = {s: e for s, e in current.expects.items() if previous.expects.get(s) != e}
    removed = sorted(set(previous.instances) - set(current.instances))
    base = previous.gen if previous.gen + 1 != current.gen else 0
    return current.model_copy(
        update={"kind": "patch", "instances": instances, "expects": expects,
                "removed": removed, "base": base}
    )  # fmt: skip


def load_expects(path: Path) -> dict[str, Expect]:
    """The expects kept in path; none when it is missing or unreadable (said in the log:
    peers gossip theirs again)."""
    try:
        data = json.loads(path.read_text())
        adapter = pydantic.TypeAdapter(dict[str, ExpectMsg])
        return {s: Expect.from_msg(m) for s, m in adapter.validate_python(data).items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # pydantic.ValidationError is a ValueError
        log.warning("%s: unreadable, ignored (peers tell their expects again): %s", path,
                    str(exc).splitlines()[0])  # fmt: skip
        return {}


def save_expects(path: Path, expects: Mapping[str, Expect]) -> None:
    """Keep the expects in path (one atomic write); a failure is logged, never raised."""
    data = {s: e.to_msg().model_dump(mode="json") for s, e in sorted(expects.items())}
    try:
        write_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        log.warning("%s: expects not kept: %s", path, exc)
