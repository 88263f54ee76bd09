"""The transport to peers: asyncssh, root key authentication, known hosts, one connection
per peer reused by every transfer, timeouts everywhere, streaming with back-pressure.

In ferryd, the small calls of a sync (the rsync target's guard and destination, its
release, the stamps) go to the peer's own ferryd instead, over the cluster's
authenticated API (:class:`PeerDaemons`): no ssh connection, no Python started on the
target for them. A peer whose daemon does not answer is reached over ssh as by the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from daemon.sync.wire import Compression, RateLimit, Wire
from daemon.system.command import kill

if TYPE_CHECKING:  # imported on first use: a third of the CLI's start-up time, and the
    import asyncssh  # target side of a sync (run over ssh) never needs it

CONNECT_TIMEOUT = 10.0
CHUNK = 256 * 1024
WATCH_EVERY = 0.5  # seconds between two counts of a direct stream's bytes
KEEPALIVE = 10  # seconds between ssh's keepalives; 3 unanswered end the connection
# AES-GCM first: with the CPU's AES instructions it moves more per second than OpenSSH's
# default chacha20-poly1305 (1 GiB in 3.5-3.7 s against 3.8-4.7 s in the testbed); both
# are AEAD ciphers, chacha20 stays last for CPUs without AES
CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]
SSH_OPTIONS = [
    "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(CONNECT_TIMEOUT)}",
    "-o", f"ServerAliveInterval={KEEPALIVE}", "-o", "ServerAliveCountMax=3",
    "-o", "StrictHostKeyChecking=yes", "-o", f"Ciphers={','.join(CIPHERS)}",
]  # fmt: skip
SSH_FAILED = 255  # ssh's own failure (else the remote command's exit status)
# What ssh says when the network goes away under a connection
LINK_LOST = (
    "not responding",  # ssh: "Timeout, server <host> not responding."
    "Broken pipe",
    "Connection reset",
    "Connection timed out",
    "No route to host",
    "Network is unreachable",
    "connection lost",
)


class SourceFailed(Exception):
    """The local command whose output was being sent failed (its exit and stderr)."""


class TransportError(Exception):
    """A peer cannot be reached, or a remote command failed.

    ``detail`` is the bare cause (the ssh error, the timeout), for messages that name the
    peer and the command their own way."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class RemoteResult:
    returncode: int
    stdout: str
    stderr: str
    wire_bytes: int = 0  # pipe_to: the bytes that went over the channel

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def quote(argv: Sequence[str]) -> str:
    return shlex.join(argv)


class PeerDaemons(Protocol):
    """The peers' ferryd, as the local ferryd reaches them (node certificate)."""

    async def call(
        self, node: str, path: str, body: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None:
        """POST body to path on node's ferryd: its answer, or None when that daemon cannot
        be reached (the caller uses ssh). A daemon that answers with an error raises
        TransportError naming it."""

    async def close(self) -> None:
        """Release the connections."""


class Peers:
    """ssh connections to peers, opened on first use and reused; and, in ferryd, the
    peers' daemons for the small calls."""

    def __init__(
        self,
        user: str = "root",
        known_hosts: str | None = None,
        daemons: PeerDaemons | None = None,
    ) -> None:
        self.user = user
        self.known_hosts = known_hosts or os.path.expanduser("~/.ssh/known_hosts")
        self.daemons = daemons
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._lock = asyncio.Lock()

    async def daemon_call(
        self, node: str, path: str, body: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None:
        """The call answered by node's ferryd, or None: no daemons here, or it is down."""
        if self.daemons is None:
            return None
        return await self.daemons.call(node, path, body, timeout)

    async def connect(self, node: str) -> asyncssh.SSHClientConnection:
        import asyncssh

        async with self._lock:
            conn = self._conns.get(node)
            if conn is not None and not conn.is_closed():
                return conn
            try:
                conn = await asyncssh.connect(
                    node,
                    username=self.user,
                    known_hosts=self.known_hosts,
                    connect_timeout=CONNECT_TIMEOUT,
                    keepalive_interval=10,
                    keepalive_count_max=3,
                    encryption_algs=CIPHERS,
                )
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                detail = _cause(exc)
                raise TransportError(f"cannot reach {node} over ssh: {detail}", detail) from None
            self._conns[node] = conn
            return conn

    async def run(
        self, node: str, argv: Sequence[str], *, timeout: float, input: bytes | None = None
    ) -> RemoteResult:
        """Run argv on node; the result carries the exit code (no exception on failure)."""
        import asyncssh

        conn = await self.connect(node)
        try:
            async with asyncio.timeout(timeout):
                done = await conn.run(quote(argv), input=input, encoding=None, check=False)
        except TimeoutError:
            detail = f"timed out after {timeout:g}s"
            raise TransportError(f"{node}: {quote(argv)}: {detail}", detail) from None
        except (OSError, asyncssh.Error) as exc:
            detail = _cause(exc)
            raise TransportError(f"{node}: {quote(argv)}: {detail}", detail) from None
        return RemoteResult(
            done.returncode if done.returncode is not None else -1,
            _text(done.stdout),
            _text(done.stderr),
        )

    def ssh_argv(self, node: str, command: str) -> list[str]:
        """The OpenSSH client running command on node, with the keys and known hosts
        asyncssh uses (a host it does not know is refused, never asked about)."""
        return [
            "ssh", *SSH_OPTIONS, "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-l", self.user, node, command,
        ]  # fmt: skip

    async def pipe_to(
        self,
        node: str,
        argv: Sequence[str],
        source: AsyncIterator[bytes],
        on_bytes: Callable[[int], None],
        wire: Wire | None = None,
        large: bool = True,
    ) -> RemoteResult:
        """Stream source into argv's stdin on node, with back-pressure; the caller bounds time.

        ``large`` (a full send, an image): through the OpenSSH client, whose throughput is
        higher but whose connection costs a handshake; else through the asyncssh
        connection already open to node (an incremental send of a few MiB is over before
        a new ssh would have logged in: 0.83 s against 1.71 s for 10 MiB, measured).

        The bytes travel through the OpenSSH client (C ciphers and packets, where asyncssh's
        are Python: it moved full sends at about half the raw pipeline's rate) while
        asyncssh keeps the control plane (run). on_bytes counts the data;
        with ``wire`` it is compressed on the way (a local compressor, its twin in front of
        argv on node) and paced to the cap. A link that dies is noticed by ssh's keepalives
        (30 s): the result says so, with ssh's own words.
        """
        wire = wire or Wire()
        command = remote_command(argv, wire.compression)
        if not large:
            return await self._pipe_in_session(node, argv, command, source, on_bytes, wire)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.ssh_argv(node, command),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportError(f"{node}: cannot start ssh: {exc}", str(exc)) from None
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stdin = proc.stdin
        answers = asyncio.gather(proc.stdout.read(), proc.stderr.read())
        limit = RateLimit(wire.bwlimit) if wire.bwlimit else None
        sent = 0

        async def send(chunk: bytes) -> None:
            nonlocal sent
            stdin.write(chunk)
            await stdin.drain()
            sent += len(chunk)
            if limit is not None:
                await limit.take(len(chunk))

        async def feed() -> None:
            if wire.compression.on:
                await _compressed(source, on_bytes, wire.compression, send)
            else:
                async for chunk in source:
                    await send(chunk)
                    on_bytes(len(chunk))
            stdin.close()

        cut = False
        feeding = asyncio.ensure_future(feed())
        exited = asyncio.ensure_future(proc.wait())
        try:
            # ssh may end first (the link lost, the command failed): a write blocked on its
            # full pipe is not always woken by that, so its exit is watched beside the feed.
            await asyncio.wait({feeding, exited}, return_when=asyncio.FIRST_COMPLETED)
            if not feeding.done():
                cut = True
                feeding.cancel()
            try:
                await feeding
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # this transfer is cancelled (its timeout), not just the feed
                cut = True
            except (BrokenPipeError, ConnectionResetError):
                cut = True  # its exit status and stderr say why
            out, err = await answers
            await exited
        except BaseException:
            feeding.cancel()
            await kill(proc)
            answers.cancel()
            raise
        return ssh_result(node, argv, proc.returncode or 0, out, err, sent, cut)

    async def send_output(
        self,
        node: str,
        source_argv: Sequence[str],
        argv: Sequence[str],
        on_bytes: Callable[[int], None],
        wire: Wire | None = None,
        large: bool = True,
    ) -> RemoteResult:
        """The output of source_argv, run here, streamed into argv on node (see pipe_to).

        A receiving end that fails ends the source (nobody reads the rest); the result
        says why. A source that fails raises SourceFailed with its own words.

        Without a cap, a large stream does not pass through ferryd at all: the source's
        output is ssh's input (through the compressor, if any), and the bytes are counted
        from the kernel's count of what the source (and the compressor) wrote
        (``/proc/PID/io``). Python's copy cost a docker image 10-20 % of its rate on a busy
        machine; a cap needs ferryd's pacing, so the stream then goes through it."""
        wire = wire or Wire()
        if large and not wire.bwlimit:
            return await self._send_direct(node, source_argv, argv, on_bytes, wire.compression)
        try:
            proc = await asyncio.create_subprocess_exec(
                *source_argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=4 * CHUNK,  # the reader's buffer: whole chunks, not 64 KiB pieces
            )
        except OSError as exc:
            raise SourceFailed(f"cannot run {source_argv[0]}: {exc.strerror}") from None
        assert proc.stdout is not None and proc.stderr is not None
        stdout, stderr = proc.stdout, proc.stderr

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await stdout.read(CHUNK):
                yield chunk

        try:
            result = await self.pipe_to(node, argv, chunks(), on_bytes, wire, large)
            if not result.ok:
                await kill(proc)
                return result
            err = await stderr.read()
            await proc.wait()
        except BaseException:
            await kill(proc)
            raise
        if proc.returncode != 0:
            detail = err.decode(errors="replace").strip()[-500:]
            raise SourceFailed(f"{quote(source_argv[:2])}: exit {proc.returncode}: {detail}")
        return result

    async def _send_direct(
        self,
        node: str,
        source_argv: Sequence[str],
        argv: Sequence[str],
        on_bytes: Callable[[int], None],
        compression: Compression,
    ) -> RemoteResult:
        """send_output with the processes joined by pipes: source | [compressor |] ssh."""
        chain = [list(source_argv)]
        if compression.on:
            chain.append(compression.compress_argv())
        steps: list[_Step] = []
        remote: asyncio.subprocess.Process | None = None
        try:
            feed: int | None = None
            for part in chain:
                out_r, out_w = os.pipe()
                try:
                    steps.append(_Step.start(part, stdin=feed, stdout=out_w))
                finally:
                    os.close(out_w)
                    if feed is not None:
                        os.close(feed)
                feed = out_r
            assert feed is not None
            try:
                remote = await asyncio.create_subprocess_exec(
                    *self.ssh_argv(node, remote_command(argv, compression)),
                    stdin=feed,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as exc:
                raise TransportError(f"{node}: cannot start ssh: {exc}", str(exc)) from None
            finally:
                os.close(feed)
            source, last = steps[0], steps[-1]
            counted = 0

            def count() -> None:
                nonlocal counted
                moved = source.written()
                if moved > counted:
                    on_bytes(moved - counted)
                    counted = moved

            async def watch() -> None:
                while True:
                    await asyncio.sleep(WATCH_EVERY)
                    count()

            assert remote.stdout is not None and remote.stderr is not None
            answers = asyncio.gather(remote.stdout.read(), remote.stderr.read())
            watching = asyncio.ensure_future(watch())
            try:
                out, err = await answers
                await remote.wait()
                if remote.returncode != 0:  # nobody reads the rest of the stream
                    for step in steps:
                        step.kill()
                for step in steps:
                    await step.ended()  # its count is read before it is reaped: exact
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            count()
        except BaseException:
            for step in steps:
                step.kill()
                await step.ended()
            if remote is not None:
                await kill(remote)  # its pipes closed: the answers' reads end
            raise
        result = ssh_result(node, argv, remote.returncode or 0, out, err, last.written(), False)
        if result.ok:
            for step in steps:
                if step.returncode:
                    name = quote(source_argv[:2]) if step is source else compression.method
                    raise SourceFailed(f"{name}: exit {step.returncode}: {step.error_text[-500:]}")
        return result

    async def _pipe_in_session(
        self,
        node: str,
        argv: Sequence[str],
        command: str,
        source: AsyncIterator[bytes],
        on_bytes: Callable[[int], None],
        wire: Wire,
    ) -> RemoteResult:
        """pipe_to over the reused asyncssh connection (small transfers)."""
        import asyncssh

        conn = await self.connect(node)
        try:
            process = await conn.create_process(command, encoding=None)
        except (OSError, asyncssh.Error) as exc:
            detail = _cause(exc)
            raise TransportError(f"{node}: cannot start {quote(argv)}: {detail}", detail) from None
        limit = RateLimit(wire.bwlimit) if wire.bwlimit else None
        sent = 0

        async def send(chunk: bytes) -> None:
            nonlocal sent
            process.stdin.write(chunk)
            await process.stdin.drain()
            sent += len(chunk)
            if limit is not None:
                await limit.take(len(chunk))

        try:
            if wire.compression.on:
                await _compressed(source, on_bytes, wire.compression, send)
            else:
                async for chunk in source:
                    await send(chunk)
                    on_bytes(len(chunk))
            process.stdin.write_eof()
            done = await process.wait(check=False)
        except (OSError, asyncssh.Error) as exc:
            process.kill()
            detail = _cause(exc)
            raise TransportError(
                f"{node}: the link was lost after {sent} bytes on the wire ({detail})", detail
            ) from None
        except BaseException:
            process.kill()
            raise
        return RemoteResult(
            done.returncode if done.returncode is not None else -1,
            _text(done.stdout),
            _text(done.stderr),
            wire_bytes=sent,
        )

    async def close(self) -> None:
        if self.daemons is not None:
            await self.daemons.close()
        for conn in self._conns.values():
            conn.close()
        for conn in self._conns.values():
            await conn.wait_closed()
        self._conns.clear()


def remote_command(argv: Sequence[str], compression: Compression) -> str:
    """The command ssh runs on the target: argv, behind the decompressor if any."""
    command = quote(argv)
    if not compression.on:
        return command
    # pipefail: a receiving tool that fails is not hidden by the decompressor's 0
    inner = f"{quote(compression.decompress_argv())} | {command}"
    return quote(["bash", "-o", "pipefail", "-c", inner])


def ssh_result(
    node: str, argv: Sequence[str], code: int, out: bytes, err: bytes, sent: int, cut: bool
) -> RemoteResult:
    """What ssh's end says: the remote command's result, or TransportError when ssh itself
    failed (exit 255), naming a lost link as such."""
    stderr = _text(err)
    detail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if code == SSH_FAILED or (cut and code == 0):
        detail = detail or f"ssh exited {code}"
        if cut or any(words in detail for words in LINK_LOST):
            message = f"{node}: the link was lost after {sent} bytes on the wire ({detail})"
            raise TransportError(message, detail)
        raise TransportError(f"{node}: {quote(argv)}: {detail}", detail)
    return RemoteResult(code, _text(out), stderr, wire_bytes=sent)


class _Step:
    """A process of a direct stream, outside asyncio's child watcher: its end is seen
    without reaping it (``waitid(WNOWAIT)``), so that the kernel's count of what it wrote
    (``/proc/PID/io``) is read whole before it goes."""

    def __init__(self, proc: subprocess.Popen[bytes], errors: IO[bytes]) -> None:
        self.proc = proc
        self.errors = errors
        self.returncode: int | None = None
        self.error_text = ""
        self._written = 0

    @classmethod
    def start(cls, argv: Sequence[str], stdin: int | None, stdout: int) -> _Step:
        errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by ended())
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=stdout,
                stderr=errors,
                start_new_session=True,
            )
        except OSError as exc:
            errors.close()
            raise SourceFailed(f"cannot run {argv[0]}: {exc.strerror}") from None
        return cls(proc, errors)

    def written(self) -> int:
        """The bytes it has written so far (the last count once it has ended)."""
        if self.returncode is None:
            try:
                with open(f"/proc/{self.proc.pid}/io") as handle:
                    for line in handle:
                        if line.startswith("wchar:"):
                            self._written = int(line.split()[1])
            except (OSError, ValueError):
                pass
        return self._written

    async def ended(self) -> None:
        """Wait for its end; read its count, then reap it."""
        while self.returncode is None:
            state = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if state is not None:
                self.written()
                self.returncode = self.proc.wait()
                self.errors.seek(0)
                self.error_text = self.errors.read().decode(errors="replace").strip()
                self.errors.close()
                break
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


async def _compressed(
    source: AsyncIterator[bytes],
    on_bytes: Callable[[int], None],
    compression: Compression,
    send: Callable[[bytes], Awaitable[None]],
) -> None:
    """source through a local compressor process, its output to send."""
    proc = await asyncio.create_subprocess_exec(
        *compression.compress_argv(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def feed() -> None:
        async for chunk in source:
            stdin.write(chunk)
            await stdin.drain()
            on_bytes(len(chunk))
        stdin.close()

    async def pump() -> None:
        while chunk := await stdout.read(CHUNK):
            await send(chunk)

    try:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(feed())
                group.create_task(pump())
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None  # as the uncompressed path raises it
        err = await proc.stderr.read()
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip()
        raise TransportError(f"{compression.method}: exit {proc.returncode}: {detail}", detail)


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return str(data or "")


def _cause(exc: BaseException) -> str:
    """An exception as an operator reads it (a timeout's own text is empty)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no connection within {CONNECT_TIMEOUT:g}s"
    return str(exc) or type(exc).__name__
