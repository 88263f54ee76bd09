"""Docker engines: the node's engine, or a service-private engine.

When ``docker_data_dir`` is set, the service gets its own ``dockerd`` whose data
root is that directory (on a service filesystem, so images and containers move
with the service). Its socket, pid file, exec root and log live in the
service's state dir. It never touches the host network: no bridge, no iptables,
no masquerading. It starts before the first container and stops after the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiodocker

from daemon.system import process
from daemon.system.command import CommandError, run

START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
API_TIMEOUT = 30.0
NODE_SOCKET = "/var/run/docker.sock"


class EngineError(Exception):
    """The engine cannot be reached, started or stopped."""


@dataclass(frozen=True)
class Engine:
    """How to reach a Docker engine, and for a private one how to run it."""

    socket: str
    data_root: str = ""  # set for a service-private engine
    run_dir: str = ""  # pid file, exec root, log of a private engine

    @property
    def private(self) -> bool:
        return bool(self.data_root)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return Path(self.run_dir) / "dockerd.pid"

    @property
    def logfile(self) -> Path:
        return Path(self.run_dir) / "dockerd.log"

    def describe(self) -> str:
        if self.private:
            return f"the service's engine (data root {self.data_root})"
        return f"the node's engine ({self.socket})"

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[aiodocker.Docker]:
        docker = aiodocker.Docker(url=self.url)
        try:
            yield docker
        finally:
            await docker.close()

    async def ping(self) -> bool:
        if not os.path.exists(self.socket):
            return False
        try:
            async with asyncio.timeout(5), self.client() as docker:
                await docker.version()
            return True
        except (aiodocker.DockerError, OSError, TimeoutError, ValueError):
            return False

    def dockerd_argv(self) -> list[str]:
        return [
            "dockerd",
            "--data-root", self.data_root,
            "--exec-root", f"{self.run_dir}/exec",
            "--pidfile", str(self.pidfile),
            "-H", self.url,
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip6tables=false",
            "--userland-proxy=false",
            "--log-level=warn",
        ]  # fmt: skip

    async def ensure_started(self) -> None:
        """Start a private engine when it is not answering; the node's engine must be up."""
        if await self.ping():
            return
        if not self.private:
            raise EngineError(f"{self.describe()} does not answer")
        if not os.path.isdir(self.data_root):
            raise EngineError(
                f"docker_data_dir {self.data_root} does not exist (is its filesystem mounted?)"
            )
        if os.stat(self.data_root).st_dev == os.stat("/").st_dev:
            # The data root belongs on the service's filesystem: an engine started on the
            # bare mount point would fill the root filesystem and hide the real data.
            raise EngineError(
                f"docker_data_dir {self.data_root} is not on a filesystem of its own here "
                "(is the service's fs mounted?)"
            )
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        pid = self._our_pid()
        if pid is not None:
            # Ours, but silent: starting (another caller started it) or shutting down (a
            # stop that timed out). Wait for it to answer or to be gone; never start a
            # second dockerd on the same data root.
            deadline = time.monotonic() + START_TIMEOUT
            while self._our_pid() is not None and time.monotonic() < deadline:
                if await self.ping():
                    return
                await asyncio.sleep(0.2)
            if self._our_pid() is not None:
                raise EngineError(
                    f"dockerd (pid {pid}) for {self.data_root} runs but did not answer within "
                    f"{START_TIMEOUT:g}s:\n" + self.log_tail()
                )
        if self._our_pid() is None:
            # Leftovers of an engine that died with its node (a crash, a reboot): a stale
            # containerd.pid may name a pid reused by another process, and dockerd would
            # wait for a containerd that is not there.
            shutil.rmtree(Path(self.run_dir) / "exec", ignore_errors=True)
            self.pidfile.unlink(missing_ok=True)
            Path(self.socket).unlink(missing_ok=True)
        with open(self.logfile, "ab") as log:
            log.write(f"--- ferry starts dockerd at {time.ctime()}\n".encode())
        # setsid -f: dockerd outlives the CLI or daemon that starts it and is not our zombie.
        argv = ["setsid", "-f", "sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null',
                str(self.logfile), *self.dockerd_argv()]  # fmt: skip
        try:
            await run(argv, timeout=10)
        except CommandError as exc:
            raise EngineError(f"cannot start dockerd: {exc}") from None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if await self.ping():
                return
            await asyncio.sleep(0.2)
        raise EngineError(
            f"dockerd for {self.data_root} did not answer within {START_TIMEOUT:g}s:\n"
            + self.log_tail()
        )

    def log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _our_pid(self) -> int | None:
        """The private dockerd's pid, only if that process is the dockerd we started."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if cmdline and cmdline[0].endswith(b"dockerd") and self.url.encode() in cmdline:
            return pid
        return None

    async def stop(self) -> None:
        """Stop a private engine (SIGTERM, then SIGKILL after STOP_TIMEOUT), and wait for
        its containerd, whose state lives on the data root too."""
        if not self.private:
            return
        containerd = self._containerd_pid()
        await self._stop_dockerd()
        if containerd is not None:
            deadline = time.monotonic() + 15
            while process.alive(containerd) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)

    def _containerd_pid(self) -> int | None:
        try:
            pid = int((Path(self.run_dir) / "exec" / "containerd" / "containerd.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"containerd" in cmdline else None

    async def _stop_dockerd(self) -> None:
        pid = self._our_pid()
        if pid is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not process.alive(pid):
                    return
                await asyncio.sleep(0.2)
        raise EngineError(f"dockerd (pid {pid}) did not stop")

    async def running_containers(self, label: str) -> list[str]:
        """Ids of the running containers carrying label (``key=value``)."""
        async with asyncio.timeout(API_TIMEOUT), self.client() as docker:
            found = await docker.containers.list(filters=json.dumps({"label": [label]}))
            return [c.id for c in found]


def engine_for(state_dir: Path, docker_data_dir: str | None) -> Engine:
    """The engine a service uses: private when docker_data_dir is set, else the node's."""
    if docker_data_dir:
        run_dir = state_dir / "docker"
        return Engine(str(run_dir / "docker.sock"), docker_data_dir, str(run_dir))
    host = os.environ.get("DOCKER_HOST", "")
    return Engine(host.removeprefix("unix://") if host.startswith("unix://") else NODE_SOCKET)
