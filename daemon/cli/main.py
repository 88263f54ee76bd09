"""``ferry``: the command line.

``ferry [global options] <selector> <action words> [options]`` where the
selector is a service name, a glob or a comma list; or ``ferry doc [KEYWORD]``.
Exit codes: 0 success, 1 action failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from daemon.cli import (
    cluster_cmds,
    config_cmds,
    daemon_cmds,
    drill_cmds,
    instance_cmds,
    restore_cmds,
    sync_cmds,
)
from daemon.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ActionFailed, UsageError
from daemon.config.errors import ConfigError, closest
from daemon.config.store import SelectorError


@dataclass(frozen=True)
class Action:
    words: tuple[str, ...]
    run: Callable[[argparse.Namespace, str], int]
    options: tuple[str, ...]
    help: str


SERVICE_ACTIONS = (
    Action(
        ("validate", "config"),
        config_cmds.validate_config,
        (),
        "check the configuration for every node of the service",
    ),
    Action(
        ("print", "config"),
        config_cmds.print_config,
        ("eval", "impersonate"),
        "show the configuration, or with --eval what a node will use",
    ),
    Action(
        ("get",),
        config_cmds.get_keyword,
        ("kw", "eval", "impersonate"),
        "print one keyword's value",
    ),
    Action(
        ("set",),
        config_cmds.set_keyword,
        ("kw", "local"),
        "set keywords (validated first, written atomically)",
    ),
    Action(("unset",), config_cmds.unset_keyword, ("kw", "local"), "remove keywords"),
    Action(
        ("create",),
        config_cmds.create,
        ("config", "local"),
        "install a new service from --config FILE (through the daemon: reaches its nodes)",
    ),
    Action(
        ("print", "status"),
        daemon_cmds.print_status,
        ("server",),
        "the instance's status on this node (with --server: on that node): avail, overall, "
        "resources",
    ),
    Action(
        ("print", "schedule"),
        instance_cmds.print_schedule,
        (),
        "the scheduled jobs: schedule, last run, next run",
    ),
    Action(
        ("start",),
        instance_cmds.start,
        ("local", "rid", "lock_wait", "wait", "time", "server", "at"),
        "start the resources in order; roll back on failure (--local --at POINT: from a "
        "restore point)",
    ),
    Action(
        ("stop",),
        instance_cmds.stop,
        ("local", "rid", "force", "lock_wait", "wait", "time", "server"),
        "stop the resources in reverse order; standby ones stay up unless --force",
    ),
    Action(
        ("startstandby",),
        instance_cmds.startstandby,
        ("local", "rid", "lock_wait", "wait", "time", "server"),
        "start only the standby resources",
    ),
    Action(
        ("switch",),
        daemon_cmds.activation("switch"),
        ("to", "yes", "wait", "time", "server"),
        "move the service to --to NODE (DR activation when NODE is a drpnode)",
    ),
    Action(
        ("takeover",),
        daemon_cmds.activation("takeover"),
        ("yes", "wait", "time", "server", "at"),
        "activate the service on this node (the DR command)",
    ),
    *(
        Action(
            (verb,),
            daemon_cmds.through_daemon(verb),
            ("wait", "time", "server"),
            help_text,
        )
        for verb, help_text in (
            ("giveback", "move the service back to its leader"),
            ("freeze", "stop automatic actions on this instance (persistent)"),
            ("thaw", "allow automatic actions again"),
            ("clear", "forget a failed state so the daemon tries again"),
        )
    ),
    Action(
        ("drill",),
        drill_cmds.drill,
        ("node", "check", "keep", "yes", "wait", "time", "local", "server", "at"),
        "rehearse a takeover on this node in an isolated bubble (production goes on); "
        "prints the report",
    ),
    Action(
        ("drill", "stop"),
        drill_cmds.drill_stop,
        ("node", "local", "time", "server"),
        "end a drill kept with --keep",
    ),
    Action(
        ("print", "drills"),
        drill_cmds.print_drills,
        ("server",),
        "the recent drills on this node: result, RTO, failing step",
    ),
    Action(
        ("print", "restorepoints"),
        restore_cmds.print_restorepoints,
        ("node", "server"),
        "the restore points kept on this node (or --node N): name, age, complete, size",
    ),
    Action(
        ("restorepoint", "delete"),
        restore_cmds.delete_restorepoint,
        ("node", "server"),
        "restorepoint delete POINT: delete a restore point here (or --node N); never the newest",
    ),
    Action(
        ("drill", "bubble-up"),
        drill_cmds.bubble_up,
        (),
        "internal: start the resources inside a drill's bubble (run by the drill)",
    ),
    Action(
        ("drill", "bubble-down"),
        drill_cmds.bubble_down,
        (),
        "internal: stop the resources inside a drill's bubble (run by the drill)",
    ),
    Action(
        ("docker",),
        instance_cmds.docker_passthrough,
        (),
        "run the docker CLI against the service's engine: ferry SVC docker -- ARGS",
    ),
    Action(
        ("sync", "docker-peer"),
        sync_cmds.docker_peer,
        ("rid",),
        "internal: the target side of a docker sync (run by the sender over ssh)",
    ),
    Action(
        ("sync", "rsync-peer"),
        sync_cmds.rsync_peer,
        ("rid",),
        "internal: the target side of an rsync sync (run by the sender over ssh)",
    ),
    Action(
        ("sync", "btrfs-peer"),
        sync_cmds.btrfs_peer,
        ("rid",),
        "internal: the target side of a btrfs sync (run by the sender over ssh)",
    ),
    Action(
        ("sync", "stamp-peer"),
        sync_cmds.stamp_peer,
        ("rid",),
        "internal: record a transfer's stamp and keep its restore point (run over ssh)",
    ),
    *(
        Action(
            ("sync", verb),
            sync_cmds.sync,
            ("local", "rid", "target", "wait", "time", "server"),
            f"sync {verb}: replicate to the targets it covers",
        )
        for verb in sync_cmds.SYNC_VERBS
    ),
)


PASSTHROUGH_ACTIONS = (
    ("docker",),
    ("sync", "btrfs-peer"),
    ("sync", "docker-peer"),
    ("sync", "rsync-peer"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Ferry cluster agent. ferry <selector> <action words> [options]; "
        "ferry doc [KEYWORD]; ferry cluster init|issue NODE|join BUNDLE.",
        epilog="service actions: " + "; ".join(" ".join(a.words) for a in SERVICE_ACTIONS),
    )
    parser.add_argument(
        "--config-dir", help="service configurations (default /etc/ferry, or FERRY_CONFIG_DIR)"
    )
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )
    parser.add_argument("--eval", action="store_true", help="evaluate for a node")
    parser.add_argument("--impersonate", metavar="NODE", help="evaluate as NODE")
    parser.add_argument(
        "--kw",
        action="append",
        default=[],
        metavar="SECTION.KW[=VALUE]",
        help="keyword to get, set or unset",
    )
    parser.add_argument(
        "--var-dir", help="state directory (default /var/lib/ferry, or FERRY_VAR_DIR)"
    )
    parser.add_argument("--local", action="store_true", help="act on this node directly")
    parser.add_argument("--rid", action="append", default=[], help="only these resources")
    parser.add_argument(
        "--force",
        action="store_true",
        help="stop: also standby resources; cluster init/issue/join: replace what exists",
    )
    parser.add_argument("--target", action="append", default=[], help="sync: only these nodes")
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for another action on the service",
    )
    parser.add_argument("--config", metavar="FILE", help="create: the service configuration")
    parser.add_argument("--wait", action="store_true", help="wait for the action to end")
    parser.add_argument("--time", type=float, metavar="SECONDS", help="with --wait: at most")
    parser.add_argument("--to", metavar="NODE", help="switch: the node to move to")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--node", metavar="NODE", help="drill: the node that rehearses")
    parser.add_argument(
        "--check", metavar="CMD", help="drill: the check run in the bubble (default drill_check)"
    )
    parser.add_argument("--keep", action="store_true", help="drill: leave the bubble up")
    parser.add_argument(
        "--at", metavar="POINT", help="takeover, drill: from this restore point (name or time)"
    )
    parser.add_argument("--server", metavar="URL", help="a remote ferryd (https://node:7443)")
    parser.add_argument("--token", metavar="TOKEN", help="bearer token for --server")
    parser.add_argument("--role", choices=("root", "operator", "guest"), help="token create")
    parser.add_argument(
        "--name", help="token create/revoke: the token's name; cluster init: the cluster's"
    )
    parser.add_argument("--out", metavar="DIR|FILE.pem", help="cluster issue: the join bundle")
    parser.add_argument(
        "--address",
        action="append",
        default=[],
        metavar="ADDR",
        help="cluster init/issue: an extra address (IP or DNS name) in the node's certificate",
    )
    parser.add_argument("--markdown", action="store_true", help="doc: the reference as markdown")
    parser.add_argument("--api", action="store_true", help="doc: the API reference as markdown")
    parser.add_argument("--openapi", action="store_true", help="doc: the OpenAPI document")
    parser.add_argument("selector", help="service name, glob or comma list; or 'doc'")
    parser.add_argument("words", nargs="*", help="action words")
    return parser


OPTION_FLAGS = {
    "eval": "--eval",
    "impersonate": "--impersonate",
    "kw": "--kw",
    "local": "--local",
    "rid": "--rid",
    "force": "--force",
    "target": "--target",
    "wait": "--wait",
    "time": "--time",
    "to": "--to",
    "yes": "--yes",
    "server": "--server",
    "config": "--config",
    "node": "--node",
    "check": "--check",
    "keep": "--keep",
    "at": "--at",
}


def _check_options(args: argparse.Namespace, action: Action) -> None:
    for name, flag in OPTION_FLAGS.items():
        value = getattr(args, name)
        if value and name not in action.options:
            raise UsageError(f"{flag} does not apply to '{' '.join(action.words)}'")


def _find_action(words: list[str]) -> Action:
    if words[:1] == ["docker"]:
        return next(a for a in SERVICE_ACTIONS if a.words == ("docker",))
    for action in SERVICE_ACTIONS:
        if tuple(words) == action.words:
            return action
        if action.words == ("restorepoint", "delete") and words[:2] == list(action.words):
            if len(words) != 3:
                raise UsageError("restorepoint delete POINT (a name from print restorepoints)")
            return action
    said = " ".join(words) or "(nothing)"
    hint = closest(said, [" ".join(a.words) for a in SERVICE_ACTIONS])
    known = ", ".join(" ".join(a.words) for a in SERVICE_ACTIONS)
    raise UsageError(f"unknown action {said!r}" + (f": {hint}" if hint else f" (known: {known})"))


def run(argv: Sequence[str]) -> int:
    """Parse argv and run; returns the exit code."""
    argv = list(argv)
    passthrough: list[str] = []
    if "--" in argv:  # what follows '--' goes untouched to the action (ferry SVC docker -- ARGS)
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args = _parser().parse_intermixed_args(argv)
    args.passthrough = passthrough
    node_commands = {
        "doc": config_cmds.doc,
        "daemon": daemon_cmds.daemon_command,
        "token": daemon_cmds.token_command,
        "mon": daemon_cmds.mon_command,
        "cluster": cluster_cmds.cluster_command,
    }
    if args.selector in node_commands:
        return node_commands[args.selector](args)
    action = _find_action(args.words)
    args.point = args.words[2] if action.words == ("restorepoint", "delete") else None
    _check_options(args, action)
    if args.passthrough and action.words not in PASSTHROUGH_ACTIONS:
        raise UsageError(f"'{' '.join(action.words)}' takes nothing after '--'")
    return action.run(args, args.selector)


def _error(
    as_json: bool, lines: list[str], code: int, issues: list[dict[str, object]] | None = None
) -> int:
    """Report a failure: JSON on stdout when asked, always readable lines on stderr."""
    if as_json:
        print(json.dumps({"error": "\n".join(lines), "issues": issues or []}, indent=2))
    for line in lines:
        print(line, file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; never shows a traceback unless FERRY_DEBUG is set."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "json" in argv and any(a in ("-o", "--output") for a in argv)
    try:
        code = run(argv)
    except UsageError as exc:
        code = _error(as_json, [f"ferry: usage: {exc}"], EXIT_USAGE)
    except SelectorError as exc:
        code = _error(as_json, [f"ferry: {exc}"], EXIT_USAGE)
    except ConfigError as exc:
        code = _error(
            as_json, [i.render() for i in exc.issues], EXIT_USAGE, [i.as_dict() for i in exc.issues]
        )
    except ActionFailed as exc:
        code = _error(as_json, [f"ferry: {exc}"], EXIT_FAILED)
    except KeyboardInterrupt:
        code = _error(as_json, ["ferry: interrupted"], EXIT_FAILED)
    except BrokenPipeError:
        code = EXIT_OK
    except Exception as exc:  # last resort: one line, never a traceback
        if os.environ.get("FERRY_DEBUG"):
            traceback.print_exc()
        code = _error(
            as_json,
            [f"ferry: internal error: {type(exc).__name__}: {exc} (set FERRY_DEBUG=1 for details)"],
            EXIT_FAILED,
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
