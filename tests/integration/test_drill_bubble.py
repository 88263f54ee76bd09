"""A drill's bubble on this machine (root, no testbed needed): an overlay clone of a plain
directory (the clone used where the data is not a btrfs subvolume), writes inside that never
reach the directory, no way out to this machine's loopback, and nothing left after the end."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest

from daemon.drill.bubble import BRIDGE, create
from daemon.drill.clones import OVERLAY, Clone, Cloner
from daemon.system import process

pytestmark = pytest.mark.testbed  # root and the testbed's packages (util-linux, iproute2)


def _mounts() -> list[str]:
    return [
        " ".join(line.split()[3:5])
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
    ]


def test_overlay_clone_isolation_and_a_clean_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "kept").write_text("replicated\n")
    work = tmp_path / "work"
    work.mkdir()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    before = _mounts()

    async def scenario() -> None:
        bubble = await create(f"test-{uuid.uuid4().hex[:8]}")
        try:
            assert bubble.alive()
            links = (await bubble.run("ip", "-o", "link")).stdout
            assert BRIDGE in links and "eth0" not in links
            await Cloner(bubble, "svc", str(work)).make([Clone("fs#1", str(data), OVERLAY)])
            inside = await bubble.run("sh", "-c",
                f"cat {data}/kept && echo changed > {data}/kept && echo new > {data}/new && "
                f"cat {data}/kept")  # fmt: skip
            assert inside.stdout == "replicated\nchanged\n"
            assert (data / "kept").read_text() == "replicated\n"  # the lower dir: untouched
            assert not (data / "new").exists()
            assert _mounts() == before  # nothing of the bubble shows here
            probe = await bubble.run(
                "python3", "-c",
                f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)",
                check=False,
            )  # fmt: skip
            assert probe.returncode != 0  # this machine's loopback is not the bubble's
            sleeper = await bubble.run("sh", "-c", "sleep 600 >/dev/null 2>&1 & echo started")
            assert sleeper.stdout.strip() == "started"
            members = bubble.members()
            assert len(members) >= 2  # PID 1 and the sleeper
        finally:
            await bubble.end()
        assert not bubble.alive()
        assert not any(process.alive(pid) for pid in members)  # every process inside ended

    try:
        asyncio.run(scenario())
    finally:
        server.close()
    assert _mounts() == before
    assert (data / "kept").read_text() == "replicated\n"
