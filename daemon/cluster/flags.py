"""What an instance keeps on disk for the monitor, under ``<var dir>/services/<svc>/``:
the ``frozen`` and ``boot_started`` flags, the last activation (with its RPO) and the
service log; ``<var dir>/node.frozen`` freezes the whole node."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.config.store import write_atomically
from daemon.sync import stamps

if TYPE_CHECKING:
    from daemon.service.instance import Instance

NODE_FROZEN = "node.frozen"


def state_dir(var_dir: Path, service: str) -> Path:
    return var_dir / "services" / service


def frozen_path(var_dir: Path, service: str) -> Path:
    return state_dir(var_dir, service) / "frozen"


def set_flag(path: Path, on: bool) -> bool:
    """Create or remove a flag file (durably); True when it changed."""
    if on == path.exists():
        return False
    if on:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, f"{time.time()}\n")
    else:
        path.unlink(missing_ok=True)
    return True


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def is_frozen(var_dir: Path, service: str) -> bool:
    return frozen_path(var_dir, service).exists() or (var_dir / NODE_FROZEN).exists()


def data_ages(inst: Instance, now: float) -> dict[str, float | None]:
    """On a sync target: how old the received data of each sync resource is."""
    out: dict[str, float | None] = {}
    for rid in sorted(inst.sync_rids):
        stamp = stamps.read(stamps.received_path(inst.state_dir, rid))
        out[rid] = None if stamp is None else max(0.0, now - stamp.started)
    return out


def record_activation(inst: Instance, entry: dict[str, Any]) -> None:
    """Append the activation (with its RPO) to the service log; keep it as the last one."""
    directory = inst.state_dir
    directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, sort_keys=True)
    with open(directory / "log", "a") as handle:
        handle.write(line + "\n")
    write_atomically(directory / "last_activation.json", line + "\n")


def last_activation(var_dir: Path, service: str) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir(var_dir, service) / "last_activation.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
