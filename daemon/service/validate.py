"""Validation: evaluate the service for every one of its nodes and report what is wrong.

A configuration with errors is never installed or acted upon; notices (deprecated
spellings, inferred topology) do not block.
"""

from __future__ import annotations

from typing import Any

from daemon.config.errors import ConfigError, ConfigIssue, Severity
from daemon.config.ini import Entry
from daemon.config.scoping import SCOPE_WORDS, split_key
from daemon.service.config import BoundSection, ServiceConfig


def validate(svc: ServiceConfig) -> list[ConfigIssue]:
    """Every problem of the service, structural then per node, each once, in file order."""
    issues = list(svc.issues)
    issues += _check_membership(svc)
    for node in svc.members.all_nodes:
        issues += _check_node(svc, node)
    issues += _check_targets(svc)
    issues += _check_flex_primary(svc)
    return _unique_sorted(issues)


def keyword_errors(svc: ServiceConfig, section: str, name: str, node: str) -> list[ConfigIssue]:
    """The errors validate reports on ``section.name`` (or on the entry it takes its value
    from, [DEFAULT]'s for an inherited keyword): what ``get --eval`` must not print past."""
    found = svc.find_entry(section, name, node)
    places = {(section, name)}
    if found is not None:
        places.add((found[0], split_key(found[1].key)[0]))
    # This node's checks, not validate()'s list: that one keeps one node's copy of a problem.
    issues = list(svc.issues) + _check_membership(svc) + _check_node(svc, node)
    return [
        issue
        for issue in _unique_sorted(issues)
        if issue.severity is Severity.ERROR
        and (issue.section, split_key(issue.keyword)[0]) in places
        and issue.node in ("", node)
    ]


def has_errors(issues: list[ConfigIssue]) -> bool:
    return any(i.severity is Severity.ERROR for i in issues)


def _unique_sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen: set[tuple[object, ...]] = set()
    out: list[ConfigIssue] = []
    for issue in issues:
        # The same conversion error seen for several nodes is one problem.
        key = (issue.line, issue.section, issue.keyword, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return sorted(out, key=lambda i: (i.line, i.section, i.keyword, i.node))


def _issue(svc: ServiceConfig, message: str, **where: Any) -> ConfigIssue:
    return svc.issue(message, **where)


def _default_line(svc: ServiceConfig, keyword: str) -> int:
    default = svc.sections.get("DEFAULT")
    if default is None:
        return 0
    variants = default.variants.get(keyword)
    return next(iter(variants.values())).line if variants else default.line


def _check_membership(svc: ServiceConfig) -> list[ConfigIssue]:
    members = svc.members
    issues: list[ConfigIssue] = []
    if not members.nodes:
        issues.append(
            _issue(
                svc,
                "no node",
                line=_default_line(svc, "nodes"),
                section="DEFAULT",
                keyword="nodes",
                hint="write 'nodes = <node> ...'",
            )
        )
    for node in members.drpnodes:
        if node in members.nodes:
            issues.append(
                _issue(
                    svc,
                    f"{node} is in both nodes and drpnodes",
                    line=_default_line(svc, "drpnodes"),
                    section="DEFAULT",
                    keyword="drpnodes",
                    hint="a node belongs to one site",
                )
            )
    for kw, pool, pool_name in (
        ("flex_primary", members.nodes, "nodes"),
        ("drp_flex_primary", members.drpnodes, "drpnodes"),
    ):
        default = svc.sections.get("DEFAULT")
        if default is None or kw not in default.variants:
            continue
        chosen = getattr(members, kw)
        if chosen and chosen not in pool:
            issues.append(
                _issue(
                    svc,
                    f"{chosen} is not one of {pool_name} ({' '.join(pool)})",
                    line=_default_line(svc, kw),
                    section="DEFAULT",
                    keyword=kw,
                )
            )
    every = set(members.nodes) | set(members.drpnodes) | set(members.encapnodes)
    for bound in svc.sections.values():
        for variants in bound.variants.values():
            for scope, entry in variants.items():
                if scope and scope not in SCOPE_WORDS and scope not in every:
                    issues.append(
                        _issue(
                            svc,
                            f"scope {scope!r} is not a node of this service",
                            line=entry.line,
                            section=bound.name,
                            keyword=entry.key,
                            hint=f"nodes: {' '.join(sorted(every))}",
                            severity=Severity.NOTICE,
                        )
                    )
    return issues


def _check_node(svc: ServiceConfig, node: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for bound in svc.sections.values():
        if bound.manifest is None:
            issues += _check_env(svc, bound, node)
            continue
        if bound.is_resource and _disabled(svc, bound.name, node):
            continue
        for keyword in bound.manifest.keywords:
            unknown: list[str] = []
            try:
                text = svc.text(bound.name, keyword.name, node, unknown)
                value = svc.value(bound.name, keyword.name, node)
            except ConfigError as exc:
                issues += exc.issues
                continue
            found = svc.find_entry(bound.name, keyword.name, node)
            if unknown and found is not None:
                entry = found[1]
                issues.append(
                    _issue(
                        svc,
                        f"unknown reference {{{unknown[0]}}}",
                        line=entry.line,
                        section=found[0],
                        keyword=entry.key,
                        node=node,
                        hint="known: {nodename} {svcname} {rid} {var} {kw} {section.kw} "
                        "{env.key}; OpenSVC's: docs/opensvc-compat.md",
                    )
                )
            if (
                keyword.required
                and text is None
                and value is None
                and (keyword.name not in bound.rejected)
            ):
                issues.append(_missing(svc, bound, keyword.name, node))
        if bound.is_resource:
            issues += _check_links(svc, bound, node)
    return issues


def _disabled(svc: ServiceConfig, section: str, node: str) -> bool:
    try:
        return bool(svc.value(section, "disable", node))
    except ConfigError:
        return False


def _check_env(svc: ServiceConfig, bound: BoundSection, node: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for name in bound.variants:
        try:
            svc.text(bound.name, name, node)
        except ConfigError as exc:
            issues += exc.issues
    return issues


def _missing(svc: ServiceConfig, bound: BoundSection, name: str, node: str) -> ConfigIssue:
    variants = bound.variants.get(name, {})
    if variants:
        written = sorted(variants.values(), key=lambda e: e.line)
        spellings = ", ".join(e.key for e in written)
        return _issue(
            svc,
            f"no value for node {node}",
            line=written[0].line,
            section=bound.name,
            keyword=name,
            node=node,
            hint=f"only {spellings} is set; add {name}@{node} or {name}@{_site(svc, node)}",
        )
    return _issue(
        svc,
        f"required, and not set (node {node})",
        line=bound.line,
        section=bound.name,
        keyword=name,
        node=node,
    )


def _site(svc: ServiceConfig, node: str) -> str:
    return "drpnodes" if node in svc.members.drpnodes else "nodes"


def _check_links(svc: ServiceConfig, bound: BoundSection, node: str) -> list[ConfigIssue]:
    """Keywords that name another resource must name one that exists."""
    issues: list[ConfigIssue] = []
    if "netns" not in (bound.manifest.by_name() if bound.manifest else {}):
        return issues
    found = svc.find_entry(bound.name, "netns", node)
    if found is None:
        return issues
    entry: Entry = found[1]
    try:
        target = str(svc.value(bound.name, "netns", node) or "")
    except ConfigError:
        return issues
    if bound.group == "container" and target in ("host", "none", ""):
        return issues
    if not target.startswith("container#"):
        issues.append(
            _issue(
                svc,
                f"{target!r} is not a container resource",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
                node=node,
                hint="write netns = container#<n>",
            )
        )
    elif target not in svc.sections:
        issues.append(
            _issue(
                svc,
                f"no section [{target}]",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
                node=node,
                hint=f"containers: {', '.join(_containers(svc)) or 'none'}",
            )
        )
    elif target == bound.name:
        issues.append(
            _issue(
                svc,
                "a container cannot share its own namespace",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
            )
        )
    return issues


def _containers(svc: ServiceConfig) -> list[str]:
    return [name for name in svc.sections if name.startswith("container#")]


def _check_targets(svc: ServiceConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    members = svc.members
    for bound in svc.sections.values():
        if bound.group != "sync":
            continue
        try:
            targets = svc.value(bound.name, "target", svc.context.nodename) or []
        except ConfigError:
            continue
        empty = [t for t in targets if not getattr(members, t, ())]
        found = svc.find_entry(bound.name, "target", svc.context.nodename)
        line = found[1].line if found else bound.line
        for pool in empty:
            issues.append(
                _issue(
                    svc,
                    f"{pool} is empty: this resource has no {pool} target",
                    line=line,
                    section=bound.name,
                    keyword="target",
                    severity=Severity.NOTICE,
                    hint="its status is n/a until the service has such nodes",
                )
            )
    return issues


def _check_flex_primary(svc: ServiceConfig) -> list[ConfigIssue]:
    """A flex service whose sync resources can never run: only the flex primary sends, and
    with the nodes-order placement it is not among the first flex_target nodes."""
    members = svc.members
    has_sync = any(bound.group == "sync" for bound in svc.sections.values())
    node = members.nodes[0] if members.nodes else ""
    if not has_sync or not node:
        return []
    try:
        if svc.value("DEFAULT", "topology", node) != "flex":
            return []
        if svc.value("DEFAULT", "placement", node) != "nodes order":
            return []
        target = int(svc.value("DEFAULT", "flex_target", node) or 1)
    except (ConfigError, TypeError, ValueError):
        return []
    leaders = members.nodes[:target]
    if not members.flex_primary or members.flex_primary in leaders:
        return []
    return [
        _issue(
            svc,
            f"flex_primary {members.flex_primary} is not among the first flex_target "
            f"({target}) nodes ({' '.join(leaders)}): it runs no instance when the "
            "daemon places the service, and only it sends the sync resources",
            line=_default_line(svc, "flex_primary"),
            section="DEFAULT",
            keyword="flex_primary",
            severity=Severity.NOTICE,
            hint=f"set flex_target = {members.nodes.index(members.flex_primary) + 1}, "
            f"or flex_primary = {members.nodes[0]}",
        )
    ]
