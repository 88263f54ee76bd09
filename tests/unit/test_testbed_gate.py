"""The ``testbed`` marker's gate (tests/conftest.py): skip with the reason, fail in CI."""

from __future__ import annotations

import pytest

from tests import conftest

REASONS = ["the testbed needs root", "command nft (Debian package nftables)"]


def test_prerequisites_met_lets_the_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "missing_prerequisites", lambda: [])
    monkeypatch.setenv("CI", "true")
    conftest.require_testbed()  # neither skips nor fails


@pytest.mark.parametrize("ci", [None, "false", "1", "yes"])
def test_missing_prerequisite_skips_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    monkeypatch.setattr(conftest, "missing_prerequisites", lambda: REASONS)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception) as skipped:
        conftest.require_testbed()
    assert str(skipped.value) == "testbed unavailable: " + "; ".join(REASONS)


def test_missing_prerequisite_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "missing_prerequisites", lambda: REASONS[:1])
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        conftest.require_testbed()
    assert str(failed.value) == "testbed unavailable: the testbed needs root"
    assert failed.value.pytrace is False


class FakeItem:
    """Just what the setup hook asks of a pytest item."""

    def __init__(self, *markers: pytest.Mark) -> None:
        self.markers = {mark.name: mark for mark in markers}

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return self.markers.get(name)


def test_setup_hook_gates_only_marked_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "missing_prerequisites", lambda: ["no testbed here"])
    monkeypatch.delenv("CI", raising=False)
    plain, marked = (
        FakeItem(pytest.mark.parametrize("x", [1]).mark),
        FakeItem(pytest.mark.testbed.mark),
    )
    conftest.pytest_runtest_setup(plain)  # type: ignore[arg-type]
    with pytest.raises(pytest.skip.Exception, match="testbed unavailable: no testbed here"):
        conftest.pytest_runtest_setup(marked)  # type: ignore[arg-type]
    monkeypatch.setenv("CI", "true")
    conftest.pytest_runtest_setup(plain)  # type: ignore[arg-type]
    with pytest.raises(pytest.fail.Exception, match="testbed unavailable: no testbed here"):
        conftest.pytest_runtest_setup(marked)  # type: ignore[arg-type]
