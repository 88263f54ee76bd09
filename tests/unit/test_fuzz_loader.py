"""The loader never raises anything but ConfigError, whatever the bytes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config.errors import ConfigError
from daemon.config.ini import load_bytes
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.validate import validate

FRAGMENTS = [
    "[DEFAULT]\n",
    "[fs#0]\n",
    "[sync#1]\n",
    "[ip#0]\n",
    "[container#0]\n",
    "[env]\n",
    "[app#a]\n",
    "nodes = n1 n2\n",
    "drpnodes = n3\n",
    "dev@nodes = /dev/x\n",
    "mnt = {fs#0.mnt}\n",
    "type = netns\n",
    "type = btrfs\n",
    "netns = container#0\n",
    "target = drpnodes\n",
    "flex_min_nodes = 3\n",
    "sync_max_delay = 1d3h\n",
    "x = {env.y[2]}\n",
    "y = {#nodes}\n",
    "standby@drpnodes = true\n",
    "  continued\n",
    "# comment\n",
    "\n",
    "=\n",
    "[\n",
    "@=@\n",
    "mnt_opt = {DEFAULT.nodes}\n",
    "schedule = {schedule}\n",
    "{x} = 1\n",
    "src = {dst}\n",
    "dst = {src}\n",
    "options = 'a\n",
]

texts = st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join)


def exercise(data: bytes) -> None:
    try:
        doc = load_bytes(data, "fuzz.conf")
        svc = ServiceConfig(doc, context=EvalContext("n1"))
        for issue in validate(svc):
            assert issue.render()
    except ConfigError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.render().startswith("fuzz.conf:")


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_structured_fuzz_never_raises(text: str) -> None:
    """The issue's figure: 10,000 generated configurations through load, bind and validate."""
    exercise(text.encode())


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes_never_raise(data: bytes) -> None:
    exercise(data)
