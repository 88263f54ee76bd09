"""Keywords of the ip driver of type netns: an address inside a container's namespace."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Inherit, Keyword, Manifest, merge
from daemon.resources.ip_host.manifest import ADDRESS_KEYWORDS
from daemon.resources.keywords import GENERIC, driver_type

MODES = ("bridge", "macvlan", "ipvlan-l2", "ipvlan-l3")

MANIFEST = Manifest(
    group="ip",
    type="netns",
    help="An address configured inside the network namespace of a container resource.",
    keywords=merge(
        GENERIC,
        ADDRESS_KEYWORDS,
        (
            driver_type(("host", "netns"), "host"),
            Keyword(
                "netns",
                "The container resource holding the namespace, container#N.",
                required=True,
                scopable=True,
                example="netns = container#0",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "mode",
                "How the link is made on ipdev.",
                c.LOWER,
                scopable=True,
                candidates=MODES,
                default_text="bridge when ipdev is a bridge, else macvlan",
            ),
            Keyword(
                "gateway",
                "Default gateway set inside the namespace.",
                scopable=True,
                example="gateway = 10.0.3.1",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "nsdev",
                "The interface name inside the namespace.",
                scopable=True,
                default="eth0",
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
        ),
    ),
)
