"""Restore points on a testbed of their own: 100 points of a 1 GiB btrfs subvolume with
1 % changed between points, kept by the DR node n3.

Printed side by side: the space the points use on n3 against the bound of the issue
(1.1 x (the data + 100 x the changed bytes)), and the time to list the 100 points through
ferryd and with the CLI alone against ``btrfs subvolume list`` of the same snapshots.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.sync import BTRFS_SVC, FERRY, MIB, daemon_sync, install, median, runner, sh, table
from tests.testbed import Testbed

POINTS = 100
DATA = 1024 * MIB
CHANGED = DATA // 100

# the sync-btrfs bench's service, keeping every point of the last day
SVC = BTRFS_SVC.replace("drpnodes = n3\n", "drpnodes = n3\nretain = 24h\nretain_min = 1d\n", 1)


def used_bytes(tb: Testbed, node: str, path: str) -> int:
    """The filesystem's used bytes (data and metadata), once btrfs has written everything."""
    sh(tb, node, f"btrfs filesystem sync {path}")
    out = sh(tb, node, f"btrfs filesystem usage -b {path}")
    for line in out.splitlines():
        if line.strip().startswith("Used:"):
            return int(line.split()[1])
    raise RuntimeError(f"{node}: no 'Used:' in btrfs filesystem usage: {out[-300:]}")


def timed_run(tb: Testbed, node: str, *argv: str) -> tuple[float, str]:
    started = time.monotonic()
    done = tb.exec(node, *argv, timeout=120)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{node}: {' '.join(argv)}: {done.stderr.strip()[-300:]}")
    return elapsed, str(done.stdout)


def bench_points(tb: Testbed) -> dict[str, Any]:
    install(tb, "benchp", SVC)
    tb.exec("n1", FERRY, "benchp", "start", "--local", check=True)
    tb.exec("n3", FERRY, "benchp", "startstandby", "--local", check=True)
    tb.start_ferryd(["n1", "n3"])
    before = used_bytes(tb, "n3", "/srv/bench/data")
    sh(tb, "n1", f"head -c {DATA} /dev/urandom > /srv/bench/data/big.bin && sync")
    sync_seconds = [daemon_sync(tb, "n1", "benchp", "full")[0]]
    for turn in range(1, POINTS):
        time.sleep(1.05)  # points are named by the second
        seek = (turn * 7) % (DATA // CHANGED - 1) * (CHANGED // MIB)
        count = CHANGED // MIB
        sh(tb, "n1", f"dd if=/dev/urandom of=/srv/bench/data/big.bin bs=1M count={count} "
                     f"seek={seek} conv=notrunc status=none && sync")  # fmt: skip
        sync_seconds.append(daemon_sync(tb, "n1", "benchp", "all")[0])
    used = used_bytes(tb, "n3", "/srv/bench/data") - before
    bound = 1.1 * (DATA + POINTS * CHANGED)

    listed_s, out = timed_run(tb, "n3", FERRY, "benchp", "print", "restorepoints", "-o", "json")
    points = json.loads(out)["points"]
    if len(points) != POINTS:
        raise RuntimeError(f"{len(points)} restore points listed on n3, {POINTS} expected")
    runs = [timed_run(tb, "n3", FERRY, "benchp", "print", "restorepoints")[0] for _ in range(5)]
    list_s = median([listed_s, *runs])
    api = "curl -sf --unix-socket /var/lib/ferry/ferryd.sock http://ferryd/api/services/benchp/restorepoints"
    api_s = median([timed_run(tb, "n3", "sh", "-c", f"{api} >/dev/null")[0] for _ in range(5)])
    start_s = median([timed_run(tb, "n3", FERRY, "doc", "fs.mnt")[0] for _ in range(5)])
    raw = median([timed_run(tb, "n3", "btrfs", "subvolume", "list", "-s", "/srv/bench/data")[0]
                  for _ in range(5)])  # fmt: skip
    for node in ("n1", "n3"):
        tb.exec(node, FERRY, "benchp", "stop", "--local", "--force")
    rows = [
        ("space used on n3 by the data and its points", f"{used / MIB:.0f} MiB",
         f"bound {bound / MIB:.0f} MiB"),
        ("space / bound", f"{used / bound:.2f}", "1.00"),
        ("list 100 points (ferry print restorepoints)", f"{list_s:.2f} s",
         f"btrfs subvolume list {raw:.2f} s"),
        ("  of which the CLI's own start (ferry doc fs.mnt)", f"{start_s:.2f} s", "-"),
        ("GET .../restorepoints (curl, unix socket)", f"{api_s * 1000:.0f} ms", "-"),
        ("sync with its point kept and pruned (median)", f"{median(sync_seconds):.2f} s", "-"),
    ]  # fmt: skip
    table(f"restorepoints: {POINTS} points of a 1 GiB subvolume, 1 % changed between points",
          rows)  # fmt: skip
    return {
        "points": POINTS,
        "used_bytes": used,
        "bound_bytes": int(bound),
        "used_over_bound": round(used / bound, 3),
        "list_seconds": round(list_s, 3),
        "btrfs_subvolume_list_seconds": round(raw, 3),
        "api_list_seconds": round(api_s, 3),
        "cli_start_seconds": round(start_s, 3),
        "sync_seconds_median": round(median(sync_seconds), 3),
        "sync_seconds_max": round(max(sync_seconds), 3),
        "command": "python -m bench restorepoints",
    }


BENCHMARKS = {"restorepoints": runner("restorepoints", bench_points)}
