"""Receiving on a node whose filesystem for the data is not mounted.

The way back after a DR activation: the DR node sends to the primary nodes, where the
service is down and its filesystems (not standby there) are not mounted. The target then
mounts the service's fs resource that holds the destination at a private path, the
*receive mount* (``<state dir>/sync/<rid>/receive``), the sender writes through it, and
release unmounts it. Only when the service is down on the target (the sender's guard
rule, checked here too), the fs resource is not standby (a standby filesystem found
down is a fault to report, not to work around) and the sender is on the other site:
nodes of one site may share the disk, and a second machine mounting a filesystem that
the sender has mounted would corrupt it. The fs resource's start clears a receive
mount left by a killed transfer.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from daemon.resources.base import ResourceError
from daemon.resources.fs.driver import Driver as FsDriver
from daemon.sync import plan
from daemon.sync.base import SyncDriver
from daemon.system import mounts

log = logging.getLogger("ferry.sync")


def receive_path(sync: SyncDriver) -> str:
    return str(sync.sync_dir / "receive")


def provider(sync: SyncDriver, path: str) -> FsDriver | None:
    """The service's enabled fs resource whose mount point holds path (the deepest one)."""
    path = os.path.normpath(path)
    found = [
        r for r in sync.instance.resources.values()
        if isinstance(r, FsDriver) and not r.disabled and Path(path).is_relative_to(r.mnt)
    ]  # fmt: skip
    return max(found, key=lambda r: len(r.mnt), default=None)


async def mount_for(
    sync: SyncDriver, path: str, fs: FsDriver | None, resources: dict[str, Any], sender: str
) -> tuple[str | None, str]:
    """Mount fs for a receive into path: (path rewritten into the receive mount, '') or
    (None, why not). ``resources`` is this instance's status (the guard), ``sender`` the
    node that sends."""
    node = sync.instance.node
    if fs is None:
        return None, f"no fs resource of the service holds {path}"
    if not sender or plan.same_site(sync.instance.config.members, sender, node):
        return None, (
            f"{sender or 'the sender'} and {node} are on one site, where disks may be "
            f"shared: {fs.rid} is mounted for a receive only from the other site"
        )
    if fs.standby:
        return None, f"{fs.rid} is standby here, kept mounted by the daemon, and it is down"
    if plan.target_refusal(resources):
        return None, "the service is up here"
    try:
        await fs.mount_at(receive_path(sync))
    except ResourceError as exc:
        return None, f"mounting {fs.rid} on {node} for the receive failed: {exc}"
    log.info("%s %s: %s mounted at %s for a receive", sync.instance.name, sync.rid, fs.rid,
             receive_path(sync))  # fmt: skip
    rel = os.path.relpath(os.path.normpath(path), fs.mnt)
    return os.path.normpath(os.path.join(receive_path(sync), rel)), ""


def mounted(sync: SyncDriver) -> bool:
    return mounts.mounted_at(receive_path(sync)) is not None


async def release(sync: SyncDriver, fs: FsDriver | None) -> None:
    if fs is not None and mounted(sync):
        await fs.unmount_at(receive_path(sync))
