"""The argparse tree of ``ferry``, made from :mod:`daemon.cli.commands`.

``ferry [global options] SVC <words> [options]`` or ``ferry <command> [<words>] [options]``.
The first word is a service selector unless it names a node command; argparse cannot
take "any word" as a sub-command, so :func:`scan` finds that word first and the tree gets
a sub-parser of that name, under which every service command has its own (its options,
its help page). Errors are one line (:class:`UsageError`), never a usage dump.

Options keep the placements they always had: global ones before the service or after the
action, an action's options anywhere after the service (groups and the root accept every
option, unseen, and :func:`parse` refuses the ones that do not apply to the command run).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NoReturn

from daemon.cli.commands import NODE_COMMANDS, SERVICE_COMMANDS
from daemon.cli.errors import UsageError
from daemon.cli.grammar import COMPANIONS, GLOBAL_OPTIONS, OPTIONS, Command
from daemon.config.errors import closest

COMMAND = "_ferry_command"  # the attribute where a sub-parser leaves its Command
NODE_NAMES = tuple(c.words[0] for c in NODE_COMMANDS if len(c.words) == 1)
ROOT_OPTIONS = (*GLOBAL_OPTIONS, "server", "token")  # shown in ``ferry --help``
NEVER_REFUSED = (*GLOBAL_OPTIONS, *COMPANIONS.values())

Completer = Callable[..., Iterable[str]]


class UsageParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (a UsageError, exit 2)."""

    words: tuple[str, ...] = ()  # the command words this parser stands for
    pending: Callable[[], None] | None = None  # adds its arguments when it is first used

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: --to must not be read as --token where --to does not apply
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self.ready()
        return super().parse_known_args(*args, **kwargs)

    def ready(self) -> None:
        """Add the arguments now: a run fills only the parsers on its way (each add_argument
        costs; the other commands' parsers are needed as names only)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending()

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            said = " ".join((*self.words, str(value)))
            public = [a.dest for a in action._get_subactions()]
            hint = closest(str(value), public)
            known = f": {hint}" if hint else f" (known: {', '.join(public)})"
            raise argparse.ArgumentError(None, f"unknown action {said!r}{known}")
        super()._check_value(action, value)


class _Formatter(argparse.HelpFormatter):
    """Paragraphs wrap; lines indented by two spaces (examples) stay as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            if any(line.startswith("  ") for line in block.splitlines()):
                blocks.append("\n".join(indent + line for line in block.splitlines()))
            else:
                blocks.append(super()._fill_text(block, width, indent))
        return "\n\n".join(blocks)


class _Version(argparse.Action):
    """--version: read from the package metadata only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, default=argparse.SUPPRESS,
                         help="print Ferry's version and exit")  # fmt: skip

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        print(f"ferry {version()}")
        parser.exit()


def version() -> str:
    """The installed distribution's version; the source tree's when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version("ferry")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


@dataclass
class Tree:
    """The root parser and every sub-parser by its words (the service's under ``SVC``)."""

    root: UsageParser
    parsers: dict[tuple[str, ...], UsageParser] = field(default_factory=dict)


@dataclass(frozen=True)
class Scan:
    """What comes before the command words: the first word and the directories."""

    first: str | None
    config_dir: str | None = None
    var_dir: str | None = None

    @property
    def selector(self) -> str | None:
        return None if self.first in NODE_NAMES else self.first


def scan(argv: Sequence[str]) -> Scan:
    """The first word (a selector or a node command), skipping options and their values."""
    parser = UsageParser(prog="ferry", add_help=False)
    for name, option in OPTIONS.items():
        kwargs: dict[str, Any] = {"dest": name, "default": None}
        kwargs["action"] = "store_true" if option.kind == "flag" else "store"
        parser.add_argument(*option.flags, **kwargs)
    parser.add_argument("first", nargs="?")
    words = list(argv)
    while True:
        try:
            found, _ = parser.parse_known_args(words)
            return Scan(found.first, found.config_dir, found.var_dir)
        except UsageError:  # an option still without its value (being completed, or wrong)
            if not words:
                return Scan(None)
            words.pop()


def _add_options(
    parser: UsageParser,
    shown: Iterable[str],
    command: Command | None,
    completers: Mapping[str, Completer] | None,
) -> None:
    """The options shown on parser's page, the global ones apart; unless parser runs a
    command, every other option too, unseen (the CLI always took them anywhere)."""
    shown = list(
        dict.fromkeys(
            name
            for own in shown
            if own not in GLOBAL_OPTIONS
            for name in (own, *([COMPANIONS[own]] if own in COMPANIONS else []))
        )
    )
    helps = command.option_help if command else {}
    for name in shown:
        _add_option(parser, name, helps.get(name), completers)
    group = parser.add_argument_group("global options")
    for name in GLOBAL_OPTIONS:
        _add_option(group, name, None, completers)
    if command is None or command.run is None:
        for name in OPTIONS:
            if name not in shown and name not in GLOBAL_OPTIONS:
                _add_option(parser, name, argparse.SUPPRESS, None)


def _add_option(
    container: Any, name: str, help_text: str | None, completers: Mapping[str, Completer] | None
) -> None:
    option = OPTIONS[name]
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
    kwargs["help"] = help_text or option.help
    if option.kind == "flag":
        kwargs["action"] = "store_true"
    else:
        kwargs["action"] = "append" if option.kind == "append" else "store"
        kwargs["metavar"] = option.metavar
        if option.type is not None:
            kwargs["type"] = option.type
        if option.choices:
            kwargs["choices"] = option.choices
    action = container.add_argument(*option.flags, **kwargs)
    if completers and option.complete in completers:
        action.completer = completers[option.complete]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _epilog(command: Command) -> str | None:
    if not command.examples:
        return None
    title = "examples:" if len(command.examples) > 1 else "example:"
    return "\n".join((title, *(f"  {e}" for e in command.examples)))


def _add_commands(
    tree: Tree,
    parser: UsageParser,
    path: tuple[str, ...],
    commands: Sequence[Command],
    words: tuple[str, ...],
    completers: Mapping[str, Completer] | None,
    lazy: bool,
) -> None:
    """Add the sub-commands of ``words`` (under ``path``, the parser's own words) to parser."""
    children = [c for c in commands if c.words[:-1] == words and len(c.words) == len(words) + 1]
    if completers is not None:  # Ferry runs the internal commands, nobody completes them
        children = [c for c in children if not c.internal]
    if not children:
        return
    mine = next((c for c in commands if c.words == words), None)
    public = [c.words[-1] for c in children if not c.internal]
    required = mine is None or mine.run is None
    metavar = "ACTION" if not words else "{" + ",".join(public) + "}"
    subparsers = parser.add_subparsers(
        title="actions", metavar=metavar if required else f"[{metavar}]", required=required
    )
    for child in children:
        options: dict[str, Any] = {}
        if not child.internal:
            options["help"] = child.summary
        sub = subparsers.add_parser(
            child.words[-1],
            prog=f"{parser.prog} {child.words[-1]}",
            description=_sentence(child.description or child.summary),
            epilog=_epilog(child),
            formatter_class=_Formatter,
            **options,
        )
        _fill(tree, sub, (*path, child.words[-1]), child, commands, completers, lazy)


def _fill(
    tree: Tree,
    parser: UsageParser,
    path: tuple[str, ...],
    command: Command,
    commands: Sequence[Command],
    completers: Mapping[str, Completer] | None,
    lazy: bool,
) -> None:
    """Give parser the arguments of command (lazy: when it is first used)."""
    parser.words = command.words
    parser.set_defaults(**{COMMAND: command})
    fill = partial(_fill_now, tree, parser, path, command, commands, completers, lazy)
    if lazy:
        parser.pending = fill
    else:
        fill()


def _fill_now(
    tree: Tree,
    parser: UsageParser,
    path: tuple[str, ...],
    command: Command,
    commands: Sequence[Command],
    completers: Mapping[str, Completer] | None,
    lazy: bool,
) -> None:
    tree.parsers[path] = parser
    _add_options(parser, command.options, command, completers)
    for arg in command.args:
        kwargs: dict[str, Any] = {"metavar": arg.metavar, "help": arg.help}
        if arg.nargs is not None:
            kwargs["nargs"] = arg.nargs
        if arg.choices:
            kwargs["choices"] = arg.choices
        action = parser.add_argument(arg.dest, **kwargs)
        if completers and arg.complete in completers:
            action.completer = completers[arg.complete]  # type: ignore[attr-defined]
    _add_commands(tree, parser, path, commands, command.words, completers, lazy)


def _service_listing() -> str:
    names: dict[str, list[str]] = {}
    for c in SERVICE_COMMANDS:
        if c.run is not None and not c.internal:
            names.setdefault(c.words[0], []).append(" ".join(c.words[1:]))
    listed = [
        first + (f" [{'|'.join(w for w in rest if w)}]" if "" in rest else f" {'|'.join(rest)}")
        if any(rest) else first
        for first, rest in names.items()
    ]  # fmt: skip
    return "service actions (ferry SVC ACTION --help for each): " + ", ".join(listed)


def build(
    selector: str | None = None,
    completers: Mapping[str, Completer] | None = None,
    whole: bool = False,
) -> Tree:
    """The parser of ``ferry``; with a selector, the service commands under its name.
    With completers (completing), they complete values, and internal commands are left out.
    Sub-parsers get their arguments when they are used, unless whole or completing
    (argcomplete inspects them before)."""
    lazy = not whole and completers is None
    root = UsageParser(
        prog="ferry",
        description="Ferry cluster agent: ferry [global options] SVC ACTION [options], where "
        "SVC is a service name, a glob (svc*) or a comma list; or ferry COMMAND [options]. "
        "Exit codes: 0 success, 1 action failed, 2 usage or configuration error.",
        epilog=_service_listing(),
        formatter_class=_Formatter,
    )
    tree = Tree(root)
    root.add_argument("--version", action=_Version)
    _add_options(root, ROOT_OPTIONS, None, completers)
    first = root.add_subparsers(title="commands", metavar="SVC|COMMAND", required=True)
    if completers and "service" in completers:
        first.completer = completers["service"]  # type: ignore[attr-defined]
    for command in NODE_COMMANDS:
        if len(command.words) == 1:
            sub = first.add_parser(
                command.words[0],
                prog=f"ferry {command.words[0]}",
                help=command.summary,
                description=_sentence(command.description or command.summary),
                epilog=_epilog(command),
                formatter_class=_Formatter,
            )
            _fill(tree, sub, command.words, command, NODE_COMMANDS, completers, lazy)
    if selector is not None and selector not in NODE_NAMES:
        service = first.add_parser(
            selector,
            prog=f"ferry {selector}",
            description=f"The actions on {selector} (a service name, a glob or a comma list).",
            formatter_class=_Formatter,
        )
        tree.parsers[(selector,)] = service
        _add_options(service, (), None, completers)
        _add_commands(tree, service, (selector,), SERVICE_COMMANDS, (), completers, lazy)
    return tree


@dataclass(frozen=True)
class Parsed:
    command: Command
    args: argparse.Namespace
    selector: str | None  # None for a node command


def parse(argv: Sequence[str]) -> Parsed:
    """Parse argv (what comes before '--'); UsageError when it does not make a command."""
    seen = scan(argv)
    tree = build(seen.first)
    args, extras = tree.root.parse_known_args(list(argv))
    command: Command | None = getattr(args, COMMAND, None)
    if command is None:  # not reached: every group requires one of its sub-commands
        raise UsageError("no action given")
    if extras:
        raise UsageError(_unexpected(extras[0], command))
    for name in OPTIONS:
        given = hasattr(args, name)
        if given and name not in command.options and name not in NEVER_REFUSED:
            raise UsageError(f"{OPTIONS[name].flags[-1]} does not apply to '{command.name}'")
    for name, option in OPTIONS.items():
        if not hasattr(args, name):
            setattr(args, name, option.absent())
    values: list[str] = []
    for arg in command.args:
        value = getattr(args, arg.dest, None)
        values += value if isinstance(value, list) else [] if value is None else [value]
    args.selector = seen.first
    own = command.words if seen.selector is not None else command.words[1:]
    args.words = [*own, *values]
    args.point = getattr(args, "point", None)
    return Parsed(command, args, seen.selector)


def _unexpected(word: str, command: Command) -> str:
    if word.startswith("-") and len(word) > 1:
        flag = word.split("=", 1)[0]
        if any(flag in option.flags for option in OPTIONS.values()):
            return f"{flag} does not apply to '{command.name}'"
        flags = [f for name in command.options for f in OPTIONS[name].flags]
        hint = closest(flag, flags)
        return f"unknown option {flag} for '{command.name}'" + (f": {hint}" if hint else "")
    return f"unexpected argument {word!r} for '{command.name}'"
