"""What every resource driver is: start, stop and status of one section on this node.

Drivers receive their keyword values already evaluated for this node (scoping,
references, conversion done by the configuration engine), so a driver only acts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from daemon.config.ini import Document
from daemon.config.scoping import Membership
from daemon.resources.status import Status


class ResourceError(Exception):
    """A resource action failed; the message is what the operator reads."""


@dataclass
class StatusReport:
    """A resource's status and the messages that explain it."""

    status: Status
    log: list[str] = field(default_factory=list)  # "warn: ...", "error: ...", "info: ..."

    @property
    def has_warning(self) -> bool:
        return any(line.startswith(("warn:", "error:")) for line in self.log)


class ServiceFile(Protocol):
    """What a resource reads of its service's bound configuration."""

    @property
    def doc(self) -> Document: ...

    @property
    def members(self) -> Membership: ...

    def value(self, section: str, name: str, node: str) -> Any:
        """A keyword of the service, evaluated for node."""


class InstanceReport(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


class Owner(Protocol):
    """The service instance a resource belongs to, as the resource sees it
    (``daemon.service.instance.Instance``, one floor up, is the one)."""

    name: str
    node: str
    var_dir: Path
    state_dir: Path

    @property
    def config(self) -> ServiceFile: ...

    @property
    def resources(self) -> Mapping[str, Resource]: ...

    def value(self, section: str, keyword: str) -> Any:
        """A keyword of the service, evaluated for this node."""

    async def status(self) -> InstanceReport:
        """The instance's status, every resource evaluated."""


class Resource(ABC):
    """One resource of a service instance on this node."""

    def __init__(self, rid: str, values: Mapping[str, Any], instance: Owner) -> None:
        self.rid = rid
        self.values = dict(values)
        self.instance = instance

    # Flags shared by all drivers -------------------------------------------------------------

    @property
    def group(self) -> str:
        return self.rid.split("#", 1)[0]

    @property
    def optional(self) -> bool:
        return bool(self.values.get("optional"))

    @property
    def disabled(self) -> bool:
        return bool(self.values.get("disable"))

    @property
    def standby(self) -> bool:
        return bool(self.values.get("standby"))

    @property
    def monitor(self) -> bool:
        return bool(self.values.get("monitor"))

    @property
    def is_sync(self) -> bool:
        return self.group == "sync"

    @property
    def state_dir(self) -> Path:
        return self.instance.state_dir

    # What a driver implements ----------------------------------------------------------------

    @abstractmethod
    def label(self) -> str:
        """A short human description: what this resource is on this node."""

    @abstractmethod
    async def start(self) -> None:
        """Bring the resource up; do nothing when it is up already. Raise ResourceError."""

    @abstractmethod
    async def stop(self) -> None:
        """Bring the resource down; do nothing when it is down already. Raise ResourceError."""

    @abstractmethod
    async def status(self) -> StatusReport:
        """The resource's own status (up, down, n/a, warn), standby not applied."""

    def start_after(self) -> str:
        """The rid this resource must start right after, or '' for the group order."""
        return ""

    async def clear_leftovers(self) -> None:
        """Called on every resource before an instance start: undo what an interrupted
        operation left that would stand in the start's way (a sync's receive mount)."""
        return None
