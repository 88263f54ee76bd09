"""Configuration checks off the event loop: a small pool of worker processes, a bounded queue.

Parsing and validating a 1 MiB text is pure Python: in a thread it would still hold the
GIL and stall heartbeats and every other request, so it runs in worker processes
(``check_workers``, niced, spawned lazily in a thread). At most
``check_workers + check_queue`` checks are in flight; past it a check is refused
with :class:`CheckerBusy` (503). A check that outlives ``check_timeout`` has its
worker killed and replaced (:class:`CheckTimeout`, 422).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from daemon.service.check import CheckResult, check_text
from daemon.service.config import EvalContext

log = logging.getLogger("ferry.api")
PR_SET_PDEATHSIG = 1
WORKER_NICE = 10


class CheckerBusy(Exception):
    """Too many checks in flight."""


class CheckTimeout(Exception):
    """A check ran past check_timeout."""


def _worker_init() -> None:
    """In the worker: die with the parent, yield the CPU to the daemon's event loop."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still applies
        pass
    os.nice(WORKER_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when workers stop


class ConfigChecker:
    """Runs :func:`daemon.service.check.check_text` in worker processes."""

    def __init__(self, workers: int = 1, queue: int = 8, timeout: float = 20.0) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.timeout = timeout
        self.in_flight = 0
        self._pool: ProcessPoolExecutor | None = None
        self._starting = asyncio.Lock()

    async def _ensure_pool(self) -> ProcessPoolExecutor:
        """The pool, its workers started in a thread: spawning a worker blocks for a good
        part of a second, which the event loop must not."""
        async with self._starting:
            if self._pool is None:
                self._pool = await asyncio.to_thread(self._new_pool)
        return self._pool

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: the workers are the daemon's own children, so PR_SET_PDEATHSIG takes them
        # down with it even on kill -9 (a fork server would outlive it, with its workers).
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_init)
        for started in [pool.submit(int) for _ in range(self.workers)]:
            started.result()
        return pool

    async def check(
        self, text: str, path: str, name: str, context: EvalContext, evaluate: bool = False
    ) -> CheckResult:
        if self.in_flight >= self.capacity:
            raise CheckerBusy(
                f"{self.in_flight} configuration checks in flight already "
                f"(check_workers + check_queue = {self.capacity}): retry shortly"
            )
        self.in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            for attempt in (1, 2):
                pool = await self._ensure_pool()
                future = loop.run_in_executor(pool, check_text, text, path, name, context, evaluate)
                try:
                    async with asyncio.timeout(self.timeout):
                        return await future
                except TimeoutError:
                    log.warning("a configuration check ran past %gs: worker replaced", self.timeout)
                    self._kill(pool)
                    raise CheckTimeout(
                        f"checking the configuration took more than {self.timeout:g}s "
                        "(check_timeout)"
                    ) from None
                except BrokenProcessPool:
                    # Another check's timeout killed the pool under this one: once more.
                    if self._pool is pool:
                        self._pool = None
                    if attempt == 2:
                        raise CheckerBusy("the configuration worker failed: retry") from None
            raise AssertionError("unreachable")
        finally:
            self.in_flight -= 1

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        processes = dict(getattr(pool, "_processes", None) or {})
        for process in processes.values():
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (daemon shutdown)."""
        if self._pool is not None:
            self._kill(self._pool)
