"""The seed's last use case: a middleware that replicates itself, wrapped in a service of
app resources only (no sync). Driven through the CLI against the daemons: the config is
created on one node and reaches the other, the service starts, its status is served, a
crashed process is restarted by the daemon, and a config change travels."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.integration.ops import avail, ferry, sh, wait
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

MIDDLEWARE = """[DEFAULT]
nodes = n1 n2
orchestrate = ha
comment = a database that replicates itself: Ferry only runs and watches it

[app#db]
start = sleep 100000 >/dev/null 2>&1 & echo $! > /var/lib/ferry/db.pid
stop = kill `cat /var/lib/ferry/db.pid` && rm -f /var/lib/ferry/db.pid
check = kill -0 `cat /var/lib/ferry/db.pid 2>/dev/null` 2>/dev/null
monitor = true
restart = 2
"""


@pytest.fixture(scope="module")
def cluster(testbed_session: Testbed) -> Iterator[Testbed]:
    root = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{root}-mw", prefix=f"{testbed_session.prefix}mw-")
    tb.up(shared=())
    try:
        tb.start_ferryd()
        yield tb
    finally:
        tb.down()


def test_middleware_service_status_monitoring_and_config(cluster: Testbed) -> None:
    tb = cluster
    tb.exec("n1", "sh", "-c", "cat > /tmp/mw.conf", input=MIDDLEWARE, check=True)
    created = ferry(tb, "n1", "mw", "create", "--config", "/tmp/mw.conf")
    assert created.returncode == 0, created.stderr
    wait("the config on n2", lambda: sh(tb, "n2", "test -f /etc/ferry/mw.conf").returncode == 0)

    started = ferry(tb, "n1", "mw", "start", "--wait", "--time", "60")
    assert started.returncode == 0, started.stderr
    wait("mw up on n1", lambda: avail(tb, "n1", "mw") == "up")
    assert avail(tb, "n2", "mw") == "down"

    # monitoring: the process dies, the daemon restarts it (restart = 2)
    first = sh(tb, "n1", "cat /var/lib/ferry/db.pid").stdout.strip()
    sh(tb, "n1", f"kill {first}")
    wait("a new db process", lambda: sh(tb, "n1", "cat /var/lib/ferry/db.pid").stdout.strip()
         not in ("", first) and avail(tb, "n1", "mw") == "up")  # fmt: skip

    # config management: a change made on n1 reaches n2
    changed = ferry(tb, "n1", "mw", "set", "--kw", "DEFAULT.comment=managed by Ferry")
    assert changed.returncode == 0, changed.stderr
    wait("the change on n2",
         lambda: "managed by Ferry" in sh(tb, "n2", "cat /etc/ferry/mw.conf").stdout)  # fmt: skip

    stopped = ferry(tb, "n1", "mw", "stop", "--wait", "--time", "60")
    assert stopped.returncode == 0, stopped.stderr
    wait("mw down", lambda: avail(tb, "n1", "mw") == "down")
    time.sleep(3)  # an operator's stop freezes it: the daemon does not start it again
    assert avail(tb, "n1", "mw") == "down" and avail(tb, "n2", "mw") == "down"
