"""The service's instance as it runs inside a drill's bubble.

Run by ``ferry SVC drill bubble-up|bubble-down`` inside the bubble (``nsenter``), with the
drill's own var dir: the private Docker engine gets its own socket, pid file and exec
root there, and its data root is the clone mounted at ``docker_data_dir``. Differences
from the real instance:

* fs resources are the clones the drill mounted at their mount points (up when something
  is mounted there); starting or stopping them is the drill's business, not theirs;
* ip resources put the production address on the bubble's own bridge instead of ``ipdev``;
* sync resources take no part (nothing is sent from or to a drill).
"""

from __future__ import annotations

import importlib

from daemon.drill.bubble import BRIDGE
from daemon.resources.base import Resource, ResourceError, StatusReport
from daemon.resources.status import Status
from daemon.service.instance import DRIVER_MODULES, Instance
from daemon.system import mounts


class CloneFs(Resource):
    """A filesystem of the service in the drill: the clone mounted at mnt."""

    @property
    def mnt(self) -> str:
        return str(self.values["mnt"]).rstrip("/") or "/"

    def label(self) -> str:
        return f"{self.mnt} (the drill's clone)"

    async def status(self) -> StatusReport:
        if mounts.mounted_at(self.mnt) is None:
            return StatusReport(Status.DOWN)
        return StatusReport(Status.UP)

    async def start(self) -> None:
        if mounts.mounted_at(self.mnt) is None:
            raise ResourceError(f"the drill's clone is not mounted at {self.mnt}")

    async def stop(self) -> None:
        return None  # the drill's teardown removes the clone


class DrillInstance(Instance):
    """The instance inside a drill's bubble (see the module docstring)."""

    def _build(self, rid: str) -> Resource | None:
        bound = self.config.sections[rid]
        assert bound.manifest is not None
        if bound.group == "sync":
            return None
        values = {
            kw.name: self.config.value(rid, kw.name, self.node) for kw in bound.manifest.keywords
        }
        values["standby"] = False  # in the bubble every resource is simply started
        if bound.group == "fs":
            return CloneFs(rid, values, self)
        if bound.group == "ip":
            values["ipdev"] = BRIDGE
            if bound.manifest.type == "netns":
                values["mode"] = "bridge"
        module_name = DRIVER_MODULES.get((bound.group, bound.manifest.type))
        if module_name is None:
            return None
        driver: type[Resource] = importlib.import_module(module_name).Driver
        return driver(rid, values, self)
