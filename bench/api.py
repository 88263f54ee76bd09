"""API benchmark: GET /api/services/{svc} on a ferryd holding 1,000 app-only services,
beside a trivial aiohttp handler measured in the same run, and the daemon's memory.

Both servers listen on a unix socket and run as their own processes; the client
keeps ``--concurrency`` requests in flight for ``--requests`` requests. The
services have no check command, so their status is pure Python (the figure is the
API and the configuration engine, not ``/bin/sh``); the status cache is warm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

SERVICE = """[DEFAULT]
nodes = bench

[app#web]
start = true
stop = true

[app#db]
start = true
stop = true
"""

TRIVIAL = """
import sys
from aiohttp import web

async def handle(request):
    return web.json_response({"service": request.match_info["svc"], "avail": "up"})

app = web.Application()
app.router.add_get("/api/services/{svc}", handle)
app.router.add_get("/api/health", lambda r: handle_health(r))

async def handle_health(request):
    return web.json_response({"status": "ok"})

web.run_app(app, path=sys.argv[1], print=None, access_log=None)
"""


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of pid, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


async def wait_ready(socket_path: Path, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connector = aiohttp.UnixConnector(path=str(socket_path))
            async with (
                aiohttp.ClientSession("http://localhost", connector=connector) as session,
                session.get(path) as resp,
            ):
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{socket_path} not ready after {timeout:g}s")


async def load(
    socket_path: Path, names: list[str], requests: int, concurrency: int
) -> dict[str, float]:
    """Latency percentiles (ms) and throughput of GET /api/services/{svc}."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.UnixConnector(path=str(socket_path), limit=concurrency)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(random.choice(names))
    async with aiohttp.ClientSession("http://localhost", connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    name = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                async with session.get(f"/api/services/{name}") as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        async with asyncio.timeout(600), asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "p50_ms": round(cuts[49] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
        "req_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="fyb", dir="/tmp"))
    config_dir, var_dir = base / "etc", base / "var"
    config_dir.mkdir()
    names = [f"svc{i:04d}" for i in range(args.services)]
    for name in names:
        (config_dir / f"{name}.conf").write_text(SERVICE)
    env = {**os.environ, "FERRY_NODENAME": "bench"}
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daemon.main",
            "--config-dir",
            str(config_dir),
            "--var-dir",
            str(var_dir),
            "--no-tcp",
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    trivial_socket = base / "trivial.sock"
    trivial = subprocess.Popen([sys.executable, "-c", TRIVIAL, str(trivial_socket)])
    try:
        ferryd_socket = var_dir / "ferryd.sock"
        await wait_ready(ferryd_socket, "/api/health")
        await wait_ready(trivial_socket, "/api/health")
        idle = rss_kib(daemon.pid)
        started = time.perf_counter()
        await wait_ready(ferryd_socket, "/api/services?refresh=true", timeout=600)
        warm_s = time.perf_counter() - started  # every status evaluated once
        results = {
            "ferryd": await load(ferryd_socket, names, args.requests, args.concurrency),
            "trivial aiohttp": await load(trivial_socket, names, args.requests, args.concurrency),
        }
        loaded = rss_kib(daemon.pid)
    finally:
        stop(daemon)
        stop(trivial)
        shutil.rmtree(base, ignore_errors=True)
    return {
        "services": args.services,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "transport": "unix socket",
        "first_full_listing_s": round(warm_s, 2),
        "results": results,
        "ferryd_rss_kib": {
            "idle": idle.get("VmRSS"),
            "loaded": loaded.get("VmRSS"),
            "peak": loaded.get("VmHWM"),
        },
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench api")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    print(
        f"GET /api/services/{{svc}}, {report['services']} services, {report['requests']} "
        f"requests, {report['concurrency']} in flight, {report['transport']}"
    )
    print(f"{'server':<18} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'errors':>7}")
    for name, row in report["results"].items():
        print(
            f"{name:<18} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['req_per_s']:>9.0f} {row['errors']:>7}"
        )
    rss = report["ferryd_rss_kib"]
    print(
        f"ferryd RSS: idle {rss['idle'] / 1024:.0f} MiB, loaded {rss['loaded'] / 1024:.0f} MiB "
        f"(peak {rss['peak'] / 1024:.0f} MiB); first full status listing "
        f"{report['first_full_listing_s']} s"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


BENCHMARKS = {"api": main}
