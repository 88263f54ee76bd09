"""Host commands with timeouts, and processes known by (pid, start time).

A pid alone can be reused; the testbed only signals a pid whose start time
(field 22 of /proc/PID/stat) is still the one it recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

DEFAULT_TIMEOUT = 60.0
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class TestbedError(RuntimeError):
    """A testbed operation failed; the message says which command and why."""

    __test__ = False  # not a pytest test class


# Helpers die with the thread that started them, so a crashed bring-up leaves
# nothing in flight that could create things after the next run cleaned up.
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL", "--")


def run(
    cmd: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a host command to completion; raise TestbedError when it fails."""
    try:
        done = subprocess.run(
            [*DIE_WITH_PARENT, *cmd],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
            env=env or host_env(),
        )
    except subprocess.TimeoutExpired as err:
        raise TestbedError(f"timed out after {timeout:.0f}s: {' '.join(cmd)}") from err
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise TestbedError(f"{' '.join(cmd)} exited {done.returncode}: {detail}")
    return done


def host_env() -> dict[str, str]:
    """The caller's environment, with the sbin directories on PATH."""
    path = os.environ.get("PATH", "/usr/bin:/bin").split(":")
    return {**os.environ, "PATH": ":".join([*path, *(d for d in _SBIN if d not in path)])}


@dataclass(frozen=True)
class ProcId:
    """A process the testbed started: pid plus its kernel start time."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcId:
        """Identify a running process; raise TestbedError if it is gone."""
        start = start_time(pid)
        if start is None:
            raise TestbedError(f"process {pid} exited")
        return cls(pid, start)

    def alive(self) -> bool:
        """True while this very process runs (a zombie counts as gone)."""
        return start_time(self.pid) == self.start

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Signal the process if it is still the one recorded."""
        if self.alive():
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


def start_time(pid: int) -> int | None:
    """Kernel start time of a live, non-zombie process; None otherwise."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def live(pids: Iterable[int]) -> list[ProcId]:
    """Identities of those ``pids`` that still run (a vanished one is skipped)."""
    return [ProcId(pid, start) for pid in pids if (start := start_time(pid)) is not None]


def cmdline(pid: int) -> str:
    """A process's command line, arguments joined by spaces ('' once it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return raw.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def all_pids() -> Iterator[int]:
    """Every pid currently listed in /proc."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def ns_inode(path: str) -> int | None:
    """Inode number of a namespace file (/proc/PID/ns/X or /run/netns/NAME)."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_namespaces(kind: str, inodes: Iterable[int]) -> list[int]:
    """Pids whose namespace of ``kind`` (net, pid, mnt) is one of ``inodes``."""
    wanted = set(inodes)
    if not wanted:
        return []
    me = os.getpid()
    return [pid for pid in all_pids() if pid != me and ns_inode(f"/proc/{pid}/ns/{kind}") in wanted]


def with_descendants(pids: Iterable[int]) -> set[int]:
    """``pids`` and all their descendants (by parent pid, from /proc)."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def kill_and_wait(procs: Iterable[ProcId], timeout: float = 10.0) -> list[ProcId]:
    """SIGKILL each process and wait for all to die; return the survivors."""
    procs = list(procs)
    for proc in procs:
        proc.kill()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        survivors = [proc for proc in procs if proc.alive()]
        if not survivors:
            return []
        time.sleep(0.05)
    return [proc for proc in procs if proc.alive()]


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it returns something true; raise on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
