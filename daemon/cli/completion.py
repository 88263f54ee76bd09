"""Shell completion of ``ferry`` (bash, zsh) through argcomplete.

The shell runs ``ferry`` with ``_ARGCOMPLETE`` and ``COMP_LINE``/``COMP_POINT`` set;
:func:`daemon.cli.main.main` hands over to :func:`complete`, which builds the same parser
as a real run with completers on the values: service names (the config dir's), the
resources and nodes of the service on the line, its restore points on this node (the var
dir's catalogue). A completer never raises: whatever it cannot read, it leaves out.
``ferry completion bash|zsh`` prints the script to source.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from daemon.cli.parser import NODE_NAMES, Scan, build, scan


def print_script(args: argparse.Namespace) -> int:
    """``ferry completion bash|zsh``: the script that registers the completion."""
    import argcomplete

    print(argcomplete.shellcode(["ferry"], shell=args.shell), end="")
    return 0


def complete() -> None:
    """Write the completions of COMP_LINE at COMP_POINT for the shell, and exit."""
    try:
        import argcomplete
    except ImportError:  # no completion rather than running the command
        sys.exit(1)
    line = os.environ.get("COMP_LINE", "")
    try:
        line, point = literal_hashes(line, int(os.environ.get("COMP_POINT", len(line))))
        os.environ["COMP_LINE"], os.environ["COMP_POINT"] = line, str(point)
        words = argcomplete.split_line(line, point)[3]
    except (ValueError, argcomplete.ArgcompleteException):
        words = []
    skip = int(os.environ.get("_ARGCOMPLETE", "1"))  # the program's words (python -m ...: 3)
    seen = scan(words[skip:])
    candidates = Candidates(seen)
    completers = {
        "service": candidates.services,
        "rid": candidates.rids,
        "node": candidates.nodes,
        "point": candidates.points,
    }
    parser = build(seen.selector, completers={k: _quiet(f) for k, f in completers.items()})
    argcomplete.autocomplete(parser.root, always_complete_options=False)


def literal_hashes(line: str, point: int) -> tuple[str, int]:
    """The line with every '#' inside a word escaped, and the point moved to match:
    argcomplete's lexer takes any '#' for a comment, a shell only one that starts a word
    (a resource id is fs#0)."""
    out: list[str] = []
    quote = ""
    shift = 0
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and i > 0 and not line[i - 1].isspace():
            out.append("\\")
            shift += i < point
        out.append(ch)
    return "".join(out), point + shift


def _quiet(completer: Callable[[str], list[str]]) -> Callable[..., Iterable[str]]:
    """argcomplete's completer signature; a failure completes nothing."""

    def run(prefix: str = "", **_: object) -> Iterable[str]:
        try:
            return completer(prefix)
        except Exception:  # best effort: never a traceback on a TAB
            return []

    return run


class Candidates:
    """The values to offer, read from the directories the command line names."""

    def __init__(self, seen: Scan) -> None:
        self.seen = seen

    def _config_dir(self) -> Path:
        from daemon.config.store import config_dir

        return config_dir(self.seen.config_dir)

    def _selected(self) -> list[str]:
        from daemon.config.store import SelectorError, select

        if self.seen.selector is None:
            return []
        try:
            return select(self._config_dir(), self.seen.selector)
        except SelectorError:
            return []

    def _sections(self, name: str) -> list[str]:
        from daemon.config import ini
        from daemon.config.store import service_path

        doc = ini.load(service_path(self._config_dir(), name))
        return [s for s in doc.sections if s != "DEFAULT"]

    def services(self, prefix: str) -> list[str]:
        """Installed service names (and, after a comma, the next one of a list)."""
        from daemon.config.store import installed_services

        names = installed_services(self._config_dir())
        return _listed(prefix, [n for n in names if n not in NODE_NAMES])

    def rids(self, prefix: str) -> list[str]:
        """The resources of the selected services (``--rid`` takes comma lists too)."""
        found = {rid for name in self._selected() for rid in self._sections(name)}
        return _listed(prefix, sorted(found))

    def nodes(self, prefix: str) -> list[str]:
        """The nodes and drpnodes of the selected services, as this node evaluates them."""
        from daemon.config import ini
        from daemon.config.store import local_nodename, service_path
        from daemon.service.config import EvalContext, ServiceConfig

        found: list[str] = []
        for name in self._selected():
            doc = ini.load(service_path(self._config_dir(), name))
            members = ServiceConfig(doc, context=EvalContext(nodename=local_nodename())).members
            found += [n for n in (*members.nodes, *members.drpnodes) if n not in found]
        return _listed(prefix, found)

    def points(self, prefix: str) -> list[str]:
        """The restore points this node keeps of the selected services, newest first."""
        from daemon.cli.client import DEFAULT_VAR_DIR
        from daemon.restore.keeper import points_of

        var = Path(self.seen.var_dir or os.environ.get("FERRY_VAR_DIR") or DEFAULT_VAR_DIR)
        names: list[str] = []
        for name in self._selected():
            rids = [s for s in self._sections(name) if s.startswith("sync#")]
            names += [p.name for p in reversed(points_of(var, name, rids))]
        return names


def _listed(prefix: str, names: list[str]) -> list[str]:
    """Values for a word that may be a comma list: after ``a,b,``, the names not yet in it."""
    head, _, _ = prefix.rpartition(",")
    if not head:
        return names
    given = head.split(",")
    return [f"{head},{name}" for name in names if name not in given]
