"""Running a sync action over a service's sync resources: what the CLI (--local) and the
daemon share."""

from __future__ import annotations

import time
from collections.abc import Sequence

from daemon.resources.base import ResourceError
from daemon.sync.base import SyncDriver, SyncRefused, TargetReport
from daemon.sync.transport import PeerDaemons, Peers


async def run_sync(
    resources: Sequence[SyncDriver],
    action: str,
    targets: list[str] | None = None,
    daemons: PeerDaemons | None = None,
    final: bool = False,
) -> list[TargetReport]:
    """One sync action for each resource, over one set of ssh connections (and, in ferryd,
    the peers' daemons); a resource that refuses or fails gives a report saying why,
    never an exception."""
    peers = Peers(daemons=daemons)
    reports: list[TargetReport] = []
    began = time.time()  # one run: its restore point has one name on every resource
    try:
        for resource in resources:
            resource.run_started = began
            try:
                reports += await resource.sync(action, peers, targets, final)
            except SyncRefused as exc:
                reports.append(TargetReport(resource.rid, "-", False, "skipped", reason=str(exc)))
            except ResourceError as exc:
                reports.append(TargetReport(resource.rid, "-", False, "failed", reason=str(exc)))
    finally:
        await peers.close()
    return reports
