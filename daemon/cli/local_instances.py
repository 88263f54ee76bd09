"""The selected services as instances on this node: the var dir, each service loaded and
validated from the config dir, the ``--rid`` list, and the action log on stderr.

What the commands acting here (``--local``, print status, restore points, drills) share.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from daemon.cli.errors import ActionFailed
from daemon.config import ini
from daemon.config.errors import ConfigError
from daemon.config.store import config_dir, local_nodename, select, service_path
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.instance import Instance
from daemon.service.validate import has_errors, validate

DEFAULT_VAR_DIR = "/var/lib/ferry"


def var_dir(args: argparse.Namespace) -> Path:
    return Path(args.var_dir or os.environ.get("FERRY_VAR_DIR") or DEFAULT_VAR_DIR)


def instances(args: argparse.Namespace, selector: str) -> list[Instance]:
    """This node's instance of every selected service; ConfigError when one has an error."""
    directory = config_dir(args.config_dir)
    node = local_nodename()
    out = []
    for name in select(directory, selector):
        path = service_path(directory, name)
        context = EvalContext(nodename=node, var_dir=str(var_dir(args)))
        svc = ServiceConfig(ini.load(path), context=context)
        errors = validate(svc)
        if has_errors(errors):
            raise ConfigError([i for i in errors if i.severity.value == "error"])
        if node not in svc.members.all_nodes:
            raise ActionFailed(
                f"{name}: this node ({node}) is not in nodes or drpnodes "
                f"({' '.join(svc.members.all_nodes)})"
            )
        out.append(Instance(svc, node, var_dir(args)))
    return out


def rids(args: argparse.Namespace) -> list[str] | None:
    """The resources of ``--rid`` (repeated or comma lists), or None for all."""
    if not args.rid:
        return None
    return [rid for item in args.rid for rid in item.split(",") if rid]


class _ActionLog(logging.Handler):
    """Prints the action's steps on stderr, one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        level = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        print(f"{level}{record.getMessage()}", file=sys.stderr)


def with_action_log() -> None:
    logger = logging.getLogger("ferry")
    if not any(isinstance(h, _ActionLog) for h in logger.handlers):
        logger.addHandler(_ActionLog())
    logger.setLevel(logging.INFO)
