"""Cron expressions, parsed once and asked for the next due time after an instant.

The syntax is the standard one, five fields, with an optional sixth, **last**, for seconds (the
position croniter uses, so an expression means the same in both):

    minute hour day-of-month month day-of-week [second]

* Each field is a list of items separated by commas; an item is ``*``, a number, a range ``a-b``,
  or either with a step: ``*/n``, ``a-b/n``, ``a/n`` (from ``a`` to the field's end). Months may be
  named ``jan`` ... ``dec`` and days of the week ``sun`` ... ``sat`` (any case); Sunday is 0 or 7.
* ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and ``@hourly``
  stand for their five fields. Anything else (``L``, ``W``, ``#``, ``?``, ranges that wrap around) is
  refused with a ValueError that names the field.
* Day of month and day of week: when both are restricted (neither allows every day; ``*/2`` is
  restricted, ``1-31`` is not), a day matches if either does, as in croniter and Vixie cron;
  otherwise the restricted one decides. (croniter sometimes takes ``1-31`` or ``*/1`` for a
  restriction, depending on the other field.)

Time zones and daylight saving time. An expression describes wall-clock times in the job's time zone
(UTC unless the job names another). The due instants are every instant whose wall-clock time there
matches, with one rule for the hour a spring-forward change skips: a wall-clock time that does not
exist that day fires once, at the first instant after the gap (``30 2 * * *`` in New York on the day
clocks go from 02:00 to 03:00 fires at 03:00). In the hour a fall-back change repeats, a matching
wall-clock time happens twice and fires twice (``30 1 * * *`` fires at 01:30 EDT and 01:30 EST), so
that ``*/20 * * * *`` stays every 20 minutes through the change; use UTC for a job that must run once
a day whatever the clocks do. Both rules are croniter's, which the tests compare against.

Instants are whole seconds since the epoch (int); nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ['CronExpression', 'parse', 'zone']

_MACROS = {'@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0',
           '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *'}

_MONTHS = {name: i for i, name in enumerate(
    ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'), 1)}
_DAYS = {name: i for i, name in enumerate(('sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'))}

# name, lowest, highest, names
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ('minute', 0, 59, {}), ('hour', 0, 23, {}), ('day of month', 1, 31, {}), ('month', 1, 12, _MONTHS),
    ('day of week', 0, 7, _DAYS), ('second', 0, 59, {}))

# Wall-clock times are counted in seconds from this naive origin, as instants are from the epoch
_WALL_ORIGIN = datetime(1970, 1, 1)

# How far ahead a search goes before deciding an expression never matches (31 February ...): long
# enough for 29 February on a given day of the week
_YEARS_AHEAD = 30

# Offsets are compared at least this often between two instants, so that no pair of changes (there
# and back) between them goes unseen; real zones change at most a few times a year
_PROBE = 7 * 86400

MAX_LENGTH = 400


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` ('UTC', 'Europe/Prague' ...); ValueError for an unknown one."""
    if not isinstance(name, str) or not name or len(name) > 100 or name.startswith(('/', '.')) or '..' in name:
        raise ValueError(f'Unknown time zone `{name}`')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'Unknown time zone `{name}`') from None


def _number(text: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.lower())
    if value is None:
        if not text.isascii() or not text.isdigit():
            raise ValueError(f'Invalid cron {field} `{text}`')
        value = int(text)
    if not low <= value <= high:
        raise ValueError(f'Invalid cron {field} `{text}`: expected {low} to {high}')
    return value


def _field(text: str, index: int) -> frozenset[int]:
    field, low, high, names = _FIELDS[index]
    values: set[int] = set()
    for item in text.split(','):
        body, _, step_text = item.partition('/')
        step = 1
        if step_text:
            if not step_text.isascii() or not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f'Invalid cron {field} step `{item}`')
            step = int(step_text)
        if body == '*':
            first, last = low, high
        elif '-' in body:
            a, _, b = body.partition('-')
            first, last = _number(a, field, low, high, names), _number(b, field, low, high, names)
            if first > last:
                raise ValueError(f'Invalid cron {field} range `{item}`: it must not wrap around')
        else:
            first = _number(body, field, low, high, names)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    if index == 4 and 7 in values:  # Sunday is 0 and 7
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression: the values each field allows (days of the week with Sunday as 0)."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]
    seconds: tuple[int, ...]
    days_given: bool
    weekdays_given: bool

    # Matching wall-clock times (naive datetimes)

    def _day_matches(self, dt: datetime) -> bool:
        by_day = dt.day in self.days
        by_weekday = (dt.weekday() + 1) % 7 in self.weekdays
        if self.days_given and self.weekdays_given:
            return by_day or by_weekday
        return by_day and by_weekday

    def first_wall_at_or_after(self, dt: datetime) -> datetime | None:
        """The first matching naive wall-clock time at or after `dt` (whole seconds), None if none
        within _YEARS_AHEAD years."""
        dt = dt.replace(microsecond=0)
        until = dt.year + _YEARS_AHEAD
        while dt.year <= until:
            if dt.month not in self.months:
                later = [m for m in self.months if m > dt.month]
                dt = datetime(dt.year, later[0], 1) if later else datetime(dt.year + 1, self.months[0], 1)
                continue
            if not self._day_matches(dt):
                dt = datetime(dt.year, dt.month, dt.day) + timedelta(days=1)
                continue
            if dt.hour not in self.hours:
                later = [h for h in self.hours if h > dt.hour]
                dt = dt.replace(hour=later[0], minute=0, second=0) if later else \
                    datetime(dt.year, dt.month, dt.day) + timedelta(days=1)
                continue
            if dt.minute not in self.minutes:
                later = [m for m in self.minutes if m > dt.minute]
                dt = dt.replace(minute=later[0], second=0) if later else \
                    dt.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if dt.second not in self.seconds:
                later = [s for s in self.seconds if s > dt.second]
                dt = dt.replace(second=later[0]) if later else dt.replace(second=0) + timedelta(minutes=1)
                continue
            return dt
        return None

    def _next_wall(self, floor: int) -> int | None:
        """The first matching wall-clock time after `floor` (both in seconds from _WALL_ORIGIN)."""
        found = self.first_wall_at_or_after(_WALL_ORIGIN + timedelta(seconds=floor + 1))
        return None if found is None else int((found - _WALL_ORIGIN).total_seconds())

    # Instants

    def next_after(self, after: int, tz: ZoneInfo) -> int | None:
        """The first due instant strictly after `after` (seconds since the epoch) in time zone `tz`,
        by the rules of the module's docstring; None if the expression never matches again."""
        start, offset = after, _offset(after, tz)
        floor = after + offset
        while True:
            wall = self._next_wall(floor)
            if wall is None:
                return None
            candidate = wall - offset
            change = _first_change(start, candidate, offset, tz)
            if change is None:
                return candidate
            new_offset = _offset(change, tz)
            if new_offset > offset and wall < change + new_offset:
                return change  # the wall-clock time fell in the gap: the first instant after it
            start, offset, floor = change, new_offset, change + new_offset - 1


def _offset(instant: int, tz: ZoneInfo) -> int:
    delta = datetime.fromtimestamp(instant, UTC).astimezone(tz).utcoffset()
    return 0 if delta is None else int(delta.total_seconds())


def _first_change(start: int, end: int, offset: int, tz: ZoneInfo) -> int | None:
    """The first instant in (start, end] whose offset is not `offset`, or None."""
    lo = start  # known to have `offset`
    hi = None
    probe = start
    while probe < end:
        probe = min(probe + _PROBE, end)
        if _offset(probe, tz) != offset:
            hi = probe
            break
        lo = probe
    if hi is None:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(mid, tz) == offset:
            lo = mid
        else:
            hi = mid
    return hi


def parse(text: str) -> CronExpression:
    """Parses a cron expression (see the module's docstring); ValueError naming what is wrong."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_LENGTH:
        raise ValueError(f'A cron definition must be a non-empty string of at most {MAX_LENGTH} characters')
    source = text.strip()
    parts = _MACROS.get(source.lower(), source).split()
    if len(parts) not in (5, 6):
        raise ValueError(f'Invalid cron definition `{source}`: expected 5 fields '
                         '(minute hour day-of-month month day-of-week) and optionally a 6th, seconds')
    if len(parts) == 5:
        parts.append('0')
    fields = [_field(part, index) for index, part in enumerate(parts)]
    return CronExpression(text=source, minutes=tuple(sorted(fields[0])), hours=tuple(sorted(fields[1])),
                          days=fields[2], months=tuple(sorted(fields[3])), weekdays=fields[4],
                          seconds=tuple(sorted(fields[5])), days_given=len(fields[2]) < 31,
                          weekdays_given=len(fields[4]) < 7)
