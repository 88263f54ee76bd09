"""External commands: always awaited, always bounded by a timeout, killed when it expires."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TAIL_LINES = 12


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines of the output, stderr first: what an operator needs to see."""
        text = "\n".join(part for part in (self.stderr.strip(), self.stdout.strip()) if part)
        return "\n".join(text.splitlines()[-lines:])


class CommandError(Exception):
    """A command that failed, timed out or could not be started; the message says which."""

    def __init__(self, message: str, result: CommandResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def describe(argv: Sequence[str]) -> str:
    return shlex.join(argv)


async def run(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    check: bool = True,
) -> CommandResult:
    """Run argv; raise CommandError when it fails (with check) or outlives timeout."""
    full_env = {**os.environ, **env} if env else None
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise CommandError(f"cannot run {argv[0]}: {exc.strerror}") from None
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(input)
    except TimeoutError:
        await kill(proc)
        raise CommandError(f"{describe(argv)}: timed out after {timeout:g}s") from None
    except BaseException:
        await kill(proc)
        raise
    result = CommandResult(
        tuple(argv),
        proc.returncode if proc.returncode is not None else -1,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )
    if check and not result.ok:
        tail = result.tail()
        raise CommandError(
            f"{describe(argv)}: exit {result.returncode}" + (f"\n{tail}" if tail else ""), result
        )
    return result


async def kill(proc: asyncio.subprocess.Process, grace: float = 2.0) -> None:
    """Terminate proc (and its session), then kill it if it lingers; always reaps it.

    Its end is read from its return code, not from wait(): asyncio's wait() returns only
    once the process's pipes are closed too (3.11), and a pipe that nobody reads any more,
    its reader paused on a full buffer, never shows its end (a send whose receiving side
    died hung there for good). The pipes are closed once it has ended."""
    if proc.returncode is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        if await _ended(proc, grace):
            break
    await _ended(proc, None)
    transport = getattr(proc, "_transport", None)  # the pipes' owner (no public handle)
    if transport is not None:
        transport.close()
    await proc.wait()


async def _ended(proc: asyncio.subprocess.Process, limit: float | None) -> bool:
    """Has proc ended within limit seconds (None: however long it takes)?"""
    deadline = None if limit is None else time.monotonic() + limit
    while proc.returncode is None:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True
