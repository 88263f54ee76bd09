"""The app driver: start, stop and check commands, each with a time limit."""

from __future__ import annotations

import os

from daemon.resources.base import Resource, ResourceError, StatusReport
from daemon.resources.status import Status
from daemon.system.command import CommandError, run


class Driver(Resource):
    """An application driven by shell commands, or one script taking start/stop/status."""

    def label(self) -> str:
        return self._command("start") or self._command("check") or "no command"

    def _command(self, verb: str) -> str:
        keyword = "check" if verb == "status" else verb
        command = self.values.get(keyword)
        if command:
            return str(command)
        script = self.values.get("script")
        if script:
            return f"{script} {verb}"
        return ""

    def _env(self) -> dict[str, str]:
        return {
            "FERRY_SVCNAME": self.instance.name,
            "FERRY_NODENAME": self.instance.node,
            "FERRY_RID": self.rid,
            "FERRY_VAR": str(self.state_dir),
        }

    async def _run(self, verb: str, timeout: float) -> None:
        command = self._command(verb)
        if not command:
            return
        cwd = self.values.get("cwd") or None
        if cwd and not os.path.isdir(cwd):
            raise ResourceError(f"cwd {cwd} is not a directory")
        try:
            await run(["/bin/sh", "-c", command], timeout=timeout, env=self._env(), cwd=cwd)
        except CommandError as exc:
            raise ResourceError(str(exc)) from None

    async def start(self) -> None:
        await self._run("start", float(self.values["timeout"]))

    async def stop(self) -> None:
        await self._run("stop", float(self.values["timeout"]))

    async def status(self) -> StatusReport:
        command = self._command("status")
        if not command:
            return StatusReport(Status.NA, ["info: no check command"])
        try:
            result = await run(
                ["/bin/sh", "-c", command],
                timeout=float(self.values["check_timeout"]),
                env=self._env(),
                cwd=self.values.get("cwd") or None,
                check=False,
            )
        except CommandError as exc:
            return StatusReport(Status.UNDEF, [f"error: {exc}"])
        return StatusReport(Status.UP if result.ok else Status.DOWN)
