"""What the drill tests look at on a node: its state before and after, production's answers."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from tests.integration.ops import FERRY, ferry, sh
from tests.testbed import Testbed

# A node's state as a drill must leave it: its mounts, network namespaces and processes
# (by command name), the loop devices, and the drill clones on its btrfs disk.
STATE_SCRIPT = r"""
import json, os, subprocess
mounts = []
for line in open('/proc/self/mountinfo'):
    left, _, right = line.partition(' - ')
    f, t = left.split(), right.split()
    mounts.append(' '.join([f[3], f[4], t[0], t[1]]))
netns, procs = set(), {}
skip = {'python3', 'python', 'sh', 'ps', 'nsexec.py'}
me = os.getpid()
for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == me:
        continue
    try:
        netns.add(os.readlink(f'/proc/{pid}/ns/net'))
        comm = open(f'/proc/{pid}/comm').read().strip()
    except OSError:
        continue
    if comm not in skip and not comm.startswith('runc'):  # an engine's runc lives for a moment
        procs[comm] = procs.get(comm, 0) + 1
loops = subprocess.run(['losetup', '-a'], capture_output=True, text=True).stdout
clones = subprocess.run(
    ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
     'mkdir -p /run/st && mount -o subvolid=5 /dev/mapper/svc1.d0 /run/st && '
     'btrfs subvolume list /run/st | grep -c /drills/ ; umount /run/st; rmdir /run/st'],
    capture_output=True, text=True).stdout.strip()
print(json.dumps({'mounts': sorted(mounts), 'netns': len(netns), 'processes': procs,
                  'loops': sorted(loops.splitlines()), 'drill_clones': clones,
                  'drill_runs': sorted(os.listdir('/run/ferry-drills'))
                  if os.path.isdir('/run/ferry-drills') else []}))
"""


def node_state(tb: Testbed, node: str) -> dict[str, Any]:
    done = tb.exec(node, "python3", "-c", STATE_SCRIPT, timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def same_state(tb: Testbed, node: str, before: dict[str, Any], limit: float = 15.0) -> bool:
    """Whether node's state comes back to ``before`` within ``limit`` seconds (a short-lived
    process of the node's own may be seen at one moment; an engine's runc, which may be
    caught in ``before`` as well, is not counted at all)."""
    deadline = time.monotonic() + limit
    while True:
        now = node_state(tb, node)
        if now == before:
            return True
        if time.monotonic() > deadline:
            print("state differs:", {k: (before[k], now[k]) for k in now if now[k] != before[k]})
            return False
        time.sleep(1.0)


PROBE_SCRIPT = r"""
import json, os, sys, time, urllib.request
url, out, stop = sys.argv[1:4]
seen = []
while not os.path.exists(stop):
    began = time.time()
    try:
        code = urllib.request.urlopen(url, timeout=2).status
    except Exception as exc:
        code = f'{type(exc).__name__}: {exc}'
    seen.append([began, code])
    time.sleep(max(0.0, 0.5 - (time.time() - began)))
json.dump(seen, open(out, 'w'))
"""


class Prober:
    """HTTP GETs of url from inside node, two a second, until stopped."""

    def __init__(self, tb: Testbed, node: str, url: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.out = Path(f"/tmp/ferry-probe-{tag}.json")  # /tmp is the host's
        self.stop_file = Path(f"/tmp/ferry-probe-{tag}.stop")
        self.proc = tb.popen(node, "python3", "-c", PROBE_SCRIPT, url, str(self.out),
                             str(self.stop_file))  # fmt: skip
        self.started = time.time()

    def stop(self) -> list[tuple[float, Any]]:
        self.stop_file.touch()
        try:
            self.proc.wait(timeout=30)
            return [(float(t), code) for t, code in json.loads(self.out.read_text())]
        finally:
            self.stop_file.unlink(missing_ok=True)
            self.out.unlink(missing_ok=True)


def drill(tb: Testbed, node: str, *args: str, svc: str = "svc1", timeout: float = 600) -> Any:
    """``ferry SVC drill --yes -o json ARGS`` on node: (exit code, report or None, stderr)."""
    done = ferry(tb, node, svc, "drill", "--yes", "-o", "json", *args, timeout=timeout)
    try:
        report = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        report = None
    return done.returncode, report, done.stderr


def active(tb: Testbed, node: str, svc: str = "svc1") -> dict[str, Any] | None:
    done = sh(tb, node, f"cat /var/lib/ferry/drills/{svc}/active.json 2>/dev/null")
    return dict(json.loads(done.stdout)) if done.stdout.strip() else None


def in_bubble(
    tb: Testbed, node: str, script: str, svc: str = "svc1"
) -> subprocess.CompletedProcess[Any]:
    """A shell script run inside the running drill's bubble."""
    record = active(tb, node, svc)
    assert record is not None, "no drill runs"
    pid = record["bubble_pid"]
    return tb.exec(node, "nsenter", "-t", str(pid), "-m", "-n", "-p", "--", "sh", "-c", script,
                   timeout=60)  # fmt: skip


def api_get(tb: Testbed, node: str, path: str, read_for: float = 0.0) -> str:
    """The body of GET path from node's ferryd over its unix socket (a stream: what arrives
    within ``read_for`` seconds)."""
    code = (
        "import http.client, socket, sys\n"
        "c = http.client.HTTPConnection('x')\n"
        "s = socket.socket(socket.AF_UNIX); s.connect('/var/lib/ferry/ferryd.sock'); c.sock = s\n"
        f"c.request('GET', {path!r}); r = c.getresponse()\n"
        f"if {read_for!r}:\n"
        f"    s.settimeout({read_for!r}); out = b''\n"
        "    try:\n"
        "        while True:\n"
        "            chunk = r.read1(65536)\n"
        "            if not chunk: break\n"
        "            out += chunk\n"
        "    except (TimeoutError, OSError): pass\n"
        "    sys.stdout.write(out.decode())\n"
        "else:\n"
        "    sys.stdout.write(r.read().decode())\n"
    )
    return str(tb.exec(node, "python3", "-c", code, timeout=60).stdout)


def metrics(tb: Testbed, node: str) -> str:
    code = (
        "import http.client, socket\n"
        "c = http.client.HTTPConnection('x')\n"
        "s = socket.socket(socket.AF_UNIX); s.connect('/var/lib/ferry/ferryd.sock'); c.sock = s\n"
        "c.request('GET', '/metrics'); print(c.getresponse().read().decode())\n"
    )
    return tb.exec(node, "python3", "-c", code, timeout=30).stdout


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of name's sample with these labels (others may be there too) in a /metrics
    text, or None: read with prometheus_client's parser (label order is not meaning)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return None


__all__ = [
    "FERRY",
    "Prober",
    "active",
    "api_get",
    "drill",
    "in_bubble",
    "metrics",
    "node_state",
    "same_state",
]
