"""Addresses and links: small pure helpers and the duplicate-address probe."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket

from daemon.system.command import CommandError, run


def prefix_length(netmask: str) -> int:
    """``255.255.255.0`` or ``24`` -> 24; ValueError otherwise."""
    text = str(netmask).strip()
    if text.isdigit():
        value = int(text)
        if not 0 <= value <= 128:
            raise ValueError(f"prefix length {value} out of range")
        return value
    return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen


async def resolve(name: str, timeout: float = 10.0) -> str:
    """An address as text: ipname may be an address already or a name to resolve."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot resolve {name}: {exc}") from None
    return str(infos[0][4][0])


async def address_answers(address: str, netns_pid: int | None = None) -> bool:
    """Does someone already answer at address? (ping, 1 s); False when ping is missing."""
    if not shutil.which("ping"):
        return False
    argv = ["ping", "-c", "1", "-W", "1", address]
    if netns_pid:
        argv = ["nsenter", "-t", str(netns_pid), "-n", *argv]
    try:
        result = await run(argv, timeout=5, check=False)
    except CommandError:
        return False
    return result.ok
