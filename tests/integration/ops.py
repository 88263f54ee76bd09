"""What integration tests do on testbed nodes: run ferry, run shell, install configs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.testbed import Testbed

REPO = Path(__file__).resolve().parents[2]
FERRY = str(REPO / ".venv" / "bin" / "ferry")
SEED_IMAGES = "google/pause opensvc/nginx:build5"
NODES = ("n1", "n2", "n3")


def ferry(
    tb: Testbed, node: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[Any]:
    return tb.exec(node, FERRY, *args, timeout=timeout)


def http_status(tb: Testbed, node: str, url: str) -> str:
    """The HTTP status code of url fetched from inside node, or the error's tail."""
    code = f"import urllib.request,sys\nprint(urllib.request.urlopen({url!r}, timeout=5).status)\n"
    done = tb.python(node, "-c", code, timeout=30)
    return done.stdout.strip() if done.returncode == 0 else done.stderr.strip()[-200:]


def sh(
    tb: Testbed, node: str, script: str, timeout: float = 300
) -> subprocess.CompletedProcess[Any]:
    return tb.exec(node, "sh", "-c", script, timeout=timeout)


def install(tb: Testbed, nodes: tuple[str, ...], name: str, text: str) -> None:
    """Put a service configuration in /etc/ferry on each node."""
    for node in nodes:
        sh(tb, node, "mkdir -p /etc/ferry", timeout=30)
        tb.exec(node, "sh", "-c", f"cat > /etc/ferry/{name}.conf", input=text, check=True)


def status(tb: Testbed, node: str, svc: str = "svc1") -> dict[str, Any]:
    done = ferry(tb, node, svc, "print", "status", "-o", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def avail(tb: Testbed, node: str, svc: str = "svc1") -> str:
    """The instance's avail on node ('?' when its status cannot be read)."""
    done = ferry(tb, node, svc, "print", "status", "-o", "json", timeout=60)
    return str(json.loads(done.stdout)["avail"]) if done.returncode == 0 else "?"


def check_dr_activated(tb: Testbed, node: str, printed: str) -> None:
    """What a DR takeover on node printed and left: the data age of the sync, the RPO
    recorded in the service log, the service up there."""
    assert f"data of sync#1 on {node}:" in printed, printed
    assert "(RPO, recorded in the service log)" in printed, printed
    wait(f"svc1 up on {node}", lambda: avail(tb, node) == "up", 60)
    log = sh(tb, node, "cat /var/lib/ferry/services/svc1/log").stdout.splitlines()
    activation = json.loads(log[-1])
    assert activation["event"] == "activation" and activation["rpo_seconds"] is not None


def load_seed_images(tb: Testbed, node: str, svc: str = "svc1") -> None:
    """Fill the service's private engine from the node's engine, as an operator would."""
    done = ferry(tb, node, svc, "start", "--local", "--rid", "fs#0,fs#1")
    assert done.returncode == 0, done.stderr
    loaded = sh(tb, node, f"docker save {SEED_IMAGES} | {FERRY} {svc} docker -- load")
    assert loaded.returncode == 0, loaded.stderr


def sync(tb: Testbed, node: str, *args: str, svc: str = "svc1") -> tuple[int, list[dict[str, Any]]]:
    done = ferry(tb, node, svc, "sync", *args, "--local", "-o", "json")
    try:
        return done.returncode, list(json.loads(done.stdout))
    except ValueError:
        raise AssertionError(f"sync printed no JSON: {done.stdout!r} {done.stderr!r}") from None


def wait(
    what: str,
    check: Callable[[], bool],
    limit: float = 60,
    during: Callable[[], None] | None = None,
) -> float:
    """Poll check every 0.5 s until true (calling during each round); the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if during is not None:
            during()
        if check():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"timed out after {limit}s waiting for {what}")


def own_disk_cluster(base: Testbed, tag: str, config: str, image_nodes: tuple[str, ...]) -> Testbed:
    """A testbed with daemons; svc1 created on n1 (it reaches the others, frozen there),
    the images loaded into the service's engine on image_nodes."""
    root = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{root}-{tag}", prefix=f"{base.prefix}{tag}-")
    tb.up(shared=())
    try:
        tb.start_ferryd()
        path = f"/tmp/ferry-{tag}-svc1.conf"  # /tmp is the host's: a name of this testbed
        tb.exec("n1", "sh", "-c", f"cat > {path}", input=config, check=True)
        created = ferry(tb, "n1", "svc1", "create", "--config", path)
        sh(tb, "n1", f"rm -f {path}")
        assert created.returncode == 0, created.stderr
        for node in NODES:
            assert sh(tb, node, "cat /etc/ferry/svc1.conf").stdout == config
        for node in image_nodes:
            load_seed_images(tb, node)
            assert ferry(tb, node, "svc1", "stop", "--local", "--force").returncode == 0
    except BaseException:
        tb.down()
        raise
    return tb


def nginx_serving_data(seed: str) -> str:
    """A seed's svc1.conf (seed: its conf.d directory) with nginx serving the replicated
    data: its /www from /srv/svc1/data/www."""
    return (
        (REPO / "conf.d" / seed / "svc1.conf")
        .read_text()
        .replace(
            "image = opensvc/nginx:build5\n",
            "image = opensvc/nginx:build5\nvolume_mounts = /srv/svc1/data/www:/www\n",
        )
    )


def uc3_testbed(base: Testbed, tag: str, config: str = "") -> Testbed:
    """Seed use case 3 (or config) on a testbed of its own (every node its own disk),
    without daemons: the service started with --local on n1 and n2 (images loaded),
    standby on n3."""
    root = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{root}-{tag}", prefix=f"{base.prefix}{tag}-")
    tb.up(shared=())
    try:
        config = config or (REPO / "conf.d" / "uc3-flex-drp" / "svc1.conf").read_text()
        install(tb, NODES, "svc1", config)
        for node in ("n1", "n2"):
            load_seed_images(tb, node)
            done = ferry(tb, node, "svc1", "start", "--local")
            assert done.returncode == 0, done.stderr
        assert ferry(tb, "n3", "svc1", "startstandby", "--local").returncode == 0
    except BaseException:
        tb.down()
        raise
    return tb


def uc1_ha_testbed(base: Testbed, tag: str, config: str, on_n1: str = "true") -> Testbed:
    """Seed use case 1 (or config) on a testbed of its own, through the daemons: svc1
    created on n1 with orchestrate = ha, up on n1 (where the shell script on_n1 then
    runs), its standby filesystems up on n3, and synced to n3 once."""
    root = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{root}-{tag}", prefix=f"{base.prefix}{tag}-")
    tb.up()
    path = f"/tmp/ferry-{tag}-svc1.conf"  # /tmp is the host's: a name of this testbed
    try:
        tb.start_ferryd()
        tb.exec("n1", "sh", "-c", f"cat > {path}", input=config, check=True)
        created = ferry(tb, "n1", "svc1", "create", "--config", path)
        assert created.returncode == 0, created.stderr
        load_seed_images(tb, "n1")
        assert ferry(tb, "n1", "svc1", "stop", "--local", "--force").returncode == 0
        done = ferry(tb, "n1", "svc1", "set", "--kw", "DEFAULT.orchestrate=ha")
        assert done.returncode == 0, done.stderr
        done = ferry(tb, "n1", "svc1", "start", "--wait", "--time", "120")
        assert done.returncode == 0, done.stderr
        wait("svc1 up on n1", lambda: avail(tb, "n1") == "up", 60)
        assert sh(tb, "n1", on_n1).returncode == 0

        def standby_up() -> bool:
            resources = status(tb, "n3")["resources"]
            return all(resources[rid]["status"] == "stdby up" for rid in ("fs#0", "fs#1"))

        wait("n3's standby filesystems", standby_up, 60)
        done = ferry(tb, "n1", "svc1", "sync", "all", "--wait", "--time", "300")
        assert done.returncode == 0, done.stderr
    except BaseException:
        tb.down()
        raise
    finally:
        Path(path).unlink(missing_ok=True)
    return tb


def own_disks_testbed(base: Testbed, tag: str, config: str) -> Testbed:
    """config on a testbed of its own (every node its own disk), without daemons: svc1
    started with --local on n1, standby on n2 and n3."""
    root = os.environ.get("FERRY_TESTBED_DIR", "/var/tmp/ferry-testbed")
    tb = Testbed(state_dir=f"{root}-{tag}", prefix=f"{base.prefix}{tag}-")
    tb.up(shared=())
    try:
        install(tb, NODES, "svc1", config)
        done = ferry(tb, "n1", "svc1", "start", "--local")
        assert done.returncode == 0, done.stderr
        for node in ("n2", "n3"):
            done = ferry(tb, node, "svc1", "startstandby", "--local")
            assert done.returncode == 0, done.stderr
    except BaseException:
        tb.down()
        raise
    return tb
