"""Schedule grammar and next-run rules (SPEC §5.4)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.scheduler.schedule import Schedule, ScheduleError, parse_schedule
from daemon.scheduler.timing import describe_next, is_due, next_run


def at(text: str) -> datetime:
    """'2024-05-06 07:00' or, in 2024, '05-06 07:00' -> datetime.

    2024-05-06 is a Monday of ISO week 19.
    """
    return datetime.fromisoformat(text if len(text.split()[0]) == 10 else f"2024-{text}")


def nxt(text: str, now: str, last: str | None) -> datetime | None:
    schedule = parse_schedule(text)
    return next_run(schedule, at(now), None if last is None else at(last))


# --------------------------------------------------------------------------- next_run table

NEXT_RUN_CASES = [
    # plain range: once per window, at its start, or now if open and not run yet
    ("plain before", "08:00-09:00", "05-06 07:00", None, "05-06 08:00"),
    ("plain open", "08:00-09:00", "05-06 08:30", None, "05-06 08:30"),
    ("plain done", "08:00-09:00", "05-06 08:40", "05-06 08:30", "05-07 08:00"),
    ("plain after", "08:00-09:00", "05-06 10:00", "05-06 08:00", "05-07 08:00"),
    ("24:00 end", "22:00-24:00", "05-06 23:00", "05-05 22:00", "05-06 23:00"),
    # interval inside a range
    ("interval", "08:00-09:00@20", "05-06 08:30", "05-06 08:25", "05-06 08:45"),
    ("interval first", "08:00-09:00@20", "05-06 07:00", "05-05 08:40", "05-06 08:00"),
    ("interval past end", "08:00-09:00@20", "05-06 08:50", "05-06 08:45", "05-07 08:00"),
    # @interval alone, suffixes, *
    ("@10", "@10", "05-06 12:00", "05-06 11:55", "05-06 12:05"),
    ("@10 due", "@10", "05-06 12:00", "05-06 11:50", "05-06 12:00"),
    ("@10 never ran", "@10", "05-06 12:00", None, "05-06 12:00"),
    ("@30s", "@30s", "05-06 12:00:10", "05-06 12:00", "05-06 12:00:30"),
    ("@2h", "@2h", "05-06 12:00", "05-06 11:00", "05-06 13:00"),
    ("@2h over midnight", "@2h", "05-06 23:45", "05-06 23:30", "05-07 01:30"),
    ("@1d", "@1d", "05-06 12:00", "05-06 09:00", "05-07 09:00"),
    ("star is @10", "*", "05-06 12:01", "05-06 12:00", "05-06 12:10"),
    ("star@30", "*@30", "05-06 12:01", "05-06 12:00", "05-06 12:30"),
    # several ranges: the interval belongs to the range it follows
    ("two ranges", "08:00-09:00,14:00-15:00@30", "05-06 10:00", "05-06 08:00", "05-06 14:00"),
    ("two ranges 2nd", "08:00-09:00,14:00-15:00@30", "05-06 14:10", "05-06 14:00", "05-06 14:30"),
    ("spaces after comma", "08:00-09:00, 14:00-15:00 sat, sun", "05-06 07:00", None, "05-11 08:00"),
    # wrap past midnight: the window belongs to the day it starts on
    ("wrap open", "22:00-02:00 fri", "05-11 01:00", None, "05-11 01:00"),
    ("wrap next", "22:00-02:00 fri", "05-11 03:00", "05-10 22:00", "05-17 22:00"),
    ("wrap start day", "22:00-02:00 sat", "05-11 01:00", None, "05-11 22:00"),
    ("wrap interval", "23:00-01:00@30", "05-07 00:10", "05-06 23:50", "05-07 00:20"),
    # days
    ("mon-fri", "08:00-09:00 mon-fri", "05-10 10:00", "05-10 08:00", "05-13 08:00"),
    ("sat,sun", "08:00-09:00 sat,sun", "05-06 07:00", None, "05-11 08:00"),
    ("fri-mon wraps", "08:00-09:00 fri-mon", "05-07 07:00", None, "05-10 08:00"),
    ("full names", "08:00-09:00 Saturday", "05-06 07:00", None, "05-11 08:00"),
    ("mon:last", "08:00-09:00 mon:last", "05-06 07:00", None, "05-27 08:00"),
    ("mon:1", "08:00-09:00 mon:1", "05-07 07:00", None, "06-03 08:00"),
    ("mon:1 today", "08:00-09:00 mon:1", "05-06 07:00", None, "05-06 08:00"),
    ("fri:2", "08:00-09:00 fri:2", "05-06 07:00", None, "05-10 08:00"),
    ("sun:5", "08:00-09:00 sun:5", "05-06 07:00", None, "06-30 08:00"),
    ("star day:last", "08:00-09:00 *:last", "05-06 07:00", None, "05-25 08:00"),
    # weeks (ISO) and months
    ("weeks", "08:00-09:00 * 20-21", "05-06 07:00", None, "05-13 08:00"),
    ("week wrap", "08:00-09:00 * 52-1", "05-06 07:00", None, "12-23 08:00"),
    ("odd weeks", "08:00-09:00 * *%2", "05-12 10:00", "05-12 08:00", "05-20 08:00"),
    ("months by name", "08:00-09:00 * * jul-aug", "05-06 07:00", None, "07-01 08:00"),
    ("month by number", "08:00-09:00 * * 12", "05-06 07:00", None, "12-01 08:00"),
    ("months wrap", "08:00-09:00 * * nov-feb", "05-06 07:00", None, "11-01 08:00"),
    ("months modulo", "08:00-09:00 * * *%3", "05-06 07:00", None, "07-01 08:00"),
    ("month list", "08:00-09:00 * * 3,june", "05-06 07:00", None, "06-01 08:00"),
    ("all filters", "08:00-09:00 mon:last * dec", "05-06 07:00", None, "12-30 08:00"),
    # exclusions and JSON lists
    ("excl trims", '["08:00-12:00", "!08:00-09:00"]', "05-06 07:00", None, "05-06 09:00"),
    ("exclusion lunch", '["@10", "!12:00-13:00"]', "05-06 12:00", "05-06 11:55", "05-06 13:00"),
    ("exclusion weekend", '["@30", "! * sat,sun"]', "05-11 10:00", "05-10 23:50", "05-13 00:00"),
    ("excl window", '["08:00-09:00", "!07:00-10:00 mon"]', "05-06 07:00", None, "05-07 08:00"),
    ("two incl", '["08:00-09:00 mon", "@60 tue"]', "05-06 09:30", "05-06 08:00", "05-07 00:00"),
    ("list with never", '["@0", "08:00-09:00"]', "05-06 07:00", None, "05-06 08:00"),
    # never
    ("empty", "", "05-06 07:00", None, None),
    ("blank", "   ", "05-06 07:00", None, None),
    ("@0", "@0", "05-06 07:00", None, None),
    ("@0s range", "08:00-09:00@0s", "05-06 07:00", None, None),
    ("[]", "[]", "05-06 07:00", None, None),
    ("only exclusions", '["!08:00-09:00"]', "05-06 07:00", None, None),
    ("all excluded", '["08:00-09:00", "!*"]', "05-06 07:00", None, None),
    ("filters never meet", "08:00-09:00 * 53 feb", "05-06 07:00", None, None),
]


@pytest.mark.parametrize(
    ("text", "now", "last", "expected"),
    [case[1:] for case in NEXT_RUN_CASES],
    ids=[case[0] for case in NEXT_RUN_CASES],
)
def test_next_run(text: str, now: str, last: str | None, expected: str | None) -> None:
    assert nxt(text, now, last) == (None if expected is None else at(expected))


@pytest.mark.parametrize("text", ["", " ", "@0", "@0h", "[]", '["@0", ""]', '["!* sat"]'])
def test_never(text: str) -> None:
    schedule = parse_schedule(text)
    assert schedule.never
    assert next_run(schedule, at("2024-05-06 07:00"), None) is None
    assert not is_due(schedule, at("2024-05-06 07:00"), None)
    assert describe_next(schedule, at("2024-05-06 07:00"), None) == []


def test_not_never() -> None:
    assert not parse_schedule("~04:00-06:00").never
    assert not parse_schedule('["@0", "@10"]').never


# --------------------------------------------------------------------------- ~ spread


def test_spread_lands_inside_window_not_at_start() -> None:
    schedule = parse_schedule("~04:00-06:00")
    now, last = at("2024-05-06 01:00"), at("2024-05-05 05:00")
    rng = random.Random(42)
    expected = at("2024-05-06 04:00") + random.Random(42).random() * timedelta(hours=2)
    run = next_run(schedule, now, last, rng)
    assert run == expected
    assert at("2024-05-06 04:00") < run < at("2024-05-06 06:00")
    # the caller's rng is not consumed: polling gives a stable answer
    assert next_run(schedule, now, last, rng) == run
    assert rng.random() == random.Random(42).random()


def test_spread_differs_by_seed_and_is_deterministic() -> None:
    schedule = parse_schedule("~04:00-06:00")
    now = at("2024-05-06 01:00")
    runs = {next_run(schedule, now, None, random.Random(seed)) for seed in range(20)}
    assert len(runs) == 20
    assert next_run(schedule, now, None, random.Random(7)) == next_run(
        schedule, now, None, random.Random(7)
    )


def test_spread_without_rng_runs_at_window_start() -> None:
    assert nxt("~04:00-06:00", "2024-05-06 01:00", None) == at("2024-05-06 04:00")


def test_spread_window_open_past_the_spread_point_runs_now() -> None:
    schedule = parse_schedule("~04:00-06:00")
    rng = random.Random(42)  # spread point 04:09
    now = at("2024-05-06 05:30")
    assert next_run(schedule, now, at("2024-05-05 04:09"), rng) == now


def test_spread_with_interval_spreads_first_run_only() -> None:
    schedule = parse_schedule("~08:00-12:00@60")
    fraction = random.Random(3).random()
    first = next_run(schedule, at("2024-05-06 07:00"), None, random.Random(3))
    assert first == at("2024-05-06 08:00") + fraction * timedelta(minutes=60)
    assert first is not None
    assert next_run(schedule, first, first, random.Random(3)) == first + timedelta(minutes=60)


def test_spread_with_system_random_stays_in_window() -> None:
    run = next_run(
        parse_schedule("~04:00-06:00"), at("2024-05-06 01:00"), None, random.SystemRandom()
    )
    assert run is not None
    assert at("2024-05-06 04:00") <= run < at("2024-05-06 06:00")


# --------------------------------------------------------------------------- missed runs


def test_missed_daily_window_runs_once_after_restart() -> None:
    """Node down 03:00-07:00 across the ~04:00-06:00 window: one run at restart."""
    schedule = parse_schedule("~04:00-06:00")
    rng = random.Random(1)
    restart = at("2024-05-06 07:00")
    last = at("2024-05-05 04:30")
    assert next_run(schedule, restart, last, rng) == restart
    assert is_due(schedule, restart, last, rng)
    # after that run, the next regular window applies (no second catch-up)
    after = next_run(schedule, restart + timedelta(minutes=5), restart, rng)
    assert after is not None
    assert at("2024-05-07 04:00") <= after < at("2024-05-07 06:00")


def test_missed_window_without_catch_up_waits_for_next_window() -> None:
    schedule = parse_schedule("04:00-06:00")
    run = next_run(schedule, at("2024-05-06 07:00"), at("2024-05-05 04:30"), catch_up=False)
    assert run == at("2024-05-07 04:00")


def test_missed_slots_run_once_not_once_per_slot() -> None:
    """@10 with the node down for 4 hours: one run at restart, then every 10 minutes."""
    schedule = parse_schedule("@10")
    last: datetime | None = at("2024-05-06 02:55")
    runs = []
    tick = at("2024-05-06 07:00")
    while tick < at("2024-05-06 07:30"):
        if is_due(schedule, tick, last):
            runs.append(tick)
            last = tick
        tick += timedelta(minutes=1)
    assert runs == [at("2024-05-06 07:00"), at("2024-05-06 07:10"), at("2024-05-06 07:20")]


def test_never_ran_waits_for_its_window() -> None:
    assert nxt("04:00-06:00", "2024-05-06 07:00", None) == at("2024-05-07 04:00")


def test_catch_up_respects_exclusions() -> None:
    schedule = parse_schedule('["04:00-06:00", "!07:00-08:00"]')
    run = next_run(schedule, at("2024-05-06 07:15"), at("2024-05-05 04:00"))
    assert run == at("2024-05-06 08:00")


def test_catch_up_over_several_days_runs_once() -> None:
    schedule = parse_schedule("08:00-09:00 mon-fri")
    now = at("2024-05-10 12:00")
    assert next_run(schedule, now, at("2024-05-06 08:00")) == now
    assert next_run(schedule, now, now) == at("2024-05-13 08:00")


def test_late_tick_just_after_spread_point_still_runs() -> None:
    schedule = parse_schedule("~04:00-04:10")
    rng = random.Random(5)
    point = next_run(schedule, at("2024-05-06 00:00"), at("2024-05-05 04:05"), rng)
    assert point is not None
    late = at("2024-05-06 04:11")  # the scheduler woke after the window closed
    assert next_run(schedule, late, at("2024-05-05 04:05"), rng) == late


# --------------------------------------------------------------------------- simulation


@pytest.mark.parametrize(
    ("text", "expected_runs"),
    [
        ("08:00-09:00@20", 3 * 3),
        ("08:00-09:00", 3),
        ("~04:00-06:00", 3),
        ("@10", 3 * 144),
        ("*", 3 * 144),
        ("22:00-02:00@60", 2 + 4 + 4 + 2),  # Mon 00:00 and 01:00 come from Sunday's window
        ('["@60", "!08:00-20:00"]', 3 * 12),
        ("08:00-09:00 mon:1", 1),
    ],
)
def test_ticking_scheduler_run_count(text: str, expected_runs: int) -> None:
    """A scheduler ticking every minute from Monday to Thursday runs the job this often."""
    schedule = parse_schedule(text)
    rng = random.Random(11)
    tick, end = at("2024-05-06 00:00"), at("2024-05-09 00:00")
    last: datetime | None = None
    runs = 0
    while tick < end:
        if is_due(schedule, tick, last, rng):
            runs += 1
            last = tick
        tick += timedelta(minutes=1)
    assert runs == expected_runs


def test_describe_next() -> None:
    schedule = parse_schedule("08:00-09:00@30 mon-fri")
    runs = describe_next(schedule, at("2024-05-10 08:10"), at("2024-05-10 08:00"), count=4)
    assert runs == [
        at("2024-05-10 08:30"),
        at("2024-05-13 08:00"),
        at("2024-05-13 08:30"),
        at("2024-05-14 08:00"),
    ]


def test_describe_next_starts_with_catch_up() -> None:
    schedule = parse_schedule("04:00-06:00")
    runs = describe_next(schedule, at("2024-05-06 07:00"), at("2024-05-04 04:00"))
    assert runs == [at("2024-05-06 07:00"), at("2024-05-07 04:00"), at("2024-05-08 04:00")]


# --------------------------------------------------------------------------- bad inputs

BAD_INPUTS = [
    ("25:00-26:00", '"25:00-26:00" (column 1): hour 25 out of range (00-23)'),
    ("08:61-09:00", "minute 61 out of range (00-59)"),
    ("08:00-08:00", "empty range (start equals end)"),
    ("00:00-00:00", "empty range"),
    ("24:00-02:00", "24:00 is only allowed as the end of a range"),
    ("8-9", '"8" is not a time, expected HH:MM-HH:MM'),
    ("08:00", "expected [~]HH:MM-HH:MM[@interval], [~]@interval or *"),
    ("@", 'bad interval "@"'),
    ("@10x", 'bad interval "@10x", expected @N (minutes), @Ns, @Nm, @Nh or @Nd'),
    ("@-5", 'bad interval "@-5"'),
    ("@367d", 'interval "@367d" too long (at most 366d)'),
    ("@1234567890", 'bad interval "@1234567890"'),
    ("~", "empty time range"),
    ("08:00-09:00 xyz", '"xyz" (column 13): unknown day "xyz"'),
    ("08:00-09:00 mon-xyz", 'unknown day "xyz"'),
    ("08:00-09:00 mon:6", 'bad ":6", expected :1 to :5 or :last'),
    ("08:00-09:00 * 54", '"54" (column 15): week 54 out of range (1-53)'),
    ("08:00-09:00 * 0-3", "week 0 out of range (1-53)"),
    ("08:00-09:00 * x", 'bad week "x", expected 1-53 or *'),
    ("08:00-09:00 * * 13", "month 13 out of range (1-12)"),
    ("08:00-09:00 * * foo", 'bad month "foo", expected 1-12, jan-dec or *'),
    ("08:00-09:00 * *%0", "modulo 0 out of range (1-53)"),
    ("08:00-09:00 mon-fri 1-10 jan-xyz", '"jan-xyz" (column 26): bad month "xyz"'),
    ("08:00-09:00 * * * extra", '"extra" (column 19): unexpected field, the form is'),
    ("08:00-09:00,,10:00-11:00", "empty item (stray comma)"),
    ("08:00-09:00 mon,", "empty item"),
    ("!", "! must be followed by a time range"),
    ("!@10", '"@10" (column 2): an exclusion takes no ~ and no @interval'),
    ("!~08:00-09:00", "an exclusion takes no ~"),
    ("[", "not a valid JSON list of schedules"),
    ('["08:00-09:00", 3]', "element 1: expected a string, got int"),
    ('["08:00-09:00", "25:00-26:00"]', 'element 1: "25:00-26:00" (column 1): hour 25'),
    ("[" * 100000, "not a valid JSON list"),
    ("\u0661\u0662:00-13:00", "is not a time"),  # Arabic-Indic digits are not digits here
]


@pytest.mark.parametrize(("text", "message"), BAD_INPUTS, ids=[b[0][:30] for b in BAD_INPUTS])
def test_bad_input(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_error_carries_location() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule('["@10", "08:00-09:00 * * 13"]')
    err = caught.value
    assert (err.element, err.token, err.column) == (1, "13", 17)
    assert err.reason == "month 13 out of range (1-12)"


def test_long_token_is_shortened_in_message() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("x" * 500)
    assert len(str(caught.value)) < 200


def test_parse_keeps_text_and_rules() -> None:
    schedule = parse_schedule('["08:00-09:00 mon", "!12:00-13:00"]')
    assert isinstance(schedule, Schedule)
    assert len(schedule.inclusions) == 1
    assert len(schedule.exclusions) == 1
    assert schedule.text == '["08:00-09:00 mon", "!12:00-13:00"]'


# --------------------------------------------------------------------------- properties

_FRAGMENTS = st.sampled_from(
    [
        "08:00",
        "23:59",
        "24:00",
        "25:00",
        "-",
        "@",
        "10",
        "0",
        "s",
        "h",
        "d",
        "~",
        "!",
        "*",
        ",",
        ":",
        "mon",
        "fri",
        "last",
        "1",
        "%",
        "2",
        "53",
        "jan",
        "dec",
        " ",
        "[",
        "]",
        '"',
        "\u0663",
        "\t",
        "99999999999",
    ]
)
_SCHEDULE_TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(_FRAGMENTS, max_size=14).map("".join),
    st.lists(st.lists(_FRAGMENTS, max_size=8).map("".join), max_size=4).map(
        lambda lines: "[" + ", ".join(f'"{line}"' for line in lines) + "]"
    ),
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SCHEDULE_TEXT)
def test_parse_raises_only_schedule_error(text: str) -> None:
    try:
        schedule = parse_schedule(text)
    except ScheduleError as err:
        assert str(err)
    else:
        assert isinstance(schedule.never, bool)


_MINUTES = st.integers(0, 1439)
_NOW = st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _window_of(run: datetime, start: int, end: int) -> tuple[datetime, datetime] | None:
    """The occurrence of the daily window [start, end) (end may wrap) holding run."""
    length = (end - start) % 1440
    for days_back in (0, 1):
        day = datetime.combine(run.date(), datetime.min.time()) - timedelta(days=days_back)
        opens = day + timedelta(minutes=start)
        if opens <= run < opens + timedelta(minutes=length):
            return opens, opens + timedelta(minutes=length)
    return None


@settings(max_examples=300, deadline=None)
@given(
    start=_MINUTES,
    end=_MINUTES,
    interval=st.integers(1, 300),
    now=_NOW,
    since_last=st.one_of(st.none(), st.integers(0, 3 * 86400)),
    spread=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_next_run_property(
    start: int,
    end: int,
    interval: int,
    now: datetime,
    since_last: int | None,
    spread: bool,
    seed: int,
) -> None:
    if start == end:
        end = (end + 1) % 1440
    text = f"{'~' if spread else ''}{_clock(start)}-{_clock(end)}@{interval}"
    schedule = parse_schedule(text)
    last = None if since_last is None else now - timedelta(seconds=since_last)
    rng = random.Random(seed)

    run = next_run(schedule, now, last, rng, catch_up=False)
    assert run is not None
    assert run >= now
    assert _window_of(run, start, end) is not None
    if last is not None:
        assert run >= last + timedelta(minutes=interval)

    caught_up = next_run(schedule, now, last, rng)
    assert caught_up is not None
    if caught_up != run:
        # catch-up: due now, and only because a run was owed since last_run
        assert caught_up == now
        assert last is not None
        owed = next_run(schedule, last, last, rng, catch_up=False)
        assert owed is not None
        assert owed < now
        assert caught_up >= last + timedelta(minutes=interval)
