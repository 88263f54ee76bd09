"""How a sync's bytes travel: compression on the wire and a bandwidth cap.

Both are keywords of every sync resource (``compress``, ``bwlimit``), scopable so that the
DR target across a WAN can have them while a LAN peer does not. The stored data never
changes: the stream is compressed by the sender's ``zstd``/``lz4`` and decompressed on the
target before the receiving tool (btrfs receive, docker load) sees it; rsync uses its own
``--compress-choice``. The cap applies to the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from daemon.config.converters import Converter

ZSTD_DEFAULT_LEVEL = 3
ZSTD_LEVELS = range(1, 20)
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b?(?:/s|ps)?)?$")
_RATE_UNITS = {"": 1024, "k": 1024, "m": 1024**2, "g": 1024**3}  # a bare number: KiB/s


@dataclass(frozen=True)
class Compression:
    """A compressor on the wire: ``none``, ``zstd`` (with its level) or ``lz4``."""

    method: str = "none"
    level: int | None = None

    def __str__(self) -> str:
        if self.method == "zstd" and self.level is not None:
            return f"zstd:{self.level}"
        return self.method

    @property
    def on(self) -> bool:
        return self.method != "none"

    def compress_argv(self) -> list[str]:
        """The sender's filter: raw bytes in, compressed bytes out."""
        if self.method == "zstd":
            return ["zstd", "-q", "-c", f"-{self.level or ZSTD_DEFAULT_LEVEL}", "-T0"]
        if self.method == "lz4":
            return ["lz4", "-q", "-c"]
        raise ValueError("no compression")

    def decompress_argv(self) -> list[str]:
        """The target's filter, in front of the receiving tool."""
        if self.method == "zstd":
            return ["zstd", "-q", "-d", "-c"]
        if self.method == "lz4":
            return ["lz4", "-q", "-d", "-c"]
        raise ValueError("no compression")

    def rsync_options(self) -> list[str]:
        if self.method == "none":
            return []
        options = ["--compress", f"--compress-choice={self.method}"]
        if self.method == "zstd":
            options.append(f"--compress-level={self.level or ZSTD_DEFAULT_LEVEL}")
        return options


def parse_compression(text: str) -> Compression:
    word = text.strip().lower()
    method, _, level = word.partition(":")
    if method in ("", "none", "no", "off") and not level:
        return Compression()
    if method == "lz4" and not level:
        return Compression("lz4")
    if method == "zstd":
        if not level:
            return Compression("zstd", ZSTD_DEFAULT_LEVEL)
        if level.isdigit() and int(level) in ZSTD_LEVELS:
            return Compression("zstd", int(level))
        raise ValueError(f"zstd level {level!r}: a whole number from 1 to 19")
    raise ValueError(f"{text.strip()!r} is not a compression (none, zstd, zstd:LEVEL, lz4)")


def parse_rate(text: str) -> int:
    """A rate as bytes per second: ``10M``, ``500K``, ``1.5g``; a bare number is KiB/s
    (rsync's ``--bwlimit`` unit, so that existing files keep their meaning)."""
    word = text.strip().lower()
    match = _RATE_RE.match(word)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text.strip()!r} is not a rate (examples: 10M, 500K; bare: KiB/s)")
    return max(1, int(float(match.group(1)) * _RATE_UNITS[match.group(2)]))


def render_rate(value: object) -> str:
    rate = int(value)  # type: ignore[call-overload]
    for unit, size in (("G", 1024**3), ("M", 1024**2)):
        if rate % size == 0:
            return f"{rate // size}{unit}"
    return f"{rate / 1024:g}K"


COMPRESSION = Converter("compression", parse_compression, str)
RATE = Converter("rate", parse_rate, render_rate, numeric=False)


@dataclass(frozen=True)
class Wire:
    """What a transfer's bytes go through: a compressor, a cap (bytes/s, None: none)."""

    compression: Compression = Compression()
    bwlimit: int | None = None


class RateLimit:
    """A token bucket: ``take(n)`` waits until n more bytes fit under the rate. Its bucket
    holds a quarter of a second, so that the rate holds over any window of a few seconds."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = float(rate)
        self.capacity = self.rate / 4
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    async def take(self, count: int) -> None:
        self._refill()
        self._tokens -= count  # a chunk larger than the bucket leaves a debt to wait off
        if self._tokens < 0:
            await self._sleep(-self._tokens / self.rate)
            self._refill()
