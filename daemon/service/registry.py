"""Which manifest describes a section: the group before '#', then the ``type`` keyword."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.config.keywords import Manifest
from daemon.resources.app.manifest import MANIFEST as APP
from daemon.resources.container_docker.manifest import MANIFEST as CONTAINER_DOCKER
from daemon.resources.fs.manifest import MANIFEST as FS
from daemon.resources.ip_host.manifest import MANIFEST as IP_HOST
from daemon.resources.ip_netns.manifest import MANIFEST as IP_NETNS
from daemon.sync.btrfs.manifest import MANIFEST as SYNC_BTRFS
from daemon.sync.docker.manifest import MANIFEST as SYNC_DOCKER
from daemon.sync.rsync.manifest import MANIFEST as SYNC_RSYNC


@dataclass(frozen=True)
class Group:
    """A resource group and its drivers.

    When ``selects_driver`` is false, ``type`` is an ordinary keyword of the
    only driver (fs: the filesystem type).
    """

    name: str
    drivers: dict[str, Manifest]
    default_type: str
    selects_driver: bool = True

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.drivers)


GROUPS: dict[str, Group] = {
    "ip": Group("ip", {"host": IP_HOST, "netns": IP_NETNS}, "host"),
    "fs": Group("fs", {"": FS}, "", selects_driver=False),
    "container": Group("container", {"docker": CONTAINER_DOCKER}, "docker"),
    "app": Group("app", {"forking": APP}, "forking"),
    "sync": Group(
        "sync", {"rsync": SYNC_RSYNC, "btrfs": SYNC_BTRFS, "docker": SYNC_DOCKER}, "rsync"
    ),
}

# Start order by group; stop is the exact reverse. Sync resources take no part.
START_ORDER = ("ip", "disk", "fs", "container", "app")


def all_manifests() -> list[Manifest]:
    return [m for group in GROUPS.values() for m in group.drivers.values()]
