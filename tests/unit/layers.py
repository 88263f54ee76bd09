"""The floors of ``daemon/`` and the checks that keep every import pointing down.

The import graph is read with :mod:`ast` from the source files, nothing imported: every
``import`` counts, at module level, inside a function or under ``if TYPE_CHECKING:``. A
module belongs to the package right under the root (``daemon.sync.btrfs.side`` to
``sync``; a module of the root, ``daemon/actions.py``, is a package of its own).

``python -m tests.unit.layers`` writes the picture of docs/architecture.md
(``docs/img/layers.svg``) from the same floors and graph.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
Graph = Mapping[str, set[str]]


@dataclass(frozen=True)
class Floor:
    name: str
    packages: tuple[str, ...]
    says: str


# From the ground up: a package may import its own floor's packages and the floors below.
FLOORS: tuple[Floor, ...] = (
    Floor(
        "ground",
        ("config", "system", "events", "metrics", "tls"),
        "configuration engine, host commands, event bus, metric registry, certificates",
    ),
    Floor(
        "drivers",
        ("resources", "restore", "sync"),
        "resource and sync drivers, each with its keyword manifest; restore points",
    ),
    Floor(
        "service",
        ("service", "actions"),
        "a service file bound to the drivers' keywords, the instance; the action runner",
    ),
    Floor("node", ("node",), "node.conf, the node's services and their status"),
    Floor(
        "cluster",
        ("drill", "cluster", "scheduler"),
        "drills; heartbeat, cluster state, monitor; the scheduler",
    ),
    Floor("edges", ("api", "web"), "the REST API, the web console over it"),
    Floor("entry", ("cli", "daemon", "main"), "the ferry CLI, ferryd's composition root and main"),
)


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package at root."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement may name (a module, or a name in one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join([*parts[:keep], *([node.module] if node.module else [])])
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports (the package's face,
    ``root/__init__.py``, is left out: it holds nothing)."""
    found = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in found if name != root.name}
    for name in graph:
        path = found[name]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = _imported(node, name, path.name == "__init__.py")
            for target in names[:-1] if isinstance(node, ast.ImportFrom) else names:
                hit = _resolve(target, found)
                if hit is None and isinstance(node, ast.ImportFrom):
                    hit = _resolve(names[-1], found)
                if hit is not None and hit not in (name, root.name):
                    graph[name].add(hit)
    return graph


def _resolve(dotted: str, found: Mapping[str, Path]) -> str | None:
    """The module dotted is, or lives in (``daemon.sync.base.SyncDriver``: daemon.sync.base)."""
    while dotted and dotted not in found:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def package(module: str) -> str:
    """The package right under the root a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def floor_of(floors: Sequence[Floor]) -> dict[str, int]:
    return {p: level for level, floor in enumerate(floors) for p in floor.packages}


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(out)


def package_graph(graph: Graph) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, targets in graph.items():
        out.setdefault(package(module), set())
        for target in targets:
            if package(target) != package(module):
                out[package(module)].add(package(target))
    return out


def problems(graph: Graph, floors: Sequence[Floor]) -> list[str]:
    """What breaks the layering: a package on no floor, an import that runs up a floor, a
    cycle of modules, a cycle of packages (on one floor: between floors it runs up)."""
    level = floor_of(floors)
    out = [
        f"{p}: on no floor (add it to FLOORS and to docs/architecture.md)"
        for p in sorted({package(m) for m in graph} - set(level))
    ]
    for module in sorted(graph):
        for target in sorted(graph[module]):
            low, high = level.get(package(module)), level.get(package(target))
            if low is not None and high is not None and high > low:
                out.append(
                    f"{module} imports {target}: up from the {floors[low].name} floor "
                    f"to the {floors[high].name} floor"
                )
    out += [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    out += [f"package cycle: {' <-> '.join(c)}" for c in cycles(package_graph(graph))]
    return out


def reduced(graph: Graph) -> dict[str, set[str]]:
    """The transitive reduction of an acyclic graph: an arrow a longer path implies goes."""

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return seen

    out: dict[str, set[str]] = {}
    for node, targets in graph.items():
        implied = set().union(*(reach(t) for t in targets)) if targets else set()
        out[node] = {t for t in targets if t not in implied}
    return out


# ---------------------------------------------------------------------------- picture

BOX_W, BOX_H, ROW_H, LEFT, WIDTH = 112, 34, 92, 150, 960


def svg(floors: Sequence[Floor], graph: Graph) -> str:
    """The floors, top floor first, and the package arrows a longer path does not imply."""
    places: dict[str, tuple[float, float]] = {}
    height = ROW_H * len(floors) + 40
    rows: list[str] = []
    for row, floor in enumerate(reversed(floors)):
        y = 20 + row * ROW_H
        rows.append(
            f'<rect x="8" y="{y}" width="{WIDTH - 16}" height="{ROW_H - 12}" rx="6" '
            f'class="floor"/>'
            f'<text x="20" y="{y + 30}" class="floor-name">{escape(floor.name)}</text>'
            f'<text x="{LEFT}" y="{y + ROW_H - 20}" class="says">{escape(floor.says)}</text>'
        )
        span = (WIDTH - LEFT - 20) / len(floor.packages)
        for i, name in enumerate(floor.packages):
            x = LEFT + i * span + (span - BOX_W) / 2
            places[name] = (x, y + 10)
    arrows: list[str] = []
    for source, targets in sorted(reduced(package_graph(graph)).items()):
        for target in sorted(targets):
            if source not in places or target not in places:
                continue
            (x1, y1), (x2, y2) = places[source], places[target]
            if y1 == y2:  # same floor: an arc over the boxes
                a, b = x1 + BOX_W / 2, x2 + BOX_W / 2
                d = f"M{a:.0f},{y1:.0f} Q{(a + b) / 2:.0f},{y1 - 24:.0f} {b:.0f},{y2:.0f}"
            else:
                d = (f"M{x1 + BOX_W / 2:.0f},{y1 + BOX_H:.0f} "
                     f"L{x2 + BOX_W / 2:.0f},{y2:.0f}")  # fmt: skip
            arrows.append(f'<path d="{d}" class="arrow" marker-end="url(#head)"/>')
    boxes = [
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="4" class="box"/>'
        f'<text x="{x + BOX_W / 2:.0f}" y="{y + 22:.0f}" class="name">{escape(name)}</text>'
        for name, (x, y) in places.items()
    ]
    style = (
        ".floor{fill:#f4f6f8;stroke:#c9d1d9}.floor-name{font:bold 15px sans-serif;fill:#24292f}"
        ".says{font:12px sans-serif;fill:#57606a}.box{fill:#ddeaf6;stroke:#4a6b8a}"
        ".name{font:14px monospace;fill:#0b2540;text-anchor:middle}"
        ".arrow{fill:none;stroke:#8a3b12;stroke-width:1.3;opacity:.75}"
    )
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}">',
            "<!-- generated by `python -m tests.unit.layers > docs/img/layers.svg` -->",
            f"<style>{style}</style>",
            '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8a3b12"/>'
            "</marker></defs>",
            *rows,
            *arrows,
            *boxes,
            f'<text x="{WIDTH - 12}" y="{height - 10}" class="says" text-anchor="end">'
            "arrow: imports; an arrow a longer path implies is not drawn</text>",
            "</svg>",
            "",
        ]
    )


def daemon_graph() -> dict[str, set[str]]:
    return import_graph(REPO / "daemon")


def report(lines: Iterable[str]) -> str:
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(svg(FLOORS, daemon_graph()))
