"""The DR activation's pre-flight summary (``ferry svc1 switch --to N`` / ``takeover``): its
text, and the confirmation: answering anything but yes does nothing."""

from __future__ import annotations

import asyncio
import builtins
import io
from typing import Any

import pytest

from daemon.cli import client
from daemon.cli.daemon_cmds import preflight_text
from tests.cluster.conftest import Cluster, MakeCluster, app_service, eventually
from tests.unit.ferry_cli import Result, ferry

ALIVE = {
    "running_on": ["n1"],
    "running_node_alive": True,
    "data_age": {"sync#1": {"n3": 95.0}, "sync#2": {"n3": None}},
    "will_start": ["fs#1", "app#a"],
}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def test_primary_alive_plan_syncs_a_last_time_then_stops_there_then_starts() -> None:
    text = preflight_text("svc1", "n3", ALIVE)
    lines = _lines(text)
    assert lines[0] == "Activate svc1 on n3."
    assert "runs now on: n1 (alive)" in lines
    assert "data of sync#1 on n3: 95s old" in lines
    assert "data of sync#2 on n3: never synced" in lines
    plan = next(line for line in lines if line.startswith("plan:"))
    # the order the daemon follows: final sync from the running node, stop there, start on n3
    steps = [plan.index(s) for s in ("final sync to n3", "stop on n1", "start on n3")]
    assert steps == sorted(steps), plan
    assert plan.endswith("nothing is lost")
    assert "will start: fs#1 app#a" in lines


@pytest.mark.parametrize(
    ("facts", "runs", "plan"),
    [
        (
            {**ALIVE, "running_node_alive": False},
            "runs now on: n1 (NOT reachable (dead or cut off))",
            "plan: start on n3 from its last synced data (data written on n1 since then is not "
            "there)",
        ),
        ({**ALIVE, "running_on": []}, "runs now on: nowhere", "plan: start on n3"),
    ],
    ids=["primary dead: starts from the last synced data", "running nowhere"],
)
def test_other_plans(facts: dict[str, Any], runs: str, plan: str) -> None:
    lines = _lines(preflight_text("svc1", "n3", facts))
    assert runs in lines and plan in lines
    assert not any("final sync" in line for line in lines)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def _cli(
    monkeypatch: pytest.MonkeyPatch, answer: str, *argv: str
) -> tuple[Result, list[str]]:
    """Run the CLI (blocking) in a thread while the daemons run in this loop; the prompt
    is answered with ``answer``."""
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return answer

    monkeypatch.setattr(builtins, "input", fake_input)
    monkeypatch.setattr("sys.stdin", _Tty())
    return await asyncio.to_thread(ferry, *argv), prompts


async def _activations(cluster: Cluster) -> list[dict[str, Any]]:
    found = []
    for node in cluster.nodes.values():
        _, body = await node.api("GET", "/api/actions?service=svc1")
        found += [a for a in body["actions"] if a["action"] in ("switch", "takeover")]
    return found


@pytest.fixture
async def running(make_cluster: MakeCluster) -> Cluster:
    """svc1 up on n1 (alive), n2 its DR node with a sync resource that never synced."""
    cluster = await make_cluster(("n1", "n2"))
    src = cluster.base / "data"
    src.mkdir()
    sync = f"[sync#1]\nsrc = {src}/\ndst = /tmp/ferry-test-nowhere\ntarget = drpnodes\n"
    cluster.install("svc1", app_service("n1", extra="drpnodes = n2") + sync)
    for name in cluster.nodes:
        await cluster.start(name)

    async def facts_ready() -> bool:
        _, facts = await cluster["n2"].api("GET", "/api/services/svc1/dr?to=n2")
        return bool(facts.get("running_on") == ["n1"] and facts.get("running_node_alive"))

    await eventually(facts_ready, 10, "n2 sees svc1 running on n1")
    return cluster


@pytest.mark.parametrize("action", ["switch", "takeover"])
async def test_answering_no_does_nothing(
    running: Cluster, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    cluster, n2 = running, running["n2"]
    submitted: list[tuple[Any, ...]] = []
    real_submit = client.submit_action

    def spy(*args: Any, **kw: Any) -> Any:
        submitted.append(args)
        return real_submit(*args, **kw)

    monkeypatch.setattr(client, "submit_action", spy)
    monkeypatch.setenv("FERRY_NODENAME", "n2")
    words = ["switch", "--to", "n2"] if action == "switch" else ["takeover"]
    result, prompts = await _cli(
        monkeypatch, "n",
        "--config-dir", str(n2.config_dir), "--var-dir", str(n2.var_dir), "svc1", *words,
    )  # fmt: skip
    assert prompts == ["Activate svc1 on n2? [y/N] "]
    assert result.code == 1 and "nothing done" in result.out
    lines = _lines(result.out)
    assert "runs now on: n1 (alive)" in lines
    assert "data of sync#1 on n2: never synced" in lines
    assert (
        "plan: sync to n2, stop the containers and apps on n1, final sync to n2, stop on n1, "
        "start on n2: nothing is lost"
    ) in lines
    assert submitted == []
    assert await _activations(cluster) == []
    _, view = await n2.api("GET", "/api/cluster")
    assert view["services"]["svc1"]["expect"] is None
    assert cluster["n1"].is_up("svc1") and not n2.is_up("svc1")


async def test_answering_yes_acts(running: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control of the test above: 'y' submits the switch (whose final sync fails here:
    n2 cannot be reached over ssh, so the service stays on n1)."""
    cluster, n2 = running, running["n2"]
    monkeypatch.setenv("FERRY_NODENAME", "n2")
    result, prompts = await _cli(
        monkeypatch, "y",
        "--config-dir", str(n2.config_dir), "--var-dir", str(n2.var_dir),
        "svc1", "switch", "--to", "n2", "--time", "30",
    )  # fmt: skip
    assert len(prompts) == 1 and "nothing done" not in result.out
    assert [a["action"] for a in await _activations(cluster)] == ["switch"]
    assert result.code == 1 and "final sync to n2 failed" in result.err, result
    assert cluster["n1"].is_up("svc1") and not n2.is_up("svc1")
