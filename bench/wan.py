"""Transfers across a WAN: the DR node's link shaped (100 Mbit/s, 40 ms RTT, 0.1 % loss),
Ferry through ferryd beside the raw tools over the same link, each plain and with zstd.

* btrfs full: 1 GiB of SQL-dump-like text, generated deterministically (awk, fixed seed);
* btrfs incremental: 50 MiB of such text added;
* docker: a 300 MiB image (half such text, half random), nothing of it on the target;
* rsync: 4000 files of 25 KiB of such text, to an empty directory;
* a cap (bwlimit = 4M) measured over every 10 s window of a transfer;
* the ETA of the plain full send, sampled during it, against the time it really took.

The shaping is the testbed's (tests/testbed/netem.py: a forwarder in the switch's
namespace, on n3's port only): nothing touches the machine's own network.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

from bench.sync import FERRY, MIB, _testbed, daemon_sync, save, sh, table, timed
from tests.testbed import Testbed

LINK = ("delay", "20ms", "loss", "0.1%", "rate", "100mbit")  # each way: 40 ms RTT
LINK_RATE = 100e6 / 8  # bytes/s
CAP = 4 * MIB
SVC = "wan"
CONFIG = """[DEFAULT]
nodes = n1 n2
drpnodes = n3

[fs#1]
dev = /dev/mapper/svc1.d0
mnt = /srv/wan/data
mnt_opt = defaults,subvol=data
standby@drpnodes = true

[container#0]
image = wan/app:1
command = sleep 1000000

[sync#0]
type = docker
target = drpnodes
compress = {compress}

[sync#1]
type = btrfs
src = svc1:data
dst = svc1:data
target = drpnodes
retain = 1h
retain_min = 0s
compress = {compress}
{cap}
[sync#2]
src = /srv/wan/files/
dst = /srv/wan-files
target = drpnodes
compress = {compress}
"""
Samples = list[tuple[float, dict[str, Any]]]
PROGRESS = f"/var/lib/ferry/services/{SVC}/sync/sync#1/progress.json"


def dump(path: str, mib: int, seed: int) -> str:
    """A shell line writing mib MiB of SQL-dump-like text to path, the same for a seed."""
    return (
        f"awk 'BEGIN {{ srand({seed}); for (i = 1; ; i++) printf \"INSERT INTO orders VALUES "
        f'(%d, %d, \\"customer-%d\\", %.2f, \\"%s\\", \\"2026-%02d-%02d\\");\\n", i, '
        f'int(rand() * 1e6), int(rand() * 5e4), rand() * 1000, (rand() < 0.5 ? "paid" : '
        f'"open"), 1 + int(rand() * 12), 1 + int(rand() * 28) }}\' | head -c {mib}M > {path}'
    )


def configure(tb: Testbed, compress: str, bwlimit: str = "") -> None:
    text = CONFIG.format(compress=compress, cap=f"bwlimit = {bwlimit}\n" if bwlimit else "")
    for node in ("n1", "n2", "n3"):
        sh(tb, node, "mkdir -p /etc/ferry")
        tb.exec(node, "sh", "-c", f"cat > /etc/ferry/{SVC}.conf", input=text, check=True)
    time.sleep(2)  # ferryd reads a changed file at its next turn


def prepare(tb: Testbed) -> None:
    configure(tb, "none")
    sh(tb, "n1", "set -e; d=$(mktemp -d); mkdir -p $d/root/bin; cp /bin/busybox $d/root/; "
       "for t in sh sleep; do ln -s /busybox $d/root/bin/$t; done; "
       "tar -C $d/root -cf - . | docker import - wan/base:1 >/dev/null; "
       f"{dump('$d/text.sql', 150, 7)}; head -c 150M /dev/urandom > $d/random.bin; "
       "printf 'FROM wan/base:1\\nCOPY text.sql /text.sql\\nCOPY random.bin /random.bin\\n' "
       "> $d/Dockerfile; DOCKER_BUILDKIT=0 docker build -q -t wan/app:1 $d >/dev/null; "
       "rm -rf $d", timeout=900)  # fmt: skip
    for node, verb in (("n1", "start"), ("n3", "startstandby")):
        done = tb.exec(node, FERRY, SVC, verb, "--local", timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{node}: {verb}: {done.stderr.strip()[-300:]}")
    sh(tb, "n3", "mkdir -p /srv/wan-top && mount -o subvolid=5 /dev/mapper/svc1.d0 /srv/wan-top")
    sh(tb, "n1", dump("/srv/wan/data/dump.sql", 1024, 1), timeout=900)
    sh(tb, "n1", "mkdir -p /srv/wan/files && cd /srv/wan/files && "
       f"{dump('/tmp/wan-files.sql', 100, 3)} && split -b 25600 -a 4 /tmp/wan-files.sql f && "
       "rm /tmp/wan-files.sql && ls | wc -l && sync", timeout=600)  # fmt: skip
    tb.start_ferryd(["n1", "n2", "n3"])


class Sampler:
    """progress.json of a running transfer on n1, read every half second."""

    def __init__(self, tb: Testbed) -> None:
        self.tb = tb
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self.ended: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        seen = False
        while not self._stop.is_set():
            done = self.tb.exec("n1", "cat", PROGRESS, timeout=30)
            now = time.monotonic()
            if done.returncode == 0 and done.stdout.strip():
                try:
                    self.samples.append((now, json.loads(done.stdout)))
                    seen = True
                except ValueError:
                    pass
            elif seen and self.ended is None:
                self.ended = now  # the transfer's end: its progress is cleared
            time.sleep(0.5)


def window_rates(samples: Samples, width: float = 10.0) -> list[float]:
    """The rate over every width-second window of the samples (bytes/s)."""
    rates = []
    for i, (start, first) in enumerate(samples):
        for end, last in samples[i + 1 :]:
            if end - start >= width:
                rates.append((last["bytes"] - first["bytes"]) / (end - start))
                break
    return rates


def eta_errors(
    samples: list[tuple[float, dict[str, Any]]], ended: float
) -> list[tuple[int, float]]:
    """At 25, 50 and 75 % of the transfer: (percent, the ETA's error against the time that
    really remained, in % of it)."""
    out = []
    for mark in (25, 50, 75):
        for when, data in samples:
            total, eta = data.get("total"), data.get("eta")
            if total and eta is not None and data["bytes"] >= total * mark / 100:
                remained = ended - when
                out.append((mark, 100.0 * (eta - remained) / remained))
                break
    return out


# n3 receives the raw tool's streams in the disk's top level (mounted at /srv/wan-top), beside
# the data subvolume that Ferry's receives replace
RAW, RAW_PARENT, RAW_DIR = "/srv/wan/data/.raw", "/srv/wan/data/.raw-parent", "/srv/wan-top/raw"


def raw_send(tb: Testbed, snap: str, zstd: bool, parent: str = "") -> float:
    """btrfs send of snap (incremental from parent) into n3, plain or through zstd."""
    send = f"btrfs send -q {'-p ' + parent + ' ' if parent else ''}{snap}"
    if zstd:
        pipe = f"{send} | zstd -q -3 -T0 | ssh n3 'zstd -q -d | btrfs receive -q {RAW_DIR}'"
    else:
        pipe = f"{send} | ssh n3 btrfs receive -q {RAW_DIR}"
    return timed(tb, "n1", pipe)


def clean_raw_target(tb: Testbed) -> None:
    """n3's raw receive directory, empty, beside (not in) the data Ferry replaces."""
    sh(tb, "n3", f"for s in {RAW_DIR}/.raw {RAW_DIR}/.raw-parent; do "
                 "btrfs subvolume delete $s >/dev/null 2>&1; done; "
                 f"btrfs subvolume sync /srv/wan-top >/dev/null; mkdir -p {RAW_DIR}")  # fmt: skip


def snapshot_raw(tb: Testbed, name: str) -> None:
    snapshot = f"btrfs subvolume snapshot -r /srv/wan/data {name} >/dev/null && sync"
    sh(tb, "n1", f"btrfs subvolume delete {name} >/dev/null 2>&1; {snapshot}")


def bench_btrfs(tb: Testbed, figures: dict[str, Any]) -> None:
    full: dict[str, Any] = {}
    for compress in ("none", "zstd"):
        configure(tb, compress)
        with Sampler(tb) as sampler:
            _, action, moved = daemon_sync(tb, "n1", SVC, "full", "sync#1")
        full[f"ferry_{compress}"] = {"seconds": round(action, 2), "bytes": moved}
        if compress == "none" and sampler.ended is not None:
            full["eta_errors_percent"] = [
                (mark, round(err, 1)) for mark, err in eta_errors(sampler.samples, sampler.ended)
            ]
        sh(tb, "n3", "btrfs subvolume sync /srv/wan/data >/dev/null")
    snapshot_raw(tb, RAW)
    size = int(sh(tb, "n1", f"btrfs send -q {RAW} | wc -c").strip())
    for zstd in (False, True):
        clean_raw_target(tb)
        seconds = raw_send(tb, RAW, zstd)
        full[f"raw_{'zstd' if zstd else 'none'}"] = {"seconds": round(seconds, 2), "bytes": size}
    clean_raw_target(tb)
    figures["btrfs_full"] = full
    # incremental: 50 MiB of text added; the raw pipeline from a parent both sides hold
    incr: dict[str, Any] = {}
    for seed, compress in ((11, "none"), (12, "zstd")):
        configure(tb, compress)
        sh(tb, "n1", dump(f"/srv/wan/data/more-{seed}.sql", 50, seed) + " && sync")
        _, action, moved = daemon_sync(tb, "n1", SVC, "all", "sync#1")
        incr[f"ferry_{compress}"] = {"seconds": round(action, 2), "bytes": moved}
    for seed, zstd in ((13, False), (14, True)):
        clean_raw_target(tb)
        snapshot_raw(tb, RAW_PARENT)
        raw_send(tb, RAW_PARENT, False)  # the parent, on both sides (not timed)
        sh(tb, "n1", dump(f"/srv/wan/data/raw-{seed}.sql", 50, seed) + " && sync")
        snapshot_raw(tb, RAW)
        seconds = raw_send(tb, RAW, zstd, parent=RAW_PARENT)
        incr[f"raw_{'zstd' if zstd else 'none'}"] = {"seconds": round(seconds, 2)}
        sh(tb, "n1", f"rm -f /srv/wan/data/raw-{seed}.sql")
    clean_raw_target(tb)
    sh(tb, "n1", f"btrfs subvolume delete {RAW} {RAW_PARENT} >/dev/null")
    figures["btrfs_incremental"] = incr


def bench_cap(tb: Testbed, figures: dict[str, Any]) -> None:
    configure(tb, "none", bwlimit="4M")
    sh(tb, "n1", "head -c 120M /dev/urandom > /srv/wan/data/capped.bin && sync")
    with Sampler(tb) as sampler:
        _, action, moved = daemon_sync(tb, "n1", SVC, "all", "sync#1")
    rates = window_rates(sampler.samples)
    figures["bwlimit"] = {
        "cap_bytes_per_second": CAP,
        "windows": len(rates),
        "min_window_rate": round(min(rates), 0) if rates else None,
        "max_window_rate": round(max(rates), 0) if rates else None,
        "average_rate": round(moved / action, 0),
    }
    configure(tb, "none")


def bench_docker(tb: Testbed, figures: dict[str, Any]) -> None:
    # the image, and the tags of Ferry's restore points and steps that keep it there
    clear = ("docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^(wan/app|ferry-)' "
             "| xargs -r docker rmi -f >/dev/null; docker image prune -f >/dev/null")  # fmt: skip
    size = int(sh(tb, "n1", "docker save wan/app:1 | wc -c").strip())
    result: dict[str, Any] = {"image_bytes": size}
    for compress in ("none", "zstd"):
        configure(tb, compress)
        sh(tb, "n3", clear)
        _, action, moved = daemon_sync(tb, "n1", SVC, "all", "sync#0")
        result[f"ferry_{compress}"] = {"seconds": round(action, 2), "bytes": moved}
    for zstd in (False, True):
        sh(tb, "n3", clear)
        pipe = ("docker save wan/app:1 | zstd -q -3 -T0 | ssh n3 'zstd -q -d | docker load'"
                if zstd else "docker save wan/app:1 | ssh n3 docker load")  # fmt: skip
        result[f"raw_{'zstd' if zstd else 'none'}"] = {"seconds": round(timed(tb, "n1", pipe), 2)}
    figures["docker"] = result


def bench_rsync(tb: Testbed, figures: dict[str, Any]) -> None:
    size = int(sh(tb, "n1", "du -sb /srv/wan/files | cut -f1").strip())
    result: dict[str, Any] = {"tree_bytes": size}
    empty = "find /srv/wan-files -mindepth 1 -maxdepth 1 ! -name .ferry-restore -exec rm -rf {} +"
    for compress in ("none", "zstd"):
        configure(tb, compress)
        sh(tb, "n3", f"mkdir -p /srv/wan-files && {empty}")
        _, action, moved = daemon_sync(tb, "n1", SVC, "all", "sync#2")
        result[f"ferry_{compress}"] = {"seconds": round(action, 2), "wire_bytes": moved}
    for zstd in (False, True):
        sh(tb, "n3", "rm -rf /srv/wan-raw")
        options = "--compress --compress-choice=zstd --compress-level=3 " if zstd else ""
        seconds = timed(tb, "n1", f"rsync -a {options}-e ssh /srv/wan/files/ root@n3:/srv/wan-raw")
        result[f"raw_{'zstd' if zstd else 'none'}"] = {"seconds": round(seconds, 2)}
    sh(tb, "n3", "rm -rf /srv/wan-raw")
    figures["rsync"] = result


def report(figures: dict[str, Any]) -> None:
    link = LINK_RATE / MIB

    def rate(data_bytes: float, seconds: float) -> str:
        per_second = data_bytes / seconds
        return f"{per_second / MIB:.1f} MiB/s ({per_second / LINK_RATE:.2f} x link)"

    rows = []
    for name, key, data in (
        ("btrfs full, 1 GiB text", "btrfs_full", figures["btrfs_full"]["raw_none"]["bytes"]),
        ("btrfs incremental, 50 MiB", "btrfs_incremental", 50 * MIB),
        ("docker, 300 MiB image", "docker", figures["docker"]["image_bytes"]),
        ("rsync, 4000 files", "rsync", figures["rsync"]["tree_bytes"]),
    ):
        f = figures[key]
        for compress in ("none", "zstd"):
            ours, raw = f[f"ferry_{compress}"]["seconds"], f[f"raw_{compress}"]["seconds"]
            rows.append((f"{name}, {compress}", f"{ours:.1f} s, {rate(data, ours)}",
                         f"{raw:.1f} s, {rate(data, raw)}"))  # fmt: skip
    table(f"WAN: n3's link at 100 Mbit/s ({link:.1f} MiB/s), 40 ms RTT, 0.1 % loss "
          "(ferry = through ferryd; baseline = the raw tool over the same link)", rows)  # fmt: skip
    cap = figures["bwlimit"]
    print(f"\nbwlimit = 4M ({CAP / MIB:.0f} MiB/s): {cap['windows']} windows of 10 s, rate "
          f"{cap['min_window_rate'] / MIB:.2f} to {cap['max_window_rate'] / MIB:.2f} MiB/s "
          f"(goal: within +-10 %: {0.9 * CAP / MIB:.2f} to {1.1 * CAP / MIB:.2f})")  # fmt: skip
    errors = figures["btrfs_full"].get("eta_errors_percent") or []
    marks = ", ".join(f"at {m} %: {e:+.1f} %" for m, e in errors)
    print(f"ETA of the plain full send against the time that really remained: {marks} "
          "(goal: within 20 %)")  # fmt: skip


def run(argv: list[str]) -> int:
    tb = _testbed()
    tb.up()
    figures: dict[str, Any] = {"link": " ".join(LINK), "command": "python -m bench wan"}
    try:
        prepare(tb)
        tb.netem("n3", *LINK)
        bench_btrfs(tb, figures)
        bench_cap(tb, figures)
        bench_docker(tb, figures)
        bench_rsync(tb, figures)
        report(figures)
        save("wan", figures)
    except RuntimeError as exc:
        print(f"bench wan failed: {exc}")
        return 1
    finally:
        with contextlib.suppress(Exception):  # a testbed that did not come up has no n3
            tb.exec("n3", "umount", "/srv/wan-top", timeout=60)
        tb.down()
    return 0


BENCHMARKS = {"wan": run}
