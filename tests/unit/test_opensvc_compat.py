"""OpenSVC compatibility (issue 19): files OpenSVC users have load and mean the same.

Each table row is a behaviour of OpenSVC v2 as its code documents it (core/extconfig.py
for references and $(...), utilities/converters for booleans, core/objects/svcdict.py
for defaults, inheritance and deprecated keywords), or a refusal Ferry makes on purpose
(docs/opensvc-compat.md says why).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.config import converters as c
from daemon.config.errors import ConfigError, Severity
from daemon.config.expressions import ExpressionError, evaluate, substitute
from daemon.config.ini import parse
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.validate import validate
from tests.unit.ferry_cli import ferry

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "conf.d" / "seeds"

HEAD = """[DEFAULT]
nodes = n1 n2
drpnodes = n3
[env]
n = 10
words = alpha beta
ip6 = fe80::1
ip4 = 10.0.0.1
"""


def load(text: str, node: str = "n1") -> ServiceConfig:
    return ServiceConfig(parse(text, "svc1.conf"), context=EvalContext(node, var_dir="/v"))


def errors_of(svc: ServiceConfig) -> list[str]:
    return [i.render() for i in validate(svc) if i.severity is Severity.ERROR]


# ---------------------------------------------------------------- $(...) expressions

# (section text appended to HEAD, section, keyword, value for n1)
EXPRESSIONS = [
    ("[app#0]\nrestart = $(1+2)\n", "app#0", "restart", 3),
    ("[fs#0]\ndev = /d\nmnt = /srv/$(10/4)\n", "fs#0", "mnt", "/srv/2.5"),
    ("[fs#0]\ndev = /d\nmnt = /srv/$(4/2)\n", "fs#0", "mnt", "/srv/2.0"),
    ("[fs#0]\ndev = /d\nmnt = /srv/$({env.n}/4)\n", "fs#0", "mnt", "/srv/2.5"),
    ("[app#0]\nrestart = $({env.n}*2)\n", "app#0", "restart", 20),
    ("[app#0]\nrestart = $(10/4)\n", "app#0", "restart", 2),  # int(float()), as OpenSVC
    ("[app#0]\nrestart = $(2**3 - 7 // 2 % 5)\n", "app#0", "restart", 5),
    ("[app#0]\nrestart = $(-(3))\n", "app#0", "restart", -3),
    ("[app#0]\nrestart = $((1+2)*3)\n", "app#0", "restart", 9),
    ("[app#0]\nstart = run $(1+1) then $(2*3)\n", "app#0", "start", "run 2 then 6"),
    ("[app#0]\ntimeout = $(60*2)\n", "app#0", "timeout", 120),
    ("[sync#0]\nsrc = /a\ndst = /a\nsync_max_delay = $(60*2)\n", "sync#0", "sync_max_delay", 7200),
    ("[app#0]\nrestart = {env.m}\n", "app#0", "restart", 3),  # env.m = $(1+2)
    ("[fs#0]\ndev = /d\nmnt = /x\nmonitor = $(1)\n", "fs#0", "monitor", True),
    ("[fs#0]\ndev = /d\nmnt = /x\nmonitor = $(0.0)\n", "fs#0", "monitor", False),
]


@pytest.mark.parametrize(("text", "section", "keyword", "expected"), EXPRESSIONS)
def test_expression_values(text: str, section: str, keyword: str, expected: object) -> None:
    full = HEAD.replace("n = 10\n", "n = 10\nm = $(1+2)\n") + text
    svc = load(full)
    assert errors_of(svc) == []
    assert svc.value(section, keyword, "n1") == expected


# (value of app#0.start, start of the message after the location)
EXPRESSION_ERRORS = [
    ("$(a+b)", "$(a+b): the name 'a' is not allowed"),
    ("$(date)", "$(date): the name 'date' is not allowed"),
    ("echo $(len('x'))", "a call is not allowed"),
    ("$(1/0)", "$(1/0): division by zero"),
    ("$(2**100000)", "the result is too large"),
    ("$(1 < 2)", "a comparison is not allowed"),
    ("$(1 | 2)", "the operator BitOr is not allowed"),
    ("$('x')", "'x' is not a number"),
    ("/srv/$(1+", "'$(' at column 6 is never closed"),
    ("$()", "empty expression"),
    ("$(" + "1+" * 150 + "1)", "expression longer than 200 characters"),
    ("$({env.words}+1)", "is not an arithmetic expression (after references:"),
]


@pytest.mark.parametrize(("value", "message"), EXPRESSION_ERRORS)
def test_expression_errors_are_located(value: str, message: str) -> None:
    svc = load(HEAD + f"[app#0]\nstart = {value}\n")
    errors = errors_of(svc)
    assert len(errors) == 1, errors
    assert errors[0].startswith("svc1.conf:10 [app#0] start: ")
    assert message in errors[0]
    with pytest.raises(ConfigError):
        svc.value("app#0", "start", "n1")


def test_expression_in_an_integer_keyword_is_checked_at_load() -> None:
    svc = load(HEAD + "[app#0]\nrestart = $(1+)\n")
    assert [i.render() for i in svc.errors] == [
        "svc1.conf:10 [app#0] restart: $(1+) is not an arithmetic expression "
        "($(...) is arithmetic, as in OpenSVC; for the shell's command substitution write "
        "`command` (backquotes) or call a script)"
    ]


def test_expression_error_in_a_referenced_value_points_at_it() -> None:
    svc = load(HEAD.replace("n = 10\n", "n = $(x)\n") + "[app#0]\nstart = {env.n}\n")
    messages = errors_of(svc)
    assert messages and all(m.startswith("svc1.conf:5 [env] n: $(x)") for m in messages)


@pytest.mark.parametrize(
    ("expression", "value"),
    [("1+2", 3), ("10/4", 2.5), ("7//2", 3), ("7%4", 3), ("2**10", 1024), ("-2.5*2", -5.0)],
)
def test_evaluator(expression: str, value: float) -> None:
    assert evaluate(expression) == value


def test_evaluator_never_runs_code() -> None:
    for text in ("__import__('os').system('true')", "(lambda: 1)()", "[1][0]", "x.y"):
        with pytest.raises(ExpressionError):
            evaluate(text)
    assert substitute("no expression") == ("no expression", None)
    assert substitute("$(1+2)") == ("3", 3)


# ---------------------------------------------------------------- booleans


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("t", True),
        ("y", True),
        ("T", True),
        ("Y", True),
        ("f", False),
        ("n", False),
        ("0.0", False),
        ("none", False),
        ("", False),
        ("[]", False),
        ("{}", False),
    ],
)
def test_opensvc_boolean_words(text: str, value: bool) -> None:
    assert c.BOOLEAN(text) is value


@pytest.mark.parametrize("text", ["on", "off", "ON", "enabled", "2"])
def test_words_opensvc_refuses_as_booleans(text: str) -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        c.BOOLEAN(text)


def test_on_in_a_file_is_a_located_error() -> None:
    svc = load(HEAD + "[fs#0]\ndev = /d\nmnt = /x\nmonitor = on\n")
    assert errors_of(svc) == [
        "svc1.conf:12 [fs#0] monitor: 'on' is not a boolean (use true or false) (expects: boolean)"
    ]


# ---------------------------------------------------------------- ':' delimiter


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("nodes: n1 n2", "nodes", "n1 n2"),
        ("src = svc1:data", "src", "svc1:data"),
        ("src: svc1=data", "src", "svc1=data"),
        ("dev@n1: /dev/sdb", "dev@n1", "/dev/sdb"),
        ("netns = container#0", "netns", "container#0"),
        ("url:http://x:80/", "url", "http://x:80/"),
        ("dst=a:b", "dst", "a:b"),
    ],
)
def test_first_delimiter_splits(line: str, key: str, value: str) -> None:
    doc = parse(f"[x]\n{line}\n", "t.conf")
    entry = doc.sections["x"].entries[key]
    assert entry.value == value


def test_colon_file_loads() -> None:
    svc = load("[DEFAULT]\nnodes: n1 n2\n[fs#0]\ndev: /dev/sdb\nmnt : /srv/a\n")
    assert errors_of(svc) == []
    assert svc.value("DEFAULT", "nodes", "n1") == ["n1", "n2"]
    assert svc.value("fs#0", "mnt", "n1") == "/srv/a"


# ---------------------------------------------------------------- references

REFERENCES = [
    ("{rindex}", "app#web", "web"),
    ("{rid}/{rindex}", "app#0", "app#0/0"),
    ("{upper:svcname}", "app#0", "SVC1"),
    ("{lower:upper:svcname}", "app#0", "svc1"),
    ("{capitalize:svcname}", "app#0", "Svc1"),
    ("{title:env.words}", "app#0", "Alpha Beta"),
    ("{swapcase:env.words}", "app#0", "ALPHA BETA"),
    ("{uri_ip:env.ip6}", "app#0", "[fe80::1]"),
    ("{uri_ip:env.ip4}", "app#0", "10.0.0.1"),
    ("{upper:nodes[1]}", "app#0", "N2"),
    ("{#upper:env.words}", "app#0", "2"),
    ("{short_nodename}", "app#0", "n1"),
    ("{namespace}/{kind}/{path}", "app#0", "root/svc/svc1"),
    ("{short_svcname} {svcpath} {short_name}", "app#0", "svc1 svc1 svc1"),
    ("{private_var}", "app#0", "/v/services/svc1"),
]


@pytest.mark.parametrize(("value", "section", "expected"), REFERENCES)
def test_opensvc_references(value: str, section: str, expected: str) -> None:
    svc = load(HEAD + f"[{section}]\nstart = {value}\n")
    assert errors_of(svc) == []
    assert svc.text(section, "start", "n1") == expected


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("dnsnodes", "Ferry has no cluster DNS"),
        ("dns", "Ferry has no cluster DNS"),
        ("fqdn", "Ferry has no cluster DNS"),
        ("id", "Ferry services have no id"),
        ("clusterid", "Ferry clusters have no id"),
        ("clusternodes", "services do not see the cluster's node list"),
        ("svcmgr", "Ferry's command is ferry"),
        ("safe://a/b", "Ferry has no secret store"),
        ("node.env.site", "services do not read node.conf keywords"),
        ("upper:dnsnodes", "Ferry has no cluster DNS"),
    ],
)
def test_refused_references(ref: str, reason: str) -> None:
    svc = load(HEAD + f"[app#0]\nstart = x {{{ref}}}\n")
    errors = errors_of(svc)
    assert len(errors) == 1, errors
    shown = ref.removeprefix("upper:")
    assert errors[0].startswith(
        f"svc1.conf:10 [app#0] start: {{{shown}}} is an OpenSVC reference Ferry does not "
        f"support ({reason}"
    )
    with pytest.raises(ConfigError, match="does not support"):
        svc.text("app#0", "start", "n1")


def test_refused_reference_in_a_referenced_value_points_at_it() -> None:
    svc = load(HEAD.replace("n = 10\n", "n = 10\nx = {dnsnodes}\n") + "[app#0]\nstart = {env.x}\n")
    messages = errors_of(svc)
    assert messages and all(m.startswith("svc1.conf:6 [env] x: {dnsnodes}") for m in messages)


# ---------------------------------------------------------------- [DEFAULT] inheritance

INHERITANCE = [
    # ([DEFAULT] lines, resource text, section, keyword, node, value)
    ("monitor = true", "[fs#0]\ndev = /d\nmnt = /x\n", "fs#0", "monitor", "n1", True),
    ("monitor = true", "[fs#0]\ndev = /d\nmnt = /x\nmonitor = f\n", "fs#0", "monitor", "n1", False),
    ("monitor@n2 = true", "[fs#0]\ndev = /d\nmnt = /x\n", "fs#0", "monitor", "n2", True),
    ("monitor@n2 = true", "[fs#0]\ndev = /d\nmnt = /x\n", "fs#0", "monitor", "n1", False),
    ("restart = 2", "[app#0]\nstart = /bin/true\n", "app#0", "restart", "n1", 2),
    ("optional = true", "[fs#0]\ndev = /d\nmnt = /x\n", "fs#0", "optional", "n1", True),
    ("standby@drpnodes = true", "[fs#0]\ndev = /d\nmnt = /x\n", "fs#0", "standby", "n3", True),
    ("tags = a b", "[fs#0]\ndev = /d\nmnt = /x\n", "fs#0", "tags", "n1", ["a", "b"]),
    ("mnt_opt = noatime", "[fs#0]\ndev = /d\nmnt = /x\n", "fs#0", "mnt_opt", "n1", "noatime"),
    ("dev = /dev/sdb", "[fs#0]\nmnt = /x\n", "fs#0", "dev", "n3", "/dev/sdb"),
    ("target = drpnodes", "[sync#0]\nsrc = /a\ndst = /a\n", "sync#0", "target", "n1", ["drpnodes"]),
    ("timeout = 5m", "[app#0]\nstart = /bin/true\n", "app#0", "timeout", "n1", 300),
    # disable is 'leaf' in OpenSVC: the service's disable does not reach the resources
    ("disable = true", "[fs#0]\ndev = /d\nmnt = /x\n", "fs#0", "disable", "n1", False),
    # {kw} sees the inherited value
    ("mnt_opt = ro", "[fs#0]\ndev = /d\nmnt = /x/{mnt_opt}\n", "fs#0", "mnt", "n1", "/x/ro"),
]


@pytest.mark.parametrize(("lines", "text", "section", "keyword", "node", "value"), INHERITANCE)
def test_resource_keywords_inherit_from_default(
    lines: str, text: str, section: str, keyword: str, node: str, value: object
) -> None:
    svc = load(f"[DEFAULT]\nnodes = n1 n2\ndrpnodes = n3\n{lines}\n{text}", node)
    assert errors_of(svc) == []
    assert svc.value(section, keyword, node) == value


@pytest.mark.parametrize(
    ("lines", "text", "message"),
    [
        # no resource of the file inherits it: still an error (a typo, or a misplaced line)
        ("mnt = /srv/x", "[app#0]\nstart = /bin/true\n", "[DEFAULT] mnt: unknown keyword"),
        # subset is not inheritable in OpenSVC
        ("subset = a", "[fs#0]\ndev = /d\nmnt = /x\n", "[DEFAULT] subset: unknown keyword"),
        # the value is checked with the resource's converter, located in [DEFAULT]
        ("monitor = maybe", "[fs#0]\ndev = /d\nmnt = /x\n", "svc1.conf:4 [DEFAULT] monitor: "),
        ("tags@n1 = a", "[fs#0]\ndev = /d\nmnt = /x\n", "[DEFAULT] tags@n1: this keyword cannot"),
        ("always_on = drpnodes", "[fs#0]\ndev = /d\nmnt = /x\n", "[DEFAULT] always_on: unknown"),
        ("monitor@N2 = true", "[fs#0]\ndev = /d\nmnt = /x\n", "node names are lower case"),
    ],
)
def test_default_resource_keyword_errors(lines: str, text: str, message: str) -> None:
    svc = load(f"[DEFAULT]\nnodes = n1 n2\ndrpnodes = n3\n{lines}\n{text}")
    errors = errors_of(svc)
    assert any(message in e for e in errors), errors


def test_get_eval_sees_the_inherited_value(tmp_path: Path) -> None:
    (tmp_path / "svc1.conf").write_text(
        "[DEFAULT]\nnodes = n1\nmonitor = true\n[fs#0]\ndev = /d\nmnt = /x\n"
    )
    result = ferry("--config-dir", str(tmp_path), "svc1", "get", "--kw", "fs#0.monitor", "--eval")
    assert (result.code, result.out) == (0, "true\n")
    result = ferry("--config-dir", str(tmp_path), "svc1", "validate", "config")
    assert result.code == 0, result.out


# ---------------------------------------------------------------- names, defaults, deprecated


def test_container_data_dir_names_docker_data_dir() -> None:
    svc = load(HEAD.replace("drpnodes = n3\n", "drpnodes = n3\ncontainer_data_dir = /srv/d\n"))
    assert errors_of(svc) == []
    assert [i for i in svc.issues if i.severity is Severity.NOTICE] == []
    assert svc.value("DEFAULT", "docker_data_dir", "n1") == "/srv/d"
    both = HEAD.replace(
        "drpnodes = n3\n", "drpnodes = n3\ncontainer_data_dir = /a\ndocker_data_dir = /b\n"
    )
    assert any("set twice" in e for e in errors_of(load(both)))


def test_opensvc_defaults() -> None:
    svc = load(HEAD + "[sync#0]\nsrc = /a\ndst = /a\n")
    assert svc.value("DEFAULT", "priority", "n1") == 100
    assert svc.value("DEFAULT", "sync_max_delay", "n1") == 97200  # 1d3h
    assert svc.value("sync#0", "sync_max_delay", "n1") == 97200


@pytest.mark.parametrize(
    ("line", "replacement"),
    [
        ("svcname = svc1", "named after its file"),
        ("mode = hosted", "dropped it"),
        ("autostart_node = n1", "orchestrate = start"),
    ],
)
def test_deprecated_opensvc_keywords_are_ignored_with_a_notice(line: str, replacement: str) -> None:
    svc = load(HEAD.replace("drpnodes = n3\n", f"drpnodes = n3\n{line}\n"))
    assert errors_of(svc) == []
    notices = [i for i in validate(svc) if i.severity is Severity.NOTICE]
    assert len(notices) == 1
    assert notices[0].line == 4 and notices[0].keyword == line.split()[0]
    assert replacement in notices[0].hint
    assert "DEFAULT" in svc.sections and line.split()[0] not in svc.sections["DEFAULT"].variants


# ---------------------------------------------------------------- get --eval agrees with validate


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{nope}", "unknown reference {nope}"),
        ("{dnsnodes}", "{dnsnodes} is an OpenSVC reference Ferry does not support"),
        ("/srv/$(date)", "$(date): the name 'date' is not allowed"),
    ],
)
def test_get_eval_fails_where_validate_fails(tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "svc1.conf").write_text(
        f"[DEFAULT]\nnodes = n1 n2\n[app#0]\nstart = {value}\nstop = /bin/true\n"
    )
    base = ("--config-dir", str(tmp_path), "svc1")
    validated = ferry(*base, "validate", "config")
    got = ferry(*base, "get", "--kw", "app#0.start", "--eval", "--impersonate", "n2")
    assert validated.code == got.code == 2
    assert message in validated.out
    assert got.out == ""
    assert f"svc1.conf:4 [app#0] start: {message}" in got.err
    other = ferry(*base, "get", "--kw", "app#0.stop", "--eval")
    assert (other.code, other.out) == (0, "/bin/true\n")


def test_get_eval_of_a_seed_keyword_valid_for_that_node() -> None:
    # the seed's fs#0.dev has no value for n3 (an error validate reports): n1's value prints
    base = ("--config-dir", str(SEEDS / "uc1-failover"), "svc1")
    result = ferry(*base, "get", "--kw", "fs#0.dev", "--eval", "--impersonate", "n1")
    assert result.code == 0 and result.out.strip()
    result = ferry(*base, "get", "--kw", "fs#0.dev", "--eval", "--impersonate", "n3")
    assert result.code == 2 and "no value for node n3" in result.err


def test_validate_json_reports_expression_errors(tmp_path: Path) -> None:
    (tmp_path / "svc1.conf").write_text("[DEFAULT]\nnodes = n1\n[app#0]\nrestart = $(x)\n")
    result = ferry("--config-dir", str(tmp_path), "svc1", "validate", "config", "-o", "json")
    issues = json.loads(result.out)["issues"]
    assert result.code == 2
    assert [(i["line"], i["section"], i["keyword"]) for i in issues] == [(4, "app#0", "restart")]
