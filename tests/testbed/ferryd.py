"""ferryd in the testbed's nodes: node.conf, a shared cluster CA, start, health wait.

Used by ``Testbed.start_ferryd`` / ``stop_ferryd`` and ``up --ferryd``. The CA is
made once in the testbed's state dir (``ca/``) and copied with its key to every
node's ``/var/lib/ferry/tls``, where each ferryd issues its own certificate at
start (a test shortcut: in production ``ca.key`` stays on one node).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from .topology import node_ip

VAR_DIR = "/var/lib/ferry"
CONFIG_DIR = "/etc/ferry"
DEFAULTS: dict[str, Any] = {
    "hb_interval": "1s",
    "hb_timeout": "3s",
    "ready_period": "1s",
    "rejoin_grace": "3s",
}


def node_conf(name: str, nodes: list[str], cluster: str = "testbed", **settings: Any) -> str:
    """The node.conf of one node: its address, its peers, short cluster timings."""
    values = {**DEFAULTS, **settings}
    peers = " ".join(f"{n}={node_ip(n)}:7443" for n in nodes)
    lines = [
        "[node]",
        f"name = {name}",
        f"listen_addr = {node_ip(name)}",
        "listen_port = 7443",
        "stop_grace = 5s",
        "",
        "[cluster]",
        f"name = {cluster}",
        f"peers = {peers}",
        *(f"{k} = {v}" for k, v in values.items()),
    ]
    return "\n".join(lines) + "\n"


def prepare(state_dir: Path, root: Path, name: str, nodes: list[str], **settings: Any) -> None:
    """Write node.conf and the cluster CA into the node's filesystem (root: /proc/INIT/root)."""
    repo = str(Path(__file__).resolve().parents[2])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from daemon.tls.authority import init_cluster_ca, tls_files  # the project's code, host side

    ca_dir = state_dir / "ca"
    init_cluster_ca(ca_dir, "testbed")
    conf = root / CONFIG_DIR.lstrip("/")
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "node.conf").write_text(node_conf(name, nodes, **settings))
    tls = root / VAR_DIR.lstrip("/") / "tls"
    tls.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = tls_files(ca_dir)
    for path in (files.ca_cert, files.ca_key):
        shutil.copy(path, tls / path.name)
        (tls / path.name).chmod(0o600 if path.name.endswith(".key") else 0o644)


def command(python: str) -> list[str]:
    return [python, "-m", "daemon.main", "--config-dir", CONFIG_DIR, "--var-dir", VAR_DIR]


def socket_path(root: Path) -> Path:
    return root / VAR_DIR.lstrip("/") / "ferryd.sock"
