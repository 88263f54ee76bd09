"""Sync benchmarks on a testbed of their own: Ferry's figures beside a baseline in the same run.

* sync-docker: a 200 MiB base image plus a 5 MiB application layer, the target already
  holding the base; Ferry's docker sync against ``docker save | ssh | docker load``; and a
  1 GiB image with nothing on the target, Ferry's full transfer against that pipeline.
* sync-btrfs: a 1 GiB subvolume: full sends against ``btrfs send | ssh | btrfs receive``
  (and that pipeline with the target's commit), then 10 MiB changed: incremental sends.
* sync-rsync: Ferry's rsync sync against a bare ``rsync -e ssh`` of the same tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.testbed import Testbed

REPO = Path(__file__).resolve().parents[1]
FERRY = str(REPO / ".venv" / "bin" / "ferry")
RESULTS = REPO / "bench" / "results"
MIB = 1024 * 1024


def _testbed() -> Testbed:
    base = os.environ.get("FERRY_BENCH_DIR", "/var/tmp/ferry-bench")
    return Testbed(state_dir=base, prefix="ferry-b-")


def sh(tb: Testbed, node: str, script: str, timeout: float = 1800) -> str:
    done = tb.exec(node, "sh", "-c", script, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{node}: {script}: {done.stderr.strip()[-500:]}")
    return str(done.stdout)


def timed(tb: Testbed, node: str, script: str) -> float:
    started = time.monotonic()
    sh(tb, node, script)
    return time.monotonic() - started


def ferry_sync(tb: Testbed, node: str, svc: str, verb: str = "all") -> dict[str, Any]:
    started = time.monotonic()
    done = tb.exec(node, FERRY, svc, "sync", verb, "--local", "-o", "json", timeout=1800)
    elapsed = time.monotonic() - started
    reports = json.loads(done.stdout)
    if done.returncode != 0 or not all(r["ok"] for r in reports):
        raise RuntimeError(f"ferry sync failed: {reports} {done.stderr[-500:]}")
    return {"bytes": sum(r["bytes"] for r in reports), "seconds": elapsed, "reports": reports}


def install(tb: Testbed, svc: str, text: str) -> None:
    for node in ("n1", "n3"):
        sh(tb, node, "mkdir -p /etc/ferry")
        tb.exec(node, "sh", "-c", f"cat > /etc/ferry/{svc}.conf", input=text, check=True)


def table(title: str, rows: list[tuple[str, str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(r[0]) for r in rows)
    print(f"{'':<{width}}  {'ferry':>16}  {'baseline':>16}")
    for name, ours, base in rows:
        print(f"{name:<{width}}  {ours:>16}  {base:>16}")


def save(name: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwritten: bench/results/{name}.json")


DOCKER_SVC = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[container#0]
image = bench/app:1
command = sleep 1000000

[sync#0]
type = docker
target = drpnodes
"""


TURNS = 5  # per tree and way; the median is reported


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def daemon_sync(
    tb: Testbed, node: str, svc: str, verb: str, rid: str = ""
) -> tuple[float, float, int]:
    """A sync through the node's ferryd (what the scheduler runs): the CLI's wall time, the
    action's own time in the daemon, and the bytes moved."""
    started = time.monotonic()
    only = ["--rid", rid] if rid else []
    done = tb.exec(node, FERRY, svc, "sync", verb, *only, "--wait", "-o", "json", timeout=1800)
    elapsed = time.monotonic() - started
    record = json.loads(done.stdout or "{}")
    if done.returncode != 0 or record.get("state") != "succeeded":
        raise RuntimeError(f"ferry sync through ferryd failed: {record} {done.stderr[-500:]}")
    moved = sum(int(r["bytes"]) for r in (record.get("result") or {}).get("reports", []))
    return elapsed, float(record["ended_at"]) - float(record["started_at"]), moved


def forget_images(*refs: str) -> str:
    """A shell line removing refs from an engine, with the tags of Ferry's restore points
    and steps (they keep an image there: a sync would then find it present)."""
    names = " ".join(refs)
    return (
        f"for r in {names}; do for i in $(docker images -q $r); do "
        "docker rmi -f $i >/dev/null 2>&1; done; done; "
        "docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^ferry-' "
        "| xargs -r docker rmi -f >/dev/null 2>&1; docker image prune -f >/dev/null"
    )


def bench_docker(tb: Testbed) -> dict[str, Any]:
    # base image: busybox plus 200 MiB of incompressible data; app: one 5 MiB layer on top
    sh(tb, "n1", "docker image inspect bench/app:1 >/dev/null 2>&1 || ("
       "set -e; d=$(mktemp -d); mkdir $d/root $d/app; "
       "cp /bin/busybox $d/root/busybox; mkdir -p $d/root/bin; "
       "for t in sh sleep; do ln -s /busybox $d/root/bin/$t; done; "
       "head -c 200M /dev/urandom > $d/root/base.bin; "
       "tar -C $d/root -cf - . | docker import - bench/base:1; "
       "head -c 5M /dev/urandom > $d/app/app.bin; "
       "printf 'FROM bench/base:1\\nCOPY app.bin /app.bin\\n' > $d/app/Dockerfile; "
       "DOCKER_BUILDKIT=0 docker build -q -t bench/app:1 $d/app; rm -rf $d)")  # fmt: skip
    install(tb, "benchd", DOCKER_SVC)
    tb.exec("n1", FERRY, "benchd", "start", "--local", check=True, timeout=300)
    tb.start_ferryd(["n1", "n3"])
    image_bytes = int(sh(tb, "n1", "docker save bench/app:1 | wc -c").strip())
    missing_layer = 5 * MIB

    def target_holds_the_base() -> None:
        sh(tb, "n3", forget_images("bench/app:1", "bench/base:1"))
        sh(tb, "n1", "docker save bench/base:1 | ssh n3 docker load >/dev/null")

    target_holds_the_base()
    local = ferry_sync(tb, "n1", "benchd")
    local_present = median([ferry_sync(tb, "n1", "benchd")["seconds"] for _ in range(TURNS)])
    target_holds_the_base()
    _, action, moved = daemon_sync(tb, "n1", "benchd", "all")
    present = [daemon_sync(tb, "n1", "benchd", "all") for _ in range(TURNS)]
    assert all(p[2] == 0 for p in present), present
    present_wall, present_action = median([p[0] for p in present]), median([p[1] for p in present])
    sh(tb, "n3", forget_images("bench/app:1"))
    base_seconds = timed(tb, "n1", "docker save bench/app:1 | ssh n3 docker load")
    full = bench_docker_full(tb)
    tb.exec("n1", FERRY, "benchd", "stop", "--local", timeout=300)
    rows = [
        ("bytes on the wire (through ferryd)", f"{moved / MIB:.1f} MiB",
         f"{image_bytes / MIB:.1f} MiB"),
        ("bytes / missing layer", f"{moved / missing_layer:.2f}",
         f"{image_bytes / missing_layer:.2f}"),
        ("wall time: through ferryd, the action", f"{action:.2f} s", f"{base_seconds:.2f} s"),
        ("wall time: CLI sync --local", f"{local['seconds']:.2f} s", ""),
        ("already present: through ferryd, the action", f"0 B, {present_action:.2f} s", "-"),
        ("already present: through ferryd, CLI --wait", f"{present_wall:.2f} s", "-"),
        ("already present: CLI sync --local", f"{local_present:.2f} s", "-"),
    ]  # fmt: skip
    table("sync-docker: 200 MiB base + 5 MiB layer, target holds the base", rows)
    return {
        "ferry_bytes": moved,
        "ferry_seconds": round(action, 3),
        "ferry_cli_local_bytes": local["bytes"],
        "ferry_cli_local_seconds": round(local["seconds"], 3),
        "baseline_bytes": image_bytes,
        "baseline_seconds": round(base_seconds, 3),
        **full,
        "bytes_over_missing_layer": round(moved / missing_layer, 3),
        "wall_time_ratio": round(action / base_seconds, 3),
        "already_present_bytes": 0,
        "already_present_seconds": round(present_action, 3),
        "already_present_cli_wait_seconds": round(present_wall, 3),
        "already_present_cli_local_seconds": round(local_present, 3),
        "command": "python -m bench sync-docker",
    }


BIG_SVC = DOCKER_SVC.replace("bench/app:1", "bench/big:1")


def bench_docker_full(tb: Testbed) -> dict[str, Any]:
    """A 1 GiB image (one layer of random data), nothing of it on the target: Ferry through
    ferryd against docker save | ssh | docker load, in turns."""
    sh(tb, "n1", "docker image inspect bench/big:1 >/dev/null 2>&1 || ("
       "set -e; d=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/busybox; "
       "for t in sh sleep; do ln -s /busybox $d/bin/$t; done; "
       "head -c 1G /dev/urandom > $d/big.bin; "
       "tar -C $d -cf - . | docker import - bench/big:1 >/dev/null; rm -rf $d)")  # fmt: skip
    install(tb, "benchbig", BIG_SVC)
    tb.exec("n1", FERRY, "benchbig", "start", "--local", check=True, timeout=300)
    image_bytes = int(sh(tb, "n1", "docker save bench/big:1 | wc -c").strip())
    fulls, raws = [], []
    for _ in range(FULL_TURNS):  # in turns: the machine's drift touches both alike
        sh(tb, "n3", forget_images("bench/big:1"))
        fulls.append(daemon_sync(tb, "n1", "benchbig", "all")[1:])
        sh(tb, "n3", forget_images("bench/big:1"))
        raws.append(timed(tb, "n1", "docker save bench/big:1 | ssh n3 docker load >/dev/null"))
    tb.exec("n1", FERRY, "benchbig", "stop", "--local", timeout=300)
    full_s, full_moved = median([f[0] for f in fulls]), int(median([float(f[1]) for f in fulls]))
    full_ratio = (full_moved / full_s) / (image_bytes / median(raws))
    table(
        f"sync-docker full transfer, 1 GiB image, nothing on the target, median of {FULL_TURNS} "
        "(ferry = through ferryd, the action; baseline = docker save | ssh | docker load)",
        [
            ("bytes", f"{full_moved / MIB:.1f} MiB ({full_moved / image_bytes:.3f} x)",
             f"{image_bytes / MIB:.1f} MiB"),
            ("time", f"{full_s:.2f} s", f"{median(raws):.2f} s"),
            ("throughput", f"{full_moved / full_s / MIB:.0f} MiB/s ({full_ratio:.2f} x)",
             f"{image_bytes / median(raws) / MIB:.0f} MiB/s"),
            ("each run", " ".join(f"{f[0]:.2f}" for f in fulls),
             " ".join(f"{t:.2f}" for t in raws)),
        ],
    )  # fmt: skip
    return {
        "full_bytes": full_moved,
        "full_image_bytes": image_bytes,
        "full_seconds": round(full_s, 3),
        "full_runs_seconds": [round(f[0], 3) for f in fulls],
        "raw_full_seconds": round(median(raws), 3),
        "raw_full_runs_seconds": [round(t, 3) for t in raws],
        "full_throughput_ratio": round(full_ratio, 3),
        "full_bytes_ratio": round(full_moved / image_bytes, 4),
    }


BTRFS_SVC = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[fs#1]
dev = /dev/mapper/svc1.d0
mnt = /srv/bench/data
mnt_opt = defaults,subvol=data
standby@drpnodes = true

[sync#1]
type = btrfs
src = svc1:data
dst = svc1:data
target = drpnodes
retain = 1h
retain_min = 0s
"""


# The target keeps one restore point (retain = 1h, retain_min = 0s in BTRFS_SVC): a full
# receive is 1 GiB on a 3 GiB testbed disk.
FULL_TURNS = 5  # full transfers are noisy on two cores shared by both ends
RAW_SNAP, RAW_RECV = "/srv/bench/data/.raw-snap", "/srv/bench/data/.raw-recv"


class RawBtrfs:
    """The raw pipeline's full send of the same data (a read-only snapshot of it), into an
    empty directory on n3; with ``commit``, the target's data also written to its disk
    (``btrfs filesystem sync`` after the receive), as Ferry's sync does before it reports."""

    def __init__(self, tb: Testbed) -> None:
        self.tb = tb
        snap = f"btrfs subvolume snapshot -r /srv/bench/data {RAW_SNAP} >/dev/null && sync"
        sh(tb, "n1", f"btrfs subvolume delete {RAW_SNAP} >/dev/null 2>&1; {snap}")
        self.bytes = int(sh(tb, "n1", f"btrfs send -q {RAW_SNAP} | wc -c").strip())

    def _clean_target(self) -> None:
        settle = f"btrfs subvolume sync /srv/bench/data >/dev/null; mkdir -p {RAW_RECV}; sync"
        sh(self.tb, "n3", f"btrfs subvolume delete {RAW_RECV}/.raw-snap >/dev/null 2>&1; {settle}")

    def once(self, commit: bool = False) -> float:
        self._clean_target()
        then = f" && btrfs filesystem sync {RAW_RECV}" if commit else ""
        seconds = timed(self.tb, "n1", f"btrfs send -q {RAW_SNAP} | ssh n3 'btrfs receive -q "
                                       f"{RAW_RECV}{then}'")  # fmt: skip
        self._clean_target()
        return seconds

    def close(self) -> None:
        sh(self.tb, "n3", f"rmdir {RAW_RECV}")
        sh(self.tb, "n1", f"btrfs subvolume delete {RAW_SNAP} >/dev/null")


def bench_btrfs(tb: Testbed) -> dict[str, Any]:
    """A full send of a 1 GiB subvolume, then incremental sends of 10 MiB changed, through
    ferryd (the scheduler's way) and with the CLI alone (--local)."""
    install(tb, "benchb", BTRFS_SVC)
    tb.exec("n1", FERRY, "benchb", "start", "--local", check=True)
    tb.exec("n3", FERRY, "benchb", "startstandby", "--local", check=True)
    tb.start_ferryd(["n1", "n3"])
    sh(tb, "n1", "head -c 1G /dev/urandom > /srv/bench/data/big.bin && sync")
    changed = 10 * MIB
    seek = iter(range(100, 1000, 20))

    def change() -> None:
        sh(tb, "n1", f"dd if=/dev/urandom of=/srv/bench/data/big.bin bs=1M count=10 "
                     f"seek={next(seek)} conv=notrunc status=none && sync")  # fmt: skip

    raw = RawBtrfs(tb)
    fulls, raws, committed = [], [], []
    for _ in range(FULL_TURNS):  # in turns: the machine's drift touches both alike
        _, full_s, full_bytes = daemon_sync(tb, "n1", "benchb", "full")
        fulls.append(full_s)
        sh(tb, "n3", "btrfs subvolume sync /srv/bench/data >/dev/null")
        raws.append(raw.once())
        committed.append(raw.once(commit=True))
    raw.close()
    raw_bytes, full_s = raw.bytes, median(fulls)
    incr = []
    for _ in range(TURNS):
        change()
        incr.append(daemon_sync(tb, "n1", "benchb", "all"))
    incr_s, incr_bytes = median([r[1] for r in incr]), median([float(r[2]) for r in incr])
    local_full = ferry_sync(tb, "n1", "benchb", "full")
    local_incr = []
    for _ in range(TURNS):
        change()
        local_incr.append(ferry_sync(tb, "n1", "benchb", "all"))
    local_incr_s = median([r["seconds"] for r in local_incr])
    for node in ("n1", "n3"):
        tb.exec(node, FERRY, "benchb", "stop", "--local", "--force")
    ferry_rate, raw_rate = full_bytes / median(fulls), raw_bytes / median(raws)
    table(
        f"sync-btrfs full send, 1 GiB, median of {FULL_TURNS} "
        "(ferry = through ferryd, the action; baseline = btrfs send | ssh | btrfs receive)",
        [
            ("bytes", f"{full_bytes / MIB:.1f} MiB ({full_bytes / raw_bytes:.3f} x)",
             f"{raw_bytes / MIB:.1f} MiB"),
            ("time", f"{median(fulls):.2f} s", f"{median(raws):.2f} s"),
            ("throughput", f"{ferry_rate / MIB:.0f} MiB/s ({ferry_rate / raw_rate:.2f} x)",
             f"{raw_rate / MIB:.0f} MiB/s"),
            ("each run", " ".join(f"{t:.2f}" for t in fulls), " ".join(f"{t:.2f}" for t in raws)),
            ("baseline + commit on n3 (each run)", "",
             " ".join(f"{t:.2f}" for t in committed)),
        ],
    )  # fmt: skip
    rows = [
        ("bytes", f"{incr_bytes / MIB:.1f} MiB", f"{full_bytes / MIB:.1f} MiB"),
        ("bytes / changed", f"{incr_bytes / changed:.2f}", f"{full_bytes / changed:.1f}"),
        ("wall time: through ferryd, the action", f"{incr_s:.2f} s ({incr_s / full_s:.2f} x)",
         f"{full_s:.2f} s"),
        ("wall time: CLI sync --local", f"{local_incr_s:.2f} s "
         f"({local_incr_s / local_full['seconds']:.2f} x)", f"{local_full['seconds']:.2f} s"),
    ]  # fmt: skip
    table(
        "sync-btrfs: 1 GiB subvolume, 10 MiB changed, median of 5 "
        "(ferry = incremental, baseline = full)",
        rows,
    )
    return {
        "incremental_bytes": int(incr_bytes),
        "incremental_seconds": round(incr_s, 3),
        "full_bytes": full_bytes,
        "full_seconds": round(full_s, 3),
        "full_runs_seconds": [round(t, 3) for t in fulls],
        "raw_full_bytes": raw_bytes,
        "raw_full_runs_seconds": [round(t, 3) for t in raws],
        "raw_full_with_commit_runs_seconds": [round(t, 3) for t in committed],
        "full_throughput_ratio": round(ferry_rate / raw_rate, 3),
        "full_bytes_ratio": round(full_bytes / raw_bytes, 4),
        "bytes_over_changed": round(incr_bytes / changed, 3),
        "time_ratio": round(incr_s / full_s, 3),
        "cli_local_incremental_seconds": round(local_incr_s, 3),
        "cli_local_full_seconds": round(local_full["seconds"], 3),
        "cli_local_time_ratio": round(local_incr_s / local_full["seconds"], 3),
        "command": "python -m bench sync-btrfs",
    }


RSYNC_SVC = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[app#0]
start = touch /var/lib/ferry/benchr.up
stop = rm -f /var/lib/ferry/benchr.up
check = test -f /var/lib/ferry/benchr.up

[sync#0]
src = /srv/benchr/
dst = /srv/benchr-ferry
target = drpnodes
"""


RSYNC_TREES = (  # name, directories, files per directory, KiB per file
    ("1 file, 1 MiB (fixed costs)", 1, 1, 1024),
    ("4000 files, 400 MiB", 80, 50, 100),
    ("1600 files, 1.6 GiB", 16, 100, 1024),
)


BARE_RSYNC = "rsync -a -e ssh /srv/benchr/ root@n3:/srv/benchr-bare"
# the same rsync with Ferry's default options (daemon/sync/rsync/driver.py): what they cost
SAME_OPTIONS_RSYNC = (
    "rsync -HAXpogDtrlx --delete --delete-after --delay-updates -e ssh "
    "/srv/benchr/ root@n3:/srv/benchr-bare"
)


def bench_rsync(tb: Testbed) -> dict[str, Any]:
    """Ferry's rsync sync (guard, stamps, its default options) against a bare rsync -e ssh
    of the same tree to an empty target, for three tree sizes, two ways: the CLI alone
    (``sync full --local``: a Python start, the guard over ssh) and through ferryd (the
    scheduler's way: the guard and the stamps asked of the target's ferryd)."""
    install(tb, "benchr", RSYNC_SVC)
    tb.exec("n1", FERRY, "benchr", "start", "--local", check=True)
    tb.start_ferryd(["n1", "n3"])
    rows: list[tuple[str, str, str]] = []
    figures: list[dict[str, Any]] = []
    for name, dirs, files, kib in RSYNC_TREES:
        sh(tb, "n1", f"rm -rf /srv/benchr && mkdir -p /srv/benchr && cd /srv/benchr && "
                     f"for i in $(seq 1 {dirs}); do mkdir -p d$i; for j in $(seq 1 {files}); do "
                     f"head -c {kib}K /dev/urandom > d$i/f$j; done; done")  # fmt: skip
        runs = []
        for turn in range(TURNS):
            turns: dict[str, Callable[[], Any]] = {
                "bare": lambda: timed(tb, "n1", BARE_RSYNC),
                "options": lambda: timed(tb, "n1", SAME_OPTIONS_RSYNC),
                "local": lambda: ferry_sync(tb, "n1", "benchr", "full")["seconds"],
                "daemon": lambda: daemon_sync(tb, "n1", "benchr", "full"),
            }
            order = list(turns)[turn:] + list(turns)[:turn]  # who goes first rotates
            got: dict[str, Any] = {}
            for key in order:  # each to an empty target, the previous one's writes flushed
                sh(tb, "n3", "rm -rf /srv/benchr-ferry /srv/benchr-bare && sync")
                got[key] = turns[key]()
            runs.append(got)
        bare_s = median([r["bare"] for r in runs])
        options_s = median([r["options"] for r in runs])
        local_s = median([r["local"] for r in runs])
        cli_s = median([r["daemon"][0] for r in runs])
        action_s = median([r["daemon"][1] for r in runs])
        rows.append((f"{name}: bare rsync -a -e ssh", "", f"{bare_s:.2f} s"))
        rows.append((f"{name}: bare rsync, Ferry's options", "",
                     f"{options_s:.2f} s ({options_s / bare_s:.2f} x)"))  # fmt: skip
        rows.append((f"{name}: through ferryd, the action (scheduler)",
                     f"{action_s:.2f} s ({action_s / bare_s:.2f} x)", ""))  # fmt: skip
        rows.append((f"{name}: through ferryd, CLI sync --wait",
                     f"{cli_s:.2f} s ({cli_s / bare_s:.2f} x)", ""))  # fmt: skip
        rows.append((f"{name}: CLI sync --local",
                     f"{local_s:.2f} s ({local_s / bare_s:.2f} x)", ""))  # fmt: skip
        figures.append({"tree": name, "baseline_seconds": round(bare_s, 3),
                        "same_options_seconds": round(options_s, 3),
                        "daemon_action_seconds": round(action_s, 3),
                        "daemon_action_ratio": round(action_s / bare_s, 3),
                        "daemon_cli_seconds": round(cli_s, 3),
                        "daemon_cli_ratio": round(cli_s / bare_s, 3),
                        "local_cli_seconds": round(local_s, 3),
                        "local_cli_ratio": round(local_s / bare_s, 3)})  # fmt: skip
    sh(tb, "n3", "rm -rf /srv/benchr-ferry /srv/benchr-bare")
    sh(tb, "n1", "rm -rf /srv/benchr")
    tb.exec("n1", FERRY, "benchr", "stop", "--local")
    small = figures[0]
    fixed = {
        "daemon_action": round(small["daemon_action_seconds"] - small["baseline_seconds"], 3),
        "local_cli": round(small["local_cli_seconds"] - small["baseline_seconds"], 3),
    }
    rows.append(("fixed cost per sync (1 MiB tree): through ferryd",
                 f"{fixed['daemon_action']:.2f} s", ""))  # fmt: skip
    rows.append(
        ("fixed cost per sync (1 MiB tree): CLI --local", f"{fixed['local_cli']:.2f} s", "")
    )
    table("sync-rsync: to an empty target, median of 5 (Ferry: sync full; baseline: rsync -a)",
          rows)  # fmt: skip
    return {"trees": figures, "fixed_cost_seconds": fixed,
            "command": "python -m bench sync-rsync"}  # fmt: skip


def runner(name: str, work: Callable[[Testbed], dict[str, Any]]) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        tb = _testbed()
        tb.up()
        try:
            save(name, work(tb))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            print(f"bench {name} failed: {exc}")
            return 1
        finally:
            tb.down()
        return 0

    return run


BENCHMARKS = {
    "sync-docker": runner("sync-docker", bench_docker),
    "sync-btrfs": runner("sync-btrfs", bench_btrfs),
    "sync-rsync": runner("sync-rsync", bench_rsync),
}
