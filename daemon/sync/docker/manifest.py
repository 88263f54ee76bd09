"""Keywords of the docker sync driver: only the target; images come from container resources."""

from __future__ import annotations

from daemon.config.keywords import Manifest
from daemon.sync.keywords import SYNC_COMMON

MANIFEST = Manifest(
    group="sync",
    type="docker",
    help=(
        "Make sure the images of the service's docker containers are in the targets' engine "
        "for the service, sending only the layers they miss."
    ),
    keywords=SYNC_COMMON,
)
