"""The daemon's composition root: build the components, start the listeners, stop cleanly.

Components today: the event bus, the node's services (instances and status),
the action runner, the REST API on a unix socket and on TCP (TLS). The cluster
components of later issues (heartbeat, monitor, scheduler) plug in as
:class:`Component` objects passed to :class:`Daemon` (see ``components``): each
runs as one task of the daemon's task group from readiness to shutdown, and a
component that crashes stops the daemon (systemd restarts it).

Shutdown (SIGTERM, SIGINT): report STOPPING to systemd, close the listeners
(no new request), end event streams, let running actions finish within
``stop_grace`` and cancel the rest (their records say so), then return.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import signal
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from aiohttp import web

from daemon.actions import ActionLogCapture, ActionRunner, ActionStore
from daemon.api.app import build_app
from daemon.api.auth import TokenStore
from daemon.api.checker import ConfigChecker
from daemon.api.context import ApiContext, ApiMetrics
from daemon.api.guard import GuardedRunner, GuardedTCPSite, Limits
from daemon.cluster.actions import ClusterActions
from daemon.cluster.heartbeat import Heartbeat
from daemon.cluster.metrics import register_peer_gauges
from daemon.cluster.monitor import Monitor
from daemon.cluster.quorum import ArbitratorPoller
from daemon.cluster.state import EXPECTS_FILE, ClusterState
from daemon.drill.metrics import register_drill_gauges
from daemon.drill.runner import Drills
from daemon.events import EventBus
from daemon.metrics import Registry, Sample
from daemon.node.config import NodeConfig
from daemon.node.metrics import register_sync_gauges
from daemon.node.services import NodeServices
from daemon.node.trust import untrusted
from daemon.resources.status import Status
from daemon.restore.metrics import register_restore_gauges
from daemon.scheduler.component import Scheduler
from daemon.tls.authority import TlsError, ensure_node_tls
from daemon.tls.contexts import server_context
from daemon.web.console import add_console

log = logging.getLogger("ferry.daemon")

SOCKET_NAME = "ferryd.sock"
LOCK_NAME = "ferryd.lock"
MAX_SOCKET_PATH = 107
HTTP_SHUTDOWN_TIMEOUT = 3.0
KEEPALIVE_TIMEOUT = 75.0  # an idle kept-alive connection (aiohttp's default is an hour)


class Component(Protocol):
    """A long-running part of the daemon (heartbeat, monitor, scheduler...)."""

    name: str

    async def run(self, ctx: ApiContext) -> None:
        """Run until cancelled; raising stops the daemon."""


class _StateOwner:
    """The cluster state's own task, as a component."""

    name = "cluster-state"

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    async def run(self, ctx: ApiContext) -> None:
        await self.state.run()


def cluster_components(
    state: ClusterState, monitor: Monitor, config: NodeConfig
) -> list[Component]:
    """The cluster layer: the state's owner, the heartbeat, the monitor, the arbitrator poller."""
    out: list[Component] = [_StateOwner(state), Heartbeat(state, config), monitor]
    if config.cluster.quorum and config.cluster.arbitrators:
        out.append(ArbitratorPoller(state, config))
    return out


class DaemonError(Exception):
    """The daemon cannot start; the message says why."""


def sd_notify(state: str) -> bool:
    """Tell systemd about our state (READY=1, STOPPING=1...); False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify %s failed: %s", state, exc)
        return False
    return True


def cluster_secret(var_dir: Path, configured: str | None) -> str:
    """The configured cluster secret, else one generated once into the var dir."""
    if configured:
        return configured
    path = var_dir / "cluster" / "secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return secret


class Daemon:
    """One ferryd: build with a node config and directories, then :meth:`run` (or start/stop)."""

    def __init__(
        self,
        config: NodeConfig,
        config_dir: Path,
        var_dir: Path,
        *,
        components: Sequence[Component] = (),
        tcp: bool = True,
        cluster: bool = False,
    ) -> None:
        self.config = config
        self.config_dir = config_dir
        self.var_dir = var_dir
        self.components = list(components)  # plug point: heartbeat, monitor, scheduler
        self.tcp = tcp
        self.cluster = cluster  # run the cluster layer: state, heartbeat, monitor
        self.ctx: ApiContext | None = None
        self.tcp_port: int | None = None  # the bound port (listen_port, or the one picked for 0)
        self._runner: web.AppRunner | None = None
        self._lock_fd: int | None = None
        self._stop = asyncio.Event()
        self._log_capture: ActionLogCapture | None = None

    @property
    def socket_path(self) -> Path:
        return self.var_dir / SOCKET_NAME

    # ------------------------------------------------------------------ assembly

    def _take_lock(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        problems = untrusted(self.var_dir)
        if problems:
            raise DaemonError(
                f"the var dir is not safe: {'; '.join(problems)} "
                "(another user could plant a token, a CA or a secret; fix owner and mode)"
            )
        fd = os.open(self.var_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonError(
                f"another ferryd (pid {holder}) uses {self.var_dir}; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _metrics(self, registry: Registry) -> ApiMetrics:
        return ApiMetrics(
            registry=registry,
            latency=registry.histogram(
                "ferry_http_request_duration_seconds",
                "Latency of API requests, per route.",
                ("method", "route"),
            ),
            requests=registry.counter(
                "ferry_http_requests",
                "API requests, per route and status code.",
                ("method", "route", "code"),
            ),
            actions=registry.counter(
                "ferry_actions",
                "Service actions ended, per action and result.",
                ("action", "result"),
            ),
        )

    def _gauges(self, ctx: ApiContext) -> None:
        registry = ctx.metrics.registry

        def node() -> list[Sample]:
            labels = {
                "node": ctx.nodename,
                "cluster": ctx.node.cluster.name,
                "version": ctx.version,
            }
            return [(labels, 1.0)]

        def instance(kind: str) -> list[Sample]:
            out: list[Sample] = []
            for name in ctx.services.names():
                entry = ctx.services.cached(name)
                if entry is None:
                    continue
                current = entry.state[kind]
                for status in Status:
                    labels = {"service": name, "node": ctx.nodename, "status": str(status)}
                    out.append((labels, 1.0 if current == status else 0.0))
            return out

        registry.gauge("ferry_node_info", "This node (value 1), its cluster and version.", node)
        registry.gauge(
            "ferry_node_start_time_seconds",
            "When the daemon started (unix time).",
            lambda: [({}, ctx.started_at)],
        )
        registry.gauge(
            "ferry_node_actions_running", "Actions running now.", lambda: [({}, ctx.runner.running)]
        )
        registry.gauge(
            "ferry_node_actions_queued",
            "Actions waiting for a slot.",
            lambda: [({}, ctx.runner.queued)],
        )
        registry.gauge(
            "ferry_node_services", "Services installed.", lambda: [({}, len(ctx.services.names()))]
        )
        registry.gauge(
            "ferry_instance_avail",
            "Instance avail status on this node: 1 for the current status (last known).",
            lambda: instance("avail"),
        )
        registry.gauge(
            "ferry_instance_overall",
            "Instance overall status on this node: 1 for the current status (last known).",
            lambda: instance("overall"),
        )
        registry.gauge(
            "ferry_instance_status_updated_seconds",
            "When each instance's status was last evaluated (unix time).",
            lambda: [
                ({"service": n, "node": ctx.nodename}, e.updated_at)
                for n in ctx.services.names()
                if (e := ctx.services.cached(n)) is not None
            ],
        )
        register_sync_gauges(registry, ctx.services)
        if ctx.drills is not None:
            register_drill_gauges(registry, ctx.drills.store, ctx.nodename)
        register_restore_gauges(registry, self.var_dir, ctx.nodename)
        if ctx.cluster is not None:
            register_peer_gauges(registry, ctx.cluster)

    def build(self) -> ApiContext:
        """Assemble the components (no listener yet)."""
        node = self.config.node
        events = EventBus()
        services = NodeServices(
            self.config_dir, self.var_dir, node.name, self.config.cluster.name, events
        )
        registry = Registry()
        metrics = self._metrics(registry)
        state: ClusterState | None = None
        monitor: Monitor | None = None
        drills: Drills | None = None
        executor = services.act
        if self.cluster:
            cluster = self.config.cluster
            state = ClusterState(
                node.name,
                [p.name for p in cluster.peers],
                cluster.hb_timeout,
                events,
                arbitrators=len(cluster.arbitrators),
                store=self.var_dir / EXPECTS_FILE,
            )
            monitor = Monitor(state, self.config, self.var_dir)
            drills = Drills(
                self.var_dir, self.config_dir, events, clustername=self.config.cluster.name
            )
            executor = ClusterActions(services, state, monitor, drills).act
        runner = ActionRunner(
            ActionStore(self.var_dir / "actions"),
            executor,
            events,
            max_concurrent=node.max_actions,
            timeout=node.action_timeout,
            keep=node.actions_kept,
            counter=metrics.actions,
        )
        ctx = ApiContext(
            node=self.config,
            config_dir=self.config_dir,
            var_dir=self.var_dir,
            services=services,
            runner=runner,
            events=events,
            tokens=TokenStore(self.var_dir),
            metrics=metrics,
            tls=node.tls,
            limits=Limits(
                header_timeout=node.header_timeout,
                body_timeout=node.body_timeout,
                body_min_rate=node.body_min_rate,
                max_connections=node.max_connections,
                max_client_connections=node.max_client_connections,
            ),
            checker=ConfigChecker(node.check_workers, node.check_queue, node.check_timeout),
        )
        ctx.drills = drills
        if state is not None and monitor is not None:
            ctx.cluster, ctx.monitor = state, monitor
            ctx.peer_state = state.peer_state
            self.components[:0] = [*cluster_components(state, monitor, self.config), Scheduler()]
        self._gauges(ctx)
        self.ctx = ctx
        return ctx

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> ApiContext:
        """Take the var dir, recover state, open the listeners; then the daemon is ready."""
        self._take_lock()
        try:
            return await self._start()
        except BaseException:
            self._release_lock()
            raise

    async def _start(self) -> ApiContext:
        node = self.config.node
        if len(str(self.socket_path).encode()) > MAX_SOCKET_PATH:
            raise DaemonError(f"socket path {self.socket_path} is too long for a unix socket")
        cluster_secret(self.var_dir, self.config.cluster.secret)
        ctx = self.build()
        interrupted = ctx.runner.recover()
        if interrupted:
            log.warning("%d action(s) were interrupted by the previous stop", interrupted)
        if ctx.drills is not None:
            # Before the first monitor turn: a drill cut short never stands in the way of a
            # takeover (its bubble and clones go now).
            cleaned = await ctx.drills.recover()
            if cleaned:
                log.warning("%d drill(s) cut short by the previous stop were torn down", cleaned)
        self._log_capture = ActionLogCapture()
        ferry_log = logging.getLogger("ferry")
        ferry_log.addHandler(self._log_capture)
        if ferry_log.getEffectiveLevel() > logging.INFO:
            # Actions' info lines are always captured; stderr handlers filter by their own level.
            ferry_log.setLevel(logging.INFO)
        app = build_app(ctx)
        add_console(app, ctx)
        self._runner = GuardedRunner(
            app,
            ctx.limits,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
        )
        await self._runner.setup()
        old_umask = os.umask(0o177)
        try:
            unix = web.UnixSite(self._runner, str(self.socket_path))
            await unix.start()
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        ctx.listen.append(f"unix:{self.socket_path}")
        if self.tcp:
            ssl_ctx = None
            if node.tls:
                try:
                    files = ensure_node_tls(
                        self.var_dir, node.name, self.config.cluster.name, [node.listen_addr]
                    )
                except TlsError as exc:
                    raise DaemonError(str(exc)) from None
                ssl_ctx = server_context(files)
            site = GuardedTCPSite(
                self._runner, node.listen_addr, node.listen_port, ssl_context=ssl_ctx
            )
            try:
                await site.start()
            except OSError as exc:
                raise DaemonError(
                    f"cannot listen on {node.listen_addr}:{node.listen_port}: {exc.strerror}"
                ) from None
            ports = [a[1] for a in self._runner.addresses if isinstance(a, tuple)]
            self.tcp_port = ports[0] if ports else node.listen_port
            scheme = "https" if node.tls else "http"
            ctx.listen.append(f"{scheme}://{node.listen_addr}:{self.tcp_port}")
        log.info(
            "ferryd ready: node %s, cluster %s, listening on %s",
            node.name,
            self.config.cluster.name,
            ", ".join(ctx.listen),
        )
        return ctx

    def request_stop(self) -> None:
        """Ask :meth:`run` to shut down (signal handlers call this)."""
        self._stop.set()

    async def stop(self) -> None:
        """Close listeners, end streams, drain actions within stop_grace."""
        ctx = self.ctx
        if ctx is not None:
            ctx.stopping = True
            ctx.events.close()
        if self._runner is not None:
            # Stop accepting first; in-flight requests get HTTP_SHUTDOWN_TIMEOUT.
            for site in list(self._runner.sites):
                await site.stop()
        if ctx is not None:
            ctx.checker.close()
            await ctx.runner.drain(self.config.node.stop_grace)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._log_capture is not None:
            logging.getLogger("ferry").removeHandler(self._log_capture)
            self._log_capture = None
        self.socket_path.unlink(missing_ok=True)
        self._release_lock()
        log.info("ferryd stopped")

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def run(self) -> None:
        """Start, tell systemd, serve until SIGTERM/SIGINT, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        ctx = await self.start()
        try:
            sd_notify("READY=1\nSTATUS=serving")
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(c.run(ctx), name=c.name) for c in self.components]
                await self._stop.wait()
                log.info("stop requested")
                sd_notify("STOPPING=1")
                for task in tasks:
                    task.cancel()
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
