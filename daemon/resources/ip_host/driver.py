"""The ip driver of type host: an address on a host interface of this node."""

from __future__ import annotations

from pathlib import Path

from daemon.resources.base import Resource, ResourceError, StatusReport
from daemon.service.status import Status
from daemon.system.command import CommandError, run
from daemon.system.net import address_answers, prefix_length, resolve

IP_TIMEOUT = 20.0


class AddressDriver(Resource):
    """What both ip drivers share: the device, the address and its prefix length."""

    @property
    def ipdev(self) -> str:
        return str(self.values["ipdev"])

    def prefix(self) -> int:
        try:
            return prefix_length(str(self.values.get("netmask") or "24"))
        except ValueError as exc:
            raise ResourceError(f"netmask: {exc}") from None

    async def _address(self) -> str:
        try:
            return await resolve(str(self.values["ipname"]))
        except ValueError as exc:
            raise ResourceError(str(exc)) from None


class Driver(AddressDriver):
    """An address added to ipdev."""

    def label(self) -> str:
        return f"{self.values['ipname']}/{self.prefix()} on {self.ipdev}"

    async def status(self) -> StatusReport:
        if not Path(f"/sys/class/net/{self.ipdev}").exists():
            return StatusReport(Status.DOWN, [f"warn: ipdev {self.ipdev} does not exist"])
        shown = await run(["ip", "-o", "addr", "show", "dev", self.ipdev], timeout=IP_TIMEOUT)
        address = await self._address()
        return StatusReport(Status.UP if f" {address}/" in shown.stdout else Status.DOWN)

    async def start(self) -> None:
        address = await self._address()
        if not Path(f"/sys/class/net/{self.ipdev}").exists():
            raise ResourceError(f"ipdev {self.ipdev} does not exist on this node")
        if await address_answers(address):
            raise ResourceError(f"{address} already answers on the network: refusing a duplicate")
        try:
            await run(
                ["ip", "addr", "add", f"{address}/{self.prefix()}", "dev", self.ipdev],
                timeout=IP_TIMEOUT,
            )
        except CommandError as exc:
            raise ResourceError(str(exc)) from None

    async def stop(self) -> None:
        address = await self._address()
        try:
            await run(
                ["ip", "addr", "del", f"{address}/{self.prefix()}", "dev", self.ipdev],
                timeout=IP_TIMEOUT,
            )
        except CommandError as exc:
            raise ResourceError(str(exc)) from None
