"""Keywords every sync resource accepts, whatever its driver."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Inherit, Keyword, merge
from daemon.resources.keywords import GENERIC, driver_type
from daemon.restore.policy import PERCENT, RETAIN, parse_retain
from daemon.sync.wire import COMPRESSION, RATE, Compression

RETAIN_DEFAULT = "24h 7d 4w"

TYPES = ("rsync", "btrfs", "docker")

SYNC_COMMON = merge(
    GENERIC,
    (
        driver_type(TYPES, "rsync"),
        Keyword(
            "optional",
            "Errors of this resource do not fail the action (sync resources are optional).",
            c.BOOLEAN,
            default=True,
            scopable=True,
            inherit=Inherit.SECTION_THEN_DEFAULT,
        ),
        Keyword(
            "target",
            "Where the data goes: nodes, drpnodes or both. The local node is never a target.",
            c.LIST,
            default=["nodes", "drpnodes"],
            candidates=("nodes", "drpnodes"),
            example="target = drpnodes",
            inherit=Inherit.SECTION_THEN_DEFAULT,
        ),
        Keyword(
            "schedule",
            "When the scheduler runs 'sync all' for this resource.",
            default="~04:00-06:00",
            scopable=True,
            inherit=Inherit.SECTION_THEN_DEFAULT,
            default_keyword="sync_schedule",
            example="schedule = @30",
        ),
        Keyword(
            "sync_max_delay",
            "Maximum age of the replicated data before the status turns down "
            "(bare number: minutes).",
            c.DURATION_MINUTES,
            default=97200,
            scopable=True,
            inherit=Inherit.SECTION_THEN_DEFAULT,
            example="sync_max_delay = 1d3h",
        ),
        Keyword(
            "timeout",
            "Time limit of one transfer to one target.",
            c.DURATION,
            default=7200,
            scopable=True,
        ),
        Keyword(
            "stall_timeout",
            "A transfer that moves no byte for this long is killed (no-progress watchdog).",
            c.DURATION,
            default=300,
            scopable=True,
        ),
        Keyword(
            "compress",
            "Compression on the wire: none, zstd, zstd:LEVEL (1-19, default 3) or lz4. The "
            "stored data is unchanged. Evaluated for the target (it describes the link): "
            "compress@drpnodes = zstd compresses what goes to the DR site only. Default none: "
            "on a LAN it costs CPU and throughput.",
            COMPRESSION,
            default=Compression(),
            scopable=True,
            inherit=Inherit.SECTION_THEN_DEFAULT,
            example="compress@drpnodes = zstd",
        ),
        Keyword(
            "bwlimit",
            "Bandwidth cap on the wire, per transfer: 10M, 500K, 1G (bytes per second); a "
            "bare number is KiB/s, as rsync's --bwlimit. Evaluated for the target, as compress.",
            RATE,
            scopable=True,
            inherit=Inherit.SECTION_THEN_DEFAULT,
            example="bwlimit = 10M",
        ),
        Keyword(
            "retain",
            "Restore points kept on each target, btrbk style: the newest point of each of the "
            "last N hours (h), days (d), weeks (w), months (m), years (y). A point costs the "
            "data changed since the point before it.",
            RETAIN,
            default=parse_retain(RETAIN_DEFAULT),
            scopable=True,
            inherit=Inherit.SECTION_THEN_DEFAULT,
            example="retain = 24h 14d 8w 6m",
        ),
        Keyword(
            "retain_min",
            "Every restore point younger than this is kept, whatever retain says.",
            c.DURATION,
            default=3600,
            scopable=True,
            inherit=Inherit.SECTION_THEN_DEFAULT,
            example="retain_min = 1h",
        ),
        Keyword(
            "retain_free_min",
            "Free space (percent of the target filesystem) under which the oldest restore "
            "points are pruned first, the newest always kept.",
            PERCENT,
            default=10,
            scopable=True,
            inherit=Inherit.SECTION_THEN_DEFAULT,
            example="retain_free_min = 10%",
        ),
    ),
)
