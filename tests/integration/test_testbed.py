"""The testbed itself: nodes, ssh, engines, disks, failures, and no trace left.

The first test brings a testbed of its own up and down through the CLI (other
state dir, other name prefix) before the session's testbed exists; the others
use the session's ``testbed`` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.testbed import Testbed
from tests.testbed.hostcheck import network_snapshot, settled_traces
from tests.testbed.images import NGINX, PAUSE, SEED_IMAGES, build_archive
from tests.testbed.procs import cmdline, live

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


def wait_crashable(state_file: Path, proc: subprocess.Popen[bytes]) -> None:
    """Wait until a bring-up has started a node (or ended)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            nodes = json.loads(state_file.read_text()).get("nodes", {})
        except (OSError, ValueError):
            nodes = {}
        if any(rec.get("init") for rec in nodes.values()):
            return
        time.sleep(0.02)


def test_cli_crash_up_down_leaves_no_trace(
    tmp_path: Path, testbed_timings: dict[str, float]
) -> None:
    """A crashed ``up`` is cleaned by the next ``up``; ``down`` leaves the host as it was."""
    state_dir, prefix = tmp_path / "tb", f"ferry-hc{os.getpid()}-"
    env = {**os.environ, "FERRY_TESTBED_DIR": str(state_dir), "FERRY_TESTBED_PREFIX": prefix}
    network = network_snapshot()

    crashed = subprocess.Popen([*CLI, "up"], env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    wait_crashable(state_dir / "state.json", crashed)
    crashed.kill()
    crashed.wait(timeout=10)

    started = time.monotonic()
    up = cli(env, "up")
    testbed_timings["CLI up (3 nodes)"] = up_seconds = time.monotonic() - started
    assert up.returncode == 0, up.stderr
    assert network_snapshot() == network
    hop = cli(env, "exec", "n1", "--", "ssh", "n3", "hostname")
    assert (hop.returncode, hop.stdout) == (0, "n3\n"), hop.stderr
    processes = Testbed(state_dir).processes()
    assert len(processes) > 10  # inits, sshd, dockerd, containerd

    started = time.monotonic()
    down = cli(env, "down")
    testbed_timings["CLI down"] = down_seconds = time.monotonic() - started
    assert down.returncode == 0, down.stderr
    assert network_snapshot() == network
    assert settled_traces(prefix, state_dir, processes) == []
    assert cli(env, "down").returncode == 0  # idempotent
    assert up_seconds < 60 and down_seconds < 15


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


def test_private_paths_are_private(testbed: Testbed) -> None:
    mark = uuid.uuid4().hex
    sh(testbed, "n1", f"echo {mark} > /etc/ferry/mark && echo {mark} > /var/lib/ferry/mark")
    try:
        for path in ("/etc/ferry/mark", "/var/lib/ferry/mark"):
            assert testbed.exec("n2", "cat", path).returncode != 0
            assert not Path(path).exists()
            assert (testbed.node_root("n1") / path.lstrip("/")).read_text().strip() == mark
    finally:
        sh(testbed, "n1", "rm -f /etc/ferry/mark /var/lib/ferry/mark")


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


def test_cut_and_heal(testbed: Testbed) -> None:
    testbed.cut("n2")
    assert not reachable(testbed, "n1", "n2")
    assert not reachable(testbed, "n2", "10.0.3.1")
    assert "NO-CARRIER" in sh(testbed, "n2", "ip -o link show eth0")
    testbed.heal("n2")
    assert reachable(testbed, "n1", "n2")


def test_netem_delays_and_reset_clears(testbed: Testbed) -> None:
    testbed.netem("n1", "delay", "100ms")
    out = sh(testbed, "n1", "busybox ping -c 2 -i 0.2 n2 | tail -1")
    assert float(out.split("/")[-2]) >= 190  # avg rtt, both directions delayed
    testbed.reset()
    out = sh(testbed, "n1", "busybox ping -c 2 -i 0.2 n2 | tail -1")
    assert float(out.split("/")[-2]) < 50


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
