"""External commands: always awaited, always bounded by a timeout, killed when it expires."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
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
    """Terminate proc (and its session), then kill it if it lingers; always reaps it."""
    if proc.returncode is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
            return
        except TimeoutError:
            continue
    await proc.wait()
