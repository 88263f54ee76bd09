"""Instance actions with real app resources (real shell commands): order, rollback, standby,
status folding, the action lock. The middleware use case of the seed needs nothing more."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from daemon.config.ini import parse
from daemon.resources.app.driver import Driver as AppDriver
from daemon.resources.base import StatusReport
from daemon.service import instance as instance_module
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.instance import ActionError, Instance, start_sequence
from daemon.service.lock import LockBusy, action_lock
from tests.unit.ferry_cli import ferry

CONFIG = """[DEFAULT]
nodes = n1
drpnodes = n3

[app#b]
start = echo start-b >> {var}/journal; touch {var}/b
stop = echo stop-b >> {var}/journal; rm -f {var}/b
check = test -f {var}/b

[app#a]
start = echo start-a >> {var}/journal; touch {var}/a
stop = echo stop-a >> {var}/journal; rm -f {var}/a
check = test -f {var}/a

[app#s]
standby = true
start = touch {var}/s
stop = rm -f {var}/s
check = test -f {var}/s
"""


def make(tmp_path: Path, extra: str = "", node: str = "n1", base: str = CONFIG) -> Instance:
    text = base + extra
    context = EvalContext(node, var_dir=str(tmp_path))
    svc = ServiceConfig(parse(text, str(tmp_path / "svc1.conf")), context=context)
    (tmp_path / "services" / "svc1").mkdir(parents=True, exist_ok=True)
    return Instance(svc, node, tmp_path)


def journal(tmp_path: Path) -> list[str]:
    path = tmp_path / "services" / "svc1" / "journal"
    return path.read_text().split() if path.exists() else []


def test_start_sequence_groups_then_dependents() -> None:
    pairs = [
        ("app#1", ""),
        ("container#1", ""),
        ("ip#0", "container#0"),
        ("fs#1", ""),
        ("container#0", ""),
        ("fs#0", ""),
        ("ip#1", ""),
    ]
    assert start_sequence(pairs) == [
        "ip#1",
        "fs#0",
        "fs#1",
        "container#0",
        "ip#0",
        "container#1",
        "app#1",
    ]


async def test_start_stop_order_and_status(tmp_path: Path) -> None:
    inst = make(tmp_path)
    state = await inst.start()
    assert journal(tmp_path) == ["start-a", "start-b"]
    assert state.avail == "up"
    assert state.resources["app#s"].status == "stdby up"
    state = await inst.stop()
    assert journal(tmp_path) == ["start-a", "start-b", "stop-b", "stop-a"]
    assert state.resources["app#a"].status == "down"
    assert state.resources["app#s"].status == "stdby up"  # stop leaves standby up
    assert state.avail == "stdby up"
    state = await inst.stop(force=True)
    assert state.resources["app#s"].status == "stdby down"


async def test_failed_start_rolls_back_and_names_resource(tmp_path: Path) -> None:
    inst = make(tmp_path, "\n[app#c]\nstart = echo disk on fire >&2; exit 3\n")
    with pytest.raises(ActionError) as caught:
        await inst.start()
    message = str(caught.value)
    assert message.startswith("app#c: start failed")
    assert "disk on fire" in message and "exit 3" in message
    assert journal(tmp_path) == ["start-a", "start-b", "stop-b", "stop-a"]
    state = await inst.status()
    assert state.resources["app#a"].status == "down"


async def test_rollback_false_leaves_resources(tmp_path: Path) -> None:
    no_rollback = CONFIG.replace("drpnodes = n3", "drpnodes = n3\nrollback = false")
    inst = make(tmp_path, "\n[app#c]\nstart = exit 1\n", base=no_rollback)
    with pytest.raises(ActionError):
        await inst.start()
    assert journal(tmp_path) == ["start-a", "start-b"]


async def test_optional_failure_does_not_fail_start(tmp_path: Path) -> None:
    inst = make(tmp_path, "\n[app#c]\noptional = true\nstart = exit 1\ncheck = exit 1\n")
    state = await inst.start()
    assert state.avail == "up"
    assert state.overall == "warn"


async def test_startstandby_starts_only_standby(tmp_path: Path) -> None:
    inst = make(tmp_path, node="n3")
    state = await inst.start(standby_only=True)
    assert journal(tmp_path) == []
    assert state.resources["app#s"].status == "stdby up"
    assert state.avail == "stdby up"


async def test_second_action_waits_then_is_refused_naming_the_first(tmp_path: Path) -> None:
    inst = make(tmp_path)
    async with action_lock(inst.state_dir, "stop", wait=1):
        with pytest.raises(LockBusy, match=r"'stop' \(pid \d+"):
            await inst.start(lock_wait=0.3)
    await inst.start(lock_wait=0.3)  # released: goes through


async def test_lock_waits_for_the_holder(tmp_path: Path) -> None:
    inst = make(tmp_path)

    async def hold() -> None:
        async with action_lock(inst.state_dir, "stop", wait=1):
            await asyncio.sleep(0.3)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    state = await inst.start(lock_wait=5)
    await holder
    assert state.avail == "up"


async def test_check_that_cannot_run_is_undef(tmp_path: Path) -> None:
    inst = make(tmp_path, "\n[app#c]\ncheck = true\ncwd = /nonexistent\n")
    state = await inst.status()
    assert state.resources["app#c"].status == "undef"
    assert state.resources["app#c"].log[0].startswith("error:")


def break_status_of(monkeypatch: pytest.MonkeyPatch, rid: str, fault: str) -> None:
    """Make the app driver's status() of rid really raise ("raise") or hang ("hang")."""
    original = AppDriver.status

    async def status(self: AppDriver) -> StatusReport:
        if self.rid == rid and fault == "raise":
            raise RuntimeError("driver bug: no such table")
        if self.rid == rid and fault == "hang":
            await asyncio.sleep(3600)
        return await original(self)

    monkeypatch.setattr(AppDriver, "status", status)


async def test_status_of_a_hanging_driver_is_undef(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_status_of(monkeypatch, "app#b", "hang")
    monkeypatch.setattr(instance_module, "STATUS_TIMEOUT", 0.2)
    state = await make(tmp_path).status()
    assert state.resources["app#b"].status == "undef"
    assert state.resources["app#b"].log == ["error: status timed out after 0.2s"]
    assert state.resources["app#a"].status == "down"


def test_cli_with_a_driver_whose_status_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """print status shows undef with the message and exits 0; start and stop go through."""
    break_status_of(monkeypatch, "app#b", "raise")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "svc1.conf").write_text(CONFIG)
    monkeypatch.setenv("FERRY_NODENAME", "n1")
    var = tmp_path / "var"
    (var / "services" / "svc1").mkdir(parents=True)
    base = ("--config-dir", str(conf), "--var-dir", str(var), "svc1")

    result = ferry(*base, "print", "status", "-o", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["resources"]["app#b"]["status"] == "undef"
    assert data["resources"]["app#b"]["log"] == ["error: RuntimeError: driver bug: no such table"]
    assert data["resources"]["app#a"]["status"] == "down"
    tree = ferry(*base, "print", "status")
    assert tree.code == 0 and "Traceback" not in tree.err
    assert "undef" in tree.out and "error: RuntimeError: driver bug: no such table" in tree.out

    started = ferry(*base, "start", "--local")
    assert started.code == 0, started.err
    assert (var / "services" / "svc1" / "b").exists()  # started although its status is broken
    data = json.loads(ferry(*base, "print", "status", "-o", "json").out)
    assert data["avail"] == "up" and data["overall"] == "warn"
    stopped = ferry(*base, "stop", "--local")
    assert stopped.code == 0, stopped.err
    assert not (var / "services" / "svc1" / "b").exists()


async def test_driver_bug_in_start_rolls_back_and_names_the_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AppDriver.start

    async def start(self: AppDriver) -> None:
        if self.rid == "app#b":
            raise KeyError("timeout")
        await original(self)

    monkeypatch.setattr(AppDriver, "start", start)
    inst = make(tmp_path)
    with pytest.raises(ActionError, match=r"^app#b: start failed: KeyError: 'timeout'$"):
        await inst.start()
    assert journal(tmp_path) == ["start-a", "stop-a"]


def test_cli_start_status_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "svc1.conf").write_text(CONFIG)
    monkeypatch.setenv("FERRY_NODENAME", "n1")
    base = ("--config-dir", str(conf), "--var-dir", str(tmp_path / "var"), "svc1")
    os.makedirs(tmp_path / "var" / "services" / "svc1")
    no_daemon = ferry(*base, "start")  # through the daemon, which does not run here
    assert no_daemon.code == 1 and "ferryd is not running" in no_daemon.err
    assert ferry(*base, "start", "--local").code == 0
    result = ferry(*base, "print", "status", "-o", "json")
    data = json.loads(result.out)
    assert data["avail"] == "up"
    assert set(data["resources"]["app#a"]) >= {
        "status",
        "label",
        "standby",
        "optional",
        "disabled",
        "log",
    }
    tree = ferry(*base, "print", "status").out
    assert "app#s" in tree and "...S stdby up" in tree
    assert ferry(*base, "stop", "--local", "--rid", "app#a").code == 0
    data = json.loads(ferry(*base, "print", "status", "-o", "json").out)
    assert data["resources"]["app#a"]["status"] == "down"
    assert data["resources"]["app#b"]["status"] == "up"
    assert data["avail"] == "warn"
    result = ferry(*base, "stop", "--local", "--rid", "app#zz")
    assert result.code == 1 and "no resource app#zz" in result.err
