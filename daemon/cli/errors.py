"""CLI outcomes that are not successes, each with its exit code."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Wrong words on the command line: exit 2."""


class ActionFailed(Exception):
    """The action ran and failed: exit 1."""
