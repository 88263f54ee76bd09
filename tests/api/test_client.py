"""The CLI's HTTP client against a running daemon (blocking calls run in a thread)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from daemon.cli import client
from daemon.cli.client import ClientError
from tests.api.conftest import Running


async def test_config_calls_and_their_errors(ferryd: Running) -> None:
    local = client.endpoint(ferryd.var_dir)
    view = await asyncio.to_thread(client.get_config, local, "svc1", "n1")
    assert view["valid"] and view["evaluated"]["DEFAULT"]["nodes"] == ["n1"]
    report = await asyncio.to_thread(client.validate_config, local, "svc1", "[DEFAULT]\nbogus=1\n")
    assert report["valid"] is False and report["issues"][0]["keyword"] == "bogus"
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(client.put_config, local, "svc1", "[DEFAULT]\nbogus=1\n")
    assert info.value.status == 422 and info.value.field == "text"
    assert info.value.issues[0]["line"] == 2
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(client.get_status, local, "nosuch")
    assert (info.value.status, str(info.value)) == (404, "no service 'nosuch' on this node")


async def test_remote_calls_with_token_and_roles(ferryd: Running) -> None:
    url = ferryd.url
    guest = client.endpoint(ferryd.var_dir, url, ferryd.tokens["guest"])
    assert guest.ca_file == ferryd.var_dir / "tls" / "ca.crt"
    services = await asyncio.to_thread(client.list_services, guest)
    assert {s["name"] for s in services} == {"svc1", "slow"}
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(client.submit_action, guest, "svc1", "start")
    assert info.value.status == 403
    nobody = client.endpoint(ferryd.var_dir, url, "fy_wrong")
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(client.get_node, nobody)
    assert info.value.status == 401


async def test_submit_wait_and_events(ferryd: Running) -> None:
    local = client.endpoint(ferryd.var_dir)
    events = client.stream_events(local, after=0, idle_timeout=5)
    record = await asyncio.to_thread(
        lambda: client.submit_action(
            local, "svc1", "start", rids=["app#web"], wait=True, timeout=10
        )
    )
    assert record["state"] == "succeeded"
    assert record["params"] == {"rids": ["app#web"], "force": False}
    lines = await asyncio.to_thread(client.get_action_log, local, record["id"])
    assert any("app#web: start" in line["message"] for line in lines)
    # Replay from the beginning: queued, running, instance, succeeded.
    seen = await asyncio.to_thread(lambda: list(itertools.islice(events, 4)))
    events.close()
    assert [e["kind"] for e in seen] == ["action", "action", "instance", "action"]
    assert seen[-1]["data"]["state"] == "succeeded"
    recent = await asyncio.to_thread(client.list_actions, local, "svc1")
    assert recent[0]["id"] == record["id"]


async def test_wait_gives_up_at_its_timeout(ferryd: Running) -> None:
    local = client.endpoint(ferryd.var_dir)
    accepted = await asyncio.to_thread(client.submit_action, local, "slow", "start")
    record = await asyncio.to_thread(client.wait_action, local, accepted["action_id"], 0.5)
    assert record["state"] == "running"


def test_errors_when_no_daemon(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="ferryd is not running"):
        client.health(client.endpoint(tmp_path))
    with pytest.raises(ClientError, match=r"ferryd is not running|cannot reach"):
        client.health(client.endpoint(tmp_path, "https://127.0.0.1:1", "t"))
    with pytest.raises(ClientError, match="expected https"):
        client.endpoint(tmp_path, "ftp://x", "t")
