"""A restore point waiting for the next start of the service on this node.

``takeover --at POINT`` does not rewrite the data at once: the node that runs the
service may still send its final sync before it stops, and that data must not land on
top of the point. The takeover records the point here (``<var dir>/restore/<svc>/
pending.json``); the instance's next full start applies it first, under the start's
lock, after every other node has stopped: each sync resource makes its entry the live
data (what arrived meanwhile is a newer point, kept, not lost). A failure fails the
start: the service never starts on data that is not the one asked for; the takeover
that asked then fails and drops its request (a later start uses the live data). A
drill writes the same file in its own var dir, for the images.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiodocker

from daemon.config.store import write_atomically
from daemon.resources.container_docker.engine import API_TIMEOUT, Engine, EngineError
from daemon.restore.points import Entry

log = logging.getLogger("ferry.restore")


class RestoreError(Exception):
    """A point could not be made the live data; the start does not go on."""


def pending_path(var_dir: Path, service: str) -> Path:
    return Path(var_dir) / "restore" / service / "pending.json"


def last_path(var_dir: Path, service: str) -> Path:
    return Path(var_dir) / "restore" / service / "last-restore.json"


def request(var_dir: Path, service: str, point: str, entries: list[Entry], by: str) -> None:
    path = pending_path(var_dir, service)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"point": point, "by": by, "time": time.time(),
            "entries": [e.as_dict() for e in entries]}  # fmt: skip
    write_atomically(path, json.dumps(body, indent=1) + "\n")


def cancel(var_dir: Path, service: str) -> bool:
    """Drop a request not applied (its takeover failed): a later start uses the live data."""
    path = pending_path(var_dir, service)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pending(var_dir: Path, service: str) -> dict[str, Any] | None:
    return read(pending_path(var_dir, service))


def last(var_dir: Path, service: str) -> dict[str, Any] | None:
    return read(last_path(var_dir, service))


async def apply(
    var_dir: Path, service: str, resources: Mapping[str, Any], engine: Engine | None
) -> str:
    """Apply the pending point, if any: each entry through its resource, images without
    one (a drill) through ``engine``. Returns the point's name ('' for none)."""
    path = pending_path(var_dir, service)
    asked = read(path)
    if asked is None:
        return ""
    point = str(asked.get("point") or "")
    try:
        entries = [Entry(**item) for item in asked.get("entries") or []]
    except TypeError as exc:
        raise RestoreError(f"unreadable restore request {path}: {exc}") from None
    for entry in entries:
        resource = resources.get(entry.rid)
        try:
            if resource is not None and hasattr(resource, "restore_entry"):
                await resource.restore_entry(entry)
            elif entry.kind == "images" and engine is not None:
                await retag(engine, entry.images)
            else:
                continue
        except Exception as exc:
            raise RestoreError(f"restore point {point}: {entry.rid}: {exc}") from None
        log.info("%s %s: restore point %s is the live data", service, entry.rid, point)
    record = {**asked, "applied": time.time()}
    write_atomically(last_path(var_dir, service), json.dumps(record, indent=1) + "\n")
    path.unlink(missing_ok=True)
    return point


async def retag(engine: Engine, images: Mapping[str, str]) -> None:
    """Point each image ref at the point's image id (both stay in the engine)."""
    try:
        await engine.ensure_started()
    except EngineError as exc:
        raise RestoreError(str(exc)) from None
    async with asyncio.timeout(API_TIMEOUT), engine.client() as docker:
        for ref, image_id in images.items():
            repo, tag = split_ref(ref)
            try:
                await docker.images.tag(image_id, repo, tag=tag)
            except aiodocker.DockerError as exc:
                raise RestoreError(f"cannot tag {image_id[:19]} as {ref}: {exc.message}") from None


def split_ref(ref: str) -> tuple[str, str]:
    """``'opensvc/nginx:build5'`` -> ``('opensvc/nginx', 'build5')``; no tag: latest."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:  # a registry's port, not a tag
        return ref, "latest"
    return name, tag
