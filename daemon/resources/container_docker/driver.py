"""The docker container driver, through aiodocker, in the service's engine."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiodocker

from daemon.resources.base import Resource, ResourceError, StatusReport
from daemon.resources.container_docker.engine import API_TIMEOUT, Engine, EngineError, engine_for
from daemon.resources.status import Status

LABEL_SERVICE = "org.ferry.service"
LABEL_RID = "org.ferry.rid"


def service_engine(resource: Resource) -> Engine:
    """The engine of the resource's service on this node."""
    instance = resource.instance
    return engine_for(instance.state_dir, instance.value("DEFAULT", "docker_data_dir"))


class Driver(Resource):
    """A Docker container of the service."""

    @property
    def name(self) -> str:
        return str(self.values["name"])

    @property
    def image(self) -> str:
        return str(self.values["image"])

    @property
    def engine(self) -> Engine:
        return service_engine(self)

    def label(self) -> str:
        return f"{self.name} ({self.image})"

    def _network_mode(self) -> str:
        netns = str(self.values.get("netns") or "")
        if netns.startswith("container#"):
            other = self.instance.resources.get(netns)
            if other is None or not isinstance(other, Driver):
                raise ResourceError(f"netns {netns} is not a container of this service")
            return f"container:{other.name}"
        if netns in ("host", "none"):
            return netns
        # The engines run without a bridge: a container has no network of its own unless
        # an ip resource gives it one (or netns = host says to use the node's).
        return "none"

    def start_after(self) -> str:
        netns = str(self.values.get("netns") or "")
        return netns if netns.startswith("container#") else ""

    def _create_config(self) -> dict[str, Any]:
        host_config: dict[str, Any] = {
            "NetworkMode": self._network_mode(),
            "AutoRemove": bool(self.values.get("rm")),
            "Privileged": bool(self.values.get("privileged")),
        }
        if self.values.get("volume_mounts"):
            host_config["Binds"] = list(self.values["volume_mounts"])
        config: dict[str, Any] = {
            "Image": self.image,
            "HostConfig": host_config,
            "Labels": {LABEL_SERVICE: self.instance.name, LABEL_RID: self.rid},
        }
        if self.values.get("command"):
            config["Cmd"] = list(self.values["command"])
        if self.values.get("entrypoint"):
            config["Entrypoint"] = list(self.values["entrypoint"])
        if self.values.get("environment"):
            config["Env"] = list(self.values["environment"])
        if self.values.get("hostname"):
            config["Hostname"] = str(self.values["hostname"])
        return config

    async def inspect(self) -> dict[str, Any] | None:
        """The container's inspect data, None when absent or the engine is down."""
        if not await self.engine.ping():
            return None
        try:
            async with asyncio.timeout(API_TIMEOUT), self.engine.client() as docker:
                container = await docker.containers.get(self.name)
                return dict(await container.show())
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise ResourceError(f"docker: {exc.message}") from None

    async def pid(self) -> int:
        """The pid of the running container's init process (its namespaces' holder)."""
        data = await self.inspect()
        if not data or not data["State"].get("Running"):
            raise ResourceError(f"container {self.name} is not running")
        return int(data["State"]["Pid"])

    async def status(self) -> StatusReport:
        data = await self.inspect()
        if data is None:
            return StatusReport(Status.DOWN)
        state = data["State"]
        if state.get("Running"):
            return StatusReport(Status.UP)
        return StatusReport(
            Status.DOWN, [f"info: {state.get('Status')} (exit {state.get('ExitCode')})"]
        )

    async def start(self) -> None:
        try:
            await self.engine.ensure_started()
        except EngineError as exc:
            raise ResourceError(str(exc)) from None
        try:
            async with asyncio.timeout(API_TIMEOUT), self.engine.client() as docker:
                await self._check_image(docker)
                await self._remove_stale(docker)
                container = await docker.containers.create(self._create_config(), name=self.name)
                await container.start()
        except aiodocker.DockerError as exc:
            raise ResourceError(f"docker: {exc.message}") from None
        except TimeoutError:
            raise ResourceError(f"docker did not answer within {API_TIMEOUT:g}s") from None
        await self._wait_running(float(self.values["start_timeout"]))

    async def _check_image(self, docker: aiodocker.Docker) -> None:
        try:
            await docker.images.inspect(self.image)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                raise ResourceError(
                    f"image {self.image} is not in {self.engine.describe()} "
                    "(Ferry does not pull: replicate it with a docker sync resource or load it)"
                ) from None
            raise

    async def _remove_stale(self, docker: aiodocker.Docker) -> None:
        """A stopped container left with our name is replaced by a fresh one."""
        try:
            old = await docker.containers.get(self.name)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return
            raise
        await old.delete(force=True)

    async def _wait_running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            data = await self.inspect()
            state = (data or {}).get("State", {})
            if state.get("Running"):
                return
            if data is None or state.get("Status") in ("exited", "dead"):
                raise ResourceError(
                    f"container {self.name} exited right after start "
                    f"(exit {state.get('ExitCode', '?')}): {await self._logs_tail()}"
                )
            if time.monotonic() > deadline:
                raise ResourceError(f"container {self.name} not running after {timeout:g}s")
            await asyncio.sleep(0.2)

    async def _logs_tail(self) -> str:
        try:
            async with asyncio.timeout(API_TIMEOUT), self.engine.client() as docker:
                container = await docker.containers.get(self.name)
                lines = await container.log(stdout=True, stderr=True, tail=10)
                return "".join(lines).strip() or "(no output)"
        except (aiodocker.DockerError, TimeoutError):
            return "(no output)"

    async def stop(self) -> None:
        grace = int(self.values["stop_timeout"])
        if await self.engine.ping():
            try:
                async with asyncio.timeout(API_TIMEOUT + grace), self.engine.client() as docker:
                    await self._stop_container(docker, grace)
            except aiodocker.DockerError as exc:
                raise ResourceError(f"docker: {exc.message}") from None
            except TimeoutError:
                raise ResourceError(f"container {self.name} did not stop in time") from None
        await self._stop_private_engine_when_idle()

    async def _stop_container(self, docker: aiodocker.Docker, grace: int) -> None:
        """SIGTERM, SIGKILL after grace seconds; with rm, removed before this returns."""
        try:
            container = await docker.containers.get(self.name)
            await container.stop(t=grace)
        except aiodocker.DockerError as exc:
            if exc.status not in (404, 409):  # gone already, or its removal in progress
                raise
        if self.values.get("rm"):
            await self._wait_removed(docker)

    async def _wait_removed(self, docker: aiodocker.Docker) -> None:
        """Remove the container, or wait while the engine's auto-removal (rm) finishes it."""
        while True:
            try:
                container = await docker.containers.get(self.name)
                await container.delete(force=True)
                return
            except aiodocker.DockerError as exc:
                if exc.status == 404:
                    return
                if exc.status != 409:  # 409: "removal already in progress"
                    raise
            await asyncio.sleep(0.2)

    async def _stop_private_engine_when_idle(self) -> None:
        engine = self.engine
        if not engine.private or not await engine.ping():
            return
        running = await engine.running_containers(f"{LABEL_SERVICE}={self.instance.name}")
        if running:
            return
        try:
            await engine.stop()
        except EngineError as exc:
            raise ResourceError(str(exc)) from None
