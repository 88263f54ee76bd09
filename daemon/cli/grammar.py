"""What ``ferry`` accepts, declared apart from the code that acts: every option once, and
the shape of a command (:mod:`daemon.cli.commands` lists them).

The argparse tree and the help pages (:mod:`daemon.cli.parser`), the shell completion
(:mod:`daemon.cli.completion`) and the README's CLI tables (:mod:`daemon.cli.reference`)
are made from these declarations. Handlers are named, not imported: ``ferry --help`` and a
completion stay cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Option:
    """An option; ``name`` (its key in OPTIONS) is its attribute on the parsed arguments."""

    flags: tuple[str, ...]
    help: str
    kind: Literal["flag", "value", "append"] = "value"
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] = ()
    default: Any = None
    complete: str = ""  # what completes its value: "node", "rid", "point" (see completion.py)

    def absent(self) -> Any:
        """Its value when it is not given."""
        if self.kind == "flag":
            return False
        return list(self.default) if isinstance(self.default, list) else self.default


OPTIONS: dict[str, Option] = {
    "config_dir": Option(
        ("--config-dir",),
        "service configurations (default /etc/ferry, or FERRY_CONFIG_DIR)",
        metavar="DIR",
    ),
    "var_dir": Option(
        ("--var-dir",), "state directory (default /var/lib/ferry, or FERRY_VAR_DIR)", metavar="DIR"
    ),
    "output": Option(("-o", "--output"), "output format", choices=("text", "json"), default="text"),
    "server": Option(("--server",), "a remote ferryd (https://node:7443)", metavar="URL"),
    "token": Option(("--token",), "bearer token for --server", metavar="TOKEN"),
    "eval": Option(("--eval",), "evaluate for a node (this one, or --impersonate)", "flag"),
    "impersonate": Option(
        ("--impersonate",), "with --eval: evaluate as NODE", metavar="NODE", complete="node"
    ),
    "kw": Option(
        ("--kw",),
        "a keyword (repeat for several)",
        "append",
        metavar="SECTION.KW[=VALUE]",
        default=[],
    ),
    "local": Option(("--local",), "act on this node directly, not through the daemon", "flag"),
    "rid": Option(
        ("--rid",),
        "only these resources (repeat, or a comma list)",
        "append",
        metavar="RID",
        default=[],
        complete="rid",
    ),
    "force": Option(("--force",), "replace what exists", "flag"),
    "target": Option(
        ("--target",),
        "only these target nodes (repeat, or a comma list)",
        "append",
        metavar="NODE",
        default=[],
        complete="node",
    ),
    "lock_wait": Option(
        ("--lock-wait",),
        "how long to wait for another action on the service (default 30)",
        metavar="SECONDS",
        type=float,
        default=30.0,
    ),
    "config": Option(("--config",), "the service configuration to install", metavar="FILE"),
    "wait": Option(("--wait",), "wait for the action to end, following its log", "flag"),
    "time": Option(("--time",), "with --wait: at most this long", metavar="SECONDS", type=float),
    "to": Option(("--to",), "the node to move the service to", metavar="NODE", complete="node"),
    "yes": Option(("--yes",), "do not ask for confirmation (scripts)", "flag"),
    "node": Option(("--node",), "on this node", metavar="NODE", complete="node"),
    "check": Option(
        ("--check",), "the check run in the bubble (default: drill_check)", metavar="CMD"
    ),
    "keep": Option(("--keep",), "leave the bubble up (end it with drill stop)", "flag"),
    "at": Option(
        ("--at",),
        "from this restore point: its name, or an ISO 8601 time (the newest point not newer)",
        metavar="POINT",
        complete="point",
    ),
    "role": Option(("--role",), "the token's role", choices=("root", "operator", "guest")),
    "name": Option(("--name",), "a name", metavar="NAME"),
    "out": Option(("--out",), "where to write the join bundle", metavar="DIR|FILE.pem"),
    "address": Option(
        ("--address",),
        "an extra address (IP or DNS name) in the node's certificate (repeat for several)",
        "append",
        metavar="ADDR",
        default=[],
    ),
    "markdown": Option(("--markdown",), "the configuration reference, as markdown", "flag"),
    "cli": Option(("--cli",), "the CLI reference (README's tables), as markdown", "flag"),
    "api": Option(("--api",), "the API reference, as markdown", "flag"),
    "openapi": Option(("--openapi",), "the OpenAPI document", "flag"),
}

# Accepted by every command, before the service and after the action.
GLOBAL_OPTIONS = ("config_dir", "var_dir", "output")
# Given with --server (and never refused: it names no action).
COMPANIONS = {"server": "token"}


@dataclass(frozen=True)
class Handler:
    """A function of a ``daemon.cli`` module, imported when the command runs; with ``verb``,
    a factory called with it (``daemon_cmds.through_daemon("freeze")``)."""

    module: str
    name: str
    verb: str | None = None

    def resolve(self) -> Callable[..., int]:
        found = getattr(importlib.import_module(f"daemon.cli.{self.module}"), self.name)
        handler: Callable[..., int] = found(self.verb) if self.verb is not None else found
        return handler


@dataclass(frozen=True)
class Arg:
    """A positional argument; its values follow the command's words in ``args.words``."""

    dest: str
    metavar: str
    help: str
    nargs: str | None = None  # None: exactly one
    choices: tuple[str, ...] = ()
    complete: str = ""


@dataclass(frozen=True)
class Command:
    """A sub-command: ``words`` under ``ferry SVC`` (service commands) or ``ferry`` (node
    commands). Without ``run`` it is a group: one of its sub-commands is required."""

    words: tuple[str, ...]
    summary: str
    run: Handler | None = None
    options: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()
    description: str = ""
    examples: tuple[str, ...] = ()
    option_help: Mapping[str, str] = field(default_factory=dict)
    internal: bool = False  # run by Ferry itself: no help, no completion, no README row
    passthrough: bool = False  # takes words after '--'

    @property
    def name(self) -> str:
        return " ".join(self.words)
