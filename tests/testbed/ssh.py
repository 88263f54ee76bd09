"""Keys and configuration for the nodes' sshd and root's ssh client.

One cluster key pair (root's ``id_ed25519`` on every node, trusted by every
node) and one host key per node; ``known_hosts`` lists every node's host key
under its name and its address, so ``ssh n3`` never prompts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .procs import run
from .topology import Layout, Topology, node_ip


def keygen(path: Path, comment: str) -> None:
    """An ed25519 key pair without passphrase (replaces an old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, path.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def make_keys(layout: Layout, topo: Topology) -> None:
    """The cluster key, each node's host key, authorized_keys, known_hosts."""
    keygen(layout.ssh_dir / "id_ed25519", "root@ferry-testbed")
    pub = (layout.ssh_dir / "id_ed25519.pub").read_text()
    (layout.ssh_dir / "authorized_keys").write_text(pub)
    known = []
    for node in topo.nodes:
        keygen(layout.host_key(node), f"root@{node}")
        host_pub = layout.host_key(node).with_suffix(".pub").read_text().split()
        known.append(f"{node},{node_ip(node)} {host_pub[0]} {host_pub[1]}\n")
    (layout.ssh_dir / "known_hosts").write_text("".join(known))


def sshd_config(layout: Layout, node: str) -> str:
    """The node's own sshd_config: its address only, root by key only."""
    return "\n".join(
        [
            f"ListenAddress {node_ip(node)}",
            "Port 22",
            f"HostKey {layout.host_key(node)}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            f"AuthorizedKeysFile {layout.ssh_dir / 'authorized_keys'}",
            f"PidFile /run/sshd-{node}.pid",
            "UseDNS no",
            "PrintMotd no",
            "LogLevel ERROR",
            "MaxStartups 200",
            "MaxSessions 200",
            "AcceptEnv LANG LC_*",
            "Subsystem sftp internal-sftp",
            "",
        ]
    )


def install_node_files(layout: Layout, node: str, root_home: Path) -> None:
    """Write the node's sshd_config and fill its /root/.ssh."""
    layout.sshd_config(node).write_text(sshd_config(layout, node))
    dot_ssh = root_home / ".ssh"
    dot_ssh.mkdir(parents=True, exist_ok=True)
    dot_ssh.chmod(0o700)
    for name in ("id_ed25519", "id_ed25519.pub", "authorized_keys", "known_hosts"):
        shutil.copyfile(layout.ssh_dir / name, dot_ssh / name)
    (dot_ssh / "id_ed25519").chmod(0o600)
