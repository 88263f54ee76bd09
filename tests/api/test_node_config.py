"""node.conf: the same keyword engine as services, located errors, defaults for zero-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config.errors import ConfigError
from daemon.node.config import load_node_config, node_config_from_text
from daemon.node.manifest import CLUSTER, NODE


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        node_config_from_text(text, "node.conf", "n1")
    return [i.render() for i in info.value.issues]


def test_missing_or_comment_only_file_gives_defaults(tmp_path: Path) -> None:
    for text in (None, "", "# nothing yet\n; really\n"):
        path = tmp_path / "node.conf"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        config = load_node_config(path, "n1")
        assert config.node.name == "n1"
        assert (config.node.listen_addr, config.node.listen_port, config.node.tls) == (
            "127.0.0.1",
            7443,
            True,
        )
        assert config.cluster.name == "default" and config.cluster.peers == ()
        assert (config.cluster.hb_interval, config.cluster.hb_timeout) == (5, 15)


def test_values_are_converted_by_the_keyword_declarations() -> None:
    config = node_config_from_text(
        "[node]\nname = N1\nlisten_addr = 0.0.0.0\nlisten_port = 1215\nmax_actions = 8\n"
        "action_timeout = 1h30m\n\n[cluster]\nname = Prod\nsecret = s3cr3t\n"
        "peers = n1 n2=10.0.0.2 n3=10.0.0.3:7000 n4=[fd00::4]:7001\n"
        "hb_interval = 2s\nhb_timeout = 10s\nready_period = 10s\nrejoin_grace_period = 2m\n",
        "node.conf",
        "ignored",
    )
    assert config.node.name == "n1" and config.node.action_timeout == 5400
    assert config.cluster.name == "prod" and config.cluster.secret == "s3cr3t"
    assert [(p.name, p.host, p.port) for p in config.cluster.peers] == [
        ("n2", "10.0.0.2", 1215),
        ("n3", "10.0.0.3", 7000),
        ("n4", "fd00::4", 7001),
    ]
    assert config.cluster.rejoin_grace == 120
    assert [n.keyword for n in config.notices] == ["rejoin_grace_period"]


def test_errors_are_located() -> None:
    lines = _errors(
        "[node]\nlisten_port = 99999\nlisten_adr = x\nname@n2 = y\n\n[clustr]\nname = a\n"
        "[cluster]\nhb_interval = soon\n"
    )
    assert lines == [
        "node.conf:2 [node] listen_port: 99999 is not a TCP port (1-65535) (expects: TCP port)",
        "node.conf:3 [node] listen_adr: unknown keyword for [node] (did you mean 'listen_addr'?)",
        "node.conf:4 [node] name@n2: keywords of this file cannot be scoped "
        "(the file belongs to one node: write the plain keyword)",
        "node.conf:6 [clustr] unknown section (did you mean 'cluster'?)",
        "node.conf:9 [cluster] hb_interval: 'soon' is not a duration "
        "(examples: 1d3h, 90m, 2h30m, 10s) (expects: duration)",
    ]


def test_cross_keyword_checks() -> None:
    assert _errors("[cluster]\nhb_interval = 10s\nhb_timeout = 5s\n") == [
        "node.conf:3 [cluster] hb_timeout: hb_timeout (5s) must be longer than hb_interval (10s)"
        " (a few intervals, e.g. 3 x hb_interval)"
    ]
    assert (
        "tokens would cross the network in clear"
        in _errors("[node]\nlisten_addr = 10.0.0.1\ntls = false\n")[0]
    )
    node_config_from_text("[node]\ntls = false\n", "node.conf", "n1")  # loopback: allowed
    assert "bad port" in _errors("[cluster]\npeers = n2=h:x\n")[0]
    assert "a peer is" in _errors("[cluster]\npeers = -x\n")[0]


def test_manifests_document_every_keyword() -> None:
    for manifest in (NODE, CLUSTER):
        for keyword in manifest.keywords:
            assert keyword.help and not keyword.scopable


def test_the_daemon_doc_lists_every_keyword() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "daemon.md").read_text()
    for manifest in (NODE, CLUSTER):
        for keyword in manifest.keywords:
            assert f"| `{keyword.name}` |" in doc, keyword.name
