"""Quorum with an arbitrator (docs/cluster.md, Quorum): two in-process daemons, one
arbitrator served by the code of ``ferryd --arbitrator``, and the poller counting its vote."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.cluster.quorum import run_arbitrator
from tests.api.ferryd_proc import free_port
from tests.cluster.conftest import HB_TIMEOUT, READY, Cluster, MakeCluster, app_service, eventually

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Arbitrator:
    """The arbitrator's server as a task of the test's loop, stoppable and restartable."""

    port: int
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.task = asyncio.create_task(run_arbitrator("arb", "127.0.0.1", self.port, "test"))
        for _ in range(100):
            try:
                await asyncio.open_connection("127.0.0.1", self.port)
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError("the arbitrator did not listen")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None


@pytest.fixture
async def arbitrator() -> AsyncIterator[Arbitrator]:
    arb = Arbitrator(free_port())
    await arb.start()
    try:
        yield arb
    finally:
        await arb.stop()


async def _votes(cluster: Cluster, name: str) -> tuple[bool, list[int]]:
    status, body = await cluster[name].api("GET", "/api/cluster")
    assert status == 200
    return bool(body["quorum"]), list(body["votes"])


async def _quorum_cluster(make_cluster: MakeCluster, arb: Arbitrator, **kw: str) -> Cluster:
    cluster = await make_cluster(
        ("n1", "n2"), quorum=True, arbitrators=(arb.url,), rejoin_grace=0.5, **kw
    )
    # n2 is the leader: the service runs there first, n1 is the failover node.
    cluster.install("svc1", app_service("n2 n1"))
    for name in ("n2", "n1"):
        await cluster.start(name)

    async def on_n2_only() -> bool:
        return [n for n, node in cluster.nodes.items() if node.is_up("svc1")] == ["n2"]

    await eventually(on_n2_only, 10, "svc1 up on n2 (the leader) only")
    assert await _votes(cluster, "n1") == (True, [3, 3])
    return cluster


async def test_the_arbitrator_vote_lets_n1_fail_over_and_its_loss_stops_it(
    make_cluster: MakeCluster, arbitrator: Arbitrator
) -> None:
    cluster = await _quorum_cluster(make_cluster, arbitrator)
    n1 = cluster["n1"]
    await cluster.stop("n2")

    async def failed_over() -> bool:
        return n1.is_up("svc1")

    # n1 alone is 1 vote of 3; with the arbitrator's, 2 of 3: a majority, so it starts.
    await eventually(failed_over, HB_TIMEOUT + READY + 5, "svc1 fails over to n1")
    assert await _votes(cluster, "n1") == (True, [2, 3])

    await arbitrator.stop()
    stopped_at = time.monotonic()

    async def split_stop() -> bool:
        return not n1.is_up("svc1")

    # 1 of 3: no quorum; split_action = stop (the default) stops the ha instance.
    await eventually(split_stop, 5, "n1 stops svc1 when it loses quorum")
    assert time.monotonic() - stopped_at < 5
    assert await _votes(cluster, "n1") == (False, [1, 3])
    _, status = await n1.api("GET", "/api/services/svc1?refresh=true")
    assert status["avail"] == "down"

    # The arbitrator back: a majority again, and n1 starts the service once more.
    await arbitrator.start()

    async def up_again() -> bool:
        return n1.is_up("svc1")

    await eventually(up_again, READY + 6, "n1 starts svc1 again with quorum back")
    assert await _votes(cluster, "n1") == (True, [2, 3])


async def test_split_action_freeze_keeps_the_instance_and_starts_nothing(
    make_cluster: MakeCluster, arbitrator: Arbitrator
) -> None:
    cluster = await _quorum_cluster(make_cluster, arbitrator, split_action="freeze")
    n1 = cluster["n1"]
    await cluster.stop("n2")

    async def failed_over() -> bool:
        return n1.is_up("svc1")

    await eventually(failed_over, HB_TIMEOUT + READY + 5, "svc1 fails over to n1")
    await arbitrator.stop()

    async def no_quorum() -> bool:
        return (await _votes(cluster, "n1"))[0] is False

    await eventually(no_quorum, 5, "n1 loses quorum")
    await asyncio.sleep(2 * READY + 1)  # several monitor rounds without quorum
    assert n1.is_up("svc1")  # freeze: it keeps running


async def test_no_failover_without_the_arbitrator_vote(make_cluster: MakeCluster) -> None:
    # The arbitrator is configured but never answers: n1 alone has 1 vote of 3.
    silent = Arbitrator(free_port())
    cluster = await make_cluster(
        ("n1", "n2"), quorum=True, arbitrators=(silent.url,), rejoin_grace=0.5
    )
    cluster.install("svc1", app_service("n2 n1"))
    await cluster.start("n2")
    await cluster.start("n1")

    async def on_n2() -> bool:  # n1 + n2 = 2 of 3: the leader starts it
        return cluster["n2"].is_up("svc1")

    await eventually(on_n2, 10, "svc1 up on n2")
    await cluster.stop("n2")

    async def n2_dead() -> bool:
        return await _votes(cluster, "n1") == (False, [1, 3])

    await eventually(n2_dead, HB_TIMEOUT + 3, "n1 sees n2 dead, without quorum")
    await asyncio.sleep(READY + 1.5)
    assert not cluster["n1"].is_up("svc1")


# ------------------------------------------------------------------ the ferryd process


@pytest.fixture
def arbitrator_proc(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daemon.main",
            "--config-dir",
            str(tmp_path / "etc"),
            "--var-dir",
            str(tmp_path / "var"),
            "--arbitrator",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env={**os.environ, "FERRY_NODENAME": "arb1"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc, port, tmp_path / "var"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_ferryd_arbitrator_process_serves_health_only(
    arbitrator_proc: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, var = arbitrator_proc
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as resp:
                assert resp.status == 200
                body = json.loads(resp.read())
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "ferryd --arbitrator does not answer"
            time.sleep(0.05)
    assert body["status"] == "ok" and body["node"] == "arb1"
    for path in ("/api/node", "/api/cluster", "/api/services"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{url}{path}", timeout=2)
        assert info.value.code == 404
    # It makes no state of a node: no CA, no socket, no secret.
    assert not (var / "tls").exists() and not (var / "ferryd.sock").exists()
