"""The console's pure parts: sessions and the login guard, the data-age series, the
restore-point timeline, what needs attention first."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.api.routes.sync import age_series
from daemon.api.sessions import LOGIN_FAILURES, LOGIN_WINDOW, SessionStore
from daemon.sync import stamps
from daemon.web import views


def test_a_session_expires_at_its_lifetime_and_when_idle() -> None:
    store = SessionStore(lifetime=100, idle=30)
    session = store.open("hash", now=1000)
    assert store.get(session.id, now=1020) is session
    assert store.get(session.id, now=1045) is session  # seen at 1020: 25 s idle
    assert store.get(session.id, now=1080) is None  # 35 s idle
    late = store.open("hash", now=2000)
    for t in range(2010, 2100, 20):
        assert store.get(late.id, now=t) is late
    assert store.get(late.id, now=2100) is None  # the lifetime, however active
    assert store.get("made-up", now=2000) is None


def test_logout_ends_the_session_and_csrf_compares_exactly() -> None:
    store = SessionStore()
    session = store.open("hash")
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None) and not session.csrf_ok("") and not session.csrf_ok("x")
    store.close(session.id)
    assert store.get(session.id) is None and len(store) == 0


def test_failed_logins_block_an_address_for_the_window() -> None:
    store = SessionStore()
    for i in range(LOGIN_FAILURES - 1):
        store.login_failed("10.0.0.1", now=100 + i)
        assert store.login_blocked("10.0.0.1", now=100 + i) == 0
    store.login_failed("10.0.0.1", now=110)
    assert store.login_blocked("10.0.0.1", now=111) == pytest.approx(LOGIN_WINDOW - 11)
    assert store.login_blocked("10.0.0.2", now=111) == 0  # another address
    assert store.login_blocked("10.0.0.1", now=100 + LOGIN_WINDOW + 11) == 0


def _stamp(started: float, ended: float) -> stamps.Stamp:
    return stamps.Stamp(started, ended, 10, ended - started, "incremental", "n1", "n3")


def test_the_age_series_is_a_sawtooth_that_drops_at_each_transfer() -> None:
    history = [_stamp(100, 110), _stamp(200, 205), _stamp(300, 330)]
    series = age_series(history, since=150, now=400)
    # before the window: the transfer of 100 ended at 110; at 205 the age was 105, then 5
    assert series == [[150, 50], [205, 105], [205, 5], [330, 130], [330, 30], [400, 100]]
    assert age_series([], since=0, now=10) == []
    # only a transfer older than the window: its age at the window's start, and now
    assert age_series([_stamp(10, 20)], since=100, now=200) == [[100, 90], [200, 190]]


def test_stamps_keep_a_day_of_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sent" / "n3.json"
    for i in range(3):
        stamps.write(path, _stamp(1000 + i, 1001 + i))
    history = stamps.history(stamps.history_path(path), since=0)
    assert [s.started for s in history] == [1000, 1001, 1002]
    assert stamps.read(path) == history[-1]
    with open(stamps.history_path(path), "a") as handle:
        handle.write('{"torn": \n')
    assert len(stamps.history(stamps.history_path(path), since=0)) == 3
    monkeypatch.setattr(stamps, "HISTORY_MAX_BYTES", 10)  # trimmed to the last day
    stamps.write(path, _stamp(9e9, 9e9 + 1))
    assert [s.started for s in stamps.history(stamps.history_path(path), since=0)] == [9e9]


def test_the_timeline_spans_at_least_a_day_and_places_points_by_age() -> None:
    points = [
        {"name": "a", "age": 0, "complete": True},
        {"name": "b", "age": 12 * 3600, "complete": False},
    ]
    line = views.timeline(points, now=0)
    assert line["hours"] == 24
    assert [m["x"] for m in line["marks"]] == [1000.0, 500.0]
    assert [m["complete"] for m in line["marks"]] == [True, False]
    assert views.timeline([{"name": "c", "age": 50 * 3600}])["hours"] == 72


def test_attention_puts_what_to_act_on_first() -> None:
    cluster = {
        "quorum": True,
        "nodes": [{"name": "n1", "state": "down"}, {"name": "n3", "state": "up"}],
    }
    late_sync = {
        "resources": [
            {
                "rid": "sync#1",
                "max_delay": 60,
                "peers": [{"peer": "n1", "direction": "received", "age": 600, "late": True}],
            }
        ]
    }
    failed = {"last_drill": {"result": "fail", "error": "check exited 3"}}
    up_here = {"instances": {"n3": {"avail": "up"}}, "avail": "up"}
    row = views.service_row("svc1", up_here, late_sync, failed)
    down = views.service_row("svc2", {"instances": {}, "avail": "down"}, None, None)
    items = views.attention_of(cluster, [row, down])
    texts = [a.text for a in items]
    assert texts[:2] == ["node n1 is down", "svc2 is down: up nowhere"]
    assert "svc1 sync#1: data on this node is 10m old (sync_max_delay 60s)" in texts
    assert "svc1: the last drill failed: check exited 3" in texts
    assert row.ages[0]["age_text"] == "10m" and row.running_on == ["n3"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "never"), (5, "5s"), (119, "119s"), (600, "10m"), (7260, "2h01m"), (200000, "2d")],
)
def test_ages_read_as_the_cli_writes_them(seconds: float | None, text: str) -> None:
    assert views.age_text(seconds) == text
