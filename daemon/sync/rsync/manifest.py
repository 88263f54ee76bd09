"""Keywords of the rsync sync driver."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Inherit, Keyword, Manifest, merge
from daemon.sync.keywords import SYNC_COMMON

MANIFEST = Manifest(
    group="sync",
    type="rsync",
    help="Replicate files with rsync over ssh to root@<target>:<dst>.",
    keywords=merge(
        SYNC_COMMON,
        (
            Keyword(
                "src",
                "Source paths (globbed), one or more.",
                c.LIST,
                required=True,
                scopable=True,
                example="src = /srv/{svcname}/data/",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "dst",
                "Destination path on the target.",
                required=True,
                scopable=True,
                example="dst = /srv/{svcname}/data",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "dstfs",
                "The target must have this path mounted as its own filesystem, else it is skipped.",
                scopable=True,
                example="dstfs = /srv/{svcname}/data",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "options",
                "Extra rsync options (shell words), appended to the defaults.",
                c.SHELL_WORDS,
                default=[],
                scopable=True,
                example="options = --exclude=/srv/svc1/data/logs/*",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "reset_options",
                "Use options instead of the default rsync options rather than after them.",
                c.BOOLEAN,
                default=False,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
        ),
    ),
)
