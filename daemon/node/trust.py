"""Is the var dir ferryd's own? A directory or secret another user can write lets that user
plant a root token, a CA or a cluster secret: ferryd refuses to start on it.

Trusted means owned by root or by the user ferryd runs as, and writable by nobody else
(no group or other write bit; a world-writable ancestor such as ``/tmp`` is accepted only
with its sticky bit). Secrets (``tokens.json``, ``cluster/secret``, ``tls/*.key``) must
moreover be unreadable by group and others.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

SECRETS = ("tokens.json", "cluster/secret", "tls/ca.key", "tls/node.key")
PRIVATE_DIRS = ("cluster", "tls", "tls/ca.crt", "tls/node.crt")  # writable: a planted CA


def _owner_problem(path: Path, st: os.stat_result) -> str | None:
    if st.st_uid not in (0, os.geteuid()):
        return f"{path} is owned by uid {st.st_uid}, not by root"
    return None


def _check(path: Path, *, secret: bool = False, ancestor: bool = False) -> str | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode) and not ancestor:
        return f"{path} is a symbolic link; ferryd keeps its state in real files"
    if ancestor:
        st = path.stat()
    problem = _owner_problem(path, st)
    if problem:
        return problem
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and not (ancestor and stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX):
        return f"{path} is writable by group or others (mode {mode:04o})"
    if secret and mode & 0o077:
        return f"{path} is readable by group or others (mode {mode:04o}): it holds a secret"
    return None


def untrusted(var_dir: Path) -> list[str]:
    """What makes var_dir unsafe to run on (empty: safe). It must exist."""
    problems = []
    var_dir = var_dir.absolute()
    for parent in reversed(var_dir.parents):
        if (problem := _check(parent, ancestor=True)) is not None:
            problems.append(problem)
    for path, secret in (
        (var_dir, False),
        *((var_dir / name, False) for name in PRIVATE_DIRS),
        *((var_dir / name, True) for name in SECRETS),
    ):
        if (problem := _check(path, secret=secret)) is not None:
            problems.append(problem)
    return problems
