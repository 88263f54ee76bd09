"""Pytest wiring of the testbed: the ``testbed`` marker's gate and the fixtures.

* A test marked ``testbed`` is skipped, with the reason, when the machine
  cannot run the testbed (not root, packages missing); with CI=true it fails.
* ``testbed``: the session's cluster (n1 n2 n3, n1 and n2 sharing the disk),
  reset before each test (links healed, partitions and netem removed, dead
  nodes or daemons restarted; see Testbed.reset). Brought up once per session
  in a state dir and name prefix of the session's own (or $FERRY_TESTBED_DIR),
  torn down at the end, after which nothing of it may be left on the machine
  and the machine's network must be as it was (else the session errors).
* ``--testbed-keep`` leaves it up at the end for inspection with the CLI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.testbed import Testbed
from tests.testbed.hostcheck import network_snapshot, not_applicable, settled_traces
from tests.testbed.prereq import missing_prerequisites

TIMINGS: dict[str, float] = {}
KEPT: list[Testbed] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testbed")
    group.addoption(
        "--testbed-keep",
        action="store_true",
        help="leave the session testbed up (the summary says how to reach it)",
    )


def require_testbed() -> None:
    """Skip (or, with CI=true, fail) unless the testbed can run here."""
    missing = missing_prerequisites()
    if not missing:
        return
    reason = "testbed unavailable: " + "; ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("testbed") is not None:
        require_testbed()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        shown = ", ".join(f"{name} {secs:.1f}s" for name, secs in sorted(TIMINGS.items()))
        terminalreporter.write_line(f"testbed timings: {shown}")
        for note in not_applicable():
            terminalreporter.write_line(f"testbed trace check not applicable here: {note}")
    for tb in KEPT:
        terminalreporter.write_line(
            f"testbed kept: FERRY_TESTBED_DIR={tb.state_dir} python -m tests.testbed status"
        )


@pytest.fixture(scope="session")
def host_baseline() -> dict[str, str]:
    """The machine's own network namespace before the session's testbed came up."""
    require_testbed()
    return network_snapshot()


@pytest.fixture(scope="session")
def testbed_timings() -> dict[str, float]:
    """Seconds taken by bring-ups and teardowns, shown in the terminal summary."""
    return TIMINGS


@pytest.fixture(scope="session")
def testbed_session(
    request: pytest.FixtureRequest, host_baseline: dict[str, str]
) -> Iterator[Testbed]:
    """The session's testbed, brought up once; torn down and checked at the end."""
    tb = Testbed() if os.environ.get("FERRY_TESTBED_DIR") else Testbed.private()
    started = time.monotonic()
    try:
        tb.up()
    except BaseException:
        tb.down()
        raise
    TIMINGS["session up"] = time.monotonic() - started
    yield tb
    if request.config.getoption("--testbed-keep"):
        KEPT.append(tb)
        return
    processes = tb.processes()
    TIMINGS["session down"] = tb.down()
    left = settled_traces(tb.prefix, tb.state_dir, processes)
    if network_snapshot() != host_baseline:
        left.append("the machine's network namespace changed")
    if left:
        pytest.fail("the testbed left traces on the machine:\n" + "\n".join(left))


@pytest.fixture
def testbed(testbed_session: Testbed) -> Testbed:
    """The session's testbed after a reset (see Testbed.reset)."""
    testbed_session.reset()
    return testbed_session
