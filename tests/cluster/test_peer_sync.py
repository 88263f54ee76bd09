"""The small calls of a sync through the peers' daemons (POST /api/cluster/services/{svc}/sync):
the rsync target's guard and destination, the stamp, the refusals, and the ssh fallback
when the peer's daemon does not answer."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from daemon.cluster.peer_client import PeerDaemonClient
from daemon.sync import stamps
from daemon.sync.base import SyncDriver
from daemon.sync.transport import Peers, RemoteResult, TransportError
from tests.cluster.conftest import MakeCluster, app_service

PATH = "/api/cluster/services/svc1/sync"


def rsync_service(dst: Path) -> str:
    extra = f"\n[sync#0]\ntype = rsync\nsrc = /etc/hostname\ndst = {dst}/\ntarget = nodes\n"
    return app_service("n1 n2", orchestrate="no") + extra


async def test_prepare_stamp_and_refusals_through_the_peer_daemon(
    make_cluster: MakeCluster, tmp_path: Path
) -> None:
    cluster = await make_cluster(("n1", "n2"))
    cluster.install("svc1", rsync_service(tmp_path / "dst"))
    for name in cluster.nodes:
        await cluster.start(name)
    n1, n2 = cluster["n1"], cluster["n2"]
    client = PeerDaemonClient(n1.config, n1.var_dir)
    try:
        # the guard and the destination, as n2 sees itself: service down, dst as written
        answer = await client.call("n2", PATH, {"rid": "sync#0", "verb": "prepare",
                                                "sender": "n1"}, timeout=10)  # fmt: skip
        assert answer is not None
        data = answer["answer"]
        assert data["dest"] == f"{tmp_path / 'dst'}/"
        assert data["avail"] in ("down", "n/a") and "app#a" in data["resources"]

        # the stamp of a transfer lands in n2's received stamp
        began = time.time() - 5
        stamp = stamps.Stamp(began, began + 1, 1234, 1.0, "full", "n1", "n2")
        body = {"rid": "sync#0", "verb": "stamp", "sender": "n1", "stamp": stamp.__dict__}
        # (its answer names the restore point kept: none, n2's dst holds no data here)
        assert await client.call("n2", PATH, body, timeout=10) == {"answer": {"point": ""}}
        received = stamps.read(n2.var_dir / "services" / "svc1" / "sync" / "sync#0" /
                               "received.json")  # fmt: skip
        assert received == stamp

        # refusals: another node's name, an unknown resource, a stamp call without stamp
        refused = [
            ({"rid": "sync#0", "verb": "prepare", "sender": "n3"}, "cannot speak for n3"),
            ({"rid": "sync#9", "verb": "prepare", "sender": "n1"}, "no sync resource sync#9"),
            ({"rid": "sync#0", "verb": "stamp", "sender": "n1"}, "without its stamp"),
            ({"rid": "app#a", "verb": "prepare", "sender": "n1"}, "no sync resource app#a"),
        ]
        for wrong, why in refused:
            try:
                await client.call("n2", PATH, wrong, timeout=10)
            except TransportError as exc:
                assert why in str(exc), exc
            else:
                raise AssertionError(f"{wrong} was accepted")
    finally:
        await client.close()

    # the local root (unix socket, no node certificate) may not use the peer route
    status, body = await n2.api("POST", PATH, {"rid": "sync#0", "verb": "prepare",
                                               "sender": "n1"})  # fmt: skip
    assert status == 403 and "node certificate" in body["error"]


async def test_a_silent_peer_daemon_means_ssh(make_cluster: MakeCluster, tmp_path: Path) -> None:
    """No daemon answering (stopped, or not a peer): None, and the sync goes over ssh."""
    cluster = await make_cluster(("n1", "n2"))
    cluster.install("svc1", rsync_service(tmp_path / "dst"))
    n1 = await cluster.start("n1")
    client = PeerDaemonClient(n1.config, n1.var_dir)
    try:
        body = {"rid": "sync#0", "verb": "prepare", "sender": "n1"}
        assert await client.call("n2", PATH, body, timeout=5) is None  # n2's ferryd is down
        assert await client.call("n9", PATH, body, timeout=5) is None  # not a peer
    finally:
        await client.close()

    class Ssh(Peers):
        """Records what would go over ssh instead of connecting."""

        def __init__(self) -> None:
            super().__init__(daemons=PeerDaemonClient(n1.config, n1.var_dir))
            self.argvs: list[list[str]] = []

        async def run(
            self, node: str, argv: Sequence[str], *, timeout: float, input: bytes | None = None
        ) -> RemoteResult:
            self.argvs.append(list(argv))
            answer = {"resources": {}, "dest": str(tmp_path / "dst"), "receive_mount": False}
            return RemoteResult(0, json.dumps(answer), "")

    assert n1.daemon is not None and n1.daemon.ctx is not None
    resource = n1.daemon.ctx.services.instance("svc1").resources["sync#0"]
    assert isinstance(resource, SyncDriver)
    peers = Ssh()
    try:
        data = await resource.probe("n2", peers)
    finally:
        await peers.close()
        await resource.finish_target("n2", peers)
    assert data["dest"] == str(tmp_path / "dst")
    assert peers.argvs and peers.argvs[0][-3:] == ["--", "prepare", "n1"]
