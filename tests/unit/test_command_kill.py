"""kill() of a process whose output nobody reads any more: it ends when the process ends.

asyncio's wait() returns only once the pipes are closed (3.11): a wait() begun before the
process ended, on a pipe left unread (paused), never returned. kill() reads the end from
the return code, closes the pipes, and then wait() returns."""

from __future__ import annotations

import asyncio
import time

from daemon.system.command import kill


async def test_kill_returns_when_the_output_pipe_is_left_unread() -> None:
    # A writer far ahead of its reader: the reader's buffer fills, asyncio pauses the pipe,
    # and the pipe's end (EOF) is never seen. wait() alone waits for that end (3.11).
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", "head -c 16M /dev/zero; sleep 60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True, limit=64 * 1024,
    )  # fmt: skip
    assert proc.stdout is not None
    await proc.stdout.read(1024)
    await asyncio.sleep(0.3)  # the buffer fills and the pipe is paused
    started = time.monotonic()
    async with asyncio.timeout(20):
        await kill(proc, grace=10)
        await proc.wait()
    assert proc.returncode is not None
    # ended by SIGTERM: not after the grace given to a process that ignores it
    assert time.monotonic() - started < 8


async def test_kill_gives_sigterm_its_grace() -> None:
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done",
        start_new_session=True,
    )  # fmt: skip
    await asyncio.sleep(0.3)
    await kill(proc)
    assert proc.returncode == 7
