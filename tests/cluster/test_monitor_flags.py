"""How the monitor turns expects into this node's persistent instance flags, and when it
holds a start back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from daemon.cluster.flags import frozen_path, set_flag
from daemon.cluster.messages import HeartbeatMsg, PongMsg
from daemon.cluster.monitor import Monitor
from daemon.cluster.orchestrate import Decision, ServiceView
from daemon.cluster.state import ClusterState, Expect, PeerHeartbeat, PeerPong, SetExpect
from daemon.events import EventBus
from daemon.node.config import node_config_from_text

T = 1_000_000.0  # the expect's stamp


def _monitor(var_dir: Path) -> Monitor:
    config = node_config_from_text(
        "[node]\nname = n1\n[cluster]\nname = c\npeers = n1=127.0.0.1:1 n2=127.0.0.1:2\n",
        "node.conf",
        "n1",
    )
    state = ClusterState("n1", ["n2"], hb_timeout=3.0, events=EventBus(), clock=0.0)
    return Monitor(state, config, var_dir)


def _follow(monitor: Monitor, expect: Expect) -> None:
    monitor.state.apply(SetExpect("svc1", expect), 0.0)
    monitor.state._publish()
    instances: dict[str, Any] = {"svc1": None}  # only the names are read
    monitor._follow_flags(monitor.state.snapshot, instances)


@pytest.mark.parametrize(
    ("frozen_at", "expect", "frozen_after"),
    [
        (None, Expect("frozen", T, "n2"), True),
        (None, Expect("frozen", T, "n2", "reached"), True),  # heard of it late: applies too
        (None, Expect("stopped", T, "n2"), True),
        (T - 10, Expect("thawed", T, "n2"), False),
        (T - 10, Expect("started", T, "n2", "reached"), False),
        (T - 10, Expect("placed@n2", T, "n2", "failed"), False),
        # frozen here after a decided expect (freezestop, a config installed frozen, then a
        # daemon restart): the old expect does not undo it
        (T + 10, Expect("thawed", T, "n2", "reached"), True),
        (T + 10, Expect("started", T, "n2", "reached"), True),
        # an expect still active is the operator's current intent: followed
        (T + 10, Expect("thawed", T, "n2"), False),
    ],
)
def test_expects_set_and_clear_the_instance_flag(
    tmp_path: Path, frozen_at: float | None, expect: Expect, frozen_after: bool
) -> None:
    monitor = _monitor(tmp_path)
    flag = frozen_path(tmp_path, "svc1")
    if frozen_at is not None:
        set_flag(flag, True)
        os.utime(flag, (frozen_at, frozen_at))
    _follow(monitor, expect)
    assert flag.exists() is frozen_after
    # applied once per expect: a flag changed later by hand stays as it is
    set_flag(flag, not frozen_after)
    monitor._follow_flags(monitor.state.snapshot, {"svc1": None})  # type: ignore[dict-item]
    assert flag.exists() is (not frozen_after)


# ------------------------------------------------------ no start where the state is unknown


class _Group:
    """Records the actions the monitor would carry out (the coroutines are not run)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def create_task(self, coro: Any) -> None:
        self.started.append(coro.cr_frame.f_locals["action"])
        coro.close()


def test_no_start_while_a_node_of_the_service_answers_without_its_state(tmp_path: Path) -> None:
    """After a partition, n2 answers our beat before its own beat reaches us: it may run
    svc1 now (it started it while cut off). The monitor starts svc1 only once n2's state
    has come; a service that cannot run on n2 starts meanwhile."""
    monitor = _monitor(tmp_path)
    state = monitor.state

    def beat(gen: int, at: float) -> None:
        msg = HeartbeatMsg(node="n2", cluster="c", boot="b", gen=gen, sent_at=0.0, kind="full")
        state.apply(PeerHeartbeat(msg, at), at)

    def start(service: str, nodes: tuple[str, ...]) -> list[str]:
        state._publish()
        group = _Group()
        view = ServiceView(service, nodes)
        monitor._apply(None, group, state.snapshot, service, None, view, None,  # type: ignore[arg-type]
                       Decision("start", "test"), 10.0)  # fmt: skip
        monitor._busy.discard(service)
        return group.started

    beat(1, 1.0)
    assert state.expire(5.0)  # cut off: dead here
    state.apply(PeerPong(PongMsg(node="n2", boot="b", sees=["n1", "n2"]), 8.0), 8.0)
    assert start("svc1", ("n1", "n2")) == []
    assert start("svc2", ("n1",)) == ["start"]
    beat(2, 8.5)  # its state: svc1 is not there
    assert start("svc1", ("n1", "n2")) == ["start"]
