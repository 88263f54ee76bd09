"""The common sync base without a network: the no-progress watchdog and the overall timeout,
one sync per resource at a time (flock, released on death), the split-brain guard's reasons,
and progress (total from a percentage, the terminal line, the status line).

A fake driver stands in for a real one (its transfer stalls, runs long or moves bytes on
cue) and a stub stands in for the ssh peers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from daemon.cli.sync_cmds import _terminal_progress
from daemon.config.ini import parse
from daemon.resources.status import Status
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.instance import Instance
from daemon.sync import base, stamps
from daemon.sync.base import SyncDriver, SyncRefused, TargetReport, TransferResult, _SyncLock
from daemon.sync.progress import Progress, total_from_percent
from daemon.sync.transport import Peers, RemoteResult, TransportError

REPO = Path(__file__).resolve().parents[2]

CONFIG = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[app#a]
start = touch {var}/a
stop = rm -f {var}/a
check = test -f {var}/a

[sync#1]
src = /srv/x/
dst = /srv/x
target = drpnodes
"""


class FakeDriver(SyncDriver):
    """A sync driver whose transfer does what the test says: ``behaviour`` is 'stall'
    (never moves a byte), 'long' (moves a byte now and then, forever), or a list of
    (bytes, percent) steps, 0.1 s apart, after which it succeeds."""

    behaviour: str | list[tuple[int, int]] = "stall"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = 0
        self.cancelled = False

    def label(self) -> str:
        return "fake"

    async def transfer(
        self, target: str, full: bool, peers: Peers, progress: Progress
    ) -> TransferResult:
        self.started += 1
        try:
            if self.behaviour == "stall":
                await asyncio.sleep(3600)
            if self.behaviour == "long":
                while True:
                    progress.add(1)
                    await asyncio.sleep(0.02)
            for moved, percent in self.behaviour:
                progress.set(moved, percent)
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return TransferResult(progress.moved, "incremental")


class StubPeers(Peers):
    """Peers that answer from memory: the target's status ('resources'), or an error."""

    def __init__(
        self,
        resources: dict[str, Any] | None = None,
        error: Exception | None = None,
        code: int = 0,
    ) -> None:
        super().__init__()
        self.resources = resources or {}
        self.error = error
        self.code = code
        self.calls: list[tuple[str, list[str], bytes | None]] = []

    async def run(
        self, node: str, argv: Sequence[str], *, timeout: float, input: bytes | None = None
    ) -> RemoteResult:
        self.calls.append((node, list(argv), input))
        if self.error is not None:
            raise self.error
        if self.code:
            return RemoteResult(self.code, "", "ferry: svc1: no such service\n")
        return RemoteResult(0, json.dumps({"resources": self.resources}), "")


@pytest.fixture(autouse=True)
def quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "WATCH_EVERY", 0.05)


def fake(tmp_path: Path, up: bool = True, **values: Any) -> FakeDriver:
    context = EvalContext("n1", var_dir=str(tmp_path))
    svc = ServiceConfig(parse(CONFIG, str(tmp_path / "svc1.conf")), context=context)
    (tmp_path / "services" / "svc1").mkdir(parents=True, exist_ok=True)
    instance = Instance(svc, "n1", tmp_path)
    real = instance.resources["sync#1"]
    driver = FakeDriver("sync#1", {**real.values, **values}, instance)
    instance.resources["sync#1"] = driver
    if up:
        (tmp_path / "services" / "svc1" / "a").touch()
    return driver


def sync(driver: SyncDriver, peers: Peers, action: str = "all") -> list[TargetReport]:
    return asyncio.run(driver.sync(action, peers))


# The watchdog and the timeout ----------------------------------------------------------------


def test_a_stalled_transfer_is_killed_by_the_watchdog(tmp_path: Path) -> None:
    driver = fake(tmp_path, stall_timeout=0.3, timeout=30)
    driver.behaviour = "stall"
    began = time.monotonic()
    [report] = sync(driver, StubPeers())
    assert time.monotonic() - began < 5
    assert (report.target, report.ok, report.mode) == ("n3", False, "failed")
    assert report.reason == "no progress for 0.3s: transfer killed"
    assert driver.started == 1 and driver.cancelled
    # no success recorded, no progress left for status readers
    assert stamps.read(stamps.sent_path(driver.state_dir, "sync#1", "n3")) is None
    assert not (driver.sync_dir / "progress.json").exists()


def test_a_transfer_that_runs_too_long_is_killed_by_the_timeout(tmp_path: Path) -> None:
    driver = fake(tmp_path, stall_timeout=30, timeout=0.5)
    driver.behaviour = "long"  # it moves bytes all along: the watchdog has nothing to say
    began = time.monotonic()
    [report] = sync(driver, StubPeers())
    assert 0.5 <= time.monotonic() - began < 5
    assert (report.ok, report.mode) == (False, "failed")
    assert report.reason == "transfer timed out after 0.5s"
    assert report.bytes > 0  # what it moved before being killed
    assert driver.cancelled
    assert stamps.read(stamps.sent_path(driver.state_dir, "sync#1", "n3")) is None


def test_a_transfer_that_ends_in_time_is_stamped_here_and_on_the_target(tmp_path: Path) -> None:
    driver = fake(tmp_path, stall_timeout=30, timeout=30)
    driver.behaviour = [(1000, 10), (5000, 50), (10000, 100)]
    peers = StubPeers()
    [report] = sync(driver, peers)
    assert (report.ok, report.mode, report.bytes) == (True, "incremental", 10000)
    assert not driver.cancelled
    sent = stamps.read(stamps.sent_path(driver.state_dir, "sync#1", "n3"))
    assert sent is not None and (sent.bytes, sent.source, sent.target) == (10000, "n1", "n3")
    # the guard's probe, then the stamp written on the target
    assert [node for node, _, _ in peers.calls] == ["n3", "n3"]
    assert peers.calls[1][2] is not None
    assert stamps.Stamp.from_json(peers.calls[1][2].decode()) == sent


# The guard ------------------------------------------------------------------------------------


def test_an_unreachable_target_is_refused_saying_so(tmp_path: Path) -> None:
    driver = fake(tmp_path)
    error = TransportError("cannot reach n3 over ssh: no connection within 10s", "no connection")
    [report] = sync(driver, StubPeers(error=error))
    assert (report.target, report.ok, report.mode) == ("n3", False, "skipped")
    assert report.reason == (
        "n3 unreachable over ssh: no connection; its state is unknown: not sending"
    )
    assert driver.started == 0


def test_a_target_that_cannot_tell_its_state_is_refused_with_its_answer(tmp_path: Path) -> None:
    driver = fake(tmp_path)
    [report] = sync(driver, StubPeers(code=1))
    assert report.mode == "skipped"
    assert "the target's state is unknown" in report.reason
    assert "no such service" in report.reason
    assert driver.started == 0


def test_a_target_running_the_service_is_refused(tmp_path: Path) -> None:
    driver = fake(tmp_path)
    resources = {"app#a": {"status": "up", "standby": False}}
    [report] = sync(driver, StubPeers(resources))
    assert report.mode == "skipped"
    assert "the service is up on the target (app#a)" in report.reason
    assert driver.started == 0


# One sync per resource at a time ---------------------------------------------------------------

HOLDER = """
import asyncio, sys, time
from pathlib import Path
from daemon.sync.base import _SyncLock

async def main() -> None:
    async with _SyncLock(Path(sys.argv[1]), "sync#1", 5):
        print("held", flush=True)
        await asyncio.sleep(float(sys.argv[2]))

asyncio.run(main())
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lock of sync#1 for up to 60 s."""
    path = tmp_path / "services" / "svc1" / "sync" / "sync#1" / "lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "60"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "services" / "svc1" / "sync" / "sync#1" / "lock"


async def take(path: Path, wait: float) -> float:
    """Seconds it took to get the lock."""
    began = time.monotonic()
    async with _SyncLock(path, "sync#1", wait):
        assert path.read_text() == str(os.getpid())
        return time.monotonic() - began


def test_a_second_sync_waits_then_is_refused_naming_the_first(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    began = time.monotonic()
    with pytest.raises(SyncRefused) as refused:
        asyncio.run(take(lock_path(tmp_path), 0.6))
    assert time.monotonic() - began >= 0.6
    assert str(refused.value) == (
        f"a sync of sync#1 is already running (pid {holder.pid}); waited 0.6s"
    )


def test_the_lock_is_released_when_its_holder_dies(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    async def kill_then_take() -> float:
        waiting = asyncio.ensure_future(take(lock_path(tmp_path), 10))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # it waits for the holder meanwhile
        os.kill(holder.pid, signal.SIGKILL)
        return await waiting

    assert 0.5 <= asyncio.run(kill_then_take()) < 3


def test_a_sync_of_the_resource_is_refused_while_another_runs(
    tmp_path: Path, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "SYNC_LOCK_WAIT", 0.3)
    driver = fake(tmp_path)
    with pytest.raises(SyncRefused, match=f"already running \\(pid {holder.pid}\\)"):
        sync(driver, StubPeers())
    assert driver.started == 0


def test_a_second_sync_in_the_same_process_waits_for_the_first(tmp_path: Path) -> None:
    async def both() -> tuple[float, float]:
        first = asyncio.ensure_future(hold(0.4))
        await asyncio.sleep(0.1)
        return await first, await take(lock_path(tmp_path), 5)

    async def hold(seconds: float) -> float:
        async with _SyncLock(lock_path(tmp_path), "sync#1", 5):
            await asyncio.sleep(seconds)
        return seconds

    _, waited = asyncio.run(both())
    assert waited < 1


# Progress -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moved", "percent", "total"),
    [
        (32768, 0, None),  # 0 % says nothing
        (32768, 1, 3276800),
        (1_081_344, 34, 3_180_423),
        (3_145_731, 100, 3_145_731),
        (500, 150, 500),  # never below what moved
    ],
)
def test_total_from_percent(moved: int, percent: int, total: int | None) -> None:
    assert total_from_percent(moved, percent) == total


def test_progress_with_a_percentage_has_an_eta() -> None:
    progress = Progress("n3", started=time.monotonic() - 10)
    progress.set(25 * 1024 * 1024, 25)
    assert progress.total == 100 * 1024 * 1024
    assert progress.eta is not None and 29 < progress.eta < 31  # 75 MiB left at 2.5 MiB/s
    assert progress.line() == "n3: 25.0 MiB of ~100.0 MiB, 2.5 MiB/s, ETA 30s"
    progress.set(25 * 1024 * 1024, 0)  # a 0 % line keeps the estimate
    assert progress.total == 100 * 1024 * 1024


def test_the_terminal_line_shows_bytes_rate_and_eta(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    driver = fake(tmp_path, stall_timeout=30, timeout=30)
    driver.behaviour = [(m * 1024 * 1024, m * 5) for m in range(1, 7)]
    driver.progress_reporter = _terminal_progress
    [report] = sync(driver, StubPeers())
    assert report.ok
    shown = [line for line in capsys.readouterr().err.split("\r\033[K") if line]
    assert shown, "no progress line"
    for line in shown:
        assert line.startswith("n3: ")
        assert " of ~20.0 MiB, " in line and "MiB/s, ETA " in line and line.endswith("s")


def test_status_shows_a_running_transfer_not_a_false_alarm(tmp_path: Path) -> None:
    driver = fake(tmp_path)
    # a transfer of this process running: late (never synced), yet not down
    progress = Progress("n3", started=time.monotonic() - 4, path=driver.sync_dir / "progress.json")
    progress.set(10 * 1024 * 1024, 50)
    progress.publish(force=True)
    report = asyncio.run(driver.status())
    assert report.status is Status.WARN
    assert report.log[0].startswith("info: transfer running: n3: 10.0 MiB of ~20.0 MiB, ")
    assert "MiB/s, ETA " in report.log[0]
    assert "warn: late: n3" in report.log
    progress.clear()
    assert asyncio.run(driver.status()).status is Status.DOWN
