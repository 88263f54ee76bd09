"""Scale: 12 nodes in two sites of 6, 500 services, measured (issue 20).

The testbed: light nodes (no Docker engine), nodes sharing a disk in pairs, every node its
own ferryd with the testbed's timings (heartbeat 1 s, timeout 3 s, ready 1 s). The
services: 400 failover services of one ``app`` resource on the node pairs (n1+n2, n3+n4,
...), 100 flex services over a site (flex_min 1, flex_max 2), all ``orchestrate = ha``.

Printed, each figure beside what it is measured against:

* cold start: the configurations in place, every ferryd started; from the last one started
  to all 500 services up;
* at rest: bytes per second on each node's link (heartbeats: nothing else moves), CPU and
  RSS of each ferryd; the same bytes at 3 and 6 nodes with the same services, and at 12
  nodes with none;
* API latency: the cluster status document (p50, p99), ``ferry mon once`` (the CLI's own
  start included);
* kill -9 of the node holding the most services: each of its services' time to be up
  elsewhere (median, p95, max; goal: max <= hb_timeout + ready_period + start + 1 s), CPU
  and RSS of the ferryds during the failover;
* placement: services whose configuration lands on the running cluster, each one's time
  to be up (goal <= 10 s);
* 20 random partitions with ``quorum = true``: moments where a failover service is up on
  two nodes (goal 0), from the nodes themselves (the app's own files), not from a daemon.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.failover import BenchError, cluster, endpoint, wait
from daemon.cli import client
from tests.testbed import Testbed

REPO = Path(__file__).resolve().parents[1]
FERRY = str(REPO / ".venv" / "bin" / "ferry")
RESULTS = REPO / "bench" / "results"
STATE_DIR, PREFIX = "/var/tmp/ferry-bench-scale", "ferry-bs-"
SITES = ("n1-n6", "n7-n12")
NODES = tuple(f"n{i}" for i in range(1, 13))
FAILOVER, FLEX = 400, 100
GOAL_FAILOVER = 3 + 1 + 3 + 1  # hb_timeout + ready_period + start (bounded) + 1 s
GOAL_PLACEMENT = 10.0
APP = """
[app#0]
start = mkdir -p /run/scale && touch /run/scale/{name}
stop = rm -f /run/scale/{name}
check = test -f /run/scale/{name}
"""


# ------------------------------------------------------------------------------ services


def pairs(nodes: tuple[str, ...]) -> list[tuple[str, str]]:
    """Consecutive pairs (n1+n2, n3+n4, ...); with an odd count the last one pairs with the
    first."""
    out = [(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
    if len(nodes) % 2:
        out.append((nodes[-1], nodes[0]))
    return out


def services(nodes: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Service name -> its nodes: failover ones round-robin on the pairs, flex ones over
    each half of the nodes (the sites)."""
    out: dict[str, tuple[str, ...]] = {}
    on = pairs(nodes)
    for i in range(FAILOVER):
        out[f"f{i:03d}"] = on[i % len(on)]
    half = max(1, len(nodes) // 2)
    sites = [nodes[:half], nodes[half:]] if len(nodes) > 3 else [nodes]
    for i in range(FLEX):
        out[f"x{i:03d}"] = sites[i % len(sites)]
    return out


def config(name: str, members: tuple[str, ...]) -> str:
    head = f"[DEFAULT]\nnodes = {' '.join(members)}\norchestrate = ha\n"
    if name.startswith("x"):
        head += "topology = flex\nflex_min = 1\nflex_max = 2\n"
    return head + APP.format(name=name)


def install(tb: Testbed, placed: dict[str, tuple[str, ...]]) -> float:
    """Write each service's file on its nodes (straight into the nodes' /etc/ferry, a
    file renamed into place): when the last one landed."""
    for name, members in placed.items():
        text = config(name, members)
        for node in members:
            folder = tb.node_root(node) / "etc/ferry"
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.tmp"
            tmp.write_text(text)
            tmp.rename(folder / f"{name}.conf")
    return time.monotonic()


# --------------------------------------------------------------------------- observing


def up_where(data: dict[str, Any]) -> dict[str, set[str]]:
    """Service -> the nodes where the view shows it up."""
    out: dict[str, set[str]] = {}
    for name, svc in (data.get("services") or {}).items():
        out[name] = {
            n for n, i in (svc.get("instances") or {}).items() if i.get("avail") in ("up", "warn")
        }
    return out


def running(tb: Testbed, nodes: tuple[str, ...]) -> dict[str, set[str]]:
    """Service -> the nodes where its app runs, from the nodes' own files (the truth)."""
    out: dict[str, set[str]] = {}

    def files(node: str) -> tuple[str, list[str]]:
        path = tb.node_root(node) / "run/scale"
        try:
            return node, [p.name for p in path.iterdir()]
        except OSError:
            return node, []

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        for node, names in pool.map(files, nodes):
            for name in names:
                out.setdefault(name, set()).add(node)
    return out


def link_bytes(tb: Testbed, node: str) -> int:
    """Bytes received and sent on the node's eth0 so far (/proc/net/dev is the node's own
    network namespace's; /sys/class/net would be the host's)."""
    done = tb.exec(node, "cat", "/proc/net/dev", timeout=30)
    for line in done.stdout.splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == "eth0":
            fields = counters.split()
            return int(fields[0]) + int(fields[8])
    raise BenchError(f"{node}: no eth0 in /proc/net/dev")


def ferryd_pids(tb: Testbed, nodes: tuple[str, ...]) -> dict[str, int]:
    state = tb.state()
    out = {}
    for node in nodes:
        proc = state.node(node).daemons.get("ferryd")
        if proc is not None and proc.alive():
            out[node] = proc.pid
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def at_rest(tb: Testbed, nodes: tuple[str, ...], seconds: float = 20.0) -> dict[str, Any]:
    """Bytes/s on each node's link, CPU % and RSS of each ferryd, over ``seconds``."""
    pids = ferryd_pids(tb, nodes)
    before_bytes = {n: link_bytes(tb, n) for n in nodes}
    before_cpu = {n: cpu_seconds(p) for n, p in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    rates = {n: (link_bytes(tb, n) - before_bytes[n]) / took for n in nodes}
    cpu = {n: 100 * (cpu_seconds(p) - before_cpu[n]) / took for n, p in pids.items()}
    rss = {n: rss_mib(p) for n, p in pids.items()}
    return {
        "link_bytes_per_second": {n: round(v) for n, v in rates.items()},
        "link_mean": round(statistics.mean(rates.values())),
        "link_max": round(max(rates.values())),
        "cpu_percent_mean": round(statistics.mean(cpu.values()), 1),
        "cpu_percent_max": round(max(cpu.values()), 1),
        "rss_mib_mean": round(statistics.mean(rss.values()), 1),
        "rss_mib_max": round(max(rss.values()), 1),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# ------------------------------------------------------------------------------ phases


def bring_up(tb: Testbed, nodes: tuple[str, ...], placed: dict[str, tuple[str, ...]],
             **settings: str) -> dict[str, Any]:  # fmt: skip
    """A cluster of nodes with the services' files in place, every ferryd started: the
    time from the last one started to every service up."""
    tb.up(nodes, sites=[nodes[: len(nodes) // 2], nodes[len(nodes) // 2 :]] if len(nodes) > 3
          else [nodes], pairs=True, light=nodes, disk_size="256M")  # fmt: skip
    install(tb, placed)
    tb.start_ferryd(list(nodes), **settings)
    started = time.monotonic()
    want = set(placed)

    def all_up() -> bool:
        data = cluster(tb, nodes[0], timeout=5.0)
        return data is not None and want <= {s for s, on in up_where(data).items() if on}

    took = wait("every service up", all_up, 300)
    return {"cold_start_seconds": round(time.monotonic() - started, 2), "wait_seconds": took}


def api_latency(tb: Testbed, node: str) -> dict[str, Any]:
    ep = endpoint(tb, node)
    times = []
    for _ in range(100):
        started = time.monotonic()
        client.get_cluster(ep, timeout=30)
        times.append(time.monotonic() - started)
    mon = []
    for _ in range(10):
        started = time.monotonic()
        done = tb.exec(node, FERRY, "mon", "once", timeout=60)
        mon.append(time.monotonic() - started)
        if done.returncode != 0:
            raise BenchError(f"ferry mon once: {done.stderr.strip()[-300:]}")
    size = len(json.dumps(client.get_cluster(ep, timeout=30)))
    return {
        "cluster_status_p50_ms": round(1000 * percentile(times, 50), 1),
        "cluster_status_p99_ms": round(1000 * percentile(times, 99), 1),
        "cluster_status_bytes": size,
        "mon_once_p50_s": round(percentile(mon, 50), 2),
        "mon_once_p99_s": round(percentile(mon, 99), 2),
    }


def failover(tb: Testbed, nodes: tuple[str, ...]) -> dict[str, Any]:
    """kill -9 of the node that runs the most services; each one's time to be up elsewhere."""
    where = running(tb, nodes)
    counts: dict[str, int] = {}
    for on in where.values():
        for node in on:
            counts[node] = counts.get(node, 0) + 1
    victim = max(counts, key=lambda n: counts[n])
    moved = {s for s, on in where.items() if on == {victim}}  # only there now
    survivors = tuple(n for n in nodes if n != victim)
    pids = ferryd_pids(tb, survivors)
    cpu_before = {n: cpu_seconds(p) for n, p in pids.items()}
    rss_peak = {n: rss_mib(p) for n, p in pids.items()}
    tb.kill(victim)
    killed = time.monotonic()
    seen: dict[str, float] = {}
    while time.monotonic() - killed < 60 and len(seen) < len(moved):
        now = running(tb, survivors)
        stamp = time.monotonic() - killed
        for name in moved - set(seen):
            if now.get(name):
                seen[name] = stamp
        for n, p in pids.items():
            rss_peak[n] = max(rss_peak[n], rss_mib(p))
        time.sleep(0.2)
    took = time.monotonic() - killed
    cpu = {n: 100 * (cpu_seconds(p) - cpu_before[n]) / took for n, p in pids.items()}
    times = sorted(seen.values())
    result = {
        "victim": victim,
        "services_moved": len(moved),
        "up_elsewhere": len(seen),
        "left_behind": sorted(moved - set(seen)),
        "median_s": round(statistics.median(times), 2) if times else None,
        "p95_s": round(percentile(times, 95), 2) if times else None,
        "max_s": round(times[-1], 2) if times else None,
        "cpu_percent_mean_during": round(statistics.mean(cpu.values()), 1),
        "cpu_percent_max_during": round(max(cpu.values()), 1),
        "rss_mib_max_during": round(max(rss_peak.values()), 1),
    }
    tb.revive(victim)
    tb.start_ferryd([victim])
    return result


def placement(tb: Testbed, nodes: tuple[str, ...], count: int = 50) -> dict[str, Any]:
    """count new services written on the running cluster, each one's time to be up."""
    on = pairs(nodes)
    placed = {f"p{i:03d}": on[i % len(on)] for i in range(count)}
    landed = install(tb, placed)
    seen: dict[str, float] = {}
    while time.monotonic() - landed < 60 and len(seen) < len(placed):
        now = running(tb, nodes)
        stamp = time.monotonic() - landed
        for name in set(placed) - set(seen):
            if now.get(name):
                seen[name] = stamp
        time.sleep(0.2)
    times = sorted(seen.values())
    return {
        "services": count,
        "up": len(seen),
        "median_s": round(statistics.median(times), 2) if times else None,
        "max_s": round(times[-1], 2) if times else None,
    }


def partitions(tb: Testbed, nodes: tuple[str, ...], rounds: int = 20) -> dict[str, Any]:
    """Random splits of the cluster for 6-10 s each, sampled every 0.5 s (and 10 s after each
    heal): moments where a failover service runs on two nodes."""
    rng = random.Random(20)
    samples = dual = 0
    worst: list[str] = []
    for _ in range(rounds):
        size = rng.randint(1, len(nodes) // 2)
        group = tuple(sorted(rng.sample(nodes, size), key=lambda n: int(n[1:])))
        rest = tuple(n for n in nodes if n not in group)
        tb.partition(group, rest)
        until = time.monotonic() + rng.uniform(6, 10)
        healed = False
        while True:
            now = time.monotonic()
            if not healed and now >= until:
                tb.heal_partition()
                healed, until = True, now + 10
            elif healed and now >= until:
                break
            where = running(tb, nodes)
            samples += 1
            twice = [s for s, on in where.items() if s.startswith("f") and len(on) > 1]
            if twice:
                dual += 1
                worst = worst or twice
            time.sleep(0.5)
    return {"rounds": rounds, "samples": samples, "moments_up_twice": dual, "first": worst[:5]}


# ------------------------------------------------------------------------------- report


def report(figures: dict[str, Any]) -> None:
    twelve = figures["n12"]
    rest = twelve["rest"]
    print(f"\nscale: 12 nodes (two sites of 6, light), {FAILOVER} failover + {FLEX} flex "
          "services, hb 1 s, timeout 3 s, ready 1 s")  # fmt: skip

    def kib(value: float) -> str:
        return f"{value / 1024:.1f} KiB/s"

    rows = [
        (f"cold start: last ferryd started -> {FAILOVER + FLEX} services up",
         f"{twelve['cold_start_seconds']} s", ""),
        ("link at rest, per node (mean / max)",
         f"{kib(rest['link_mean'])} / {kib(rest['link_max'])}", "goal <= 10 KiB/s"),
        ("  same, 12 nodes, no service", kib(figures["n12_empty"]["link_mean"]), ""),
        ("  same, 6 nodes, the same services", kib(figures["n6"]["rest"]["link_mean"]), ""),
        ("  same, 3 nodes, the same services", kib(figures["n3"]["rest"]["link_mean"]), ""),
        ("ferryd at rest: CPU % (mean / max)",
         f"{rest['cpu_percent_mean']} / {rest['cpu_percent_max']}", ""),
        ("ferryd at rest: RSS MiB (mean / max)",
         f"{rest['rss_mib_mean']} / {rest['rss_mib_max']}", ""),
    ]  # fmt: skip
    api = twelve["api"]
    rows += [
        ("cluster status document p50 / p99",
         f"{api['cluster_status_p50_ms']} / {api['cluster_status_p99_ms']} ms",
         f"{api['cluster_status_bytes'] / 1024:.0f} KiB"),
        ("ferry mon once p50 / p99 (CLI start included)",
         f"{api['mon_once_p50_s']} / {api['mon_once_p99_s']} s", ""),
    ]  # fmt: skip
    fo = twelve["failover"]
    rows += [
        (f"kill -9 {fo['victim']}: {fo['services_moved']} services, up elsewhere",
         f"{fo['up_elsewhere']}", f"left behind: {len(fo['left_behind'])}"),
        ("  time to up elsewhere: median / p95 / max",
         f"{fo['median_s']} / {fo['p95_s']} / {fo['max_s']} s", f"goal max <= {GOAL_FAILOVER} s"),
        ("  ferryd during the failover: CPU % mean / max, RSS max",
         f"{fo['cpu_percent_mean_during']} / {fo['cpu_percent_max_during']}, "
         f"{fo['rss_mib_max_during']} MiB", ""),
    ]  # fmt: skip
    pl = twelve["placement"]
    rows.append(("placement: config lands -> up (median / max)",
                 f"{pl['median_s']} / {pl['max_s']} s ({pl['up']}/{pl['services']})",
                 f"goal <= {GOAL_PLACEMENT:g} s"))  # fmt: skip
    pa = twelve["partitions"]
    rows.append(("20 random partitions, quorum: moments up twice",
                 f"{pa['moments_up_twice']} of {pa['samples']}", "goal 0"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for name, ours, goal in rows:
        print(f"{name:<{width}}  {ours:>24}  {goal}")


def run(argv: list[str]) -> int:
    global FAILOVER, FLEX
    parser = argparse.ArgumentParser(prog="python -m bench scale")
    parser.add_argument("--failover", type=int, default=FAILOVER, help="failover services")
    parser.add_argument("--flex", type=int, default=FLEX, help="flex services")
    parser.add_argument("--rounds", type=int, default=20, help="random partitions")
    args = parser.parse_args(argv)
    FAILOVER, FLEX = args.failover, args.flex
    tb = Testbed(state_dir=STATE_DIR, prefix=PREFIX)
    figures: dict[str, Any] = {"command": "python -m bench scale"}
    try:
        # 12 nodes, no service: the heartbeats' floor
        tb.up(NODES, sites=list(SITES), pairs=True, light=NODES, disk_size="256M")
        tb.start_ferryd(list(NODES))
        time.sleep(5)
        figures["n12_empty"] = at_rest(tb, NODES)
        tb.down()
        # 3 and 6 nodes with the same 500 services
        for count in (3, 6):
            nodes = NODES[:count]
            result = bring_up(tb, nodes, services(nodes))
            time.sleep(5)
            result["rest"] = at_rest(tb, nodes)
            figures[f"n{count}"] = result
            tb.down()
        # 12 nodes
        placed = services(NODES)
        twelve = bring_up(tb, NODES, placed)
        time.sleep(5)
        twelve["rest"] = at_rest(tb, NODES)
        twelve["api"] = api_latency(tb, "n1")
        twelve["failover"] = failover(tb, NODES)
        time.sleep(10)
        twelve["placement"] = placement(tb, NODES)
        tb.stop_ferryd(list(NODES))
        tb.start_ferryd(list(NODES), quorum="true")
        time.sleep(10)
        twelve["partitions"] = partitions(tb, NODES, args.rounds)
        figures["n12"] = twelve
        report(figures)
        RESULTS.mkdir(parents=True, exist_ok=True)
        figures["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        (RESULTS / "scale.json").write_text(json.dumps(figures, indent=2) + "\n")
        print("\nwritten: bench/results/scale.json")
    except BenchError as exc:
        print(f"bench scale failed: {exc}")
        return 1
    finally:
        tb.down()
    return 0


BENCHMARKS = {"scale": run}
