"""The testbed: a cluster of namespace nodes on one machine, and its controls.

``Testbed`` is both the implementation of the CLI and the API later tests use.
All of its state lives in the state directory (``state.json`` plus per-node
files), so a testbed brought up by the CLI is driven by a ``Testbed`` object
in a test and the other way round; mutating operations take a lock on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import cgroups, disks, ferryd, hostmade, images, netem, network, node, ssh
from .procs import (
    ProcId,
    TestbedError,
    kill_and_wait,
    live,
    ns_inode,
    pids_in_namespaces,
    wait_for,
    with_descendants,
)
from .state import NetemRecord, Partition, State
from .topology import DISK_DEVICE, DISK_SIZE, Layout, node_ip, plan

DEFAULT_STATE_DIR = "/var/tmp/ferry-testbed"
DEFAULT_PREFIX = "ferry-"


class Testbed:
    """Nodes n1..nK as namespaces with sshd and dockerd, a switch, shared disks.

    ``state_dir`` defaults to $FERRY_TESTBED_DIR or /var/tmp/ferry-testbed and
    ``prefix`` (of every namespace and cgroup name) to $FERRY_TESTBED_PREFIX or
    ``ferry-``: two testbeds with different ones can run side by side.
    """

    __test__ = False  # not a pytest test class

    @classmethod
    def private(cls) -> Testbed:
        """A testbed of this process's own (state dir and prefix carry its pid).

        Test sessions running at the same time on one machine then never share
        or tear down each other's testbed. Testbeds of processes that died
        without taking theirs down are taken down first.
        """
        base = Path(DEFAULT_STATE_DIR)
        for path in base.parent.glob(f"{base.name}-s*-*"):
            pid, _, start = path.name.removeprefix(f"{base.name}-s").partition("-")
            if pid.isdigit() and start.isdigit() and not ProcId(int(pid), int(start)).alive():
                cls(path).down()
        me = ProcId.of(os.getpid())
        return cls(f"{base}-s{me.pid}-{me.start}", f"ferry-s{me.pid}-")

    def __init__(self, state_dir: str | Path | None = None, prefix: str | None = None) -> None:
        env_dir = os.environ.get("FERRY_TESTBED_DIR") or DEFAULT_STATE_DIR
        self.state_dir = Path(state_dir or env_dir).absolute()
        self.prefix = prefix or os.environ.get("FERRY_TESTBED_PREFIX") or DEFAULT_PREFIX
        self.layout = Layout(self.state_dir)
        self._children: list[subprocess.Popen[bytes]] = []  # netem forwarders
        self._init_parents: dict[str, subprocess.Popen[bytes]] = {}  # per node: its unshare
        self._save_lock = threading.Lock()
        self._lock_depth = 0
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ state

    @contextlib.contextmanager
    def _locked(self, create: bool = False) -> Iterator[None]:
        """Exclusive use of the state directory (re-entrant in this process)."""
        if self._lock_depth == 0:
            if create:
                self.state_dir.mkdir(parents=True, exist_ok=True)
            elif not self.state_dir.is_dir():
                raise TestbedError(f"no testbed in {self.state_dir}")
            fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_fd = fd
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _save(self, state: State) -> None:
        with self._save_lock:
            state.save(self.layout.state_file)

    def state(self) -> State:
        """The recorded state; raise TestbedError when the testbed is not up."""
        state = State.load(self.layout.state_file)
        if state is None:
            raise TestbedError(f"no testbed in {self.state_dir} (run: python -m tests.testbed up)")
        return state

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names, in order."""
        return self.state().topology.nodes

    @staticmethod
    def node_ip(node: str) -> str:
        """The node's fixed address (nK = 10.0.3.(10+K))."""
        return node_ip(node)

    # -------------------------------------------------------------- lifecycle

    def up(
        self,
        nodes: str | Sequence[str] | None = None,
        shared: str | Sequence[str | Sequence[str]] | None = None,
        *,
        sites: str | Sequence[str | Sequence[str]] = (),
        pairs: bool = False,
        light: str | Sequence[str] = (),
        disk_size: int | str = DISK_SIZE,
        reuse: bool = False,
    ) -> None:
        """Bring the testbed up, first removing whatever a previous run left.

        ``nodes``: n1 n2 n3 by default, or the nodes of ``sites``, e.g.
        ``sites=["n1-n6", "n7-n12"]`` (every node in exactly one site). Node
        lists take ranges (``"n1-n12"``). ``shared`` nodes see the same disk:
        one group (``("n1", "n2")``, the default: the first two nodes), several
        (``[("n1", "n2"), ("n3", "n4")]``) or none (``()``); with ``pairs``
        consecutive nodes of each site share one two by two instead. ``light``
        nodes run no Docker engine. Each disk is a sparse file of ``disk_size``
        (bytes, or ``"512M"``). With ``reuse`` an identical, complete testbed is
        kept (dead nodes revived).
        """
        topo = plan(
            nodes,
            shared,
            sites=sites,
            pairs=pairs,
            light=light,
            disk_size=disk_size,
            prefix=self.prefix,
        )
        with self._locked(create=True):
            old = State.load(self.layout.state_file)
            if reuse and old is not None and old.complete and old.topology == topo:
                self.reset()
                return
            self._teardown(old)
            started = time.monotonic()
            state = State(topology=topo)
            self._save(state)
            try:
                self._build(state)
            except BaseException:
                # A failed bring-up leaves nothing behind; the error is the one to show.
                with contextlib.suppress(Exception):
                    self._teardown(state)
                raise
            state.complete = True
            state.timings["up_seconds"] = round(time.monotonic() - started, 2)
            self._save(state)

    def down(self) -> float:
        """Remove everything the testbed made; idempotent. Return the seconds taken."""
        started = time.monotonic()
        if self.state_dir.is_dir():
            with self._locked():
                self._teardown(State.load(self.layout.state_file))
        return time.monotonic() - started

    def _build(self, state: State) -> None:
        topo = state.topology
        state.host_made = network.run_netns_footprint() + disks.mapper_footprint()
        self._save(state)
        hostmade.claim(state.host_made)  # the last testbed down takes them back
        disks.make_mapper_dir(state.host_made)
        for ns in topo.all_netns():
            state.netns.append(ns)
            self._save(state)
            network.add_netns(ns)
        network.create_switch(topo)
        for name in topo.nodes:
            network.connect_node(topo, name)
        state.cgroups = [topo.cgroup(name) for name in topo.nodes]
        self._save(state)
        for cgroup in state.cgroups:
            cgroups.create(cgroup)
        with ThreadPoolExecutor(max_workers=4) as pool:
            made = {
                disk: pool.submit(self._make_disk, disk, topo.disk_size) for disk in topo.disks()
            }
            keys = pool.submit(ssh.make_keys, self.layout, topo)
            engines = [name for name in topo.nodes if not topo.is_light(name)]
            archive = pool.submit(images.build_archive, self.layout.images_tar) if engines else None
            state.loops = {disk: future.result() for disk, future in made.items()}
            keys.result()
            if archive is not None:
                archive.result()
        self._save(state)
        with ThreadPoolExecutor(max_workers=len(topo.nodes)) as pool:
            booted = [pool.submit(self._boot, state, name, True) for name in topo.nodes]
            for future in booted:
                future.result()
        # Each init's host-side parent died with its thread: collect them.
        self._reap_init_parents(topo.nodes)

    def _make_disk(self, disk: str, size: int) -> str:
        mountpoint = self.state_dir / "tmp" / f"mkfs-{disk}"
        return disks.make_filesystem(self.layout.disk_file(disk), mountpoint, size)

    def _boot(self, state: State, name: str, fresh: bool) -> None:
        """Start a node (init, mounts, sshd, dockerd); ``fresh`` also makes its files."""
        topo = state.topology
        if fresh:
            device = state.loops[topo.disk_of(name)]
            node.prepare_files(self.layout, topo, name, device)
        proc, init = node.start_init(self.layout, topo, name)
        self._init_parents[name] = proc
        record = state.node(name)
        had_ferryd = "ferryd" in record.daemons
        record.init, record.daemons = init, {}
        self._save(state)
        node.mount_private_dirs(self.layout, topo, name, init.pid)
        self._start_daemons(state, name)
        if had_ferryd:  # start_ferryd was used: the revived node gets its ferryd back
            root = Path(f"/proc/{init.pid}/root")
            ferryd.socket_path(root).unlink(missing_ok=True)
            record.daemons["ferryd"] = node.start_daemon(
                self.layout, name, init.pid, "ferryd", ferryd.command(self.project_python())
            )
            self._save(state)
            node.wait_daemon(self.layout, name, "ferryd", record.daemons["ferryd"],
                             lambda: ferryd.socket_path(root).exists())  # fmt: skip
        if fresh and not topo.is_light(name):
            node.load_images(init.pid, self.layout.images_tar)

    def _start_daemons(self, state: State, name: str) -> None:
        """(Re)start whichever of sshd and dockerd (none on a light node) is not running,
        and wait for them."""
        record = state.node(name)
        assert record.init is not None
        init = record.init.pid
        checks = {
            "sshd": (node.sshd_cmd(self.layout, name), lambda: node.sshd_listening(init, name)),
        }
        if not state.topology.is_light(name):
            checks["dockerd"] = (node.dockerd_cmd(self.layout, name),
                                 lambda: node.docker_ping(init))  # fmt: skip
        if "ferryd" in record.daemons:  # started by start_ferryd: revive brings it back
            root = Path(f"/proc/{init}/root")
            checks["ferryd"] = (ferryd.command(self.project_python()),
                                lambda: ferryd.socket_path(root).exists())  # fmt: skip
            if not record.daemons["ferryd"].alive():
                ferryd.socket_path(root).unlink(missing_ok=True)
        for daemon, (cmd, _) in checks.items():
            current = record.daemons.get(daemon)
            if current is None or not current.alive():
                record.daemons[daemon] = node.start_daemon(self.layout, name, init, daemon, cmd)
        self._save(state)
        for daemon, (_, ready) in checks.items():
            node.wait_daemon(self.layout, name, daemon, record.daemons[daemon], ready)

    def _teardown(self, state: State | None) -> None:
        """Undo everything recorded (and whatever a crash left unrecorded)."""
        problems = []
        if state is not None:
            for record in state.netem.values():
                if record.forwarder is not None:
                    record.forwarder.kill()
            self._reap_children(killed=[proc.pid for proc in self._children])
            self._kill_processes(state, state.topology.nodes)
            for ns in reversed(state.netns):
                network.delete_netns(ns)
            made = {*state.host_made, *hostmade.listed()}  # by us, or by a testbed before
            hostmade.release(network.undo_run_netns(made) + disks.undo_mapper_dir(made))
            for cgroup in state.cgroups:
                problems += cgroups.remove(cgroup)
        problems += self._detach_disks()
        if problems:
            raise TestbedError(f"teardown incomplete, run down again: {problems}")
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)

    def _detach_disks(self) -> list[str]:
        images_dir = self.layout.root / "disks"
        files = sorted(images_dir.glob("*.img")) if images_dir.is_dir() else []
        for image in files:
            for device in disks.loops_of(image):
                disks.detach(device)
        try:
            wait_for(lambda: not any(disks.loops_of(f) for f in files), 15, "loop devices")
        except TestbedError:
            return [f"loop device of {f} still attached" for f in files if disks.loops_of(f)]
        return []

    def _kill_processes(self, state: State, names: Sequence[str]) -> None:
        """Kill nodes' inits (so their whole PID namespaces), then any stragglers.

        A straggler is a process that entered a node's network namespace from
        outside (``ip netns exec``); the switch's processes go with the switch.
        """
        inits = [rec.init for n, rec in state.nodes.items() if n in names and rec.init]
        survivors = kill_and_wait(inits)
        namespaces = [state.topology.node_ns(n) for n in names]
        if set(names) == set(state.topology.nodes):
            namespaces.append(state.topology.switch_ns)
        inodes = network.netns_inodes(namespaces).values()
        for _ in range(5):
            pids = pids_in_namespaces("net", inodes)
            if not pids:
                break
            survivors += kill_and_wait(live(pids))
        if survivors:
            raise TestbedError(f"processes survived SIGKILL: {survivors}")
        self._reap_init_parents(names)

    def _reap_init_parents(self, names: Sequence[str]) -> None:
        """Collect the exit status of the nodes' ``unshare`` (which end with their init)."""
        for name in names:
            proc = self._init_parents.pop(name, None)
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._init_parents[name] = proc

    def _reap_children(self, killed: Collection[int] = ()) -> None:
        """Collect exit statuses of our forwarders: ``killed`` ones, and any that ended."""
        for proc in list(self._children):
            if proc.pid in killed:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
            if proc.poll() is not None:
                if proc.stdout is not None:
                    proc.stdout.close()
                self._children.remove(proc)

    # ------------------------------------------------------------------ nodes

    def init_pid(self, name: str) -> int:
        """Host pid of the node's init; raise TestbedError when the node is down."""
        record = self.state().nodes.get(name)
        if record is None or not node.init_alive(record.init):
            raise TestbedError(f"node {name} is not running (revive it)")
        assert record.init is not None
        return record.init.pid

    def node_root(self, name: str) -> Path:
        """The node's filesystem seen from the host (/proc/INIT/root)."""
        return Path(f"/proc/{self.init_pid(name)}/root")

    def alive(self, name: str) -> bool:
        """Whether the node runs (its init is alive)."""
        record = self.state().nodes.get(name)
        return record is not None and node.init_alive(record.init)

    def command(self, name: str, *cmd: str, cwd: str = "/") -> list[str]:
        """Host command line that runs ``cmd`` inside the node (for your own Popen).

        Killing that process kills ``cmd`` too; signals are forwarded to it.
        """
        return node.launcher(self.init_pid(name), cmd, cwd)

    def cli_env(self) -> dict[str, str]:
        """Environment for ``python -m tests.testbed`` to act on this testbed."""
        return {
            **os.environ,
            "FERRY_TESTBED_DIR": str(self.state_dir),
            "FERRY_TESTBED_PREFIX": self.prefix,
        }

    @staticmethod
    def node_env(env: dict[str, str] | None = None) -> dict[str, str]:
        """The environment commands get in a node: root's, plus ``env``."""
        return {**node.NODE_ENV, **(env or {})}

    def exec(
        self,
        name: str,
        *cmd: str,
        input: str | bytes | None = None,
        timeout: float = 60.0,
        check: bool = False,
        cwd: str = "/",
        env: dict[str, str] | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``cmd`` in the node; return its exit status, stdout and stderr.

        On timeout the command gets SIGTERM, then SIGKILL, and
        subprocess.TimeoutExpired is raised; with ``check`` a non-zero exit
        raises subprocess.CalledProcessError.
        """
        proc = subprocess.Popen(
            self.command(name, *cmd, cwd=cwd),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.node_env(env),
            text=text and not isinstance(input, bytes),
        )
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check:
            done.check_returncode()
        return done

    def popen(
        self,
        name: str,
        *cmd: str,
        cwd: str = "/",
        env: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start a long-running ``cmd`` in the node (e.g. ferryd); you own the Popen.

        ``terminate()``/``send_signal()`` reach the command; ``kill()`` kills it.
        Extra keyword arguments go to subprocess.Popen (stdout=..., text=...).
        """
        return subprocess.Popen(self.command(name, *cmd, cwd=cwd), env=self.node_env(env), **kwargs)

    @staticmethod
    def project_python() -> str:
        """Interpreter to run the project's code in a node (the venv's, if any).

        The repository and its .venv are visible inside nodes at the same path.
        """
        repo = Path(__file__).resolve().parents[2]
        venv = repo / ".venv" / "bin" / "python"
        return os.environ.get("FERRY_TESTBED_PYTHON") or (
            str(venv) if venv.exists() else sys.executable
        )

    def python(self, name: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``exec`` the project's Python in the node, cwd at the repository root."""
        repo = str(Path(__file__).resolve().parents[2])
        kwargs.setdefault("cwd", repo)
        kwargs["env"] = {"PYTHONPATH": repo, **kwargs.get("env", {})}
        return self.exec(name, self.project_python(), *args, **kwargs)

    def node_pids(self, name: str) -> list[int]:
        """Host pids of every process of the node, containers included.

        That is whatever runs in the node's network or PID namespace, and all
        their descendants (containers have namespaces of their own).
        """
        state = self.state()
        net = network.netns_inodes([state.topology.node_ns(name)]).values()
        pids = set(pids_in_namespaces("net", net))
        record = state.nodes.get(name)
        if record is not None and record.init is not None and node.init_alive(record.init):
            pid_ns = ns_inode(f"/proc/{record.init.pid}/ns/pid")
            pids |= set(pids_in_namespaces("pid", [pid_ns] if pid_ns else []))
        return sorted(with_descendants(pids))

    def processes(self) -> list[ProcId]:
        """Every process of the testbed now: its nodes' (containers included), its switch's."""
        state = self.state()
        pids = {pid for name in state.topology.nodes for pid in self.node_pids(name)}
        switch = network.netns_inodes([state.topology.switch_ns]).values()
        pids |= with_descendants(pids_in_namespaces("net", switch))
        return live(sorted(pids))

    def kill(self, name: str) -> None:
        """Kill every process of the node at once (a crash); links and disks stay."""
        with self._locked():
            state = self.state()
            self._check_node(state, name)
            self._kill_processes(state, [name])

    def revive(self, name: str) -> None:
        """Start a killed node again (init, mounts, sshd, dockerd), or its dead daemons."""
        with self._locked():
            state = self.state()
            self._check_node(state, name)
            if node.init_alive(state.node(name).init):
                self._start_daemons(state, name)
            else:
                self._kill_processes(state, [name])
                self._boot(state, name, fresh=False)

    def start_ferryd(self, nodes: Sequence[str] | None = None, **settings: Any) -> None:
        """Write node.conf (peers, short timings; ``settings`` override them), share the
        cluster CA, start ferryd in each node and wait for its socket. ``revive``
        restarts it afterwards."""
        with self._locked():
            state = self.state()
            names = list(nodes or state.topology.nodes)
            for name in names:
                self._check_node(state, name)
                record = state.node(name)
                assert record.init is not None
                root = Path(f"/proc/{record.init.pid}/root")
                ferryd.prepare(self.state_dir, root, name, list(state.topology.nodes), **settings)
                current = record.daemons.get("ferryd")
                if current is None or not current.alive():
                    ferryd.socket_path(root).unlink(missing_ok=True)
                    cmd = ferryd.command(self.project_python())
                    record.daemons["ferryd"] = node.start_daemon(
                        self.layout, name, record.init.pid, "ferryd", cmd
                    )
            self._save(state)
            for name in names:
                record = state.node(name)
                assert record.init is not None
                root = Path(f"/proc/{record.init.pid}/root")
                node.wait_daemon(self.layout, name, "ferryd", record.daemons["ferryd"],
                                 lambda root=root: ferryd.socket_path(root).exists())  # type: ignore[misc]  # fmt: skip

    def stop_ferryd(self, nodes: Sequence[str] | None = None) -> None:
        """Stop ferryd in the nodes (SIGTERM, then SIGKILL); revive no longer restarts it."""
        with self._locked():
            state = self.state()
            for name in list(nodes or state.topology.nodes):
                proc = state.node(name).daemons.pop("ferryd", None)
                if proc is not None and proc.alive():
                    os.kill(proc.pid, signal.SIGTERM)
                    deadline = time.monotonic() + 15
                    while proc.alive() and time.monotonic() < deadline:
                        time.sleep(0.1)
                    if proc.alive():
                        os.kill(proc.pid, signal.SIGKILL)
            self._save(state)

    @staticmethod
    def _check_node(state: State, name: str) -> None:
        if name not in state.topology.nodes:
            raise TestbedError(f"no node {name!r} (nodes: {', '.join(state.topology.nodes)})")

    # ---------------------------------------------------------------- network

    def cut(self, name: str) -> None:
        """Pull the node's cable: its link goes down at the switch."""
        self._set_link(name, up=False)

    def heal(self, name: str) -> None:
        """Plug the node's cable back in."""
        self._set_link(name, up=True)

    def _set_link(self, name: str, up: bool) -> None:
        with self._locked():
            state = self.state()
            self._check_node(state, name)
            network.set_port(state.topology, name, up)
            cut = set(state.cut) - {name} if up else set(state.cut) | {name}
            state.cut = sorted(cut)
            self._save(state)

    def partition(
        self,
        group_a: Sequence[str] | str,
        group_b: Sequence[str] | str,
        *,
        oneway: bool = False,
        port: int | None = None,
    ) -> None:
        """Drop frames between two groups of nodes inside the switch.

        Every frame both ways by default. With ``oneway`` only those from
        ``group_a`` to ``group_b`` (IP only: ARP still passes, so what
        ``group_b`` sends keeps arriving). With ``port`` only TCP to or from that
        port (e.g. ferryd's 7443: heartbeats lost, ssh and the rest flowing).
        Partitions add up; ``heal_partition`` removes them all.
        """
        a = [group_a] if isinstance(group_a, str) else list(group_a)
        b = [group_b] if isinstance(group_b, str) else list(group_b)
        if port is not None and not 0 < port < 65536:
            raise TestbedError(f"bad port {port}")
        with self._locked():
            state = self.state()
            for name in a + b:
                self._check_node(state, name)
            if set(a) & set(b):
                raise TestbedError(f"a node cannot be on both sides: {sorted(set(a) & set(b))}")
            state.partitions.append(Partition(a, b, oneway, port))
            network.apply_partitions(state.topology, state.partitions)
            self._save(state)

    def heal_partition(self) -> None:
        """Remove every partition."""
        with self._locked():
            state = self.state()
            state.partitions = []
            network.apply_partitions(state.topology, [])
            self._save(state)

    def netem(self, name: str, *args: str) -> None:
        """Impair the node's link, e.g. ``netem("n1", "delay", "100ms", "loss", "5%")``.

        Both directions get the impairment; ``netem(node, "off")`` clears it.
        """
        with self._locked():
            state = self.state()
            self._check_node(state, name)
            self._clear_netem(state, name)
            if list(args) != ["off"]:
                impairment = netem.parse(args)
                state.netem[name] = NetemRecord(list(args))
                self._save(state)
                proc, forwarder = netem.start(state.topology, self.layout, name, impairment)
                self._children.append(proc)
                state.netem[name].forwarder = forwarder
            self._save(state)

    def _clear_netem(self, state: State, name: str) -> None:
        record = state.netem.pop(name, None)
        if record is not None:
            netem.stop(state.topology, name, record.forwarder)
            self._reap_children(killed=[record.forwarder.pid] if record.forwarder else [])

    def reset(self) -> None:
        """Undo injected failures: heal cuts, partitions and netem; revive dead nodes.

        Disks, mounts made inside nodes, containers and images are left as they are.
        """
        with self._locked():
            state = self.state()
            for name in list(state.netem):
                self._clear_netem(state, name)
            if state.cut:
                for name in state.cut:
                    network.set_port(state.topology, name, True)
                state.cut = []
            if state.partitions:
                state.partitions = []
                network.apply_partitions(state.topology, [])
            self._save(state)
            for name in state.topology.nodes:
                if not self._healthy(state, name):
                    self.revive(name)

    @staticmethod
    def _healthy(state: State, name: str) -> bool:
        record = state.nodes.get(name)
        if record is None or not node.init_alive(record.init):
            return False
        daemons = ("sshd",) if state.topology.is_light(name) else ("sshd", "dockerd")
        return all(record.daemons.get(d) is not None and record.daemons[d].alive() for d in daemons)

    # ----------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        """What runs, per node, and which failures are injected."""
        state = State.load(self.layout.state_file)
        if state is None:
            return {"up": False, "state_dir": str(self.state_dir)}
        topo = state.topology
        nodes = {}
        for name in topo.nodes:
            record = state.nodes.get(name)
            daemons = record.daemons if record else {}
            nodes[name] = {
                "ip": node_ip(name),
                "site": topo.site_of(name),
                "light": topo.is_light(name),
                "alive": record is not None and node.init_alive(record.init),
                "init_pid": record.init.pid if record and record.init else None,
                "sshd": bool(daemons.get("sshd") and daemons["sshd"].alive()),
                "dockerd": bool(daemons.get("dockerd") and daemons["dockerd"].alive()),
                "disk": f"/dev/mapper/{DISK_DEVICE} = {state.loops.get(topo.disk_of(name))}",
                "disk_group": list(topo.disk_group(name)),
                "link": "cut" if name in state.cut else "up",
                "netem": " ".join(state.netem[name].args) if name in state.netem else None,
            }
        return {
            "up": state.complete,
            "state_dir": str(self.state_dir),
            "prefix": topo.prefix,
            "sites": [list(site) for site in topo.sites],
            "shared": list(topo.shared),
            "shared_groups": [list(group) for group in topo.shared_groups],
            "light": list(topo.light),
            "disk_size": topo.disk_size,
            "nodes": nodes,
            "partitions": [asdict(p) for p in state.partitions],
            "timings": state.timings,
        }


def _stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM (forwarded into the node), then SIGKILL after a grace period."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
