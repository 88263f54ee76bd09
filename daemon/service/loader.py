"""Build a service's instance on this node from its file: load, validate, bind.

Shared by the CLI (``--local`` runs) and the daemon, so that both refuse the
same configurations with the same located errors.
"""

from __future__ import annotations

from pathlib import Path

from daemon.config import ini
from daemon.config.errors import ConfigError, Severity
from daemon.config.store import service_path
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.instance import Instance
from daemon.service.validate import validate


class NotAnInstance(Exception):
    """The service has no instance on this node (the node is in neither nodes nor drpnodes)."""


def load_config(
    config_dir: Path, var_dir: Path, name: str, node: str, clustername: str = "default"
) -> ServiceConfig:
    """The service's configuration evaluated for node; ConfigError when it has errors."""
    context = EvalContext(nodename=node, clustername=clustername, var_dir=str(var_dir))
    svc = ServiceConfig(ini.load(service_path(config_dir, name)), context=context)
    errors = [i for i in validate(svc) if i.severity is Severity.ERROR]
    if errors:
        raise ConfigError(errors)
    return svc


def load_instance(
    config_dir: Path, var_dir: Path, name: str, node: str, clustername: str = "default"
) -> Instance:
    """The instance of service ``name`` on node; ConfigError or NotAnInstance when there is none."""
    svc = load_config(config_dir, var_dir, name, node, clustername)
    if node not in svc.members.all_nodes:
        raise NotAnInstance(
            f"{name}: this node ({node}) is not in nodes or drpnodes "
            f"({' '.join(svc.members.all_nodes)})"
        )
    return Instance(svc, node, var_dir)
