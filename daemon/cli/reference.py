"""The README's CLI tables, generated from the parser (``ferry doc --cli``): one row per
command with what its parser accepts and its description, then the global options. A test
keeps README.md equal to this text."""

from __future__ import annotations

import argparse

from daemon.cli.commands import NODE_COMMANDS, SERVICE_COMMANDS
from daemon.cli.grammar import GLOBAL_OPTIONS, Command
from daemon.cli.parser import UsageParser, build

SERVICE = "SVC"  # the selector, as the tables write it


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _option(action: argparse.Action) -> str:
    flag = action.option_strings[-1]
    if action.nargs == 0:
        return f"[{flag}]"
    value = "|".join(action.choices) if action.choices else str(action.metavar)
    return f"[{flag} {value}]"


def _positional(action: argparse.Action) -> str:
    if isinstance(action, argparse._SubParsersAction):
        return "|".join(a.dest for a in action._get_subactions())
    value = "|".join(action.choices) if action.choices else str(action.metavar)
    if action.nargs == "*":
        return f"[{value} ...]"
    return f"[{value}]" if action.nargs == "?" else value


def synopsis(parser: UsageParser, with_actions: bool) -> str:
    """The command line parser takes, its global options left out (they have their table)."""
    positionals, options = [], []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if action.dest in GLOBAL_OPTIONS:
            continue
        if action.option_strings:
            options.append(_option(action))
        elif with_actions or not isinstance(action, argparse._SubParsersAction):
            positionals.append(_positional(action))
    return " ".join((parser.prog, *positionals, *options))


def _rows(commands: tuple[Command, ...], parsers: dict[tuple[str, ...], UsageParser]) -> list[str]:
    """A group that takes options (sync) is one row for its sub-commands; other groups
    have none of their own."""
    rows = []
    folded = {c.words for c in commands if c.run is None and c.options}
    for command in commands:
        if command.internal or command.words[:-1] in folded:
            continue
        if command.run is None and command.words not in folded:
            continue
        path = (SERVICE, *command.words) if command in SERVICE_COMMANDS else command.words
        parser = parsers[path]
        line = synopsis(parser, with_actions=command.words in folded)
        text = parser.description or ""
        if command.words in folded:  # what each sub-command does, after the group's text
            verbs = [c for c in commands if c.words[:-1] == command.words and not c.internal]
            text += " " + "; ".join(f"{c.words[-1]}: {c.summary}" for c in verbs) + "."
        rows.append(f"| `{_cell(line)}` | {_cell(text)} |")
    return rows


def cli_markdown() -> str:
    """The tables of README.md's CLI section."""
    tree = build(SERVICE, whole=True)
    lines = ["<!-- generated from the CLI's parser by `ferry doc --cli` -->", ""]
    lines += ["| command | what it does |", "|---|---|"]
    lines += _rows(SERVICE_COMMANDS, tree.parsers)
    lines += ["", "| node command | what it does |", "|---|---|"]
    lines += _rows(NODE_COMMANDS, tree.parsers)
    lines += ["", "| global option | |", "|---|---|"]
    for action in tree.root._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if not action.option_strings:
            continue
        flags = ", ".join(action.option_strings)
        value = (
            ""
            if action.nargs == 0
            else " " + ("|".join(action.choices) if action.choices else str(action.metavar))
        )
        lines.append(f"| `{_cell(flags + value)}` | {_cell(action.help or '')} |")
    return "\n".join(lines)
