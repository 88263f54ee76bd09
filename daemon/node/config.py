"""Load ``node.conf`` with the configuration engine: located errors, typed settings.

``bind_sections`` is a small binder for documents that are not services: fixed
section names, each with a manifest, no scoping, no references. It reuses the
INI parser and :meth:`Keyword.convert`, so that a node.conf error reads like a
service error: ``node.conf:3 [node] listen_port: 99999 is not a TCP port``.
A missing node.conf (or one with nothing but comments) means every default:
that is the zero-configuration single-node cluster.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config import ini
from daemon.config.errors import ConfigError, ConfigIssue, Severity, closest
from daemon.config.ini import Document, Entry
from daemon.config.keywords import Manifest
from daemon.config.store import local_nodename
from daemon.node.manifest import DEFAULT_PORT, SECTIONS

NODE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # use with fullmatch


@dataclass
class BoundDocument:
    """Converted values per section (defaults filled in), their entries, and the issues."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: dict[str, dict[str, Entry]] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]


def bind_sections(doc: Document, manifests: Mapping[str, Manifest]) -> BoundDocument:
    """Bind each ``[section]`` of doc to its manifest; every problem becomes a located issue."""
    out = BoundDocument()

    def issue(message: str, line: int, section: str = "", keyword: str = "", **kw: Any) -> None:
        out.issues.append(
            ConfigIssue(message, file=doc.path, line=line, section=section, keyword=keyword, **kw)
        )

    for section in doc.sections.values():
        manifest = manifests.get(section.name)
        if manifest is None:
            hint = closest(section.name, list(manifests)) or f"sections: {', '.join(manifests)}"
            issue("unknown section", section.line, section.name, hint=hint)
            continue
        values = out.values.setdefault(section.name, {})
        entries = out.entries.setdefault(section.name, {})
        for entry in section.entries.values():
            if "@" in entry.key:
                issue(
                    "keywords of this file cannot be scoped",
                    entry.line,
                    section.name,
                    entry.key,
                    hint="the file belongs to one node: write the plain keyword",
                )
                continue
            keyword, is_alias = manifest.resolve(entry.key)
            if keyword is None:
                hint = (
                    closest(entry.key, manifest.names())
                    or f"keywords: {' '.join(manifest.names())}"
                )
                issue(
                    f"unknown keyword for [{section.name}]",
                    entry.line,
                    section.name,
                    entry.key,
                    hint=hint,
                )
                continue
            if keyword.name in entries:
                first = entries[keyword.name]
                issue(
                    f"set twice: also at line {first.line} as {first.key!r}",
                    entry.line,
                    section.name,
                    entry.key,
                    hint="keep one of the two spellings",
                )
                continue
            if is_alias:
                issue(
                    f"{entry.key!r} is a deprecated spelling",
                    entry.line,
                    section.name,
                    entry.key,
                    hint=f"write {keyword.name!r}",
                    severity=Severity.NOTICE,
                )
            entries[keyword.name] = entry
            try:
                values[keyword.name] = keyword.convert(entry.value)
            except ValueError as exc:
                hint = f"example: {keyword.example}" if keyword.example else ""
                if not hint and not keyword.candidates:
                    hint = f"expects: {keyword.converter.name}"
                issue(str(exc), entry.line, section.name, entry.key, hint=hint)
    for name, manifest in manifests.items():
        values = out.values.setdefault(name, {})
        out.entries.setdefault(name, {})
        for keyword in manifest.keywords:
            if keyword.name not in values:
                default = keyword.default
                values[keyword.name] = list(default) if isinstance(default, list) else default
    return out


@dataclass(frozen=True)
class Peer:
    """Another node of the cluster and where its daemon listens."""

    name: str
    host: str
    port: int


@dataclass(frozen=True)
class NodeSettings:
    name: str
    listen_addr: str
    listen_port: int
    tls: bool
    max_actions: int
    action_timeout: float
    status_interval: float
    stop_grace: float
    actions_kept: int
    log_format: str
    log_level: str
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    body_min_rate: int = 64 * 1024
    max_connections: int = 2048
    max_client_connections: int = 128
    check_workers: int = 1
    check_queue: int = 8
    check_timeout: float = 20.0


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    secret: str | None
    peers: tuple[Peer, ...]
    hb_interval: float
    hb_timeout: float
    ready_period: float
    rejoin_grace: float
    restart_grace: float = 60.0
    quorum: bool = False
    arbitrators: tuple[str, ...] = ()
    split_action: str = "stop"


@dataclass(frozen=True)
class NodeConfig:
    """Everything node.conf says, typed, defaults applied; notices kept for the log."""

    path: str
    node: NodeSettings
    cluster: ClusterSettings
    notices: tuple[ConfigIssue, ...] = ()

    def with_listen(self, addr: str, port: int) -> NodeConfig:
        """A copy listening elsewhere (``ferryd --listen``)."""
        from dataclasses import replace

        return replace(self, node=replace(self.node, listen_addr=addr, listen_port=port))


def _is_blank(text: str) -> bool:
    return all(not line.strip() or line.strip()[0] in "#;" for line in text.splitlines())


def _peers(words: list[str], own: str, default_port: int) -> tuple[Peer, ...]:
    peers: dict[str, Peer] = {}
    for word in words:
        name, _, addr = word.partition("=")
        if name == own:
            continue  # one peers list can be copied to every node
        host, port = addr or name, default_port
        if addr and ":" in addr and not addr.startswith("["):
            host, _, port_text = addr.rpartition(":")
            port = int(port_text) if port_text.isdigit() else -1
        elif addr.startswith("[") and "]:" in addr:
            host, _, port_text = addr[1:].partition("]:")
            port = int(port_text) if port_text.isdigit() else -1
        peers[name] = Peer(name, host.strip("[]"), port)
    return tuple(peers.values())


def _is_loopback(addr: str) -> bool:
    if addr == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def _line(bound: BoundDocument, section: str, keyword: str) -> int:
    entry = bound.entries.get(section, {}).get(keyword)
    return entry.line if entry else 0


def _check(bound: BoundDocument, path: str, settings: NodeConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []

    def issue(message: str, section: str, keyword: str, hint: str = "") -> None:
        line = _line(bound, section, keyword)
        issues.append(
            ConfigIssue(message, file=path, line=line, section=section, keyword=keyword, hint=hint)
        )

    node, cluster = settings.node, settings.cluster
    if not NODE_NAME_RE.fullmatch(node.name):
        issue(
            f"{node.name!r} is not a valid node name",
            "node",
            "name",
            "lower case letters, digits, '.', '_', '-'",
        )
    if not node.tls and not _is_loopback(node.listen_addr):
        issue(
            f"tls = false on {node.listen_addr}: bearer tokens would cross the network in clear",
            "node",
            "tls",
            "keep tls = true, or listen on 127.0.0.1",
        )
    if cluster.hb_timeout <= cluster.hb_interval:
        issue(
            f"hb_timeout ({cluster.hb_timeout:g}s) must be longer than hb_interval "
            f"({cluster.hb_interval:g}s)",
            "cluster",
            "hb_timeout",
            "a few intervals, e.g. 3 x hb_interval",
        )
    for peer in cluster.peers:
        if not 1 <= peer.port <= 65535:
            issue(
                f"peer {peer.name}: bad port in its address",
                "cluster",
                "peers",
                "write <node>=<host>:<port>",
            )
    return issues


def node_config_from_text(text: str, path: str, default_name: str | None = None) -> NodeConfig:
    """Parse and bind node.conf text; raise ConfigError listing every error."""
    return node_config_from_bytes(text.encode(), path, default_name)


def node_config_from_bytes(data: bytes, path: str, default_name: str | None = None) -> NodeConfig:
    """Like :func:`node_config_from_text`; size, NUL and encoding errors are located too."""
    blank = _is_blank(data.decode("utf-8", errors="replace"))
    doc = Document(path, [], {}) if blank else ini.load_bytes(data, path)
    bound = bind_sections(doc, SECTIONS)
    if bound.errors:
        raise ConfigError(bound.errors)
    settings = _settings(bound, path, default_name or local_nodename())
    errors = _check(bound, path, settings)
    if errors:
        raise ConfigError(errors)
    return settings


def _settings(bound: BoundDocument, path: str, default_name: str) -> NodeConfig:
    n, cl = bound.values["node"], bound.values["cluster"]
    own = n["name"] or default_name
    return NodeConfig(
        path=path,
        node=NodeSettings(
            name=own,
            listen_addr=n["listen_addr"],
            listen_port=n["listen_port"],
            tls=n["tls"],
            max_actions=n["max_actions"],
            action_timeout=float(n["action_timeout"]),
            status_interval=float(n["status_interval"]),
            stop_grace=float(n["stop_grace"]),
            actions_kept=n["actions_kept"],
            log_format=n["log_format"],
            log_level=n["log_level"],
            header_timeout=float(n["header_timeout"]),
            body_timeout=float(n["body_timeout"]),
            body_min_rate=n["body_min_rate"],
            max_connections=n["max_connections"],
            max_client_connections=n["max_client_connections"],
            check_workers=n["check_workers"],
            check_queue=n["check_queue"],
            check_timeout=float(n["check_timeout"]),
        ),
        cluster=ClusterSettings(
            name=cl["name"],
            secret=cl["secret"] or None,
            peers=_peers(cl["peers"], own, n["listen_port"] or DEFAULT_PORT),
            hb_interval=float(cl["hb_interval"]),
            hb_timeout=float(cl["hb_timeout"]),
            ready_period=float(cl["ready_period"]),
            rejoin_grace=float(cl["rejoin_grace"]),
            restart_grace=float(cl["restart_grace"]),
            quorum=bool(cl["quorum"]),
            arbitrators=tuple(cl["arbitrators"]),
            split_action=cl["split_action"],
        ),
        notices=tuple(i for i in bound.issues if i.severity is Severity.NOTICE),
    )


def load_node_config(path: Path, default_name: str | None = None) -> NodeConfig:
    """Read node.conf; a missing file gives the zero-configuration defaults."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise ConfigError([ConfigIssue(f"cannot read: {exc.strerror}", file=str(path))]) from None
    return node_config_from_bytes(data, str(path), default_name)
