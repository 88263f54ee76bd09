"""What the API handlers read and call: the daemon's components, handed over as one object."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.actions import ActionRunner
from daemon.api.auth import TokenStore
from daemon.api.checker import ConfigChecker
from daemon.api.guard import Limits
from daemon.api.sessions import SessionStore
from daemon.events import EventBus
from daemon.metrics import Counter, Histogram, Registry
from daemon.node.config import NodeConfig
from daemon.node.services import NodeServices

if TYPE_CHECKING:
    from daemon.cluster.monitor import Monitor
    from daemon.cluster.state import ClusterState
    from daemon.drill.runner import Drills

VERSION = "0.1.0"


def _unknown_peer(name: str) -> str:
    return "unknown"


@dataclass
class ApiMetrics:
    registry: Registry
    latency: Histogram
    requests: Counter
    actions: Counter


@dataclass
class ApiContext:
    """The daemon as the API sees it."""

    node: NodeConfig
    config_dir: Path
    var_dir: Path
    services: NodeServices
    runner: ActionRunner
    events: EventBus
    tokens: TokenStore
    metrics: ApiMetrics
    listen: list[str] = field(default_factory=list)
    tls: bool = True
    started_at: float = field(default_factory=time.time)
    pid: int = field(default_factory=os.getpid)
    stopping: bool = False
    sse_keepalive: float = 15.0
    # Plug point: the heartbeat (a later issue) answers "up"/"down" for peers.
    peer_state: Callable[[str], str] = _unknown_peer
    openapi: dict[str, Any] = field(default_factory=dict)
    version: str = VERSION
    # The cluster layer (None when ferryd runs without it: single-node API tests).
    cluster: ClusterState | None = None
    monitor: Monitor | None = None
    drills: Drills | None = None
    limits: Limits = field(default_factory=Limits)
    checker: ConfigChecker = field(default_factory=ConfigChecker)
    sessions: SessionStore = field(default_factory=SessionStore)

    @property
    def nodename(self) -> str:
        return self.node.node.name

    @property
    def cluster_nodes(self) -> set[str]:
        """Names allowed to authenticate with a node certificate."""
        return {self.nodename, *(p.name for p in self.node.cluster.peers)}
