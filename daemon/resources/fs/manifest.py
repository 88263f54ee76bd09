"""Keywords of the fs driver: mount a filesystem."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Inherit, Keyword, Manifest, merge
from daemon.resources.keywords import GENERIC

MANIFEST = Manifest(
    group="fs",
    type="",
    help="A filesystem mounted at mnt from dev.",
    keywords=merge(
        GENERIC,
        (
            Keyword(
                "dev",
                "The device to mount: a path, LABEL=<label> or UUID=<uuid>.",
                required=True,
                scopable=True,
                example="dev@nodes = /dev/mapper/svc1.d0",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "mnt",
                "The mount point; created when missing.",
                required=True,
                scopable=True,
                example="mnt = /srv/{svcname}/data",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "mnt_opt",
                "Mount options, as given to mount -o.",
                scopable=True,
                example="mnt_opt = defaults,subvol=data",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "type",
                "The filesystem type (btrfs, ext4, ...); unset lets mount detect it.",
                c.LOWER,
                scopable=True,
            ),
        ),
    ),
)
