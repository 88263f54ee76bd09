"""References of SPEC 2.4: well-known names, keywords, sections, env, counts, indexes, loops."""

from __future__ import annotations

import pytest

from daemon.config.errors import ConfigError
from daemon.config.ini import parse
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.validate import validate

BASE = """[DEFAULT]
nodes = n1 n2
drpnodes = n3
[env]
port = 8080
port@n2 = 9090
words = alpha beta gamma
[container#0]
image = img
[fs#1]
dev = /dev/sdb
mnt = /srv/{svcname}/data
"""


def svc_with(section_text: str, node: str = "n1") -> ServiceConfig:
    doc = parse(BASE + section_text, "svc1.conf")
    return ServiceConfig(doc, context=EvalContext(node, clustername="c1", var_dir="/v"))


@pytest.mark.parametrize(
    ("value", "node", "expected"),
    [
        ("{nodename}", "n2", "n2"),
        ("{svcname}", "n1", "svc1"),
        ("{name}", "n1", "svc1"),
        ("{rid}", "n1", "app#0"),
        ("{clustername}", "n1", "c1"),
        ("{nodes}", "n1", "n1 n2"),
        ("{drpnodes}", "n1", "n3"),
        ("{var}", "n1", "/v/services/svc1"),
        ("{fs#1.mnt}/x", "n1", "/srv/svc1/data/x"),
        ("{DEFAULT.nodes}", "n1", "n1 n2"),
        ("{env.port}", "n1", "8080"),
        ("{env.port}", "n2", "9090"),
        ("{#env.words}", "n1", "3"),
        ("{env.words[1]}", "n1", "beta"),
        ("{env.words[-1]}", "n1", "gamma"),
        ("{#nodes}", "n1", "2"),
        ("{nodes[0]}", "n1", "n1"),
        ("{cwd}/bin", "n1", "/opt/bin"),
        ("${HOME} {nodename}", "n1", "${HOME} n1"),
        ("{unknown.thing}", "n1", "{unknown.thing}"),
        ("{env.words[7]}", "n1", "{env.words[7]}"),
    ],
)
def test_reference_table(value: str, node: str, expected: str) -> None:
    svc = svc_with(f"[app#0]\ncwd = /opt\nstart = {value}\n", node)
    assert svc.text("app#0", "start", node) == expected


def test_keyword_reference_prefers_own_section_then_default() -> None:
    svc = svc_with("[app#0]\nstart = {comment}\ncomment = own\n")
    assert svc.text("app#0", "start", "n1") == "own"
    doc = parse(
        BASE.replace("nodes = n1 n2\n", "nodes = n1 n2\ncomment = shared\n")
        + "[app#0]\nstart = {comment}\n",
        "svc1.conf",
    )
    svc = ServiceConfig(doc, context=EvalContext("n1"))
    assert svc.text("app#0", "start", "n1") == "shared"


def test_reference_sees_scoping_of_the_referenced_keyword() -> None:
    svc = svc_with("[app#0]\nstart = {fs#2.mnt}\n[fs#2]\ndev = /d\nmnt = /a\nmnt@n3 = /b\n", "n3")
    assert svc.text("app#0", "start", "n3") == "/b"
    assert svc.text("app#0", "start", "n1") == "/a"


def test_loop_is_an_error_naming_the_chain() -> None:
    svc = svc_with("[app#0]\nstart = {stop}\nstop = {check}\ncheck = {start}\n")
    with pytest.raises(ConfigError) as caught:
        svc.text("app#0", "start", "n1")
    message = caught.value.issues[0].render()
    assert "reference loop" in message
    assert "app#0.start -> app#0.stop -> app#0.check -> app#0.start" in message


def test_self_reference_is_a_loop() -> None:
    svc = svc_with("[app#0]\nstart = x{start}\n")
    issues = validate(svc)
    assert any("reference loop" in i.message and i.line > 0 for i in issues)


def test_depth_is_bounded() -> None:
    chain = "".join(f"k{i} = {{k{i + 1}}}\n" for i in range(30)) + "k30 = end\n"
    doc = parse(
        BASE.replace("[env]\n", f"[env]\n{chain}") + "[app#0]\nstart = {env.k0}\n", "svc1.conf"
    )
    svc = ServiceConfig(doc, context=EvalContext("n1"))
    with pytest.raises(ConfigError, match="more than 20 levels"):
        svc.text("app#0", "start", "n1")


def test_unknown_reference_is_reported_by_validation() -> None:
    svc = svc_with("[app#0]\nstart = run {fs#9.mnt}\n")
    messages = [i.render() for i in validate(svc)]
    assert any("unknown reference {fs#9.mnt}" in m and "svc1.conf:14" in m for m in messages)


def test_converted_after_expansion() -> None:
    doc = parse(
        BASE.replace("port = 8080", "port = 8080\ndelay = 2h")
        + "[sync#0]\nsrc = /a\ndst = /a\nsync_max_delay = {env.delay}\n",
        "svc1.conf",
    )
    svc = ServiceConfig(doc, context=EvalContext("n1"))
    assert svc.value("sync#0", "sync_max_delay", "n1") == 7200
