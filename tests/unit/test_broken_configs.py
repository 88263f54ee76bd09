"""A corpus of broken configurations: each gives one clear located line, exit 2, file untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.ferry_cli import ferry

CORPUS = Path(__file__).resolve().parents[1] / "data" / "broken"

# name -> (line of the first error, words the error must contain)
EXPECTED: dict[str, tuple[int, str]] = {
    "typo_keyword": (7, "[fs#0] mnt_opts: unknown keyword for driver fs (did you mean 'mnt_opt'?)"),
    "unknown_driver_type": (5, "[sync#0] type: unknown sync driver type 'zfs'"),
    "bad_candidate": (3, "[DEFAULT] orchestrate: 'always' is not one of: no, start, ha"),
    "scoped_unscopable": (3, "[DEFAULT] topology@n1: this keyword cannot be scoped"),
    "reference_loop": (5, "[fs#0] dev: reference loop: fs#0.dev -> fs#0.mnt -> fs#0.dev"),
    "missing_required": (4, "[fs#0] mnt: required, and not set"),
    "bad_duration": (3, "[DEFAULT] sync_max_delay: '1x3y' is not a duration"),
    "duplicate_section": (8, "[fs#0] duplicate section (first at line 4)"),
    "bad_target": (7, "[sync#0] target: 'peers' is not one of: nodes, drpnodes"),
    "unknown_group": (4, "[volume#0] unknown resource group 'volume'"),
    "no_equal": (3, "expected 'keyword = value', got 'orchestrate ha'"),
    "key_outside_section": (1, "nodes: keyword outside of any section"),
    "duplicate_key": (3, "[DEFAULT] nodes: set twice in this section (first at line 2)"),
    "bad_boolean": (7, "[fs#0] standby: 'maybe' is not a boolean"),
    "bad_integer": (3, "[DEFAULT] flex_min: 'two' is not an integer"),
    "empty_scope": (5, "[fs#0] dev@: empty scope after '@'"),
    "malformed_header": (4, "malformed section header '[fs#0'"),
    "empty_section_name": (4, "empty section name"),
    "bad_section_name": (4, "[fs 0] not a valid section name"),
    "scoped_type": (5, "[sync#0] type@n1: the driver type cannot be scoped"),
    "no_default_section": (1, "no [DEFAULT] section"),
    "node_in_both_sites": (3, "[DEFAULT] drpnodes: n2 is in both nodes and drpnodes"),
    "flex_primary_not_node": (4, "[DEFAULT] flex_primary: n9 is not one of nodes (n1 n2)"),
    "netns_missing_container": (8, "[ip#0] netns: no section [container#7]"),
    "unknown_reference": (6, "[fs#0] mnt: unknown reference {fs#1.mnt}"),
    "alias_and_canonical": (4, "[DEFAULT] flex_min_nodes: set twice: also at line 3"),
    "bad_shell_words": (7, "[sync#0] options: cannot split into shell words"),
    "bad_mode_candidate": (12, "[ip#0] mode: 'vxlan' is not one of"),
    "unknown_default_keyword": (
        3,
        "[DEFAULT] mnt: unknown keyword for [DEFAULT] (mnt is a keyword",
    ),
    "uppercase_node_scope": (5, "[fs#0] dev@N1: node names are lower case (write dev@n1)"),
    "missing_required_node": (5, "[fs#0] dev: no value for node n2 (only dev@n1 is set"),
    "keyword_with_blank": (3, "[DEFAULT] flex min: a keyword has no blank inside"),
    "bad_required_via_reference": (10, "[sync#0] sync_max_delay: 'soon' is not a duration"),
    "no_nodes_value": (2, "[DEFAULT] nodes: no node"),
    "bad_compress": (7, "[sync#0] compress: 'gzip' is not a compression (none, zstd, zstd:LEVEL"),
    "bad_bwlimit": (9, "[sync#0] bwlimit@n2: 'fast' is not a rate (examples: 10M, 500K"),
    "bad_zstd_level": (4, "[DEFAULT] compress: zstd level '30': a whole number from 1 to 19"),
}

# The few cases where one problem is legitimately reported on several lines, each located:
# name -> (line, start of the words after the location) of every line after the first.
FURTHER_LINES: dict[str, list[tuple[int, str]]] = {
    # a loop involves every keyword in it; each one is unusable and reported where it is set
    "reference_loop": [(6, "[fs#0] mnt: reference loop: fs#0.mnt -> fs#0.dev -> fs#0.mnt")],
}

GENERATED: dict[str, tuple[bytes, int, str]] = {
    "empty": (b"", 0, "file is empty"),
    "blank_lines": (b"\n\n   \n", 0, "file is empty"),
    "comments_only": (b"# nothing\n; here\n", 0, "no section in file"),
    "binary_garbage": (b"[DEFAULT]\nnodes = n1\n\x00\x01\x02\xff", 3, "binary data (NUL byte)"),
    "latin1": (b"[DEFAULT]\nnodes = n1\ncomment = caf\xe9\n", 3, "not UTF-8 text"),
    "ten_megabytes": (b"[DEFAULT]\n" + b"# padding\n" * 1_100_000, 0, "more than the 1048576"),
}


def test_corpus_is_complete() -> None:
    on_disk = {p.stem for p in CORPUS.glob("*.conf")}
    assert on_disk == set(EXPECTED)
    assert len(EXPECTED) + len(GENERATED) >= 30


def run_validate(tmp_path: Path, data: bytes) -> tuple[int, list[str], bytes]:
    path = tmp_path / "svc.conf"
    path.write_bytes(data)
    result = ferry("--config-dir", str(tmp_path), "svc", "validate", "config")
    lines = [line for line in (result.out + result.err).splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("notice:")]
    return result.code, errors, path.read_bytes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_config(name: str, tmp_path: Path) -> None:
    data = (CORPUS / f"{name}.conf").read_bytes()
    line, words = EXPECTED[name]
    code, errors, after = run_validate(tmp_path, data)
    assert code == 2
    assert after == data
    first = errors[0]
    assert first.startswith(f"{tmp_path}/svc.conf:{line} "), first
    assert words in first, first
    more = [f"{tmp_path}/svc.conf:{n} {w}" for n, w in FURTHER_LINES.get(name, [])]
    assert len(errors) == 1 + len(more), errors
    for error, start in zip(errors[1:], more, strict=True):
        assert error.startswith(start), error
    assert "Traceback" not in "\n".join(errors)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_broken_input(name: str, tmp_path: Path) -> None:
    data, line, words = GENERATED[name]
    code, errors, after = run_validate(tmp_path, data)
    assert code == 2
    assert after == data
    assert len(errors) == 1
    where = f"{tmp_path}/svc.conf:{line} " if line else f"{tmp_path}/svc.conf: "
    assert errors[0].startswith(where), errors[0]
    assert words in errors[0]


@pytest.mark.parametrize("name", ["typo_keyword", "bad_candidate", "reference_loop"])
def test_broken_config_is_not_evaluated(name: str, tmp_path: Path) -> None:
    """A config with errors is never acted upon: print config --eval refuses with the error."""
    data = (CORPUS / f"{name}.conf").read_bytes()
    (tmp_path / "svc.conf").write_bytes(data)
    line, words = EXPECTED[name]
    result = ferry("--config-dir", str(tmp_path), "svc", "print", "config", "--eval")
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(f"{tmp_path}/svc.conf:{line} "), result.err
    assert words in result.err
    assert (tmp_path / "svc.conf").read_bytes() == data


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("typo_keyword", "DEFAULT.orchestrate=ha"),
        ("bad_candidate", "DEFAULT.placement=spread"),
        ("reference_loop", "DEFAULT.orchestrate=ha"),
        ("missing_required", "DEFAULT.orchestrate=ha"),
        ("unknown_reference", "DEFAULT.comment=x"),
    ],
)
def test_set_refuses_on_a_broken_config(name: str, kw: str, tmp_path: Path) -> None:
    """A set that leaves the config broken installs nothing: exit 2, the error, file untouched."""
    data = (CORPUS / f"{name}.conf").read_bytes()
    (tmp_path / "svc.conf").write_bytes(data)
    _, words = EXPECTED[name]
    result = ferry("--config-dir", str(tmp_path), "svc", "set", "--kw", kw, "--local")
    assert result.code == 2, result
    # located in the refused text (the new DEFAULT line shifts what follows)
    assert result.err.startswith(f"{tmp_path}/svc.conf:"), result.err
    assert words in result.err
    assert (tmp_path / "svc.conf").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.conf"]


def test_set_that_fixes_a_broken_config_is_accepted(tmp_path: Path) -> None:
    """Refusing broken results must not lock the user out: a set that repairs it is written."""
    data = (CORPUS / "bad_candidate.conf").read_bytes()
    (tmp_path / "svc.conf").write_bytes(data)
    result = ferry(
        "--config-dir", str(tmp_path), "svc", "set", "--kw", "DEFAULT.orchestrate=ha", "--local"
    )
    assert result.code == 0, result.err
    assert (tmp_path / "svc.conf").read_bytes() == data.replace(b"= always", b"= ha")
    assert ferry("--config-dir", str(tmp_path), "svc", "validate", "config").code == 0


def test_missing_service(tmp_path: Path) -> None:
    result = ferry("--config-dir", str(tmp_path), "nosuch", "validate", "config")
    assert result.code == 2
    assert "nosuch.conf: no such file" in result.out + result.err


def test_bad_service_name(tmp_path: Path) -> None:
    result = ferry("--config-dir", str(tmp_path), "../etc/passwd", "validate", "config")
    assert result.code == 2
    assert "not a valid service name" in result.err
