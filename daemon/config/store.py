"""Where service configurations live: ``<config dir>/<name>.conf``, written atomically."""

from __future__ import annotations

import fnmatch
import os
import re
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

DEFAULT_CONFIG_DIR = "/etc/ferry"
MAX_NAME = 64  # a service name: a file name, a path part, a DNS-like label
SERVICE_NAME_PATTERN = rf"^[a-z0-9][a-z0-9_.-]{{0,{MAX_NAME - 1}}}$"
_NAME_RE = re.compile(SERVICE_NAME_PATTERN.removeprefix("^").removesuffix("$"))
RESERVED_NAMES = ("node",)  # node.conf is the node's own file, not a service


class SelectorError(Exception):
    """A service selector that matches nothing, or names an invalid service."""


def service_name_problem(name: str) -> str | None:
    """Why name is not a valid service name, or None. The one check of the CLI and the API:
    the whole name must match (``re.match`` with ``$`` lets a trailing newline through)."""
    if len(name) > MAX_NAME:
        return f"{name[:40]!r}... is {len(name)} characters long, more than {MAX_NAME}"
    if not _NAME_RE.fullmatch(name):
        return (
            f"{name[:80]!r} is not a valid service name (lower case letters, digits, '.', '_', '-')"
        )
    if name in RESERVED_NAMES:
        return f"{name!r} is reserved (node.conf is not a service)"
    return None


def config_dir(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("FERRY_CONFIG_DIR") or DEFAULT_CONFIG_DIR)


def local_nodename() -> str:
    """This node's name: FERRY_NODENAME, else the short host name, lower case."""
    return (os.environ.get("FERRY_NODENAME") or socket.gethostname().split(".")[0]).lower()


def service_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.conf"


def installed_services(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    with os.scandir(directory) as entries:  # faster than Path.glob: every scheduler tick
        stems = (os.path.splitext(e.name)[0] for e in entries if e.name.endswith(".conf"))
        return sorted(stem for stem in stems if stem != "node")


def select(directory: Path, selector: str) -> list[str]:
    """Expand ``svc1``, ``svc*`` or ``svc1,svc2`` into the names of installed services."""
    return select_among(lambda: installed_services(directory), selector, f"in {directory}")


def select_among(known: Callable[[], list[str]], selector: str, where: str) -> list[str]:
    """Expand a selector; globs match the names ``known`` gives (asked only for a glob),
    ``where`` says where they are in the error."""
    names: list[str] = []
    installed: list[str] | None = None
    for word in filter(None, selector.split(",")):
        if any(ch in word for ch in "*?["):
            installed = known() if installed is None else installed
            matched = fnmatch.filter(installed, word)
            if not matched:
                raise SelectorError(f"no service matches {word!r} {where}")
            names += [m for m in matched if m not in names]
            continue
        problem = service_name_problem(word)
        if problem:
            raise SelectorError(problem)
        if word not in names:
            names.append(word)
    if not names:
        raise SelectorError("empty service selector")
    return names


def write_atomically(path: Path, text: str) -> None:
    """Replace path's content in one step: readers see the old or the new file, never half."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
