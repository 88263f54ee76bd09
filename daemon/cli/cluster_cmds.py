"""``ferry cluster init|issue|join``: the cluster CA and node certificates, by hand.

``init`` makes the CA on one node (and that node's certificate); ``issue NODE`` on
that node writes a join bundle for NODE (its certificate and key, and ``ca.crt``);
``join BUNDLE`` on NODE checks and installs it into ``<var dir>/tls``. ferryd reads
the installed files at its next start.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

from daemon.cli.errors import EXIT_OK, EXIT_USAGE, ActionFailed, UsageError
from daemon.cli.local_instances import var_dir
from daemon.config.store import config_dir
from daemon.node.config import NODE_NAME_RE, NodeConfig, load_node_config
from daemon.tls.authority import TlsError, init_cluster, missing_names
from daemon.tls.bundle import install_bundle, read_bundle, write_bundle

USAGE = (
    "ferry cluster init [--name NAME] [--force] | issue NODE [--out DIR|FILE.pem] "
    "[--address ADDR ...] [--force] | join BUNDLE [--force]"
)
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_DNS_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def _node_config(args: argparse.Namespace) -> NodeConfig:
    return load_node_config(config_dir(args.config_dir) / "node.conf")


def _addresses(values: list[str]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_address(value)))
            continue
        except ValueError:
            pass
        if len(value) > 253 or not _DNS_RE.fullmatch(value):
            raise UsageError(f"--address {value!r}: expected an IP address or a DNS name")
        out.append(value.lower())
    return out


def _print(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.output == "json":
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(lines))


def _init(args: argparse.Namespace, words: list[str]) -> int:
    if words:
        raise UsageError(f"cluster init takes no argument (got {' '.join(words)!r})")
    config = _node_config(args)
    name = args.name or config.cluster.name
    if not NODE_NAME_RE.fullmatch(name):
        raise UsageError(f"--name {name!r}: lower-case letters, digits, '.', '_', '-'")
    node = config.node.name
    addresses = [config.node.listen_addr, *_addresses(args.address)]
    made = init_cluster(var_dir(args), name, node, addresses, force=args.force)
    data = {
        "cluster": name,
        "node": node,
        "ca_cert": str(made.ca_cert),
        "ca_key": str(made.ca_key),
        "node_cert": str(made.node_cert),
        "node_key": str(made.node_key),
        "replaced": made.replaced,
    }
    lines = [
        f"cluster CA 'ferry {name} CA' {'replaced' if made.replaced else 'made'}: {made.ca_cert}",
        f"CA key (stays on this node, 0600): {made.ca_key}",
        f"certificate of node {node}: {made.node_cert} (key {made.node_key})",
        "next: 'ferry cluster issue NODE' here for each other node; restart ferryd if it runs",
    ]
    _print(args, data, lines)
    return EXIT_OK


def _issue(args: argparse.Namespace, words: list[str]) -> int:
    if len(words) != 1:
        raise UsageError("cluster issue takes one node name: ferry cluster issue NODE")
    node = words[0]
    if not NODE_NAME_RE.fullmatch(node):
        raise UsageError(f"{node!r} is not a valid node name")
    out = Path(args.out or f"ferry-join-{node}")
    kind: Literal["dir", "pem"] = "pem" if out.suffix == ".pem" else "dir"
    existing = [out] if kind == "pem" else [out / f"{node}.crt", out / f"{node}.key"]
    if kind == "dir" and out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    clash = [str(p) for p in existing if p.exists()]
    if clash and not args.force:
        raise UsageError(f"{', '.join(clash)} already exists: --force overwrites")
    written = write_bundle(var_dir(args), node, out, _addresses(args.address), kind)
    data = {"node": node, "bundle": str(out), "files": [str(p) for p in written]}
    lines = [
        f"join bundle for node {node}: {out}",
        *(f"  {p}" for p in written),
        f"copy it to {node} (it holds a private key), then there: ferry cluster join {out.name}",
    ]
    _print(args, data, lines)
    return EXIT_OK


def _join(args: argparse.Namespace, words: list[str]) -> int:
    if len(words) != 1:
        raise UsageError("cluster join takes one bundle: ferry cluster join BUNDLE")
    config = _node_config(args)
    node = config.node.name
    bundle = read_bundle(Path(words[0]), node)
    files = install_bundle(var_dir(args), bundle, node, force=args.force)
    missing = sorted(missing_names(bundle.cert, node, [config.node.listen_addr]))
    ca = bundle.ca.subject.rfc4514_string()
    data = {
        "node": node,
        "ca": ca,
        "ca_cert": str(files.ca_cert),
        "node_cert": str(files.node_cert),
        "node_key": str(files.node_key),
        "missing_names": missing,
    }
    lines = [
        f"node {node} joined the CA {ca}: {files.node_cert}, {files.node_key}, {files.ca_cert}",
        "restart ferryd if it runs, to serve with this certificate",
    ]
    if missing:
        lines.append(
            f"warning: the certificate does not name {', '.join(missing)} (listen address); "
            f"peers reaching this node there will refuse it: "
            f"ferry cluster issue {node} --address ADDR"
        )
    _print(args, data, lines)
    return EXIT_OK


def cluster_command(args: argparse.Namespace) -> int:
    """ferry cluster init | issue NODE | join BUNDLE."""
    verbs = {"init": _init, "issue": _issue, "join": _join}
    verb = args.words[0] if args.words else ""
    if verb not in verbs:
        raise UsageError(USAGE)
    try:
        return verbs[verb](args, list(args.words[1:]))
    except TlsError as exc:  # refused: bad bundle, existing CA...: nothing was written
        if args.output == "json":
            print(json.dumps({"error": str(exc), "issues": []}, indent=2))
        print(f"ferry: cluster {verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise ActionFailed(f"{where}{exc.strerror or exc}") from None
