"""When a schedule runs next (SPEC §5.4): the rules of :mod:`daemon.scheduler.schedule`
held against the calendar.

Documented choices:

* **Time**: naive local wall-clock datetimes; nothing here reads the clock or
  knows about time zones or DST (``now`` is a parameter).
* **Windows**: a range is the half-open window ``[start, end)``. A range whose
  end is not after its start wraps past midnight; ``22:00-02:00`` belongs to the
  day it starts on: days, weeks and months are matched against its start date
  (``22:00-02:00 fri`` is Friday 22:00 to Saturday 02:00). ``08:00-08:00`` is an
  error: write ``00:00-24:00`` or ``*`` for all day.
* **Once or every interval**: a range without interval runs once per window
  occurrence (at its start, or at ``now`` if the window is open and has not had
  its run yet). With an interval, runs are at least that far apart, counted
  from the last run (also across midnight for all-day windows).
* **``*``**: any time, every 10 minutes unless an interval is given (``*@30``);
  ``*`` in an exclusion is the whole day.
* **``~`` (spread)**: the run is placed at ``window_start + f * window_length``
  (with an interval: ``f * min(interval, window_length)`` for the first run of
  the window), ``f = rng.random()`` drawn from a *copy* of ``rng``: the caller's
  rng is not consumed, so polling ``is_due`` every tick gives a stable answer,
  and a job gets the same offset in every window. Seed one rng per job (e.g.
  ``random.Random(f"{node}/{svc}/{rid}")``) to spread jobs across the cluster.
  Without rng, ``~`` windows run at their start like plain ones.
* **Catch-up** (``catch_up=True``, the default): missed slots are not replayed
  one by one. If a run was due since ``last_run`` (what the schedule said right
  after the last run) and that time has passed without a run, the job is due
  *now*, once (the next non-excluded moment); after that run ``last_run`` is
  fresh and the regular windows apply again. A job that never ran
  (``last_run is None``) has nothing to catch up: it waits for its next window.
  Exclusions are honoured by catch-up; the day/week/month filters are not (the
  run was owed). With ``catch_up=False`` missed windows are simply skipped.
* **Horizon**: ``next_run`` looks up to 29 years ahead; a schedule whose filters
  never meet (``* * 53 feb``) yields ``None``.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from daemon.scheduler.schedule import Rule, Schedule

HORIZON_DAYS = 366 * 29


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime
    interval: timedelta | None
    spread: bool


def _windows_on(rule: Rule, day: date, like: datetime) -> list[_Window]:
    """The windows of ``rule`` starting on ``day`` (tzinfo copied from ``like``)."""
    if not rule.applies_to(day):
        return []
    midnight = datetime.combine(day, time(), tzinfo=like.tzinfo)
    return [
        _Window(
            midnight + timedelta(minutes=r.start),
            midnight + timedelta(minutes=r.end),
            r.interval,
            r.spread,
        )
        for r in rule.ranges
    ]


def _days(first: date, count: int) -> Iterator[date]:
    """Up to ``count`` days from ``first``, stopping short of the end of the calendar."""
    last = date.max - timedelta(days=2)
    day = first
    for _ in range(count):
        if day > last:
            return
        yield day
        day += timedelta(days=1)


def _inclusion_windows(schedule: Schedule, since: datetime) -> Iterator[_Window]:
    """Inclusion windows that may still be open at ``since``, in order of start."""
    first = since.date() - timedelta(days=1) if since.date() > date.min else since.date()
    inclusions = schedule.inclusions
    for day in _days(first, HORIZON_DAYS):
        windows = [w for rule in inclusions for w in _windows_on(rule, day, since)]
        yield from sorted(windows, key=lambda w: w.start)


def _excluded_until(schedule: Schedule, moment: datetime) -> datetime | None:
    """The end of the exclusion windows holding ``moment``; None when it is not excluded."""
    until: datetime | None = None
    day = moment.date()
    days = (day - timedelta(days=1), day) if day > date.min else (day,)
    for rule in schedule.exclusions:
        for start_day in days:
            for window in _windows_on(rule, start_day, moment):
                if window.start <= moment < window.end and (until is None or window.end > until):
                    until = window.end
    return until


def _first_allowed(schedule: Schedule, moment: datetime, limit: datetime) -> datetime | None:
    """The first non-excluded moment in ``[moment, limit)``, or None."""
    while moment < limit:
        until = _excluded_until(schedule, moment)
        if until is None:
            return moment
        moment = until
    return None


# --------------------------------------------------------------------------- next run


def _spread_fraction(rng: random.Random | None) -> float:
    """``rng.random()`` drawn from a copy, so the caller's rng is left as it was."""
    if rng is None:
        return 0.0
    try:
        return copy.copy(rng).random()
    except (NotImplementedError, TypeError):  # SystemRandom and the like have no state
        return rng.random()


def _window_candidate(
    schedule: Schedule,
    window: _Window,
    now: datetime,
    last_run: datetime | None,
    fraction: float,
) -> datetime | None:
    """The earliest run inside ``window`` at or after ``now``, or None."""
    length = window.end - window.start
    if window.interval is None:
        if last_run is not None and last_run >= window.start:
            return None  # this window had its run
        target = window.start + (length * fraction if window.spread else timedelta())
    else:
        offset = min(window.interval, length) * fraction if window.spread else timedelta()
        target = window.start + offset
        if last_run is not None:
            target = max(target, last_run + window.interval)
    return _first_allowed(schedule, max(target, now), window.end)


def _regular_next(
    schedule: Schedule, now: datetime, last_run: datetime | None, fraction: float
) -> datetime | None:
    """The next run at or after ``now`` by the windows alone (no catch-up)."""
    best: datetime | None = None
    for window in _inclusion_windows(schedule, now):
        if best is not None and window.start >= best:
            break
        if window.end <= now:
            continue
        candidate = _window_candidate(schedule, window, now, last_run, fraction)
        if candidate is not None and (best is None or candidate < best):
            best = candidate
    return best


def next_run(
    schedule: Schedule,
    now: datetime,
    last_run: datetime | None,
    rng: random.Random | None = None,
    *,
    catch_up: bool = True,
) -> datetime | None:
    """When the job should run next, at or after ``now``; None when it never will.

    ``last_run`` is the start of the last run (None: never ran). ``rng`` places
    ``~`` runs inside their window (not consumed, see the module docstring).
    With ``catch_up``, a run that was due since ``last_run`` and missed (node
    down) makes the job due now, once.
    """
    if schedule.never:
        return None
    fraction = _spread_fraction(rng)
    regular = _regular_next(schedule, now, last_run, fraction)
    if regular is None or regular <= now or not catch_up or last_run is None:
        return regular
    owed = _regular_next(schedule, last_run, last_run, fraction)
    if owed is None or owed >= now:
        return regular
    allowed = _first_allowed(schedule, now, regular)
    return regular if allowed is None else allowed


def is_due(
    schedule: Schedule,
    now: datetime,
    last_run: datetime | None,
    rng: random.Random | None = None,
    *,
    catch_up: bool = True,
) -> bool:
    """True when the job should run at ``now`` (its next run is not in the future)."""
    upcoming = next_run(schedule, now, last_run, rng, catch_up=catch_up)
    return upcoming is not None and upcoming <= now


def describe_next(
    schedule: Schedule,
    now: datetime,
    last_run: datetime | None,
    count: int = 3,
    rng: random.Random | None = None,
) -> list[datetime]:
    """The next ``count`` runs, assuming each one happens when due (for ``print schedule``)."""
    runs: list[datetime] = []
    upcoming = next_run(schedule, now, last_run, rng)
    while upcoming is not None and len(runs) < count:
        runs.append(upcoming)
        following = next_run(schedule, upcoming, upcoming, rng)
        if following is not None and following <= upcoming:
            break  # cannot happen with positive intervals; guards the loop anyway
        upcoming = following
    return runs
