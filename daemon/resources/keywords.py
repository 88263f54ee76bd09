"""Keywords every resource section accepts, whatever its driver."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Inherit, Keyword

# OpenSVC resource keywords Ferry does not take, and what to write instead.
OPENSVC_HINTS = {
    "always_on": "OpenSVC's older spelling of standby: write standby = true, "
    "scoped as needed (standby@drpnodes = true)",
}

GENERIC = (
    Keyword(
        "disable",
        "Skip this resource in every action; its status is n/a.",
        c.BOOLEAN,
        default=False,
        scopable=True,
    ),
    Keyword(
        "optional",
        "Errors of this resource do not fail the action, and its status does not fold into avail.",
        c.BOOLEAN,
        default=False,
        scopable=True,
        inherit=Inherit.SECTION_THEN_DEFAULT,
    ),
    Keyword(
        "standby",
        "Keep this resource up even where the service is not running (reported as stdby up/down).",
        c.BOOLEAN,
        default=False,
        scopable=True,
        example="standby@drpnodes = true",
        inherit=Inherit.SECTION_THEN_DEFAULT,
    ),
    Keyword(
        "monitor",
        "A monitored resource found down triggers the service's monitor_action.",
        c.BOOLEAN,
        default=False,
        scopable=True,
        inherit=Inherit.SECTION_THEN_DEFAULT,
    ),
    Keyword(
        "restart",
        "How many times the daemon restarts this resource when found down, before giving up.",
        c.INTEGER,
        default=0,
        scopable=True,
        inherit=Inherit.SECTION_THEN_DEFAULT,
    ),
    Keyword(
        "tags",
        "Free words to select resources in actions.",
        c.LIST,
        default=[],
        inherit=Inherit.SECTION_THEN_DEFAULT,
    ),
    Keyword("subset", "Name of the subset this resource belongs to.", c.STRING),
    Keyword("comment", "Free text for the humans reading this file.", c.STRING),
)


def driver_type(types: tuple[str, ...], default: str) -> Keyword:
    """The ``type`` keyword of a group whose drivers are chosen by it."""
    return Keyword(
        "type",
        "The driver of this resource.",
        c.LOWER,
        default=default,
        candidates=types,
    )
