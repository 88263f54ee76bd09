"""Hostile-input benchmark: ``/api/health`` latency while guest-token clients send 1 MiB
configuration texts to ``POST /api/services/x/config/validate`` (issue 16, item 1).

A real ferryd on loopback (TLS); ``--source DIR`` runs the daemon from another checkout
(e.g. ``git archive`` of an older commit) to measure the code before a change. Kinds of
text: ``sections`` (tens of thousands of tiny sections: past the section limit),
``long`` (1,000 sections with long values: within the limits, checked by a worker),
``keywords`` (one section, tens of thousands of keywords: past the line limit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def text_of(kind: str) -> str:
    """About 1 MiB of request body (each newline is two bytes in JSON)."""
    parts = ["[DEFAULT]\nnodes = n1\n"]
    size = MIB // 2 + MIB // 5  # of text: its JSON body is a bit under 1 MiB
    if kind == "sections":
        i, total = 0, 0
        while total < size:
            parts.append(f"[app#{i}]\nstart = x\n")
            total += len(parts[-1])
            i += 1
    elif kind == "long":
        pad = MIB // 1000 - 60
        parts += [f"[app#{i}]\nstart = /bin/echo {'x' * pad}\n" for i in range(999)]
    else:
        parts.append("[app#0]\nstart = x\n")
        i, total = 0, 0
        while total < size:
            parts.append(f"k{i} = v\n")
            total += len(parts[-1])
            i += 1
    return "".join(parts)


async def measure(url: str, token: str, ca: str, kind: str, clients: int) -> dict[str, float]:
    text = text_of(kind)
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca), limit=0)
    latencies: list[float] = []
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:
        done = asyncio.Event()

        async def validate() -> tuple[int, float]:
            started = time.perf_counter()
            body = {"text": text}
            async with session.post("/api/services/x/config/validate", json=body) as answer:
                await answer.read()
                return answer.status, time.perf_counter() - started

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with session.get("/api/health") as answer:
                    await answer.read()
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

        async with asyncio.TaskGroup() as group:
            prober = group.create_task(probe())
            await asyncio.sleep(0.5)
            results = await asyncio.gather(*(validate() for _ in range(clients)))
            done.set()
        await prober
    latencies.sort()
    return {
        "validate_status": float(results[0][0]),
        "validate_s": max(r[1] for r in results),
        "health_n": float(len(latencies)),
        "health_p50_ms": latencies[len(latencies) // 2] * 1000,
        "health_p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "health_max_ms": latencies[-1] * 1000,
    }


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hostile")
    parser.add_argument("--source", default=str(REPO), help="checkout to run ferryd from")
    parser.add_argument("--kind", choices=("sections", "long", "keywords"), default="long")
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.api.ferryd_proc import free_port  # the test helper, not the daemon under test

    base = Path(tempfile.mkdtemp(prefix="fyh", dir="/tmp"))
    etc, var = base / "etc", base / "var"
    etc.mkdir()
    var.mkdir(mode=0o700)
    port = free_port()
    env = {**os.environ, "FERRY_NODENAME": "n1", "PYTHONPATH": args.source}
    command = [sys.executable, "-m", "daemon.main", "--config-dir", str(etc), "--var-dir"]
    command += [str(var), "--listen", f"127.0.0.1:{port}"]
    log = (base / "ferryd.log").open("wb")
    proc = subprocess.Popen(command, env=env, cwd=args.source, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while not (var / "tls" / "ca.crt").exists() or not (var / "ferryd.sock").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                print("ferryd did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        token = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from daemon.api.auth import create_token as c; "
                f"print(c(__import__('pathlib').Path({str(var)!r}), 'guest', 'bench'))",
            ],
            env=env,
            cwd=args.source,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        time.sleep(0.5)
        figures = asyncio.run(
            measure(
                f"https://127.0.0.1:{port}",
                token,
                str(var / "tls" / "ca.crt"),
                args.kind,
                args.clients,
            )
        )
        print(f"kind={args.kind} clients={args.clients} source={args.source}")
        for name, value in figures.items():
            print(f"  {name}: {value:.1f}")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


BENCHMARKS = {"hostile": run}
