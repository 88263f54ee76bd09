"""The testbed itself: nodes, ssh, engines, disks, failures, and no trace left.

The first tests bring testbeds of their own (``own_testbed``: other state dir,
other name prefix) up and down, mostly through the CLI, crash or fail their
bring-up, and check that nothing is left; they run before the session's
testbed exists. The others use the session's ``testbed`` fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.testbed import Testbed, hostmade
from tests.testbed.disks import DEV_MAPPER
from tests.testbed.hostcheck import network_snapshot, settled_traces, traces
from tests.testbed.images import NGINX, PAUSE, SEED_IMAGES, build_archive
from tests.testbed.network import RUN_NETNS
from tests.testbed.procs import TestbedError, cmdline, live
from tests.testbed.state import State

pytestmark = pytest.mark.testbed

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "tests.testbed"]
PING = ["busybox", "ping", "-c", "1", "-W", "1"]
MOUNT_DISK = "mkdir -p /srv/tb && mount -t btrfs -o {opts} /dev/mapper/svc1.d0 /srv/tb"


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the testbed CLI from the repository root."""
    return subprocess.run(
        [*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def sh(tb: Testbed, node: str, script: str, timeout: float = 60) -> str:
    """Run a shell script in a node; fail the test on a non-zero exit."""
    done = tb.exec(node, "sh", "-c", script, timeout=timeout)
    assert done.returncode == 0, f"{node}: {script}\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def reachable(tb: Testbed, src: str, dst: str) -> bool:
    """One ping from ``src`` to ``dst`` answered within a second."""
    return tb.exec(src, *PING, dst).returncode == 0


@dataclass(frozen=True)
class OwnTestbed:
    """A testbed of the test's own, driven through the CLI (own state dir and prefix)."""

    state_dir: Path
    prefix: str

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FERRY_TESTBED_DIR": str(self.state_dir),
            "FERRY_TESTBED_PREFIX": self.prefix,
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(self.env, *args)

    def netns(self) -> list[str]:
        """This testbed's network namespaces now."""
        names = os.listdir(RUN_NETNS) if os.path.isdir(RUN_NETNS) else []
        return sorted(name for name in names if name.startswith(self.prefix))


@pytest.fixture
def own_testbed(tmp_path: Path) -> Iterator[OwnTestbed]:
    """State dir and prefix for a testbed of the test's own; taken down whatever happens."""
    own = OwnTestbed(tmp_path / "tb", f"ferry-h{os.getpid()}{uuid.uuid4().hex[:4]}-")
    try:
        yield own
    finally:
        Testbed(own.state_dir, own.prefix).down()


def mapper_dir() -> int | None:
    """Inode of the machine's /dev/mapper (None: there is none)."""
    try:
        return os.stat(DEV_MAPPER).st_ino
    except FileNotFoundError:
        return None


def assert_mapper_dir_as_before(before: int | None, made: int | None, own_prefix: str) -> None:
    """The /dev/mapper our testbed made (inode ``made``) is gone after its ``down``.

    Unless another testbed is up (it binds its nodes' /dev/mapper on it); one
    made again since by another testbed has another inode.
    """
    now = mapper_dir()
    if before is not None or now is None or now != made:
        return
    names = os.listdir(RUN_NETNS) if os.path.isdir(RUN_NETNS) else []
    others = [n for n in names if n.startswith("ferry-") and not n.startswith(own_prefix)]
    assert others, f"{DEV_MAPPER} made by the testbed is left after down"


# Reached when the state file shows it: names are recorded before things are
# made, so a second namespace recorded means the first one exists.
CRASH_STAGES = {
    "netns": lambda state: len(state.get("netns", [])) >= 2,
    "disks": lambda state: bool(state.get("loops")),
    "nodes": lambda state: any(rec.get("init") for rec in state.get("nodes", {}).values()),
}


def crash_up(own: OwnTestbed, stage: str) -> list[str]:
    """Start ``up``, SIGKILL it once it reached ``stage``; return what it had made."""
    reached = CRASH_STAGES[stage]
    crashed = subprocess.Popen([*CLI, "up"], env=own.env, cwd=REPO, stderr=subprocess.DEVNULL)
    state_file = own.state_dir / "state.json"
    deadline = time.monotonic() + 60
    try:
        while crashed.poll() is None and time.monotonic() < deadline:
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                state = {}
            if reached(state):
                break
            time.sleep(0.01)
        else:
            pytest.fail(f"up ended ({crashed.returncode}) or took 60 s before stage {stage}")
    finally:
        crashed.kill()
        crashed.wait(timeout=10)
    made = traces(own.prefix, own.state_dir)
    assert made, "the crashed up had made nothing"
    return made


def test_cli_crash_up_down_leaves_no_trace(
    own_testbed: OwnTestbed, testbed_timings: dict[str, float]
) -> None:
    """A crashed ``up`` is cleaned by the next ``up``; ``down`` leaves the host as it was."""
    own, network, mapper = own_testbed, network_snapshot(), mapper_dir()
    made = crash_up(own, "nodes")
    assert any(line.startswith("network namespace") for line in made), made
    assert Testbed(own.state_dir, own.prefix).processes(), "the crashed up had started a node"

    started = time.monotonic()
    up = own.cli("up")
    testbed_timings["CLI up (3 nodes)"] = up_seconds = time.monotonic() - started
    assert up.returncode == 0, up.stderr
    assert network_snapshot() == network
    made_mapper = mapper_dir()
    hop = own.cli("exec", "n1", "--", "ssh", "n3", "hostname")
    assert (hop.returncode, hop.stdout) == (0, "n3\n"), hop.stderr
    processes = Testbed(own.state_dir, own.prefix).processes()
    assert len(processes) > 10  # inits, sshd, dockerd, containerd

    started = time.monotonic()
    down = own.cli("down")
    testbed_timings["CLI down"] = down_seconds = time.monotonic() - started
    assert down.returncode == 0, down.stderr
    assert network_snapshot() == network
    assert settled_traces(own.prefix, own.state_dir, processes) == []
    assert_mapper_dir_as_before(mapper, made_mapper, own.prefix)
    assert own.cli("down").returncode == 0  # idempotent
    assert up_seconds < 60 and down_seconds < 15


def test_host_paths_made_by_one_testbed_are_taken_back_by_the_last_one_down(
    own_testbed: OwnTestbed, tmp_path: Path
) -> None:
    """A makes /dev/mapper (none here: no device-mapper) and maybe /run/netns; B comes up
    and uses them; A goes down first and must leave them to B; B, which did not make them,
    takes them back at its down."""
    second = OwnTestbed(tmp_path / "tb2", f"ferry-i{os.getpid()}{uuid.uuid4().hex[:4]}-")
    mapper, run_netns = mapper_dir(), os.path.isdir(RUN_NETNS)
    listed = hostmade.listed()  # made by a testbed before (still up, or its leftover)
    try:
        first_up = own_testbed.cli("up", "--nodes", "n1", "--shared", "none")
        assert first_up.returncode == 0, first_up.stderr
        made_mapper = mapper_dir()
        second_up = second.cli("up", "--nodes", "n1", "--shared", "none")
        assert second_up.returncode == 0, second_up.stderr
        assert own_testbed.cli("down").returncode == 0
        assert mapper_dir() == made_mapper  # B's node binds its /dev/mapper there
        alive = second.cli("exec", "n1", "--", "ls", "/dev/mapper")
        assert alive.returncode == 0 and "svc1.d0" in alive.stdout, alive.stderr
        assert second.cli("down").returncode == 0
    finally:
        Testbed(second.state_dir, second.prefix).down()
    names = os.listdir(RUN_NETNS) if os.path.isdir(RUN_NETNS) else []
    others = [n for n in names if n.startswith("ferry-")]
    if not others:  # no other testbed: the host as before both, less testbeds' leftovers
        assert mapper_dir() == (None if f"dir:{DEV_MAPPER}" in listed else mapper)
        assert os.path.isdir(RUN_NETNS) == (run_netns and f"dir:{RUN_NETNS}" not in listed)
        assert not hostmade.MARKER.exists()
    else:
        assert_mapper_dir_as_before(mapper, made_mapper, own_testbed.prefix)


@pytest.mark.parametrize("stage", list(CRASH_STAGES))
def test_cli_down_right_after_a_crashed_up_leaves_no_trace(
    own_testbed: OwnTestbed, stage: str
) -> None:
    own, network, mapper = own_testbed, network_snapshot(), mapper_dir()
    made, made_mapper = crash_up(own, stage), mapper_dir()
    kinds = {"netns": "network namespace", "disks": "loop device", "nodes": "process"}
    assert any(line.startswith(kinds[stage]) for line in made), made
    processes = Testbed(own.state_dir, own.prefix).processes()
    down = own.cli("down")
    assert down.returncode == 0, down.stderr
    assert settled_traces(own.prefix, own.state_dir, processes) == []
    assert network_snapshot() == network
    assert_mapper_dir_as_before(mapper, made_mapper, own.prefix)


def test_failed_up_leaves_no_trace(
    own_testbed: OwnTestbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bring-up that fails half-way (n2's daemons do not start) takes down what it made."""
    own, network, mapper = own_testbed, network_snapshot(), mapper_dir()
    tb = Testbed(own.state_dir, own.prefix)
    real_start_daemons = Testbed._start_daemons
    seen: dict[str, Any] = {}

    def start_daemons(self: Testbed, state: State, name: str) -> None:
        if name != "n2":
            real_start_daemons(self, state, name)
            return
        # n2's init runs and its private directories are mounted: a real half-made node.
        seen["netns"], seen["n2 alive"] = own.netns(), self.alive("n2")
        seen["mapper"], seen["processes"] = mapper_dir(), self.processes()
        raise TestbedError("simulated: n2's sshd did not start")

    monkeypatch.setattr(Testbed, "_start_daemons", start_daemons)
    with pytest.raises(TestbedError, match="simulated"):
        tb.up()
    assert seen["n2 alive"] and len(seen["netns"]) == 4, seen
    assert settled_traces(own.prefix, own.state_dir, seen["processes"]) == []
    assert network_snapshot() == network
    assert_mapper_dir_as_before(mapper, seen["mapper"], own.prefix)


def test_cli_subset_of_nodes_each_with_its_own_disk(own_testbed: OwnTestbed) -> None:
    """``up --nodes n1,n2 --shared none``: two nodes, no n3, a disk each; ``down`` cleans."""
    own, network, mapper = own_testbed, network_snapshot(), mapper_dir()
    up = own.cli("up", "--nodes", "n1,n2", "--shared", "none")
    assert up.returncode == 0, up.stderr
    made_mapper = mapper_dir()
    assert own.netns() == [f"{own.prefix}{name}" for name in ("n1", "n2", "sw")]
    status = json.loads(own.cli("status", "--json").stdout)
    assert (status["up"], sorted(status["nodes"]), status["shared"]) == (True, ["n1", "n2"], [])
    hop = own.cli("exec", "n1", "--", "ssh", "n2", "hostname")
    assert (hop.returncode, hop.stdout) == (0, "n2\n"), hop.stderr
    no_n3 = own.cli("exec", "n3", "--", "true")
    assert no_n3.returncode != 0 and "n3" in no_n3.stderr
    hosts = own.cli("exec", "n1", "--", "cat", "/etc/hosts").stdout
    assert "n2" in hosts and "n3" not in hosts
    unreachable = own.cli("exec", "n1", "--", *PING, "10.0.3.13")
    assert unreachable.returncode != 0

    disks = {}
    for name in ("n1", "n2"):
        script = "for tag in LABEL UUID; do blkid -o value -s $tag /dev/mapper/svc1.d0; done"
        done = own.cli("exec", name, "--", "sh", "-c", script)
        assert done.returncode == 0, done.stderr
        disks[name] = done.stdout.split()
    assert disks["n1"][0] == disks["n2"][0] == "svc1"
    assert disks["n1"][1] != disks["n2"][1]  # filesystem UUIDs: a disk each
    loops = [line for line in traces(own.prefix, own.state_dir) if line.startswith("loop device")]
    assert len(loops) == 2, loops

    processes = Testbed(own.state_dir, own.prefix).processes()
    down = own.cli("down")
    assert down.returncode == 0, down.stderr
    assert settled_traces(own.prefix, own.state_dir, processes) == []
    assert network_snapshot() == network
    assert_mapper_dir_as_before(mapper, made_mapper, own.prefix)


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cluster_nodes(tb: Testbed, node: str) -> dict[str, str]:
    """Node name -> state, as ``ferry mon -o json`` on ``node`` shows the cluster."""
    done = tb.python(node, "-m", "daemon.cli.main", "mon", "-o", "json", timeout=60)
    if done.returncode != 0:
        return {}
    return {n["name"]: n["state"] for n in json.loads(done.stdout)["nodes"]}


def test_twelve_nodes_in_two_sites_with_pairs_and_light_nodes(
    own_testbed: OwnTestbed, testbed_timings: dict[str, float], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two sites of 6, disks shared in pairs, n7-n12 light: every node answers, pairs see
    one disk, light nodes run no dockerd (and come back without one), 12 ferryds form one
    cluster; ``down`` leaves nothing."""
    own, network, mapper = own_testbed, network_snapshot(), mapper_dir()
    tb = Testbed(own.state_dir, own.prefix)
    nodes = [f"n{k}" for k in range(1, 13)]
    started = time.monotonic()
    tb.up(sites="n1-n6,n7-n12", pairs=True, light="n7-n12", disk_size="512M")
    testbed_timings["12 nodes up (2 sites, pairs, 6 light)"] = up_seconds = (
        time.monotonic() - started
    )
    made_mapper = mapper_dir()
    assert tb.nodes == tuple(nodes)
    for name in nodes:
        assert tb.exec(name, "hostname", timeout=30).stdout == f"{name}\n"
    # a pair's nodes see one loop device (its numbers), the pairs each their own
    numbers = {name: sh(tb, name, "stat -c %t:%T /dev/mapper/svc1.d0").strip() for name in nodes}
    pairs = [nodes[k : k + 2] for k in range(0, 12, 2)]
    assert all(numbers[a] == numbers[b] for a, b in pairs), numbers
    assert len(set(numbers.values())) == 6, numbers
    assert sh(tb, "n12", "blkid -o value -s LABEL /dev/mapper/svc1.d0") == "svc1\n"

    status = tb.status()
    assert status["sites"] == [nodes[:6], nodes[6:]] and status["light"] == nodes[6:]
    for name in nodes:
        light = name in nodes[6:]
        info = status["nodes"][name]
        assert (info["site"], info["light"], info["dockerd"]) == (
            2 if light else 1,
            light,
            not light,
        )
        engines = [pid for pid in tb.node_pids(name) if cmdline(pid).startswith("dockerd ")]
        assert bool(engines) is not light, (name, engines)
    text = own.cli("status").stdout
    assert "sites: 1 = n1-n6, 2 = n7-n12" in text and "(shared with n12)" in text, text

    started = time.monotonic()
    tb.start_ferryd()
    took = time.monotonic() - started
    seen: dict[str, str] = {}

    def all_up() -> bool:
        seen.clear()
        seen.update(cluster_nodes(tb, "n1"))
        return sorted(seen, key=lambda n: int(n[1:])) == nodes and set(seen.values()) == {"up"}

    deadline = time.monotonic() + 90
    while not all_up():
        assert time.monotonic() < deadline, f"n1's ferryd sees {seen}"
        time.sleep(1)
    formed = time.monotonic() - started
    ferryds = {name: rec.daemons["ferryd"].pid for name, rec in tb.state().nodes.items()}
    rss = sorted(rss_mib(pid) for pid in ferryds.values())

    tb.kill("n9")  # a light node comes back without a dockerd (reset does not wait for one)
    tb.reset()
    revived = tb.status()["nodes"]["n9"]
    assert (revived["alive"], revived["sshd"], revived["dockerd"]) == (True, True, False)
    assert sorted(tb.state().nodes["n9"].daemons) == ["ferryd", "sshd"]

    disk_kib = sum(f.stat().st_blocks for f in (own.state_dir / "disks").iterdir()) // 2
    with capsys.disabled():
        print(
            f"\n12 nodes, 2 sites, pairs, n7-n12 light: up {up_seconds:.1f}s, 12 ferryds "
            f"started in {took:.1f}s, one cluster after {formed:.1f}s; ferryd RSS "
            f"{sum(rss):.0f} MiB in all ({rss[0]:.0f}-{rss[-1]:.0f} MiB each); "
            f"6 disks {disk_kib / 1024:.0f} MiB on disk"
        )

    processes = tb.processes()
    tb.down()
    assert settled_traces(own.prefix, own.state_dir, processes) == []
    assert network_snapshot() == network
    assert_mapper_dir_as_before(mapper, made_mapper, own.prefix)


def test_host_network_untouched_while_up(testbed: Testbed, host_baseline: dict[str, str]) -> None:
    assert network_snapshot() == host_baseline


def test_every_node_reaches_every_other_by_ssh(testbed: Testbed) -> None:
    for src in testbed.nodes:
        for dst in testbed.nodes:
            done = testbed.exec(src, "ssh", dst, "hostname", timeout=30)
            assert (done.returncode, done.stdout) == (0, f"{dst}\n"), done.stderr


def test_node_identity_and_addresses(testbed: Testbed) -> None:
    for node in testbed.nodes:
        assert sh(testbed, node, "hostname").strip() == node
        addr = sh(testbed, node, "ip -o -4 addr show dev eth0")
        assert f"inet {testbed.node_ip(node)}/24" in addr
        assert "default via 10.0.3.1" in sh(testbed, node, "ip route")
    assert testbed.node_ip("n3") == "10.0.3.13"
    assert reachable(testbed, "n1", "10.0.3.1")


PRIVATE_MARKS = ("/etc/ferry/mark", "/var/lib/ferry/mark", "/srv/mark", "/dev/mapper/mark")


def test_private_paths_are_private(testbed: Testbed) -> None:
    mark = uuid.uuid4().hex
    sh(testbed, "n1", " && ".join(f"echo {mark} > {path}" for path in PRIVATE_MARKS))
    try:
        for path in PRIVATE_MARKS:
            assert testbed.exec("n2", "cat", path).returncode != 0, path
            assert not Path(path).exists(), path
            assert (testbed.node_root("n1") / path.lstrip("/")).read_text().strip() == mark
        # Each node's /dev/mapper holds its disk; the machine's never does.
        for node in testbed.nodes:
            sh(testbed, node, "test -b /dev/mapper/svc1.d0")
        assert not Path(DEV_MAPPER, "svc1.d0").exists()
    finally:
        sh(testbed, "n1", f"rm -f {' '.join(PRIVATE_MARKS)}")


def link_index(ip_link_line: str) -> tuple[int, int]:
    """(ifindex, peer ifindex) of a veth from ``ip -o link`` (``5: n1@if2: <...``)."""
    match = re.match(r"^(\d+): [^@:]+@if(\d+):", ip_link_line)
    assert match, ip_link_line
    return int(match.group(1)), int(match.group(2))


def test_nodes_hang_on_a_bridge_in_a_switch_namespace_of_its_own(testbed: Testbed) -> None:
    switch = f"{testbed.prefix}sw"
    inodes = {name: os.stat(f"{RUN_NETNS}/{name}").st_ino for name in testbed.state().netns}
    assert len(set(inodes.values())) == len(inodes) == len(testbed.nodes) + 1
    assert os.stat("/proc/self/ns/net").st_ino not in inodes.values()

    def in_switch(*args: str) -> str:
        return subprocess.run(
            ["ip", "-n", switch, "-o", *args], capture_output=True, text=True, check=True
        ).stdout

    assert "inet 10.0.3.1/24" in in_switch("addr", "show", "dev", "br0")
    ports = [
        line.split(": ")[1].split("@")[0]
        for line in in_switch("link", "show", "master", "br0").splitlines()
    ]
    assert sorted(ports) == sorted(testbed.nodes)  # one port per node, named after it
    for node in testbed.nodes:
        port, port_peer = link_index(in_switch("link", "show", "dev", node))
        links = sh(testbed, node, "ip -o link show").splitlines()
        assert [line.split(": ")[1].split("@")[0] for line in links] == ["lo", "eth0"]
        eth0, eth0_peer = link_index(links[1])
        assert (port_peer, eth0_peer) == (eth0, port)  # a veth pair: eth0 <-> switch port


def test_dockerd_runs_without_bridge_or_firewall(
    testbed: Testbed, host_baseline: dict[str, str]
) -> None:
    state = testbed.state()
    for node in testbed.nodes:
        dockerd = state.nodes[node].daemons["dockerd"]
        assert dockerd.alive()
        argv = Path(f"/proc/{dockerd.pid}/cmdline").read_bytes().decode().split("\0")
        assert Path(argv[0]).name == "dockerd", argv
        assert {"--bridge=none", "--iptables=false", "--ip-masq=false"} <= set(argv)
        node_net = os.stat(f"{RUN_NETNS}/{testbed.prefix}{node}").st_ino
        assert os.stat(f"/proc/{dockerd.pid}/ns/net").st_ino == node_net
        rules = sh(testbed, node, "iptables-save; nft list ruleset")
        assert "DOCKER" not in rules and "docker" not in rules
    now = network_snapshot()
    for part in ("iptables", "ip6tables", "nft", "link", "addr", "route"):
        assert now[part] == host_baseline[part], part


def status_json(env: dict[str, str]) -> dict[str, Any]:
    done = cli(env, "status", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_cli_status_cut_heal_netem_kill_revive(testbed: Testbed) -> None:
    """The failure-injection subcommands, through the CLI, on the session's testbed."""
    env = testbed.cli_env()
    status = status_json(env)
    assert (status["up"], status["prefix"], sorted(status["nodes"])) == (
        True,
        testbed.prefix,
        sorted(testbed.nodes),
    )
    assert all(n["alive"] and n["sshd"] and n["dockerd"] for n in status["nodes"].values())
    text = cli(env, "status")
    assert text.returncode == 0 and ": up" in text.stdout
    assert all(f"  {node} {testbed.node_ip(node)}" in text.stdout for node in testbed.nodes)

    assert cli(env, "cut", "n2").returncode == 0
    assert not reachable(testbed, "n1", "n2")
    assert status_json(env)["nodes"]["n2"]["link"] == "cut"
    assert cli(env, "heal", "n2").returncode == 0
    assert reachable(testbed, "n1", "n2")
    assert status_json(env)["nodes"]["n2"]["link"] == "up"

    assert cli(env, "netem", "n1", "delay", "100ms").returncode == 0
    assert status_json(env)["nodes"]["n1"]["netem"] == "delay 100ms"
    assert avg_rtt_ms(testbed, "n1", "n2") >= 190
    assert cli(env, "netem", "n1", "off").returncode == 0
    assert status_json(env)["nodes"]["n1"]["netem"] is None
    assert avg_rtt_ms(testbed, "n1", "n2") < 50

    assert cli(env, "kill", "n3").returncode == 0
    assert testbed.node_pids("n3") == [] and not testbed.alive("n3")
    assert status_json(env)["nodes"]["n3"]["alive"] is False
    assert cli(env, "revive", "n3").returncode == 0
    assert sh(testbed, "n1", "ssh n3 hostname") == "n3\n"

    unknown = cli(env, "kill", "n9")
    assert unknown.returncode == 1 and "no node 'n9'" in unknown.stderr
    bad = cli(env, "netem", "n1", "loss", "150%")
    assert bad.returncode == 1 and "loss" in bad.stderr


def avg_rtt_ms(tb: Testbed, src: str, dst: str) -> float:
    out = sh(tb, src, f"busybox ping -c 2 -i 0.2 {dst} | tail -1")
    return float(out.split("/")[-2])


def ping_loss(tb: Testbed, src: str, dst: str, count: int) -> float:
    """Fraction of ``count`` pings (10 a second) left unanswered."""
    done = tb.exec(src, "busybox", "ping", "-q", "-c", str(count), "-i", "0.1", "-W", "2", dst)
    match = re.search(r"(\d+) packets transmitted, (\d+) packets received", done.stdout)
    assert match and int(match.group(1)) == count, done.stdout + done.stderr
    return 1 - int(match.group(2)) / count


def test_netem_loss_applies_and_off_or_reset_clears(testbed: Testbed) -> None:
    env = testbed.cli_env()
    assert ping_loss(testbed, "n1", "n2", 5) == 0  # also fills both ARP caches
    # Each direction drops 30%: a round trip survives with 0.7 * 0.7, so 51% are lost.
    assert cli(env, "netem", "n1", "loss", "30%").returncode == 0
    lost = ping_loss(testbed, "n1", "n2", 40)
    assert 0.2 <= lost <= 0.8, f"{lost:.0%} of the pings lost"
    assert cli(env, "netem", "n1", "off").returncode == 0
    assert ping_loss(testbed, "n1", "n2", 20) == 0
    testbed.netem("n1", "loss", "30%")
    assert cli(env, "reset").returncode == 0
    assert ping_loss(testbed, "n1", "n2", 20) == 0


def test_seed_images_have_the_same_id_everywhere(testbed: Testbed, tmp_path: Path) -> None:
    expected = build_archive(tmp_path / "images.tar")
    for node in testbed.nodes:
        listing = sh(testbed, node, "docker images --format '{{.Repository}}:{{.Tag}}'")
        assert set(SEED_IMAGES) <= set(listing.split())
        for image in SEED_IMAGES:
            image_id = sh(testbed, node, f"docker image inspect -f '{{{{.Id}}}}' {image}")
            assert image_id.strip() == expected[image]


def test_seed_images_run(testbed: Testbed) -> None:
    sh(testbed, "n1", f"docker run -d --name tb-web --network host {NGINX}")
    sh(testbed, "n1", f"docker run -d --name tb-pause --network none {PAUSE}")
    try:
        page = sh(
            testbed,
            "n2",
            "for i in 1 2 3 4 5; do busybox wget -qO- http://n1/ && break; sleep 0.5; done",
        )
        assert "opensvc/nginx:build5" in page
        started = time.monotonic()
        sh(testbed, "n1", "docker stop tb-web tb-pause")
        assert time.monotonic() - started < 5, "the images stop on SIGTERM"
    finally:
        testbed.exec("n1", "docker", "rm", "-f", "tb-web", "tb-pause")


def test_container_cgroups_stay_in_the_node_subtree(testbed: Testbed) -> None:
    cid = sh(testbed, "n1", f"docker run -d --network none {PAUSE}").strip()
    try:
        assert sh(testbed, "n1", "cat /proc/self/cgroup").splitlines()[0].endswith(":/")
        assert (Path("/sys/fs/cgroup/pids") / f"{testbed.prefix}n1" / "docker" / cid).is_dir()
        assert not list(Path("/sys/fs/cgroup").glob(f"*/docker/{cid}"))
    finally:
        testbed.exec("n1", "docker", "rm", "-f", cid)


def test_docker_save_ssh_load_between_engines(testbed: Testbed) -> None:
    tag = f"ferry-test/committed:{uuid.uuid4().hex[:8]}"
    try:
        sh(
            testbed,
            "n1",
            f"docker run --name tb-save --network none {PAUSE} sh -c 'echo payload > /payload'",
        )
        sh(testbed, "n1", f"docker commit tb-save {tag} >/dev/null")
        image_id = sh(testbed, "n1", f"docker image inspect -f '{{{{.Id}}}}' {tag}").strip()
        sh(testbed, "n1", f"docker save {tag} | ssh n3 docker load", timeout=120)
        assert sh(testbed, "n3", f"docker image inspect -f '{{{{.Id}}}}' {tag}").strip() == image_id
        payload = sh(testbed, "n3", f"docker run --rm --network none {tag} cat /payload")
        assert payload == "payload\n"
    finally:
        testbed.exec("n1", "sh", "-c", f"docker rm -f tb-save; docker rmi {tag}")
        testbed.exec("n3", "docker", "rmi", tag)


def test_shared_disk_seen_by_n1_and_n2_only(testbed: Testbed) -> None:
    mark = uuid.uuid4().hex
    mount = MOUNT_DISK.format(opts="subvol=data")
    uuids = {n: sh(testbed, n, "blkid -o value -s UUID /dev/mapper/svc1.d0") for n in testbed.nodes}
    labels = {
        n: sh(testbed, n, "blkid -o value -s LABEL /dev/mapper/svc1.d0") for n in testbed.nodes
    }
    assert set(labels.values()) == {"svc1\n"}
    assert uuids["n1"] == uuids["n2"] != uuids["n3"]
    try:
        sh(testbed, "n1", f"{mount} && echo {mark} > /srv/tb/mark && umount /srv/tb")
        assert sh(testbed, "n2", f"{mount} && cat /srv/tb/mark; umount /srv/tb").strip() == mark
        # n3 has a disk of its own (other tests may have written into it, never this mark)
        seen_on_n3 = sh(testbed, "n3", f"{mount} && cat /srv/tb/mark 2>/dev/null; umount /srv/tb")
        assert mark not in seen_on_n3
        docker_subvol = MOUNT_DISK.format(opts="defaults,subvol=docker")
        sh(testbed, "n3", f"{docker_subvol} && umount /srv/tb")
    finally:
        testbed.exec("n1", "sh", "-c", f"umount /srv/tb; {mount} && rm -f /srv/tb/mark")
        for node in testbed.nodes:
            testbed.exec(node, "umount", "/srv/tb")


def test_btrfs_snapshot_sent_over_ssh(testbed: Testbed) -> None:
    snap = f"snap-{uuid.uuid4().hex[:8]}"
    top = MOUNT_DISK.format(opts="subvolid=5")
    try:
        sh(testbed, "n1", f"{top} && head -c 1048576 /dev/urandom > /srv/tb/data/payload")
        sh(testbed, "n1", f"btrfs -q subvolume snapshot -r /srv/tb/data /srv/tb/{snap}")
        sh(testbed, "n3", top)
        sh(testbed, "n1", f"btrfs -q send /srv/tb/{snap} | ssh n3 btrfs -q receive /srv/tb/")
        digest = "sha256sum < /srv/tb/{}/payload"
        assert sh(testbed, "n3", digest.format(snap)) == sh(testbed, "n1", digest.format(snap))
        shown = sh(testbed, "n3", f"btrfs subvolume show /srv/tb/{snap}")
        received = [line for line in shown.splitlines() if "Received UUID" in line]
        assert received and not received[0].rstrip().endswith("-")
    finally:
        for node in ("n1", "n3"):
            cleanup = f"btrfs -q subvolume delete /srv/tb/{snap}; rm -f /srv/tb/data/payload"
            testbed.exec(node, "sh", "-c", f"{cleanup}; umount /srv/tb")


def test_partition_blocks_both_ways_and_heals(testbed: Testbed) -> None:
    assert reachable(testbed, "n1", "n2")
    testbed.partition("n1", "n2")
    assert not reachable(testbed, "n1", "n2")
    assert not reachable(testbed, "n2", "n1")
    assert reachable(testbed, "n1", "n3") and reachable(testbed, "n2", "n3")
    testbed.heal_partition()
    assert reachable(testbed, "n1", "n2") and reachable(testbed, "n2", "n1")


def test_partition_by_cli_between_groups(testbed: Testbed) -> None:
    env = testbed.cli_env()
    assert cli(env, "partition", "n1,n2", "n3").returncode == 0
    assert not reachable(testbed, "n3", "n1") and not reachable(testbed, "n2", "n3")
    assert reachable(testbed, "n1", "n2")
    assert cli(env, "heal-partition").returncode == 0
    assert reachable(testbed, "n3", "n1")


CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)"


def tcp_connects(tb: Testbed, src: str, dst: str, port: int) -> bool:
    """A TCP connection from ``src`` to ``dst:port`` is set up within 2 s."""
    return tb.exec(src, "python3", "-c", CONNECT, dst, str(port), timeout=30).returncode == 0


def echo_requests_in(tb: Testbed, node: str) -> int:
    """ICMP echo requests the node's IP stack received so far (/proc/net/snmp InEchos)."""
    lines = [line.split() for line in sh(tb, node, "cat /proc/net/snmp").splitlines()]
    names, values = (line for line in lines if line[0] == "Icmp:")
    return int(values[names.index("InEchos")])


@contextlib.contextmanager
def listener(tb: Testbed, node: str, port: int) -> Iterator[None]:
    """``python3 -m http.server PORT`` on the node's address while inside; stopped by pid."""
    proc = tb.popen(node, "python3", "-m", "http.server", str(port), "--bind", tb.node_ip(node),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not tcp_connects(tb, node, tb.node_ip(node), port):  # local: no switch crossed
            assert proc.poll() is None, f"the listener on {node}:{port} died"
            assert time.monotonic() < deadline, f"nothing listens on {node}:{port}"
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_oneway_partition_drops_one_direction_only(testbed: Testbed) -> None:
    with listener(testbed, "n2", 7444):
        assert tcp_connects(testbed, "n1", "n2", 7444)
        testbed.partition("n1", "n2", oneway=True)
        assert not tcp_connects(testbed, "n1", "n2", 7444)
        assert tcp_connects(testbed, "n3", "n2", 7444)
        # n1 -> n2: n2's stack sees none of n1's echo requests.
        before = echo_requests_in(testbed, "n2")
        assert testbed.exec("n1", *PING, "n2").returncode != 0
        assert echo_requests_in(testbed, "n2") == before
        # n2 -> n1: the requests arrive (even with a fresh ARP lookup), the replies are lost.
        sh(testbed, "n2", "ip neigh flush all")
        before = echo_requests_in(testbed, "n1")
        done = testbed.exec("n2", "busybox", "ping", "-c", "3", "-i", "0.2", "-W", "1", "n1")
        assert done.returncode != 0 and " 0 packets received" in done.stdout, done.stdout
        assert echo_requests_in(testbed, "n1") - before >= 3
        assert testbed.status()["partitions"] == [
            {"a": ["n1"], "b": ["n2"], "oneway": True, "port": None}
        ]
        testbed.heal_partition()
        assert tcp_connects(testbed, "n1", "n2", 7444)
        assert reachable(testbed, "n1", "n2") and reachable(testbed, "n2", "n1")


def test_port_partition_drops_only_that_tcp_port(testbed: Testbed) -> None:
    with listener(testbed, "n2", 7443), listener(testbed, "n1", 7443):
        testbed.partition("n1", "n2", port=7443)
        assert not tcp_connects(testbed, "n1", "n2", 7443)
        assert not tcp_connects(testbed, "n2", "n1", 7443)
        assert tcp_connects(testbed, "n3", "n2", 7443) and tcp_connects(testbed, "n3", "n1", 7443)
        assert sh(testbed, "n1", "ssh n2 hostname") == "n2\n"
        assert reachable(testbed, "n1", "n2") and reachable(testbed, "n2", "n1")
        testbed.heal_partition()
        assert tcp_connects(testbed, "n1", "n2", 7443) and tcp_connects(testbed, "n2", "n1", 7443)


def test_oneway_port_partition_by_cli_and_heal(testbed: Testbed) -> None:
    env = testbed.cli_env()
    with listener(testbed, "n2", 7443), listener(testbed, "n3", 7443):
        done = cli(env, "partition", "n1", "n2,n3", "--oneway", "--port", "7443")
        assert done.returncode == 0, done.stderr
        assert status_json(env)["partitions"] == [
            {"a": ["n1"], "b": ["n2", "n3"], "oneway": True, "port": 7443}
        ]
        assert "partition: n1 -> n2,n3 (tcp port 7443)" in cli(env, "status").stdout
        assert not tcp_connects(testbed, "n1", "n2", 7443)
        assert not tcp_connects(testbed, "n1", "n3", 7443)
        assert tcp_connects(testbed, "n2", "n3", 7443)
        assert sh(testbed, "n1", "ssh n3 hostname") == "n3\n"
        assert cli(env, "heal-partition").returncode == 0
        assert status_json(env)["partitions"] == []
        assert tcp_connects(testbed, "n1", "n2", 7443) and tcp_connects(testbed, "n1", "n3", 7443)


def test_cut_and_heal(testbed: Testbed) -> None:
    testbed.cut("n2")
    assert not reachable(testbed, "n1", "n2")
    assert not reachable(testbed, "n2", "10.0.3.1")
    assert "NO-CARRIER" in sh(testbed, "n2", "ip -o link show eth0")
    testbed.heal("n2")
    assert reachable(testbed, "n1", "n2")


def test_netem_delays_and_reset_clears(testbed: Testbed) -> None:
    testbed.netem("n1", "delay", "100ms")
    assert avg_rtt_ms(testbed, "n1", "n2") >= 190  # both directions delayed
    testbed.reset()
    assert avg_rtt_ms(testbed, "n1", "n2") < 50


def test_kill_leaves_no_process_then_revive(testbed: Testbed) -> None:
    sh(testbed, "n1", f"docker run -d --name tb-victim --network none {PAUSE}")
    before = live(testbed.node_pids("n1"))
    commands = [cmdline(p.pid) for p in before]
    assert "sleep 3600" in commands, "the container's processes are the node's"
    testbed.kill("n1")
    assert testbed.node_pids("n1") == []
    assert [p for p in before if p.alive()] == []
    assert not testbed.alive("n1")
    assert testbed.exec("n2", *PING, "n1").returncode == 0  # the link stays: a hung host
    testbed.revive("n1")
    assert sh(testbed, "n1", "ssh n3 hostname") == "n3\n"
    assert "Exited" in sh(testbed, "n1", "docker ps -a --filter name=tb-victim")
    sh(testbed, "n1", "docker rm tb-victim")


def test_reset_revives_a_killed_node(testbed: Testbed) -> None:
    testbed.kill("n3")
    testbed.reset()
    assert testbed.alive("n3")
    assert sh(testbed, "n1", "ssh n3 docker info --format '{{.Name}}'") == "n3\n"


def test_exec_cli_passes_stdin_stdout_and_status(testbed: Testbed) -> None:
    done = subprocess.run(
        [*CLI, "exec", "n2", "--", "sh", "-c", "cat; echo oops >&2; exit 3"],
        input="hello\n",
        env=testbed.cli_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "hello\n", "oops\n")


def test_popen_terminate_reaches_the_command(testbed: Testbed) -> None:
    script = "trap 'echo got-term; exit 3' TERM; echo started; while :; do sleep 0.1; done"
    proc = testbed.popen("n1", "sh", "-c", script, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        proc.terminate()
        assert proc.wait(timeout=10) == 3
        assert proc.stdout.read() == "got-term\n"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_exec_timeout_kills_the_command(testbed: Testbed) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        testbed.exec("n2", "sleep", "4242", timeout=0.5)
    time.sleep(0.2)
    assert "sleep 4242" not in [cmdline(pid) for pid in testbed.node_pids("n2")]


def test_project_python_runs_in_a_node(testbed: Testbed) -> None:
    code = "import os, socket; print(socket.gethostname(), os.path.isdir('daemon'))"
    done = testbed.python("n2", "-c", code)
    assert (done.returncode, done.stdout) == (0, "n2 True\n"), done.stderr
