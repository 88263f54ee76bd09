"""The packages of daemon/ stand on floors and every import points down (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.layers import (
    FLOORS,
    REPO,
    Floor,
    daemon_graph,
    import_graph,
    problems,
    report,
    svg,
)

TWO_FLOORS = (Floor("low", ("low", "side"), ""), Floor("high", ("high",), ""))


def _package(root: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` of the given files (path under pkg/ -> source)."""
    pkg = root / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != pkg and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(text)
    return pkg


def test_daemon_imports_point_down() -> None:
    found = problems(daemon_graph(), FLOORS)
    assert not found, "the layering is broken (docs/architecture.md):\n" + report(found)


def test_every_floor_names_packages_that_exist() -> None:
    packages = {name.split(".")[1] for name in daemon_graph() if "." in name}
    declared = {p for floor in FLOORS for p in floor.packages}
    assert declared == packages


def test_the_picture_is_current() -> None:
    picture = REPO / "docs" / "img" / "layers.svg"
    assert picture.read_text() == svg(FLOORS, daemon_graph()), (
        "docs/img/layers.svg is stale: regenerate it with "
        "`python -m tests.unit.layers > docs/img/layers.svg`"
    )


def test_the_graph_reads_every_kind_of_import(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "low/a.py": "from pkg.low import b\n",
            "low/b.py": "import pkg.side.c\n",
            "low/d.py": "from .b import x\n",
            "side/c.py": "def f():\n    from pkg.low.a import y\n",
            "high/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from pkg.low.d import Z\n",
        },
    )
    graph = import_graph(pkg)
    assert graph["pkg.low.a"] == {"pkg.low.b"}
    assert graph["pkg.low.b"] == {"pkg.side.c"}
    assert graph["pkg.low.d"] == {"pkg.low.b"}
    assert graph["pkg.side.c"] == {"pkg.low.a"}  # inside a function
    assert graph["pkg.high.e"] == {"pkg.low.d"}  # under TYPE_CHECKING


def test_a_cycle_fails(tmp_path: Path) -> None:
    """A deliberate cycle, one side of it under TYPE_CHECKING, is caught."""
    pkg = _package(
        tmp_path,
        {
            "low/a.py": "from pkg.low.b import B\n",
            "low/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from pkg.low.a import A\n",
        },
    )
    assert problems(import_graph(pkg), TWO_FLOORS) == ["import cycle: pkg.low.a <-> pkg.low.b"]


def test_an_upward_import_fails(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {"high/h.py": "from pkg.low import l\n", "low/l.py": "import pkg.high.h\n"},
    )
    found = problems(import_graph(pkg), TWO_FLOORS)
    assert found[0] == "pkg.low.l imports pkg.high.h: up from the low floor to the high floor"
    assert "import cycle: pkg.high.h <-> pkg.low.l" in found


def test_a_package_cycle_on_one_floor_fails(tmp_path: Path) -> None:
    """No module cycle, but two packages of one floor that import each other."""
    pkg = _package(
        tmp_path,
        {
            "low/a.py": "from pkg.side import c\n",
            "low/b.py": "",
            "side/c.py": "",
            "side/d.py": "from pkg.low import b\n",
        },
    )
    assert problems(import_graph(pkg), TWO_FLOORS) == ["package cycle: low <-> side"]


def test_a_package_on_no_floor_fails(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {"low/a.py": "", "attic/old.py": "from pkg.low import a\n"})
    found = problems(import_graph(pkg), TWO_FLOORS)
    assert found == ["attic: on no floor (add it to FLOORS and to docs/architecture.md)"]


def test_a_clean_package_passes(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "high/h.py": "from pkg.low.l import x\nfrom pkg.side import s\n",
            "low/l.py": "",
            "side/s.py": "from pkg.low import l\n",
        },
    )
    assert problems(import_graph(pkg), TWO_FLOORS) == []
