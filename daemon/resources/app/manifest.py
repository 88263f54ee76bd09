"""Keywords of the app driver: start, stop and check commands."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Inherit, Keyword, Manifest, merge
from daemon.resources.keywords import GENERIC, driver_type

MANIFEST = Manifest(
    group="app",
    type="forking",
    help="An application driven by commands (or one script taking start/stop/status).",
    keywords=merge(
        GENERIC,
        (
            driver_type(("forking",), "forking"),
            Keyword(
                "script",
                "A script called with start, stop or status when the matching keyword is unset.",
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "start",
                "Command that starts the application.",
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "stop",
                "Command that stops the application.",
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "check",
                "Command whose exit code tells the status: 0 up, anything else down.",
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "timeout",
                "Time limit of each command.",
                c.DURATION,
                default=120,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "check_timeout",
                "Time limit of the check command.",
                c.DURATION,
                default=30,
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
            Keyword(
                "cwd",
                "Working directory of the commands.",
                scopable=True,
                inherit=Inherit.SECTION_THEN_DEFAULT,
            ),
        ),
    ),
)
