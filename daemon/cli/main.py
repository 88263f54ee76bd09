"""``ferry``: the command line.

``ferry [global options] <selector> <action words> [options]`` where the
selector is a service name, a glob or a comma list; or ``ferry <command> ...`` (doc,
daemon, token, mon, cluster, completion). What each accepts: :mod:`daemon.cli.commands`.
Exit codes: 0 success, 1 action failed, 2 usage or configuration error.
"""
# PYTHON_ARGCOMPLETE_OK (argcomplete's global activation completes ferry too)

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence

from daemon.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ActionFailed, UsageError
from daemon.cli.parser import parse
from daemon.config.errors import ConfigError
from daemon.config.store import SelectorError


def run(argv: Sequence[str]) -> int:
    """Parse argv and run; returns the exit code."""
    argv = list(argv)
    passthrough: list[str] = []
    if "--" in argv:  # what follows '--' goes untouched to the action (ferry SVC docker -- ARGS)
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    parsed = parse(argv)
    args, command = parsed.args, parsed.command
    args.passthrough = passthrough
    if command.run is None:  # not reached: a group requires one of its sub-commands
        raise UsageError(f"'{command.name}' needs an action")
    if parsed.selector is None:
        return command.run.resolve()(args)
    if passthrough and not command.passthrough:
        raise UsageError(f"'{command.name}' takes nothing after '--'")
    return command.run.resolve()(args, parsed.selector)


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
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (completion.py)
        from daemon.cli.completion import complete

        complete()
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
