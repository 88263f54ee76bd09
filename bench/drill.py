"""Drill benchmark (issue 14) on a testbed of its own: seed use case 1, ``orchestrate = ha``,
the DR node n3.

In one run, on the same node and the same data:

* **drill**: ``ferry svc1 drill --yes`` on n3 while the service runs on n1 — the report's
  RTO (from the drill's start to every resource up in the bubble: bubble, clones, the
  drill-only dockerd, containers, address), its teardown time, and the whole command;
* **takeover**: n1 and n2 killed (the primary site lost), then ``ferry svc1 takeover --yes
  --wait`` on n3 — the time from the command to svc1 up on n3 (the real thing the drill
  rehearses); the primary site revived and the service given back between runs (not timed).

Goal: the drill's time to up within 1.5 x the takeover's, teardown under 5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from tests.testbed import Testbed

REPO = Path(__file__).resolve().parents[1]
FERRY = str(REPO / ".venv" / "bin" / "ferry")
RESULTS = REPO / "bench" / "results"
STATE_DIR = "/var/tmp/ferry-bench-drill"
PREFIX = "ferry-bdr-"
CONFIG = (
    (REPO / "conf.d" / "uc1-failover" / "svc1.conf")
    .read_text()
    .replace("drpnodes = n3\n", "drpnodes = n3\norchestrate = ha\n", 1)
)
CHECK = "wget -qO- http://10.0.3.3/ >/dev/null && test -f /srv/svc1/data/mark"
TIMINGS = {"hb_interval": "1s", "hb_timeout": "3s", "ready_period": "1s"}


def ferry(tb: Testbed, node: str, *args: str, timeout: float = 600) -> Any:
    return tb.exec(node, FERRY, "svc1", *args, timeout=timeout)


def avail(tb: Testbed, node: str) -> str:
    done = ferry(tb, node, "print", "status", "-o", "json", timeout=60)
    return str(json.loads(done.stdout)["avail"]) if done.returncode == 0 else "?"


def wait(what: str, check: Any, limit: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {limit:g}s waiting for {what}")


def must(done: Any, what: str) -> Any:
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {done.stderr.strip()[-800:]}")
    return done


def standby_up(tb: Testbed) -> bool:
    done = ferry(tb, "n3", "print", "status", "-o", "json", timeout=60)
    if done.returncode != 0:
        return False
    resources = json.loads(done.stdout)["resources"]
    return all(resources[r]["status"] == "stdby up" for r in ("fs#0", "fs#1"))


def setup(tb: Testbed) -> None:
    tb.start_ferryd(**TIMINGS)
    tb.exec("n1", "sh", "-c", "cat > /tmp/ferry-bdr-svc1.conf", input=CONFIG, check=True)
    must(ferry(tb, "n1", "create", "--config", "/tmp/ferry-bdr-svc1.conf"), "create")
    tb.exec("n1", "rm", "-f", "/tmp/ferry-bdr-svc1.conf")
    must(ferry(tb, "n1", "start", "--local", "--rid", "fs#0,fs#1"), "fs start")
    images = f"docker save google/pause opensvc/nginx:build5 | {FERRY} svc1 docker -- load"
    must(tb.exec("n1", "sh", "-c", images, timeout=300), "image load")
    must(ferry(tb, "n1", "stop", "--local", "--force"), "stop")
    place_on_n1(tb)


def place_on_n1(tb: Testbed) -> None:
    if avail(tb, "n1") != "up":
        must(ferry(tb, "n1", "start", "--wait", "--time", "300"), "start")
    wait("svc1 up on n1", lambda: avail(tb, "n1") == "up", 120)
    tb.exec("n1", "sh", "-c", "date > /srv/svc1/data/mark")
    wait("n3's standby filesystems", lambda: standby_up(tb), 120)
    must(ferry(tb, "n1", "sync", "all", "--wait", "--time", "300"), "sync")


def one_drill(tb: Testbed) -> dict[str, float]:
    started = time.monotonic()
    done = must(ferry(tb, "n3", "drill", "--yes", "-o", "json", "--check", CHECK), "drill")
    total = time.monotonic() - started
    report = json.loads(done.stdout)
    if report["result"] != "pass":
        raise RuntimeError(f"drill failed: {report['error']}")
    return {
        "rto_seconds": float(report["rto_seconds"]),
        "teardown_seconds": float(report["teardown_seconds"]),
        "command_seconds": round(total, 3),
    }


def one_takeover(tb: Testbed) -> dict[str, float]:
    tb.kill("n1")
    tb.kill("n2")
    wait("n3 to see the primary site dead", lambda: _dead(tb), 60)
    started = time.monotonic()
    must(ferry(tb, "n3", "takeover", "--yes", "--wait", "--time", "300"), "takeover")
    wait("svc1 up on n3", lambda: avail(tb, "n3") == "up", 120)
    took = time.monotonic() - started
    tb.revive("n1")
    tb.revive("n2")
    time.sleep(6)  # past the rejoin grace
    must(ferry(tb, "n3", "giveback", "--wait", "--time", "300"), "giveback")
    place_on_n1(tb)
    return {"takeover_seconds": round(took, 3)}


def _dead(tb: Testbed) -> bool:
    done = tb.exec("n3", FERRY, "mon", "-o", "json", timeout=30)
    if done.returncode != 0:
        return False
    nodes = {n["name"]: n for n in json.loads(done.stdout)["nodes"]}
    return all(nodes.get(n, {}).get("state") != "up" for n in ("n1", "n2"))


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench drill")
    parser.add_argument("--drills", type=int, default=5, help="drills to time")
    parser.add_argument("--takeovers", type=int, default=3, help="takeovers to time")
    args = parser.parse_args(argv)
    tb = Testbed(state_dir=STATE_DIR, prefix=PREFIX)
    data: dict[str, Any] = {"command": "python -m bench drill " + " ".join(argv)}
    started = time.monotonic()
    try:
        tb.up()
        setup(tb)
        drills = []
        for i in range(args.drills):
            drills.append(one_drill(tb))
            print(f"drill {i + 1}: {drills[-1]}", flush=True)
        takeovers = []
        for i in range(args.takeovers):
            takeovers.append(one_takeover(tb))
            print(f"takeover {i + 1}: {takeovers[-1]}", flush=True)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        print(f"bench drill failed: {exc}")
        return 1
    finally:
        tb.down()
    rto = _stats([d["rto_seconds"] for d in drills])
    teardown = _stats([d["teardown_seconds"] for d in drills])
    command = _stats([d["command_seconds"] for d in drills])
    takeover = _stats([t["takeover_seconds"] for t in takeovers])
    ratio = rto["median"] / takeover["median"]
    data.update(drills=drills, takeovers=takeovers, drill_rto=rto, drill_teardown=teardown,
                drill_command=command, takeover=takeover, ratio=round(ratio, 3),
                goal={"ratio_max": 1.5, "teardown_max_seconds": 5.0})  # fmt: skip
    print("\n                                   median     min     max")
    print(f"drill: time to every resource up  {rto['median']:6.2f}s {rto['min']:6.2f}s "
          f"{rto['max']:6.2f}s")  # fmt: skip
    print(f"real takeover on n3: time to up   {takeover['median']:6.2f}s {takeover['min']:6.2f}s "
          f"{takeover['max']:6.2f}s")  # fmt: skip
    print(f"drill teardown                    {teardown['median']:6.2f}s {teardown['min']:6.2f}s "
          f"{teardown['max']:6.2f}s   (goal < 5 s)")  # fmt: skip
    print(f"whole drill command               {command['median']:6.2f}s {command['min']:6.2f}s "
          f"{command['max']:6.2f}s")  # fmt: skip
    print(f"drill / takeover: {ratio:.2f} x (goal <= 1.5 x)")
    data["total_seconds"] = round(time.monotonic() - started, 1)
    data["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "drill.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"written: bench/results/drill.json ({data['total_seconds']:.0f} s)")
    return 0


BENCHMARKS = {"drill": run}
