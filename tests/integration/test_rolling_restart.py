"""A rolling restart of ferryd on every node of a 6-node cluster, one at a time (as an
upgrade goes): no service stops or moves. Each stopping daemon tells its peers in a last
heartbeat that its services run on (restart_grace), so that its silence while it starts
again is not taken for a death.

The truth is read from the nodes themselves: each service's app keeps a file in /run/scale
of the node it runs on, made at its start; the set of (service, node, file time) must not
change from the first sample to the last."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from tests.integration.ops import wait
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

NODES = ("n1", "n2", "n3", "n4", "n5", "n6")
PAIRS = (("n1", "n2"), ("n3", "n4"), ("n5", "n6"), ("n2", "n3"), ("n4", "n5"), ("n6", "n1"))
APP = """
[app#0]
start = mkdir -p /run/scale && touch /run/scale/{name}
stop = rm -f /run/scale/{name}
check = test -f /run/scale/{name}
"""


def configs() -> dict[str, tuple[str, str]]:
    """Service -> (its nodes, its text): 18 failover services on six pairs, 2 flex ones."""
    out = {}
    for i in range(18):
        members = " ".join(PAIRS[i % len(PAIRS)])
        out[f"f{i:02d}"] = (members, f"[DEFAULT]\nnodes = {members}\norchestrate = ha\n")
    for i in range(2):
        members = " ".join(NODES[:3] if i == 0 else NODES[3:])
        text = (f"[DEFAULT]\nnodes = {members}\norchestrate = ha\ntopology = flex\n"
                "flex_min = 1\nflex_max = 2\n")  # fmt: skip
        out[f"x{i:02d}"] = (members, text)
    return {name: (members, text + APP.format(name=name)) for name, (members, text) in out.items()}


def running(tb: Testbed) -> set[tuple[str, str, int]]:
    """(service, node, the file's mtime in ns) for every app running in the cluster."""
    seen = set()
    for node in NODES:
        folder = tb.node_root(node) / "run/scale"
        try:
            for entry in os.scandir(folder):
                seen.add((entry.name, node, entry.stat().st_mtime_ns))
        except OSError:
            continue
    return seen


@pytest.fixture(scope="module")
def cluster(testbed_session: Testbed) -> Iterator[Testbed]:
    root = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{root}-rr", prefix=f"{testbed_session.prefix}rr-")
    tb.up(NODES, sites=[NODES[:3], NODES[3:]], pairs=True, light=NODES, disk_size="128M")
    try:
        for name, (members, text) in configs().items():
            for node in members.split():
                folder = tb.node_root(node) / "etc/ferry"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.conf").write_text(text)
        tb.start_ferryd(list(NODES))
        yield tb
    finally:
        tb.down()


def test_a_rolling_restart_stops_and_moves_nothing(cluster: Testbed) -> None:
    tb = cluster
    services = configs()

    def all_placed() -> bool:
        names = {name for name, _, _ in running(tb)}
        return names == set(services)

    wait("every service up", all_placed, 120)
    time.sleep(5)  # settled: flex services at their count, nothing starting
    before = running(tb)
    changes: list[tuple[float, set[tuple[str, str, int]]]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = running(tb)
            if now != before:
                changes.append((time.monotonic(), now ^ before))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for node in NODES:
            tb.stop_ferryd([node])
            tb.start_ferryd([node])
            time.sleep(3)  # heard again by its peers before the next one goes
    finally:
        stop.set()
        sampler.join()
    assert not changes, changes[:3]
    assert running(tb) == before
