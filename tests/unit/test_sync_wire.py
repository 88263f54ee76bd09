"""Compression and bandwidth caps on the wire: the keyword values, the pipelines they make,
the token bucket's pacing (on a fake clock: behaviour, not timing)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from daemon.sync.transport import TransportError, ssh_result
from daemon.sync.wire import Compression, RateLimit, parse_compression, parse_rate, render_rate


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("none", Compression()),
        ("", Compression()),
        ("zstd", Compression("zstd", 3)),
        ("ZSTD:19", Compression("zstd", 19)),
        ("zstd:1", Compression("zstd", 1)),
        ("lz4", Compression("lz4")),
    ],
)
def test_compression_values(text: str, value: Compression) -> None:
    assert parse_compression(text) == value
    assert parse_compression(str(value)) == value  # what the docs print reads back


@pytest.mark.parametrize("text", ["gzip", "zstd:0", "zstd:20", "zstd:x", "lz4:3", "none:1"])
def test_bad_compression_values_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_compression(text)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10M", 10 * 1024**2),
        ("500K", 500 * 1024),
        ("500", 500 * 1024),  # bare: KiB/s, as rsync's --bwlimit (files keep their meaning)
        ("1.5g", int(1.5 * 1024**3)),
        ("2MiB/s", 2 * 1024**2),
        ("64kb", 64 * 1024),
    ],
)
def test_rates(text: str, rate: int) -> None:
    assert parse_rate(text) == rate
    assert parse_rate(render_rate(rate)) == rate


@pytest.mark.parametrize("text", ["fast", "0", "-1M", "10X", "1e3", ""])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


@pytest.mark.parametrize("method", ["zstd", "lz4"])
def test_the_pipelines_give_back_the_same_bytes(method: str) -> None:
    """The sender's filter and the target's, as the transfer runs them (real binaries)."""
    compression = parse_compression(method)
    data = b"INSERT INTO t VALUES (1, 'the same line again');\n" * 20000
    packed = subprocess.run(compression.compress_argv(), input=data, capture_output=True)
    assert packed.returncode == 0 and len(packed.stdout) < len(data) / 10
    unpacked = subprocess.run(
        compression.decompress_argv(), input=packed.stdout, capture_output=True
    )
    assert unpacked.stdout == data


def test_rsync_gets_its_own_options() -> None:
    assert parse_compression("zstd:5").rsync_options() == [
        "--compress",
        "--compress-choice=zstd",
        "--compress-level=5",
    ]
    assert parse_compression("lz4").rsync_options() == ["--compress", "--compress-choice=lz4"]
    assert parse_compression("none").rsync_options() == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_bucket_holds_the_rate_over_any_window() -> None:
    clock = FakeClock()
    limit = RateLimit(1_000_000, clock=clock, sleep=clock.sleep)
    sent: list[tuple[float, int]] = []

    async def send_all() -> None:
        for _ in range(400):  # 100 MB in 256 KB chunks
            await limit.take(250_000)
            sent.append((clock.now, 250_000))

    asyncio.run(send_all())
    total = sum(n for _, n in sent)
    assert clock.now == pytest.approx(total / 1_000_000, rel=0.01)
    for start in range(0, 90):  # every 10 s window: within ±10 % of the rate
        window = sum(n for t, n in sent if start <= t < start + 10)
        assert 0.9 * 10_000_000 <= window <= 1.1 * 10_000_000, (start, window)


def test_an_idle_link_does_not_bank_a_burst() -> None:
    clock = FakeClock()
    limit = RateLimit(1_000_000, clock=clock, sleep=clock.sleep)
    clock.now = 3600.0  # an hour idle: at most a quarter second's worth goes unpaced

    async def burst() -> None:
        for _ in range(8):
            await limit.take(250_000)

    asyncio.run(burst())
    assert clock.now - 3600.0 >= 1.75


def test_ssh_saying_its_server_does_not_respond_is_a_lost_link() -> None:
    """ssh names the host in the middle of its words: the link is lost all the same."""
    with pytest.raises(TransportError, match="the link was lost after 42 bytes"):
        ssh_result("n3", ["docker", "load"], 255, b"", b"Timeout, server n3 not responding.\n",
                   42, False)  # fmt: skip
