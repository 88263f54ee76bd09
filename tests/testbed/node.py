"""One node: its init process, private mounts, sshd and dockerd.

A node's init is PID 1 of a PID namespace of its own, born inside the node's
network namespace with a private mount namespace and UTS namespace. Everything
the node runs is a descendant of it (``nsexec.py run`` joins all four), so
killing the init kills the whole node, containers included, and its mounts
vanish with its mount namespace: a crash with the semantics of a reboot.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import cgroups
from .disks import make_device_node
from .procs import DIE_WITH_PARENT, ProcId, TestbedError, run, start_time, wait_for
from .ssh import install_node_files
from .topology import DISK_DEVICE, Layout, Topology, node_ip

NSEXEC = Path(__file__).with_name("nsexec.py")
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NODE_ENV = {"PATH": NODE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}
DOCKER_SOCKET = "/run/docker.sock"  # /var/run is a symlink to /run
DAEMON_TIMEOUT = 60.0

# Runs inside the node's fresh mount namespace: $1 node, $2 node dir, $3 prefix.
# All or nothing: on failure it unmounts what it mounted, so it can be retried.
_MOUNT_SCRIPT = """
set -e
node=$1 dir=$2 tag=$3$1 mounted=""
trap '[ $? = 0 ] || for m in $mounted; do umount -l "$m"; done' EXIT
mnt() { target=$1; shift; mount "$@" "$target"; mounted="$target $mounted"; }
overlay() {
    mnt "$1" -t overlay "$tag-$2" -o "lowerdir=$1,upperdir=$dir/$2,workdir=$dir/$2.work"
}
hostname "$node"
mnt /run -t tmpfs -o mode=0755,size=1g "$tag-run"
mkdir -p /run/sshd /run/lock
overlay /etc etc
overlay /var/lib varlib
overlay /root root
mnt /srv --bind "$dir/srv"
mnt /dev/mapper --bind "$dir/mapper"
"""


def launcher(
    init: int, cmd: Sequence[str], cwd: str = "/", detach_log: Path | None = None
) -> list[str]:
    """Command line running ``cmd`` inside the node whose init has host pid ``init``.

    With ``detach_log`` the launcher prints the host pid of a daemon and returns.
    """
    argv = [sys.executable, "-I", "-S", str(NSEXEC), "run", str(init), "--cwd", cwd]
    if detach_log is not None:
        argv += ["--detach", str(detach_log)]
    return [*argv, "--", *cmd]


def prepare_files(layout: Layout, topo: Topology, node: str, device: str) -> None:
    """The node's private directories, /etc additions, disk node and ssh files."""
    base = layout.node_dir(node)
    for sub in ("etc.work", "varlib.work", "root.work", "srv", "docker", "log", "sshd"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "etc" / "ferry").mkdir(parents=True, exist_ok=True)
    (base / "varlib" / "ferry").mkdir(parents=True, exist_ok=True)
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    hosts += [f"{node_ip(peer)}\t{peer}" for peer in topo.nodes]
    (base / "etc" / "hosts").write_text("\n".join(hosts) + "\n")
    (base / "etc" / "hostname").write_text(f"{node}\n")
    make_device_node(base / "mapper" / DISK_DEVICE, device)
    install_node_files(layout, node, base / "root")


def start_init(layout: Layout, topo: Topology, node: str) -> tuple[subprocess.Popen[bytes], ProcId]:
    """Start the node's init; return its host-side parent (``unshare``) and the init.

    The parent dies with the thread that started it (it only waits for the
    init); the init then belongs to the machine's init, and lives on.
    """
    cmd = [*DIE_WITH_PARENT, *cgroups.join_command(topo.cgroup(node))]
    cmd += ["nsenter", f"--net=/run/netns/{topo.node_ns(node)}", "--", "unshare", "--cgroup"]
    cmd += ["--mount", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "private"]
    cmd += ["--", sys.executable, "-I", "-S", str(NSEXEC), "init", str(layout.node_dir(node))]
    with open(layout.log(node, "init"), "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=NODE_ENV,
        )
    init_pid: list[int] = []

    def init_ready() -> bool:
        if proc.poll() is not None:
            raise TestbedError(f"{node}: init exited {proc.returncode}, see its log")
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            if children and b"nsexec.py" in Path(f"/proc/{children[0]}/cmdline").read_bytes():
                init_pid.append(int(children[0]))
                return True
        return False

    wait_for(init_ready, 30, f"{node}'s init")
    return proc, ProcId.of(init_pid[0])


def mount_private_dirs(layout: Layout, topo: Topology, node: str, init: int) -> None:
    """Hostname, /run tmpfs, /etc /var/lib /root overlays, /srv /dev/mapper binds, cgroups.

    Overlays keep the host's files visible (the repository's venv may point at
    an interpreter under /root) while the node's changes stay its own.
    """
    args = [node, str(layout.node_dir(node)), topo.prefix]
    script = _MOUNT_SCRIPT + cgroups.mount_script(topo.cgroup(node))
    cmd = launcher(init, ["sh", "-c", script, "sh", *args])

    def mounted() -> bool:
        # Right after a node was killed its old overlays may still be held.
        return run(cmd, check=False, timeout=60).returncode == 0

    if not mounted():
        wait_for(mounted, 10, f"{node}'s private mounts", interval=0.5)


def sshd_cmd(layout: Layout, node: str) -> list[str]:
    """sshd in the foreground with the node's own config."""
    return ["/usr/sbin/sshd", "-D", "-f", str(layout.sshd_config(node))]


def dockerd_cmd(layout: Layout, node: str) -> list[str]:
    """dockerd with its own data root, no bridge, no firewall, no forwarding.

    Its cgroups (default parent /docker) land in the node's cgroup subtree.
    """
    return [
        "dockerd",
        f"--data-root={layout.docker_root(node)}",
        "--exec-root=/run/docker",
        "--pidfile=/run/docker.pid",
        f"--host=unix://{DOCKER_SOCKET}",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--ip-forward=false",
        "--userland-proxy=false",
        "--log-level=warn",
    ]


def start_daemon(layout: Layout, node: str, init: int, name: str, cmd: list[str]) -> ProcId:
    """Start a daemon in the node as a child of its init; return its host pid."""
    argv = launcher(init, cmd, detach_log=layout.log(node, name))
    out = run(argv, timeout=30, env=NODE_ENV)
    return ProcId.of(int(out.stdout.split()[0]))


def sshd_listening(init: int, node: str) -> bool:
    """Whether something listens on NODE_IP:22 in the node's network namespace."""
    a, b, c, d = (int(part) for part in node_ip(node).split("."))
    local = f"{d:02X}{c:02X}{b:02X}{a:02X}:0016"
    try:
        lines = Path(f"/proc/{init}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[1] == local and line.split()[3] == "0A" for line in lines)


def docker_ping(init: int) -> bool:
    """Whether the node's dockerd answers ``GET /_ping``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(f"/proc/{init}/root{DOCKER_SOCKET}")
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.0 200")
        except OSError:
            return False


def wait_daemon(
    layout: Layout, node: str, name: str, proc: ProcId, ready: Callable[[], bool]
) -> None:
    """Wait until ``ready()``; fail early, with the log's tail, if the daemon dies."""

    def check() -> bool:
        if not proc.alive():
            tail = layout.log(node, name).read_text(errors="replace")[-2000:]
            raise TestbedError(f"{node}: {name} died:\n{tail}")
        return ready()

    wait_for(check, DAEMON_TIMEOUT, f"{node}'s {name}", interval=0.1)


def load_images(init: int, archive: Path) -> None:
    """``docker load`` the seed images into the node's engine."""
    cmd = launcher(init, ["docker", "load", "--quiet", "--input", str(archive)])
    run(cmd, timeout=180, env=NODE_ENV)


def init_alive(init: ProcId | None) -> bool:
    """Whether a node's init (and so the node) is running."""
    return init is not None and start_time(init.pid) == init.start
