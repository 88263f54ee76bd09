"""Keywords of the ip driver of type host: an address on a host interface."""

from __future__ import annotations

from daemon.config.keywords import Inherit, Keyword, Manifest, merge
from daemon.resources.keywords import GENERIC, driver_type

ADDRESS_KEYWORDS = (
    Keyword(
        "ipdev",
        "The host interface carrying the address (or the link made for it).",
        required=True,
        scopable=True,
        example="ipdev = eth0",
        inherit=Inherit.SECTION_THEN_DEFAULT,
    ),
    Keyword(
        "ipname",
        "The address (IPv4 or IPv6) or a name resolving to it.",
        required=True,
        scopable=True,
        example="ipname@n1 = 10.0.3.3",
        inherit=Inherit.SECTION_THEN_DEFAULT,
    ),
    Keyword(
        "netmask",
        "Netmask, dotted (255.255.255.0) or as a prefix length (24).",
        scopable=True,
        default="24",
        inherit=Inherit.SECTION_THEN_DEFAULT,
    ),
)

MANIFEST = Manifest(
    group="ip",
    type="host",
    help="An address added to a host interface.",
    keywords=merge(GENERIC, ADDRESS_KEYWORDS, (driver_type(("host", "netns"), "host"),)),
)
