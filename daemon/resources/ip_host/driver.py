"""The ip driver of type host: an address on a host interface of this node."""

from __future__ import annotations

import json
from typing import Any

from daemon.resources.base import Resource, ResourceError, StatusReport
from daemon.resources.status import Status
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

    async def link(self, dev: str) -> dict[str, Any] | None:
        """The kernel's view of link dev in this process's network namespace (ip -d -j),
        None when there is no such link.

        Not /sys/class/net: it shows the namespace of whoever mounted /sys, which need not
        be this one (a node of the testbed, a container)."""
        argv = ["ip", "-d", "-j", "link", "show", "dev", dev]
        try:
            result = await run(argv, timeout=IP_TIMEOUT, check=False)
        except CommandError as exc:
            raise ResourceError(str(exc)) from None
        if result.ok:
            try:
                return dict(json.loads(result.stdout)[0])
            except (ValueError, IndexError, TypeError):
                raise ResourceError(f"ip link show {dev}: unexpected output") from None
        if "does not exist" in result.stderr:
            return None
        raise ResourceError(f"ip link show {dev}: {result.tail()}")


class Driver(AddressDriver):
    """An address added to ipdev."""

    def label(self) -> str:
        return f"{self.values['ipname']}/{self.prefix()} on {self.ipdev}"

    async def status(self) -> StatusReport:
        if await self.link(self.ipdev) is None:
            return StatusReport(Status.DOWN, [f"warn: ipdev {self.ipdev} does not exist"])
        shown = await run(["ip", "-o", "addr", "show", "dev", self.ipdev], timeout=IP_TIMEOUT)
        address = await self._address()
        return StatusReport(Status.UP if f" {address}/" in shown.stdout else Status.DOWN)

    async def start(self) -> None:
        address = await self._address()
        if await self.link(self.ipdev) is None:
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
