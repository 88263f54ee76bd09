"""Documentation comes from the keyword declarations and the README keeps up with them."""

from __future__ import annotations

from pathlib import Path

from daemon.api.reference import api_markdown, openapi_json
from daemon.cli.docs import manifests, reference_markdown
from tests.unit.ferry_cli import ferry

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_generated_text() -> None:
    text = README.read_text()
    begin = text.index("<!-- BEGIN REFERENCE -->\n") + len("<!-- BEGIN REFERENCE -->\n")
    end = text.index("<!-- END REFERENCE -->")
    assert text[begin:end] == reference_markdown() + "\n", (
        "README reference is stale: regenerate it with `ferry doc --markdown`"
    )


def test_every_keyword_has_help() -> None:
    for manifest in manifests():
        for keyword in manifest.keywords:
            assert keyword.help.strip(), f"{manifest.label}.{keyword.name}"


def test_doc_command() -> None:
    result = ferry("doc", "sync.btrfs.src")
    assert result.code == 0
    assert "<label>:<subvolume path>" in result.out
    result = ferry("doc", "flex_min")
    assert "deprecated aliases: flex_min_nodes" in result.out
    result = ferry("doc", "mnt_opts")
    assert result.code == 2
    assert "did you mean 'mnt_opt'" in result.err


def test_api_reference_files_are_generated_text() -> None:
    docs = README.parent / "docs"
    assert (docs / "api.md").read_text() == api_markdown(), (
        "docs/api.md is stale: regenerate it with `ferry doc --api > docs/api.md`"
    )
    assert (docs / "openapi.json").read_text() == openapi_json(), (
        "docs/openapi.json is stale: regenerate it with `ferry doc --openapi > docs/openapi.json`"
    )


def test_api_reference_names_every_route_and_schema() -> None:
    from daemon.api.routes import ROUTES

    text = api_markdown()
    for route in ROUTES:
        assert f"| {route.method.upper()} | `{route.path}` |" in text
        assert f"### {route.method.upper()} {route.path}\n" in text
    assert "### ClusterServiceView\n" in text and "| `avail` |" in text
    result = ferry("doc", "--api")
    assert result.code == 0 and result.out == text
