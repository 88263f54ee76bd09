"""Documentation comes from the keyword declarations and the README keeps up with them."""

from __future__ import annotations

from pathlib import Path

from daemon.api.reference import api_markdown, openapi_json
from daemon.cli.commands import NODE_COMMANDS, SERVICE_COMMANDS
from daemon.cli.docs import manifests, reference_markdown
from daemon.cli.grammar import OPTIONS
from daemon.cli.reference import cli_markdown
from tests.unit.ferry_cli import ferry

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_generated_text() -> None:
    text = README.read_text()
    begin = text.index("<!-- BEGIN REFERENCE -->\n") + len("<!-- BEGIN REFERENCE -->\n")
    end = text.index("<!-- END REFERENCE -->")
    assert text[begin:end] == reference_markdown() + "\n", (
        "README reference is stale: regenerate it with `ferry doc --markdown`"
    )


def test_readme_cli_tables_are_generated_from_the_parser() -> None:
    text = README.read_text()
    begin = text.index("<!-- BEGIN CLI -->\n") + len("<!-- BEGIN CLI -->\n")
    end = text.index("<!-- END CLI -->")
    assert text[begin:end] == cli_markdown() + "\n", (
        "README's CLI tables are stale: regenerate them with `ferry doc --cli`"
    )
    result = ferry("doc", "--cli")
    assert result.code == 0 and result.out == cli_markdown() + "\n"


def test_cli_tables_name_every_public_command_and_option() -> None:
    text = cli_markdown()
    for command in (*SERVICE_COMMANDS, *NODE_COMMANDS):
        if command.internal or command.run is None:
            continue
        prefix = "ferry SVC " if command in SERVICE_COMMANDS else "ferry "
        first = prefix + (command.words[0] if command.words[0] == "sync" else command.name)
        row = next((line for line in text.splitlines() if line.startswith(f"| `{first}")), "")
        assert row, command.name
        for name in command.options:
            assert f"[{OPTIONS[name].flags[-1]}" in row, (command.name, name)
    assert "`ferry SVC restorepoint delete POINT [--node NODE]" in text
    assert "`-o, --output text\\|json`" in text


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
