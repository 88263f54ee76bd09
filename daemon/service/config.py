"""A service configuration: a parsed document bound to its keyword declarations.

``ServiceConfig`` answers "what is keyword K of section S for node N": the
scoping walk, inheritance from ``[DEFAULT]``, ``{reference}`` expansion and the
keyword's converter, every failure located at its file and line. Structural
problems (unknown sections, keywords, driver types, scoping on a keyword that is
not scopable, values that do not convert) are collected when the document is
bound; node-dependent ones by :func:`daemon.service.validate.validate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config import expressions, references
from daemon.config.errors import ConfigError, ConfigIssue, Severity, closest
from daemon.config.expressions import ExpressionError, Number
from daemon.config.ini import Document, Entry
from daemon.config.keywords import Inherit, Keyword, Manifest
from daemon.config.scoping import SCOPE_WORDS, Membership, pick_scoped, split_key
from daemon.resources.keywords import OPENSVC_HINTS
from daemon.service.manifest import FLEX_KEYWORDS, IGNORED_KEYWORDS
from daemon.service.manifest import MANIFEST as DEFAULT_MANIFEST
from daemon.service.registry import GROUPS

MAX_REFERENCE_DEPTH = 20
_REFERENCE_RE = re.compile(r"(?<!\$)\{([^{}\s]+)\}")
_INDEX_RE = re.compile(r"^(?P<ref>.+)\[(?P<index>-?\d+)\]$")
_RID_RE = re.compile(r"^(?P<group>[a-z][a-z0-9_]*)#(?P<name>[A-Za-z0-9_.:-]+)$")
WELL_KNOWN = (
    "nodename",
    "short_nodename",
    "svcname",
    "name",
    "short_name",
    "short_svcname",
    "path",
    "svcpath",
    "namespace",
    "kind",
    "rid",
    "rindex",
    "clustername",
    "nodes",
    "drpnodes",
    "var",
    "private_var",
)


@dataclass(frozen=True)
class EvalContext:
    """Facts about the evaluating node that references may ask for."""

    nodename: str
    clustername: str = "default"
    var_dir: str = "/var/lib/ferry"


@dataclass
class BoundSection:
    """A section with its manifest and its entries grouped by keyword then scope."""

    name: str
    line: int
    group: str
    manifest: Manifest | None  # None for [env]
    variants: dict[str, dict[str, Entry]] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # keywords with an entry refused at binding

    @property
    def is_resource(self) -> bool:
        return self.group not in ("DEFAULT", "env")


class _Loop(Exception):
    def __init__(self, chain: list[str]) -> None:
        self.chain = chain


class _Refused(Exception):
    """A value that cannot be evaluated: an expression, an unsupported reference.

    ``where`` and ``entry`` locate the value at fault when it is not the one evaluated
    (a referenced keyword's); empty, the evaluated entry is at fault.
    """

    def __init__(
        self, message: str, hint: str = "", where: str = "", entry: Entry | None = None
    ) -> None:
        self.message, self.hint, self.where, self.entry = message, hint, where, entry


class ServiceConfig:
    """A service's configuration, bound to the keyword declarations."""

    def __init__(self, doc: Document, name: str | None = None, context: EvalContext | None = None):
        self.doc = doc
        self.name = name or Path(doc.path).stem
        self.context = context or EvalContext(nodename="")
        self.issues: list[ConfigIssue] = []
        self.sections: dict[str, BoundSection] = {}
        self._members: Membership | None = None
        self._bootstrapping = False
        self._bind()
        self.members  # noqa: B018 - compute now so its problems are reported with the others

    # ------------------------------------------------------------------ binding

    def issue(
        self,
        message: str,
        *,
        line: int = 0,
        section: str = "",
        keyword: str = "",
        hint: str = "",
        node: str = "",
        severity: Severity = Severity.ERROR,
    ) -> ConfigIssue:
        """A problem located in this service's file."""
        return ConfigIssue(
            message,
            file=self.doc.path,
            line=line,
            section=section,
            keyword=keyword,
            hint=hint,
            node=node,
            severity=severity,
        )

    def _issue(self, message: str, **where: Any) -> None:
        self.issues.append(self.issue(message, **where))

    def _bind(self) -> None:
        if "DEFAULT" not in self.doc.sections:
            first = next(iter(self.doc.sections.values()))
            self._issue(
                "no [DEFAULT] section",
                line=first.line,
                hint="add [DEFAULT] with at least 'nodes = ...'",
            )
        for section in self.doc.sections.values():
            bound = self._bind_section(section.name, section.line)
            if bound is not None:
                self.sections[section.name] = bound
        # Entries after every section: [DEFAULT] may hold keywords of the resources below it.
        for bound in self.sections.values():
            for entry in self.doc.sections[bound.name].entries.values():
                self._bind_entry(bound, entry)
        self._check_values()
        self._infer_topology()

    def _bind_section(self, name: str, line: int) -> BoundSection | None:
        if name == "DEFAULT":
            return BoundSection(name, line, "DEFAULT", DEFAULT_MANIFEST)
        if name == "env":
            return BoundSection(name, line, "env", None)
        match = _RID_RE.match(name)
        if not match:
            hint = closest(name, ["DEFAULT", "env"]) or "resource sections are [<group>#<name>]"
            self._issue("not a valid section name", line=line, section=name, hint=hint)
            return None
        group_name = match.group("group")
        group = GROUPS.get(group_name)
        if group is None:
            hint = closest(group_name, list(GROUPS)) or f"known groups: {', '.join(GROUPS)}"
            self._issue(
                f"unknown resource group {group_name!r}", line=line, section=name, hint=hint
            )
            return None
        manifest = group.drivers[group.default_type]
        if group.selects_driver:
            type_entry = self.doc.sections[name].entries.get("type")
            scoped = [k for k in self.doc.sections[name].entries if k.startswith("type@")]
            if scoped:
                entry = self.doc.sections[name].entries[scoped[0]]
                self._issue(
                    "the driver type cannot be scoped",
                    line=entry.line,
                    section=name,
                    keyword=scoped[0],
                    hint="write one 'type =' for every node",
                )
            if type_entry is not None:
                wanted = type_entry.value.strip().lower()
                if wanted not in group.drivers:
                    hint = closest(wanted, group.types) or f"known types: {', '.join(group.types)}"
                    self._issue(
                        f"unknown {group_name} driver type {wanted!r}",
                        line=type_entry.line,
                        section=name,
                        keyword="type",
                        hint=hint,
                    )
                    return None
                manifest = group.drivers[wanted]
        return BoundSection(name, line, group_name, manifest)

    def _bind_entry(self, bound: BoundSection, entry: Entry) -> None:
        name, scope = split_key(entry.key)
        if not self._accept_entry(bound, entry, name, scope):
            bound.rejected.add(name)

    def _accept_entry(self, bound: BoundSection, entry: Entry, name: str, scope: str) -> bool:
        """Check one entry and file it under its keyword; False (and an issue) when refused."""
        if "@" in entry.key and not scope:
            self._issue(
                "empty scope after '@'",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
                hint="write kw@<node>, kw@nodes or kw@drpnodes",
            )
            return False
        if bound.manifest is None:  # [env]: free keys, any of them scopable
            self._add_variant(bound, name, scope, entry)
            return True
        keyword, is_alias = bound.manifest.resolve(name)
        if keyword is None and bound.group == "DEFAULT":
            if name in IGNORED_KEYWORDS:
                self._issue(
                    "an OpenSVC keyword Ferry ignores, as OpenSVC v2 does",
                    line=entry.line,
                    section=bound.name,
                    keyword=entry.key,
                    hint=IGNORED_KEYWORDS[name],
                    severity=Severity.NOTICE,
                )
                return True
            inheriting = self.inheriting(name)
            if inheriting:
                return self._accept_inherited(bound, entry, name, scope, inheriting)
        if keyword is None:
            known = bound.manifest.names()
            hint = closest(name, known) or OPENSVC_HINTS.get(name, "")
            if not hint and bound.group == "DEFAULT":
                hint = _resource_keyword_hint(name)
            self._issue(
                f"unknown keyword for {self._kind(bound)}",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
                hint=hint,
            )
            return False
        if is_alias:
            self._issue(
                f"{name!r} is a deprecated spelling",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
                hint=f"write {keyword.name!r}",
                severity=Severity.NOTICE,
            )
        if scope and not keyword.scopable and keyword.name == "type" and bound.is_resource:
            return False  # reported when the section was bound
        if self._scope_refused(bound, entry, keyword.name, name, scope, keyword.scopable):
            return False
        previous = bound.variants.get(keyword.name, {}).get(scope)
        if previous is not None:
            self._issue(
                f"set twice: also at line {previous.line} as {previous.key!r}",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
                hint="keep one of the two spellings",
            )
            return False
        self._add_variant(bound, keyword.name, scope, entry)
        return True

    def inheriting(self, name: str) -> list[Keyword]:
        """The resource keywords of this file named name that fall back to ``[DEFAULT]``."""
        found: list[Keyword] = []
        for bound in self.sections.values():
            if not bound.is_resource or bound.manifest is None:
                continue
            keyword = bound.manifest.by_name().get(name)
            if keyword is not None and keyword.inherit is not Inherit.SECTION:
                found.append(keyword)
        return found

    def _accept_inherited(
        self, bound: BoundSection, entry: Entry, name: str, scope: str, inheriting: list[Keyword]
    ) -> bool:
        """A resource keyword set in [DEFAULT] for the resources that inherit it (OpenSVC)."""
        scopable = any(k.scopable for k in inheriting)
        if self._scope_refused(bound, entry, name, name, scope, scopable):
            return False
        self._add_variant(bound, name, scope, entry)  # (the parser refuses duplicate keys)
        return True

    def _scope_refused(
        self,
        bound: BoundSection,
        entry: Entry,
        keyword: str,
        name: str,
        scope: str,
        scopable: bool,
    ) -> bool:
        """Report a scope the keyword does not take, or a node name not in lower case."""
        if scope and not scopable:
            self._issue(
                "this keyword cannot be scoped",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
                hint=f"write one '{keyword} =' for every node",
            )
            return True
        if scope and scope not in SCOPE_WORDS and scope != scope.lower():
            self._issue(
                "node names are lower case",
                line=entry.line,
                section=bound.name,
                keyword=entry.key,
                hint=f"write {name}@{scope.lower()}",
            )
            return True
        return False

    @staticmethod
    def _add_variant(bound: BoundSection, name: str, scope: str, entry: Entry) -> None:
        bound.variants.setdefault(name, {})[scope] = entry

    @staticmethod
    def _kind(bound: BoundSection) -> str:
        if bound.group == "DEFAULT":
            return "[DEFAULT]"
        assert bound.manifest is not None
        return f"driver {bound.manifest.label}"

    def _check_values(self) -> None:
        """Convert every value that holds no reference: node-independent errors."""
        for bound in self.sections.values():
            if bound.manifest is None:
                continue
            for name, variants in bound.variants.items():
                keyword = bound.manifest.by_name().get(name)
                if keyword is None:  # a resource keyword held by [DEFAULT]: checked per resource
                    continue
                for entry in variants.values():
                    if _REFERENCE_RE.search(entry.value):
                        continue
                    try:
                        text, whole = expressions.substitute(entry.value)
                        convert(keyword, text, whole)
                    except ValueError as exc:
                        self._issue(
                            str(exc),
                            line=entry.line,
                            section=bound.name,
                            keyword=entry.key,
                            hint=expressions.HINT
                            if isinstance(exc, ExpressionError)
                            else self._value_hint(keyword),
                        )

    @staticmethod
    def _value_hint(keyword: Keyword) -> str:
        if keyword.example:
            return f"example: {keyword.example}"
        if keyword.candidates:
            return ""
        return f"expects: {keyword.converter.name}"

    def _infer_topology(self) -> None:
        default = self.sections.get("DEFAULT")
        if default is None or "topology" in default.variants:
            return
        flex_set = [name for name in FLEX_KEYWORDS if name in default.variants]
        if flex_set:
            entry = next(iter(default.variants[flex_set[0]].values()))
            self._issue(
                f"topology inferred as flex because {entry.key} is set",
                line=default.line,
                section="DEFAULT",
                keyword="topology",
                hint="write 'topology = flex' to say so",
                severity=Severity.NOTICE,
            )

    # --------------------------------------------------------------- membership

    @property
    def members(self) -> Membership:
        """nodes, drpnodes, encapnodes and the flex primaries, unscoped."""
        if self._members is None:
            self._bootstrapping = True
            try:
                self._members = self._compute_members()
            finally:
                self._bootstrapping = False
        return self._members

    def _compute_members(self) -> Membership:
        def words(name: str, fallback: list[str]) -> list[str]:
            try:
                value = self.value("DEFAULT", name, self.context.nodename)
            except ConfigError as exc:
                self.issues.extend(exc.issues)
                return fallback
            return list(value) if value is not None else fallback

        local = [self.context.nodename] if self.context.nodename else []
        nodes = words("nodes", local)
        drpnodes = words("drpnodes", [])
        encapnodes = words("encapnodes", [])
        flex_primary = self._member_text("flex_primary") or (nodes[0] if nodes else "")
        drp_flex_primary = self._member_text("drp_flex_primary") or (
            drpnodes[0] if drpnodes else ""
        )
        return Membership(
            tuple(nodes), tuple(drpnodes), tuple(encapnodes), flex_primary, drp_flex_primary
        )

    def _member_text(self, name: str) -> str:
        try:
            value = self.value("DEFAULT", name, self.context.nodename)
        except ConfigError as exc:
            self.issues.extend(exc.issues)
            return ""
        return str(value) if value else ""

    # --------------------------------------------------------------- evaluation

    @property
    def errors(self) -> list[ConfigIssue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]

    def keyword(self, section: str, name: str) -> Keyword | None:
        bound = self.sections.get(section)
        if bound is None or bound.manifest is None:
            return None
        return bound.manifest.by_name().get(name)

    def resource_ids(self) -> list[str]:
        return [name for name, bound in self.sections.items() if bound.is_resource]

    def find_entry(self, section: str, name: str, node: str) -> tuple[str, Entry] | None:
        """The entry that sets ``section.name`` for node, following inheritance."""
        bound = self.sections.get(section)
        if bound is None:
            return None
        keyword = bound.manifest.by_name().get(name) if bound.manifest else None
        inherit = keyword.inherit if keyword else Inherit.SECTION
        places: list[tuple[str, str]] = []
        if inherit is not Inherit.DEFAULT:
            places.append((section, name))
        if keyword is not None and inherit is not Inherit.SECTION and section != "DEFAULT":
            places.append(("DEFAULT", keyword.fallback_name))
        for where, kw in places:
            place = self.sections.get(where)
            if place is None:
                continue
            variants = place.variants.get(kw)
            if not variants:
                continue
            if self._bootstrapping:
                variants = {"": variants[""]} if "" in variants else {}
            found = pick_scoped(variants, node, self._members or Membership())
            if found is not None:
                return where, found[1]
        return None

    def value(self, section: str, name: str, node: str) -> Any:
        """The converted value of ``section.name`` for node (its default when unset)."""
        text, whole = self._evaluate(section, name, node, None)
        keyword = self.keyword(section, name)
        if keyword is None:
            return text
        if text is None:
            return self._default(section, keyword)
        found = self.find_entry(section, name, node)
        try:
            converted = convert(keyword, text, whole)
        except ValueError as exc:
            entry = found[1] if found else None
            raise ConfigError(
                [
                    ConfigIssue(
                        f"{exc} (after references: {text!r})"
                        if entry and text != entry.value
                        else str(exc),
                        file=self.doc.path,
                        line=entry.line if entry else 0,
                        section=found[0] if found else section,
                        keyword=entry.key if entry else name,
                        node=node,
                        hint=self._value_hint(keyword),
                    )
                ]
            ) from None
        if section == "DEFAULT" and name == "flex_max":  # SPEC 2.5: clamp max to >= min
            return max(converted, self.value("DEFAULT", "flex_min", node))
        return converted

    def text(
        self, section: str, name: str, node: str, unknown: list[str] | None = None
    ) -> str | None:
        """The evaluated text of ``section.name`` for node (references, then ``$(...)``
        expressions), or None when unset."""
        return self._evaluate(section, name, node, unknown)[0]

    def _evaluate(
        self, section: str, name: str, node: str, unknown: list[str] | None
    ) -> tuple[str | None, Number | None]:
        """The text of ``section.name`` for node and, when it was one ``$(...)`` and
        nothing else, the expression's typed value."""
        found = self.find_entry(section, name, node)
        if found is None:
            return None, None
        where, entry = found
        try:
            return self._resolve(where, entry, section, node, [f"{where}.{entry.key}"], unknown)
        except _Refused as refused:
            at_where, at_entry = (
                (refused.where, refused.entry) if refused.entry is not None else (where, entry)
            )
            raise ConfigError(
                [
                    ConfigIssue(
                        refused.message,
                        file=self.doc.path,
                        line=at_entry.line,
                        section=at_where,
                        keyword=at_entry.key,
                        node=node,
                        hint=refused.hint,
                    )
                ]
            ) from None
        except _Loop as loop:
            raise ConfigError(
                [
                    ConfigIssue(
                        "reference loop: " + " -> ".join(loop.chain),
                        file=self.doc.path,
                        line=entry.line,
                        section=where,
                        keyword=entry.key,
                        node=node,
                        hint="a value cannot refer to itself, even through other keywords",
                    )
                ]
            ) from None

    def _default(self, section: str, keyword: Keyword) -> Any:
        members = self._members or Membership()
        if section == "DEFAULT":
            computed = self._default_service(keyword.name, members)
            if computed is not None:
                return computed
        if keyword.name == "name" and section.startswith("container#"):
            return f"{self.name}.{section.replace('#', '.')}"
        if isinstance(keyword.default, list):
            return list(keyword.default)
        return keyword.default

    def _default_service(self, name: str, members: Membership) -> Any:
        if name == "nodes":
            return [self.context.nodename] if self.context.nodename else []
        if name == "topology":
            default = self.sections.get("DEFAULT")
            flex = default is not None and any(k in default.variants for k in FLEX_KEYWORDS)
            return "flex" if flex else "failover"
        if name == "flex_primary" and not self._bootstrapping:
            return members.flex_primary or None
        if name == "drp_flex_primary" and not self._bootstrapping:
            return members.drp_flex_primary or None
        if name == "flex_max":
            flex_min = self.value("DEFAULT", "flex_min", self.context.nodename)
            return max(len(members.nodes), flex_min)
        if name == "flex_target":
            return self.value("DEFAULT", "flex_min", self.context.nodename)
        return None

    # --------------------------------------------------------------- references

    def _resolve(
        self,
        where: str,
        entry: Entry,
        section: str,
        node: str,
        chain: list[str],
        unknown: list[str] | None,
    ) -> tuple[str, Number | None]:
        """An entry's value with its references expanded, then its expressions evaluated
        (OpenSVC's order: ``/srv/$({env.n}/4)`` works)."""
        try:
            expanded = self._expand(entry.value, section, node, chain, unknown)
        except _Refused as refused:
            if refused.entry is None:  # the innermost value holding the reference is at fault
                refused.where, refused.entry = where, entry
            raise
        try:
            return expressions.substitute(expanded)
        except ExpressionError as exc:
            message = str(exc)
            if expanded != entry.value:
                message += f" (after references: {expanded!r})"
            raise _Refused(message, expressions.HINT, where, entry) from None

    def _expand(
        self, text: str, section: str, node: str, chain: list[str], unknown: list[str] | None
    ) -> str:
        if len(chain) > MAX_REFERENCE_DEPTH:
            raise _Loop([*chain[:3], "...", f"(more than {MAX_REFERENCE_DEPTH} levels)"])

        def replace(match: re.Match[str]) -> str:
            ref = match.group(1)
            value = self._reference(ref, section, node, chain, unknown)
            if value is None:
                if unknown is not None:
                    unknown.append(ref)
                return match.group(0)
            return value

        return _REFERENCE_RE.sub(replace, text)

    def _reference(
        self, ref: str, section: str, node: str, chain: list[str], unknown: list[str] | None
    ) -> str | None:
        if ref.startswith("#"):
            value = self._reference(ref[1:], section, node, chain, unknown)
            return None if value is None else str(len(value.split()))
        indexed = _INDEX_RE.match(ref)
        if indexed:
            value = self._reference(indexed.group("ref"), section, node, chain, unknown)
            if value is None:
                return None
            words = value.split()
            index = int(indexed.group("index"))
            return words[index] if -len(words) <= index < len(words) else None
        modified = references.split_modifier(ref)
        if modified is not None:
            modifier, inner = modified
            value = self._reference(inner, section, node, chain, unknown)
            return None if value is None else modifier(value)
        refusal = references.refusal(ref)
        if refusal is not None:
            raise _Refused(f"{{{ref}}} is an OpenSVC reference Ferry does not support", refusal)
        well_known = self._well_known(ref, section, node)
        if well_known is not None:
            return well_known
        if "." in ref:
            where, _, name = ref.partition(".")
            return self._keyword_text(where, name, node, chain, unknown)
        # {kw}: the section's own keyword when set, else [DEFAULT]'s, else the section's default.
        if section != "DEFAULT" and self.find_entry(section, ref, node) is not None:
            return self._keyword_text(section, ref, node, chain, unknown)
        inherited = self._keyword_text("DEFAULT", ref, node, chain, unknown)
        if inherited is not None:
            return inherited
        return self._keyword_text(section, ref, node, chain, unknown)

    def _well_known(self, ref: str, section: str, node: str) -> str | None:
        members = self._members or Membership()
        var = f"{self.context.var_dir}/services/{self.name}"
        table = {
            "nodename": node,
            "short_nodename": node.split(".")[0],
            "svcname": self.name,
            "name": self.name,
            "short_name": self.name.split(".")[0],
            "short_svcname": self.name.split(".")[0],
            "path": self.name,  # every Ferry service is in OpenSVC's root namespace
            "svcpath": self.name,
            "namespace": "root",
            "kind": "svc",
            "rid": section,
            "rindex": section.split("#")[-1],
            "clustername": self.context.clustername,
            "nodes": " ".join(members.nodes),
            "drpnodes": " ".join(members.drpnodes),
            "var": var,  # SPEC 2.4: the service's state dir (OpenSVC's {private_var})
            "private_var": var,
        }
        if ref in ("nodes", "drpnodes") and self._bootstrapping:
            return None  # resolved as keywords, so that loops are seen
        return table.get(ref)

    def _keyword_text(
        self, section: str, name: str, node: str, chain: list[str], unknown: list[str] | None
    ) -> str | None:
        bound = self.sections.get(section)
        if bound is None:
            return None
        keyword = bound.manifest.by_name().get(name) if bound.manifest else None
        if bound.manifest is not None and keyword is None and name not in bound.variants:
            return None  # (a [DEFAULT] entry held for the resources is referencable)
        found = self.find_entry(section, name, node)
        if found is None:
            if keyword is None:
                return None
            default = self._default(section, keyword)
            return "" if default is None else keyword.render(default)
        where, entry = found
        link = f"{where}.{entry.key}"
        if link in chain:
            raise _Loop([*chain, link])
        return self._resolve(where, entry, section, node, [*chain, link], unknown)[0]


def convert(keyword: Keyword, text: str, whole: Number | None = None) -> Any:
    """Convert a keyword's evaluated text; whole is the value of a text that was one
    ``$(...)``: a float given to a numeric keyword is truncated first, as OpenSVC does
    (``restart = $(10/4)`` is 2)."""
    if isinstance(whole, float) and keyword.converter.numeric:
        text = str(int(whole))
    return keyword.convert(text)


def _resource_keyword_hint(name: str) -> str:
    groups = sorted(
        {m.group for g in GROUPS.values() for m in g.drivers.values() if name in m.by_name()}
    )
    if groups:
        return (
            f"{name} is a keyword of {', '.join(groups)}: it belongs in a [{groups[0]}#N] section"
        )
    return "see 'ferry doc DEFAULT' for the keywords of [DEFAULT]"


def load_service(path: Path | str, context: EvalContext | None = None) -> ServiceConfig:
    """Load, parse and bind a service file; syntax errors raise ConfigError."""
    from daemon.config.ini import load

    return ServiceConfig(load(path), context=context)
