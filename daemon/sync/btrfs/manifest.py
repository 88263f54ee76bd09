"""Keywords of the btrfs sync driver."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Inherit, Keyword, Manifest, merge
from daemon.sync.keywords import SYNC_COMMON

MANIFEST = Manifest(
    group="sync",
    type="btrfs",
    help="Replicate a btrfs subvolume with snapshots and incremental send/receive.",
    keywords=merge(
        SYNC_COMMON,
        (
            Keyword(
                "src",
                "Source subvolume as <label>:<subvolume path>, the label of a mounted btrfs.",
                required=True,
                scopable=True,
                example="src = svc1:data",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "dst",
                "Destination subvolume as <label>:<subvolume path> on the target.",
                required=True,
                scopable=True,
                example="dst = svc1:data",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "recursive",
                "Also replicate the subvolumes nested under src.",
                c.BOOLEAN,
                default=False,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
        ),
    ),
)
