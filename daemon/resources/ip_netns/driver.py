"""The ip driver of type netns: an address inside a container's network namespace.

The link is made on the host on ``ipdev`` (macvlan, ipvlan, or a veth plugged
into ``ipdev`` when it is a bridge), moved into the namespace of the container
named by ``netns``, renamed ``nsdev``, addressed, brought up, and the default
route set. The resource starts right after its container and stops right
before it: the namespace exists only while the container runs.
"""

from __future__ import annotations

from daemon.resources.base import ResourceError, StatusReport
from daemon.resources.container_docker.driver import Driver as Container
from daemon.resources.ip_host.driver import AddressDriver
from daemon.resources.status import Status
from daemon.system.command import CommandError, describe, run
from daemon.system.net import address_answers

IP_TIMEOUT = 20.0


class Driver(AddressDriver):
    """An address in a container's network namespace."""

    _detected_mode = ""

    @property
    def container(self) -> Container:
        netns = str(self.values["netns"])
        resource = self.instance.resources.get(netns)
        if not isinstance(resource, Container):
            raise ResourceError(f"netns {netns} is not a container resource of this service")
        return resource

    @property
    def nsdev(self) -> str:
        return str(self.values.get("nsdev") or "eth0")

    async def mode(self) -> str:
        """The mode set, else bridge when ipdev is a bridge, else macvlan."""
        if self.values.get("mode"):
            return str(self.values["mode"])
        link = await self.link(self.ipdev)
        kind = (link or {}).get("linkinfo", {}).get("info_kind")
        self._detected_mode = "bridge" if kind == "bridge" else "macvlan"
        return self._detected_mode

    def label(self) -> str:
        # Without mode set, the one found on ipdev by the last status or start.
        mode = self.values.get("mode") or self._detected_mode or "auto"
        return (
            f"{self.values['ipname']}/{self.prefix()} on {self.ipdev} "
            f"in {self.values['netns']} ({mode})"
        )

    def start_after(self) -> str:
        return str(self.values["netns"])

    async def _in_ns(self, pid: int, *argv: str, check: bool = True) -> str:
        try:
            result = await run(
                ["nsenter", "-t", str(pid), "-n", *argv], timeout=IP_TIMEOUT, check=check
            )
        except CommandError as exc:
            raise ResourceError(str(exc)) from None
        return result.stdout

    async def _pid(self) -> int | None:
        data = await self.container.inspect()
        if not data or not data["State"].get("Running"):
            return None
        return int(data["State"]["Pid"])

    async def status(self) -> StatusReport:
        await self.mode()  # for the label
        pid = await self._pid()
        if pid is None:
            return StatusReport(Status.DOWN)
        address = await self._address()
        shown = await self._in_ns(pid, "ip", "-o", "addr", "show")
        if f" {address}/" in shown:
            return StatusReport(Status.UP)
        return StatusReport(Status.DOWN)

    async def start(self) -> None:
        pid = await self._pid()
        if pid is None:
            raise ResourceError(f"container {self.values['netns']} is not running")
        address = await self._address()
        if await self.link(self.ipdev) is None:
            raise ResourceError(f"ipdev {self.ipdev} does not exist on this node")
        if await address_answers(address):
            raise ResourceError(f"{address} already answers on the network: refusing a duplicate")
        temp = f"fy{pid}"[:15]
        await self._make_link(temp, pid)
        try:
            await run(["ip", "link", "set", temp, "netns", str(pid)], timeout=IP_TIMEOUT)
        except CommandError as exc:
            await run(["ip", "link", "del", temp], timeout=IP_TIMEOUT, check=False)
            raise ResourceError(str(exc)) from None
        await self._in_ns(pid, "ip", "link", "set", temp, "name", self.nsdev)
        await self._in_ns(pid, "ip", "addr", "add", f"{address}/{self.prefix()}", "dev", self.nsdev)
        await self._in_ns(pid, "ip", "link", "set", "lo", "up")
        await self._in_ns(pid, "ip", "link", "set", self.nsdev, "up")
        if self.values.get("gateway"):
            await self._in_ns(
                pid, "ip", "route", "replace", "default", "via", str(self.values["gateway"])
            )

    async def _make_link(self, temp: str, pid: int) -> None:
        mode = await self.mode()
        if mode == "bridge":
            host_end = f"fv{pid}"[:15]
            steps = [
                ["ip", "link", "add", host_end, "type", "veth", "peer", "name", temp],
                ["ip", "link", "set", host_end, "master", self.ipdev, "up"],
            ]
        elif mode == "macvlan":
            steps = [["ip", "link", "add", temp, "link", self.ipdev, "type", "macvlan",
                      "mode", "bridge"]]  # fmt: skip
        else:
            steps = [["ip", "link", "add", temp, "link", self.ipdev, "type", "ipvlan",
                      "mode", mode.removeprefix("ipvlan-")]]  # fmt: skip
        try:
            for argv in steps:
                await run(argv, timeout=IP_TIMEOUT)
        except CommandError as exc:
            await run(["ip", "link", "del", temp], timeout=IP_TIMEOUT, check=False)
            if exc.result and "Unknown device type" in exc.result.tail():
                kind = "veth" if mode == "bridge" else mode.partition("-")[0]
                raise ResourceError(
                    f"this kernel has no {kind} support (mode {mode}): "
                    f"{describe(exc.result.argv)}: {exc.result.tail()}"
                ) from None
            raise ResourceError(str(exc)) from None

    async def stop(self) -> None:
        pid = await self._pid()
        if pid is None:
            return  # the namespace went away with its container, and the link with it
        await self._in_ns(pid, "ip", "link", "del", self.nsdev, check=False)
