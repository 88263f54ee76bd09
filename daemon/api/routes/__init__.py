"""The API's operations, one module per family, and the route table that declares them."""

from __future__ import annotations

from daemon.api.http import Route
from daemon.api.routes.actions import ACTIONS_ROUTES
from daemon.api.routes.cluster import CLUSTER_ROUTES
from daemon.api.routes.config import CONFIG_ROUTES
from daemon.api.routes.drills import DRILL_ROUTES
from daemon.api.routes.events import EVENTS_ROUTES
from daemon.api.routes.node import NODE_ROUTES
from daemon.api.routes.restore import RESTORE_ROUTES
from daemon.api.routes.services import SERVICES_ROUTES
from daemon.api.routes.sync import SYNC_ROUTES

ROUTES: tuple[Route, ...] = (
    *NODE_ROUTES,
    *CLUSTER_ROUTES,
    *SERVICES_ROUTES,
    *CONFIG_ROUTES,
    *ACTIONS_ROUTES,
    *EVENTS_ROUTES,
    *DRILL_ROUTES,
    *RESTORE_ROUTES,
    *SYNC_ROUTES,
)
