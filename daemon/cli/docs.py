"""Documentation generated from the keyword declarations (``ferry doc``, the README reference)."""

from __future__ import annotations

from daemon.config.keywords import Keyword, Manifest
from daemon.service.manifest import MANIFEST as DEFAULT_MANIFEST
from daemon.service.registry import GROUPS


def manifests() -> list[Manifest]:
    """Every section kind of a service file, [DEFAULT] first, in a stable order."""
    out = [DEFAULT_MANIFEST]
    for group in GROUPS.values():
        out += list(group.drivers.values())
    return out


def node_manifests() -> list[Manifest]:
    """The sections of node.conf."""
    from daemon.node.manifest import CLUSTER, NODE

    return [NODE, CLUSTER]


def all_manifests() -> list[Manifest]:
    return manifests() + node_manifests()


def describe(manifest: Manifest, keyword: Keyword) -> str:
    """A keyword's documentation as a few plain-text lines."""
    facts = [f"converter: {keyword.converter.name}"]
    default = keyword.default_description()
    if default:
        facts.append(f"default: {default}")
    if keyword.required:
        facts.append("required")
    facts.append("scopable" if keyword.scopable else "not scopable")
    if keyword.candidates:
        facts.append(f"candidates: {', '.join(keyword.candidates)}")
    if keyword.also:
        facts.append(f"also named: {', '.join(keyword.also)}")
    if keyword.aliases:
        facts.append(f"deprecated aliases: {', '.join(keyword.aliases)}")
    if keyword.inherit.value != "section":
        facts.append(f"inherits: {keyword.inherit.value} ({keyword.fallback_name})")
    lines = [f"{manifest.label}.{keyword.name}", f"    {keyword.help}", f"    {'; '.join(facts)}"]
    if keyword.example:
        lines.append(f"    example: {keyword.example}")
    return "\n".join(lines)


def lookup(query: str) -> list[tuple[Manifest, Keyword]]:
    """Keywords matching ``kw``, ``group.kw``, ``group.type.kw``, ``group`` or ``group.type``."""
    query = query.strip()
    found: list[tuple[Manifest, Keyword]] = []
    for manifest in all_manifests():
        for keyword in manifest.keywords:
            full = f"{manifest.label}.{keyword.name}"
            short = f"{manifest.group}.{keyword.name}"
            names = (keyword.name, *keyword.also, full, short, manifest.label, manifest.group)
            if query in names:
                found.append((manifest, keyword))
    return found


def reference_markdown() -> str:
    """The configuration reference of the README: service sections, then node.conf."""
    parts = ["<!-- generated from the keyword declarations by `ferry doc --markdown` -->", ""]
    parts += ["### Service files (`<config dir>/<service>.conf`)", ""]
    for manifest in manifests():
        parts += _table(manifest, node_file=False)
    parts += ["### node.conf (`<config dir>/node.conf`)", ""]
    for manifest in node_manifests():
        parts += _table(manifest, node_file=True)
    return "\n".join(parts)


def _table(manifest: Manifest, node_file: bool) -> list[str]:
    if node_file or manifest.group == "DEFAULT":
        title = f"[{manifest.group}]"
    else:
        title = f"[{manifest.group}#N]"
    if manifest.type:
        title += f" type = {manifest.type}"
    parts = [f"#### {title}", "", manifest.help, ""]
    parts += ["| keyword | converter | default | req | scope | help |", "|---|---|---|---|---|---|"]
    for kw in manifest.keywords:
        extra = []
        if kw.candidates:
            extra.append("one of: " + ", ".join(f"`{c}`" for c in kw.candidates))
        if kw.also:
            extra.append("also named: " + ", ".join(f"`{a}`" for a in kw.also))
        if kw.aliases:
            extra.append("deprecated: " + ", ".join(f"`{a}`" for a in kw.aliases))
        if kw.inherit.value != "section":
            extra.append(f"falls back to `DEFAULT.{kw.fallback_name}`")
        help_text = " ".join([kw.help, *(f"{e}." for e in extra)]).replace("|", "\\|")
        default = kw.default_description().replace("|", "\\|")
        converter = kw.converter.name.replace("|", "\\|")
        parts.append(
            f"| `{kw.name}` | {converter} | {default} | "
            f"{'yes' if kw.required else ''} | {'yes' if kw.scopable else ''} | {help_text} |"
        )
    parts.append("")
    return parts
