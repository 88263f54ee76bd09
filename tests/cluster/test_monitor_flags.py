"""How the monitor turns expects into this node's persistent instance flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from daemon.cluster.flags import frozen_path, set_flag
from daemon.cluster.monitor import Monitor
from daemon.cluster.state import ClusterState, Expect, SetExpect
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
