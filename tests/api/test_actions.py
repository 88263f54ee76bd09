"""Actions through the API: ids, states, logs, results, events; the runner's limits."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.actions import ActionRecord, ActionRunner, ActionState, ActionStore, RunnerClosed
from daemon.events import EventBus
from tests.api.conftest import Running


async def _submit(session: aiohttp.ClientSession, svc: str, body: dict[str, Any]) -> str:
    async with session.post(f"/api/services/{svc}/actions", json=body) as resp:
        assert resp.status == 202, await resp.text()
        data = await resp.json()
        assert resp.headers["Location"] == data["href"] == f"/api/actions/{data['action_id']}"
        assert data["state"] == "queued"
        return str(data["action_id"])


async def _wait(session: aiohttp.ClientSession, action_id: str) -> dict[str, Any]:
    async with session.get(f"/api/actions/{action_id}?wait=10") as resp:
        assert resp.status == 200
        record: dict[str, Any] = await resp.json()
        return record


async def test_start_then_status_log_and_stop(ferryd: Running) -> None:
    async with ferryd.session("operator") as session:
        async with session.get("/api/services/svc1") as resp:
            assert (await resp.json())["avail"] == "down"
        action_id = await _submit(session, "svc1", {"action": "start"})
        record = await _wait(session, action_id)
        assert record["state"] == "succeeded", record
        assert record["id"] == action_id
        assert record["started_at"] <= record["ended_at"]
        assert record["result"]["status"]["avail"] == "up"
        messages = [line["message"] for line in record["log"]]
        assert any("app#db: start" in m for m in messages)
        assert any("app#web: start" in m for m in messages)
        async with session.get(f"/api/actions/{action_id}/log") as resp:
            log = await resp.json()
            assert log["state"] == "succeeded"
            assert [line["message"] for line in log["lines"]] == messages
        async with session.get("/api/services/svc1") as resp:
            status = await resp.json()
            assert status["avail"] == "up"
            assert status["resources"]["app#web"]["status"] == "up"
        async with session.get("/api/services") as resp:
            services = {s["name"]: s for s in (await resp.json())["services"]}
            assert services["svc1"]["avail"] == "up"
        record = await _wait(
            session, await _submit(session, "svc1", {"action": "stop", "rids": ["app#web"]})
        )
        assert record["state"] == "succeeded"
        assert record["result"]["status"]["resources"]["app#web"]["status"] == "down"
        assert record["result"]["status"]["resources"]["app#db"]["status"] == "up"
        async with session.get("/api/actions?service=svc1") as resp:
            listed = (await resp.json())["actions"]
            assert [a["action"] for a in listed] == ["stop", "start"]


async def test_failed_action_reports_the_error(ferryd: Running) -> None:
    ferryd.write_service(
        "bad", "[DEFAULT]\nnodes = n1\n\n[app#x]\nstart = echo boom >&2; exit 3\ncheck = false\n"
    )
    async with ferryd.session("root") as session:
        record = await _wait(session, await _submit(session, "bad", {"action": "start"}))
    assert record["state"] == "failed"
    assert "app#x: start failed" in record["error"] and "boom" in record["error"]
    assert any(line["level"] == "warning" for line in record["log"])


@pytest.mark.parametrize(
    "action", ["freeze", "thaw", "clear", "switch", "takeover", "giveback", "sync"]
)
async def test_later_actions_are_422_with_the_reason(ferryd: Running, action: str) -> None:
    async with (
        ferryd.session("root") as session,
        session.post("/api/services/svc1/actions", json={"action": action}) as resp,
    ):
        assert resp.status == 422
        body = await resp.json()
    assert body["error"] == f"action {action} arrives with the cluster issue"
    assert body["field"] == "action"


async def test_sse_sees_the_status_change_within_a_second(ferryd: Running) -> None:
    async with ferryd.session("guest") as guest, ferryd.session("operator") as operator:
        async with guest.get("/api/services/svc1?refresh=true") as resp:
            assert (await resp.json())["avail"] == "down"
        async with guest.get("/api/events") as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"] == "text/event-stream"
            first = await stream.content.readline()
            assert first.startswith(b":")
            await _submit(operator, "svc1", {"action": "start"})
            submitted = time.monotonic()
            kinds: list[str] = []
            async with asyncio.timeout(5):
                while True:
                    line = (await stream.content.readline()).decode().strip()
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    kinds.append(f"{event['kind']}:{event['data'].get('state', '')}")
                    if event["kind"] == "instance" and event["data"]["avail"] == "up":
                        break
            assert time.monotonic() - submitted < 1.0
            assert event["data"]["previous"] == {"avail": "down", "overall": "down"}
            assert kinds[:2] == ["action:queued", "action:running"]


async def test_events_replay_after_a_given_number(ferryd: Running) -> None:
    async with ferryd.session("operator") as session:
        await _wait(session, await _submit(session, "svc1", {"action": "start"}))
        async with session.get("/api/events", headers={"Last-Event-ID": "0"}) as stream:
            seen: list[int] = []
            async with asyncio.timeout(3):
                while len(seen) < 3:
                    line = (await stream.content.readline()).decode().strip()
                    if line.startswith("id:"):
                        seen.append(int(line[3:]))
            assert seen == [1, 2, 3]


async def test_sigterm_like_stop_ends_streams(ferryd: Running) -> None:
    async with ferryd.session("guest") as session, session.get("/api/events") as stream:
        await stream.content.readline()
        ferryd.daemon.ctx.events.close()  # type: ignore[union-attr]
        body = await asyncio.wait_for(stream.content.read(), 3)
        assert b"event: end" in body


# ---------------------------------------------------------------------------- the runner alone


async def _noop(record: ActionRecord) -> dict[str, Any]:
    await asyncio.sleep(float(record.params.get("sleep", 0)))
    if record.params.get("fail"):
        raise RuntimeError("a bug")
    return {"ok": True}


def _runner(tmp_path: Path, **kwargs: Any) -> ActionRunner:
    return ActionRunner(ActionStore(tmp_path / "actions"), _noop, EventBus(), **kwargs)


async def test_runner_concurrency_limit(tmp_path: Path) -> None:
    runner = _runner(tmp_path, max_concurrent=2)
    records = [runner.submit(f"s{i}", "start", {"sleep": 0.3}, "test") for i in range(5)]
    await asyncio.sleep(0.1)
    assert (runner.running, runner.queued) == (2, 3)
    for record in records:
        await runner.wait(record.id, 5)
    assert all(r.state is ActionState.SUCCEEDED for r in records)


async def test_runner_timeout_and_bug_become_failed_records(tmp_path: Path) -> None:
    runner = _runner(tmp_path, timeout=0.2)
    slow = runner.submit("s", "start", {"sleep": 5}, "test")
    buggy = runner.submit("s", "start", {"fail": True}, "test")
    await runner.wait(slow.id, 3)
    await runner.wait(buggy.id, 3)
    assert slow.state is ActionState.FAILED and slow.error == "timed out after 0.2s"
    assert buggy.state is ActionState.FAILED
    assert buggy.error == "internal error: RuntimeError: a bug"
    # Persisted as they ended.
    again = ActionStore(tmp_path / "actions").load(slow.id)
    assert again is not None and again.error == slow.error


async def test_runner_drain_cancels_queued_and_late_actions(tmp_path: Path) -> None:
    runner = _runner(tmp_path, max_concurrent=2)
    quick = runner.submit("s", "start", {"sleep": 0.1}, "test")
    late = runner.submit("s", "start", {"sleep": 30}, "test")
    queued = runner.submit("s", "start", {"sleep": 0}, "test")
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await runner.drain(grace=0.5)
    assert time.monotonic() - started < 2
    assert quick.state is ActionState.SUCCEEDED
    assert late.state is ActionState.FAILED and "while it ran" in (late.error or "")
    assert queued.state is ActionState.FAILED and "before it started" in (queued.error or "")
    with pytest.raises(RunnerClosed):
        runner.submit("s", "start", {}, "test")
    # Recovery of a crashed daemon's records.
    store = ActionStore(tmp_path / "actions")
    stale = ActionRecord("f" * 32, "s", "start", {}, "test", state=ActionState.RUNNING)
    store.save(stale)
    fresh = _runner(tmp_path)
    assert fresh.recover() == 1
    recovered = fresh.get(stale.id)
    assert recovered is not None and recovered.state is ActionState.FAILED
    assert "interrupted" in (recovered.error or "")


async def test_runner_keeps_a_bounded_number_of_records(tmp_path: Path) -> None:
    runner = _runner(tmp_path, keep=3)
    records = [runner.submit("s", "start", {}, "test") for _ in range(6)]
    for record in records:
        await runner.wait(record.id, 3)
    assert len(list((tmp_path / "actions").glob("*.json"))) == 3
    assert runner.get(records[0].id) is None and runner.get(records[-1].id) is not None
