"""Run a real ``ferryd`` subprocess on loopback with temporary directories."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from daemon.cli import client
from daemon.cli.client import ClientError, Endpoint


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Ferryd:
    """A ferryd process; ``start`` waits until it answers on its socket."""

    config_dir: Path
    var_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    nodename: str | None = "n1"  # FERRY_NODENAME; None: unset, the host name decides
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def local(self) -> Endpoint:
        return client.endpoint(self.var_dir)

    def tcp(self, token: str | None) -> Endpoint:
        return client.endpoint(self.var_dir, f"https://127.0.0.1:{self.port}", token)

    def start(self, *extra: str, wait: bool = True) -> Ferryd:
        self.log_path = self.var_dir.parent / f"ferryd-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if k != "FERRY_NODENAME"}
        if self.nodename is not None:
            env["FERRY_NODENAME"] = self.nodename
        env.update(self.env)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daemon.main",
                "--config-dir",
                str(self.config_dir),
                "--var-dir",
                str(self.var_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                *extra,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("wb"),
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"ferryd exited {self.proc.returncode}: {self.log()}")
            try:
                client.health(self.local, timeout=1.0)
                return
            except ClientError:
                time.sleep(0.05)
        raise AssertionError(f"ferryd not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def error_lines(self) -> list[str]:
        """Log lines at error level or above, and any traceback written past the formatter."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                if json.loads(line).get("level") in ("error", "critical"):
                    out.append(line)
            elif "Traceback" in line:
                out.append(line)
        return out

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def ensure_stopped(self) -> None:
        """Test teardown: this process only, by its pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
