"""Schedules (SPEC §5.4): the schedule grammar, parsed into rules.

Grammar of one schedule line::

    [!] <timeranges> [<days> [<weeks> [<months>]]]

* ``<timeranges>``: comma-separated items, each ``[~]HH:MM-HH:MM[@interval]``,
  ``[~]@interval`` (all day) or ``*`` (all day). ``24:00`` is accepted as the end
  of a range. An interval belongs to the item it follows:
  ``08:00-09:00,14:00-15:00@30`` is "once between 8 and 9, every 30 min between
  14 and 15". Intervals are minutes unless suffixed: ``@10``, ``@30s``, ``@2h``,
  ``@1d`` (at most 366 days).
* ``<days>``: ``*``, ``mon``, ``mon-fri`` (wrapping: ``fri-mon``), lists
  ``sat,sun``, and ``:N``/``:last`` for the Nth/last such weekday of the month
  (``mon:1``, ``mon:last``, ``mon-fri:last``).
* ``<weeks>``: ISO week numbers 1-53: ``*``, ``7``, ``1-10``, ``50-2`` (wraps).
* ``<months>``: ``*``, ``1-6``, ``jan-jun``, ``nov-feb`` (wraps), lists.
* Weeks and months take a modulo: ``A-B%K`` keeps A, A+K, A+2K... up to B, and
  ``*%K`` counts from week 1 / January: ``*%2`` is odd weeks / jan, mar, may...
* A line starting with ``!`` is an exclusion (no ``~`` and no interval there).
* A JSON list (``["08:00-09:00@10 mon-fri", "!12:00-13:00"]``) combines lines:
  a time is allowed when at least one inclusion window holds it and no exclusion
  window does.
* The empty string, ``[]``, ``@0`` (any zero interval) mean never; a line whose
  items all have a zero interval contributes nothing.

When a parsed schedule runs (windows, intervals, spread, catch-up, the horizon):
:mod:`daemon.scheduler.timing`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta

DAY_MINUTES = 24 * 60
STAR_INTERVAL = timedelta(minutes=10)
MAX_INTERVAL = timedelta(days=366)
FORM = "[!] <timeranges> [<days> [<weeks> [<months>]]]"

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_FULL = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_DAYS = {name: i for names in (_DAY_NAMES, _DAY_FULL) for i, name in enumerate(names)}
_MONTHS = {name: i + 1 for names in (_MONTH_NAMES, _MONTH_FULL) for i, name in enumerate(names)}
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_INTERVAL = re.compile(r"([0-9]{1,9})([smhd]?)")
_NUMBER = re.compile(r"[0-9]{1,3}")
_UNIT_SECONDS = {"": 60, "m": 60, "s": 1, "h": 3600, "d": 86400}
_NTH = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "last": -1}
_TOKEN_SHOWN = 60


class ScheduleError(ValueError):
    """A schedule that does not parse, naming the bad token, where it is and why."""

    def __init__(
        self, reason: str, token: str | None = None, column: int = 0, element: int | None = None
    ) -> None:
        self.reason = reason
        self.token = token
        self.column = column
        self.element = element
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.element is not None:
            parts.append(f"element {self.element}")
        if self.token is not None:
            shown = self.token
            if len(shown) > _TOKEN_SHOWN:
                shown = shown[:_TOKEN_SHOWN] + "..."
            where = f" (column {self.column})" if self.column else ""
            parts.append(f'"{shown}"{where}')
        parts.append(self.reason)
        return ": ".join(parts)

    def in_element(self, element: int) -> ScheduleError:
        """The same error, located in element ``element`` of a JSON list."""
        return ScheduleError(self.reason, self.token, self.column, element)


# --------------------------------------------------------------------------- parsed data


@dataclass(frozen=True)
class TimeRange:
    """One time range: minutes after the midnight of the day the window starts on."""

    start: int  # 0 .. 1439
    end: int  # start < end <= start + 1440 (beyond 1440: wraps past midnight)
    interval: timedelta | None  # None: once per window
    spread: bool = False


@dataclass(frozen=True)
class DaySpec:
    """A weekday (0 = monday), optionally only its Nth (1-5) or last (-1) in the month."""

    weekday: int
    nth: int = 0

    def matches(self, day: date) -> bool:
        """True when ``day`` is this weekday (and the right occurrence of it in the month)."""
        if day.weekday() != self.weekday:
            return False
        if self.nth == 0:
            return True
        if self.nth == -1:
            return (day + timedelta(days=7)).month != day.month
        return (day.day - 1) // 7 + 1 == self.nth


ALL_DAYS = frozenset(DaySpec(d) for d in range(7))
ALL_WEEKS = frozenset(range(1, 54))
ALL_MONTHS = frozenset(range(1, 13))


@dataclass(frozen=True)
class Rule:
    """One schedule line: its time ranges and the days they apply to."""

    ranges: tuple[TimeRange, ...]
    days: frozenset[DaySpec] = ALL_DAYS
    weeks: frozenset[int] = ALL_WEEKS
    months: frozenset[int] = ALL_MONTHS
    exclude: bool = False

    def applies_to(self, day: date) -> bool:
        """True when windows of this rule start on ``day``."""
        return (
            day.month in self.months
            and day.isocalendar().week in self.weeks
            and any(spec.matches(day) for spec in self.days)
        )


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: inclusion and exclusion rules."""

    rules: tuple[Rule, ...] = ()
    text: str = ""

    @property
    def inclusions(self) -> tuple[Rule, ...]:
        """The rules a run may happen in."""
        return tuple(r for r in self.rules if not r.exclude)

    @property
    def exclusions(self) -> tuple[Rule, ...]:
        """The rules no run may happen in."""
        return tuple(r for r in self.rules if r.exclude)

    @property
    def never(self) -> bool:
        """True when there is no inclusion at all (empty, ``[]``, ``@0``)."""
        return not self.inclusions


# --------------------------------------------------------------------------- parsing


def parse_schedule(text: str) -> Schedule:
    """Parse a schedule line or a JSON list of lines; raise ScheduleError on any bad input."""
    if not isinstance(text, str):
        raise ScheduleError(f"a schedule is a string, not {type(text).__name__}")
    if text.strip().startswith("["):
        lines = _json_lines(text)
        rules = []
        for index, line in enumerate(lines):
            try:
                rule = _parse_line(line)
            except ScheduleError as err:
                raise err.in_element(index) from None
            if rule is not None:
                rules.append(rule)
        return Schedule(tuple(rules), text)
    rule = _parse_line(text)
    return Schedule(() if rule is None else (rule,), text)


def _json_lines(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ScheduleError(f"not a valid JSON list of schedules ({err})") from None
    if not isinstance(value, list):
        raise ScheduleError("a schedule starting with [ must be a JSON list of strings")
    for index, line in enumerate(value):
        if not isinstance(line, str):
            raise ScheduleError(f"expected a string, got {type(line).__name__}", element=index)
    return value


def _fields(line: str) -> list[tuple[str, int]]:
    """Whitespace-separated fields with their 1-based column; spaces around commas join."""
    fields: list[tuple[str, int]] = []
    for match in re.finditer(r"\S+", line):
        word, column = match.group(), match.start() + 1
        if fields and (fields[-1][0].endswith(",") or word.startswith(",")):
            start = fields[-1][1]
            fields[-1] = (line[start - 1 : match.end()], start)
        else:
            fields.append((word, column))
    return fields


def _items(field: str, column: int) -> list[tuple[str, int]]:
    """The comma-separated items of a field, with their columns; empty items are errors."""
    items = []
    offset = 0
    for part in field.split(","):
        item = part.strip()
        item_column = column + offset + len(part) - len(part.lstrip())
        if not item:
            raise ScheduleError("empty item (stray comma)", field, column)
        items.append((item, item_column))
        offset += len(part) + 1
    return items


def _parse_line(line: str) -> Rule | None:
    """One schedule line; None when it never allows anything (empty, ``@0``)."""
    fields = _fields(line)
    if not fields:
        return None
    exclude = fields[0][0].startswith("!")
    if exclude:
        fields = _strip_bang(fields)
    if len(fields) > 4:
        token, column = fields[4]
        raise ScheduleError(f"unexpected field, the form is {FORM}", token, column)
    ranges = _parse_ranges(*fields[0], exclude=exclude)
    days = _parse_days(*fields[1]) if len(fields) > 1 else ALL_DAYS
    weeks = _parse_numbers(*fields[2], kind="week") if len(fields) > 2 else ALL_WEEKS
    months = _parse_numbers(*fields[3], kind="month") if len(fields) > 3 else ALL_MONTHS
    if not ranges:
        return None
    return Rule(ranges, days, weeks, months, exclude)


def _strip_bang(fields: list[tuple[str, int]]) -> list[tuple[str, int]]:
    first, column = fields[0]
    rest = first[1:]
    if rest:
        return [(rest, column + 1), *fields[1:]]
    if len(fields) == 1:
        raise ScheduleError("! must be followed by a time range", first, column)
    return fields[1:]


def _parse_ranges(field: str, column: int, *, exclude: bool) -> tuple[TimeRange, ...]:
    ranges = []
    for item, item_column in _items(field, column):
        parsed = _parse_range_item(item, item_column, exclude)
        if parsed is not None:
            ranges.append(parsed)
    return tuple(ranges)


def _parse_range_item(item: str, column: int, exclude: bool) -> TimeRange | None:
    """``[~]HH:MM-HH:MM[@interval]``, ``[~]@interval`` or ``*``; None for a zero interval."""
    spread = item.startswith("~")
    body, at, interval_text = item[1 if spread else 0 :].partition("@")
    if exclude and (spread or at):
        raise ScheduleError("an exclusion takes no ~ and no @interval", item, column)
    interval = _parse_interval(interval_text, item, column) if at else None
    if body in ("", "*"):
        if not body and not at:
            raise ScheduleError(
                "empty time range, expected [~]HH:MM-HH:MM[@interval]", item, column
            )
        start, end = 0, DAY_MINUTES
        if body == "*" and not at and not exclude:
            interval = STAR_INTERVAL
    else:
        start, end = _parse_window(body, item, column)
    if interval is not None and not interval:
        return None
    return TimeRange(start, end, interval, spread)


def _parse_window(body: str, item: str, column: int) -> tuple[int, int]:
    start_text, dash, end_text = body.partition("-")
    if not dash:
        raise ScheduleError("expected [~]HH:MM-HH:MM[@interval], [~]@interval or *", item, column)
    start = _parse_clock(start_text, item, column, is_end=False)
    end = _parse_clock(end_text, item, column, is_end=True)
    if start == end % DAY_MINUTES and end != DAY_MINUTES:
        raise ScheduleError(
            "empty range (start equals end); all day is * or 00:00-24:00", item, column
        )
    if end <= start:
        end += DAY_MINUTES
    return start, end


def _parse_clock(text: str, item: str, column: int, *, is_end: bool) -> int:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ScheduleError(f'"{text}" is not a time, expected HH:MM-HH:MM', item, column)
    hour, minute = int(match[1]), int(match[2])
    if hour == 24 and minute == 0:
        if is_end:
            return DAY_MINUTES
        raise ScheduleError("24:00 is only allowed as the end of a range", item, column)
    if hour > 23:
        raise ScheduleError(f"hour {hour} out of range (00-23)", item, column)
    if minute > 59:
        raise ScheduleError(f"minute {minute} out of range (00-59)", item, column)
    return hour * 60 + minute


def _parse_interval(text: str, item: str, column: int) -> timedelta:
    match = _INTERVAL.fullmatch(text.lower())
    if match is None:
        raise ScheduleError(
            f'bad interval "@{text}", expected @N (minutes), @Ns, @Nm, @Nh or @Nd', item, column
        )
    interval = timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    if interval > MAX_INTERVAL:
        raise ScheduleError(f'interval "@{text}" too long (at most 366d)', item, column)
    return interval


def _parse_days(field: str, column: int) -> frozenset[DaySpec]:
    specs: set[DaySpec] = set()
    for item, item_column in _items(field, column):
        specs |= _parse_day_item(item, item_column)
    return frozenset(specs)


def _parse_day_item(item: str, column: int) -> set[DaySpec]:
    """``*``, ``mon``, ``mon-fri``, each optionally ``:1``..``:5`` or ``:last``."""
    base, colon, nth_text = item.lower().partition(":")
    nth = 0
    if colon:
        if nth_text not in _NTH:
            raise ScheduleError(
                f'bad ":{nth_text}", expected :1 to :5 or :last after a day', item, column
            )
        nth = _NTH[nth_text]
    if base == "*":
        weekdays = list(range(7))
    else:
        first, dash, last = base.partition("-")
        start = _day_number(first, item, column)
        stop = _day_number(last, item, column) if dash else start
        weekdays = _cycle(start, stop, 0, 6)
    return {DaySpec(weekday, nth) for weekday in weekdays}


def _day_number(name: str, item: str, column: int) -> int:
    if name not in _DAYS:
        raise ScheduleError(
            f'unknown day "{name}", expected mon, tue, wed, thu, fri, sat, sun or *', item, column
        )
    return _DAYS[name]


def _parse_numbers(field: str, column: int, *, kind: str) -> frozenset[int]:
    """Weeks (1-53) or months (1-12 or names): ``*``, ``N``, ``A-B``, each with ``%K``."""
    values: set[int] = set()
    for item, item_column in _items(field, column):
        values.update(_parse_number_item(item, item_column, kind))
    return frozenset(values)


def _parse_number_item(item: str, column: int, kind: str) -> list[int]:
    top = 53 if kind == "week" else 12
    base, percent, step_text = item.lower().partition("%")
    step = 1
    if percent:
        step = _number(step_text, item, column, "modulo", top)
    if base == "*":
        start, stop = 1, top
    else:
        first, dash, last = base.partition("-")
        start = _unit_number(first, item, column, kind, top)
        stop = _unit_number(last, item, column, kind, top) if dash else start
    return _cycle(start, stop, 1, top, step)


def _unit_number(text: str, item: str, column: int, kind: str, top: int) -> int:
    if kind == "month" and text in _MONTHS:
        return _MONTHS[text]
    return _number(text, item, column, kind, top)


def _number(text: str, item: str, column: int, what: str, top: int) -> int:
    names = ", jan-dec" if what == "month" else ""
    if _NUMBER.fullmatch(text) is None:
        raise ScheduleError(f'bad {what} "{text}", expected 1-{top}{names} or *', item, column)
    value = int(text)
    if not 1 <= value <= top:
        raise ScheduleError(f"{what} {value} out of range (1-{top})", item, column)
    return value


def _cycle(start: int, stop: int, low: int, high: int, step: int = 1) -> list[int]:
    """start, start+step, ... up to stop, wrapping from high back to low."""
    size = high - low + 1
    length = (stop - start) % size + 1
    return [low + (start - low + i) % size for i in range(0, length, step)]
