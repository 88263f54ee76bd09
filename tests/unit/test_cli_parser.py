"""The CLI's parser: one help page per command, --version, options refused where they do
not apply, and every invocation form the CLI always took."""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

import pytest

from daemon.cli.commands import NODE_COMMANDS, SERVICE_COMMANDS
from daemon.cli.grammar import OPTIONS
from daemon.cli.parser import parse
from daemon.sync.plan import ACTION_POOLS
from tests.unit.ferry_cli import ferry


def test_sync_help_lists_only_sync_options() -> None:
    sync = ferry("svc1", "sync", "--help")
    start = ferry("svc1", "start", "--help")
    assert sync.code == 0 and start.code == 0
    assert sync.out.startswith("usage: ferry svc1 sync ")
    assert sync.out != start.out
    for flag in ("--local", "--rid", "--target", "--wait", "--time", "--server", "-o"):
        assert flag in sync.out
    for flag in ("--kw", "--eval", "--to", "--lock-wait", "--keep", "--check", "--markdown"):
        assert not re.search(rf"{flag}\b", sync.out), flag
    assert "--lock-wait" in start.out and "--target" not in start.out
    assert "example" in sync.out and "ferry svc1 sync all --wait" in sync.out
    assert len(sync.out.splitlines()) < 45


def test_every_public_command_has_its_page() -> None:
    pages = {}
    for command in (*SERVICE_COMMANDS, *NODE_COMMANDS):
        if command.internal:
            continue
        path = ("svc1", *command.words) if command in SERVICE_COMMANDS else command.words
        result = ferry(*path, "--help")
        assert result.code == 0, command.name
        assert result.out.startswith(f"usage: ferry {' '.join(path)}"), command.name
        if command.run is not None:
            assert "example" in result.out, command.name
        pages[command.name] = result.out
    assert len(set(pages.values())) == len(pages)


def test_version_from_the_package_metadata() -> None:
    result = ferry("--version")
    assert result.code == 0
    assert result.out == f"ferry {metadata.version('ferry')}\n"
    assert result.err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("svc1", "validate", "config", "--to", "n2"), "--to does not apply to 'validate config'"),
        (("svc1", "sync", "all", "--kw", "x"), "--kw does not apply to 'sync all'"),
        (("svc1", "start", "--eval"), "--eval does not apply to 'start'"),
        (("svc1", "drill", "stop", "--keep"), "--keep does not apply to 'drill stop'"),
        (("--kw", "x", "svc1", "start"), "--kw does not apply to 'start'"),
        (("--server", "https://n1:7443", "svc1", "get"), "--server does not apply to 'get'"),
        (("svc1", "start", "--bogus"), "unknown option --bogus for 'start'"),
        (("svc1", "start", "--to", "n2"), "--to does not apply to 'start'"),  # not --token
        (("svc1", "print", "status", "--serv", "x"), "unknown option --serv for 'print status'"),
        (("svc1", "strat"), "unknown action 'strat': did you mean 'start'?"),
        (("svc1", "start", "now"), "unexpected argument 'now' for 'start'"),
        (("svc1", "validate", "config", "--", "x"), "'validate config' takes nothing after '--'"),
        (("svc1", "restorepoint", "delete"), "the following arguments are required: POINT"),
        (("svc1", "start", "--time", "soon"), "argument --time: invalid float value: 'soon'"),
        (("daemon", "restart"), "unknown action 'daemon restart'"),
        ((), "the following arguments are required: SVC|COMMAND"),
    ],
)
def test_refused_in_one_line_exit_2(argv: tuple[str, ...], message: str) -> None:
    result = ferry(*argv)
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(f"ferry: usage: {message}")
    assert result.err.count("\n") == 1


# Each form the CLI took before it had sub-commands, and what it must still mean.
FORMS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("--config-dir", "D", "svc1", "validate", "config"), "validate config", {"config_dir": "D"}),
    (("svc1", "validate", "config", "--config-dir", "D"), "validate config", {"config_dir": "D"}),
    (("svc1", "print", "status", "-o", "json"), "print status", {"output": "json"}),
    (("-o", "json", "svc1", "sync", "all", "--wait"), "sync all",
     {"output": "json", "wait": True, "words": ["sync", "all"]}),
    (("svc1", "sync", "full", "--local", "--rid", "sync#1", "--target", "n3"), "sync full",
     {"local": True, "rid": ["sync#1"], "target": ["n3"], "words": ["sync", "full"]}),
    (("svc1", "get", "--kw", "ip#0.ipname", "--eval", "--impersonate", "n2"), "get",
     {"kw": ["ip#0.ipname"], "eval": True, "impersonate": "n2"}),
    (("svc*", "stop", "--local"), "stop", {"selector": "svc*", "local": True, "force": False}),
    (("svc1,svc2", "start"), "start", {"selector": "svc1,svc2", "lock_wait": 30.0, "at": None}),
    (("svc1", "docker"), "docker", {"words": ["docker"]}),
    (("svc1", "docker", "ps"), "docker", {"words": ["docker", "ps"]}),
    (("svc1", "drill", "stop", "--node", "n3"), "drill stop", {"node": "n3"}),
    (("svc1", "drill", "--yes", "--check", "true", "--keep"), "drill",
     {"yes": True, "check": "true", "keep": True}),
    (("svc1", "restorepoint", "delete", "P1", "--node", "n3"), "restorepoint delete",
     {"point": "P1", "node": "n3", "words": ["restorepoint", "delete", "P1"]}),
    (("svc1", "sync", "rsync-peer", "--rid", "sync#1"), "sync rsync-peer", {"rid": ["sync#1"]}),
    (("--config-dir", "D", "--var-dir", "V", "svc1", "drill", "bubble-up"), "drill bubble-up",
     {"var_dir": "V"}),
    (("svc2", "create", "--config", "F"), "create", {"config": "F"}),
    (("svc1", "switch", "--to", "n1", "--yes", "--wait", "--time", "180"), "switch",
     {"to": "n1", "yes": True, "time": 180.0}),
    (("svc1", "set", "--kw", "a.b=1", "--kw", "c.d=2", "--local"), "set",
     {"kw": ["a.b=1", "c.d=2"]}),
    (("--server", "https://n1:7443", "--token", "T", "svc1", "print", "status"), "print status",
     {"server": "https://n1:7443", "token": "T"}),
    (("--token", "T", "svc1", "validate", "config"), "validate config", {"token": "T"}),
    (("--local", "svc1", "start"), "start", {"local": True}),
    (("svc1", "--local", "stop", "--force"), "stop", {"local": True, "force": True}),
    (("svc1", "print", "--eval", "config"), "print config", {"eval": True}),
    (("svc1", "sync", "--local", "drp"), "sync drp", {"local": True}),
    (("doc", "sync.btrfs"), "doc", {"words": ["sync.btrfs"], "markdown": False}),
    (("doc", "--markdown"), "doc", {"words": [], "markdown": True}),
    (("daemon", "run"), "daemon run", {"words": ["run"]}),
    (("--var-dir", "V", "daemon", "status", "-o", "json"), "daemon status", {"output": "json"}),
    (("cluster", "issue", "n2", "--out", "DIR"), "cluster issue",
     {"words": ["issue", "n2"], "out": "DIR", "address": []}),
    (("cluster", "init", "--name", "c", "--force"), "cluster init", {"name": "c", "force": True}),
    (("cluster", "join", "B"), "cluster join", {"words": ["join", "B"]}),
    (("token", "create", "--role", "operator"), "token create",
     {"words": ["create"], "role": "operator", "name": None}),
    (("mon", "once"), "mon", {"words": ["once"]}),
    (("mon", "-o", "json"), "mon", {"words": [], "output": "json"}),
    (("completion", "zsh"), "completion", {"shell": "zsh"}),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "name", "expected"), FORMS)
def test_invocation_forms(argv: tuple[str, ...], name: str, expected: dict[str, Any]) -> None:
    parsed = parse(argv)
    assert parsed.command.name == name
    values = vars(parsed.args)
    assert {k: values.get(k) for k in expected} == expected
    assert parsed.selector == (None if parsed.command in NODE_COMMANDS else argv_selector(argv))
    assert all(hasattr(parsed.args, option) for option in OPTIONS)


def argv_selector(argv: tuple[str, ...]) -> str:
    return next(w for w in argv if w in ("svc1", "svc2", "svc*", "svc1,svc2"))


def test_every_handler_resolves() -> None:
    for command in (*SERVICE_COMMANDS, *NODE_COMMANDS):
        if command.run is not None:
            assert callable(command.run.resolve()), command.name


def test_grammar_agrees_with_the_code() -> None:
    verbs = {c.words[1] for c in SERVICE_COMMANDS if c.words[0] == "sync" and len(c.words) == 2}
    assert {v for v in verbs if not v.endswith("-peer")} == set(ACTION_POOLS)
    dests = {a.dest for c in (*SERVICE_COMMANDS, *NODE_COMMANDS) for a in c.args}
    assert not dests & set(OPTIONS)  # a positional never reads as a given option
    for command in (*SERVICE_COMMANDS, *NODE_COMMANDS):
        assert set(command.options) <= set(OPTIONS), command.name
        assert set(command.option_help) <= set(command.options), command.name
