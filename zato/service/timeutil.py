"""``self.time``: the current date and time in any timezone, formatted or not, and reformatting.

Zato 3.1's TimeUtil names and arguments (``now``, ``utcnow``, ``today``, ``yesterday``, ``tomorrow``,
``isonow``, ``isoutcnow``, ``one_day_from``, ``one_hour_from``, ``one_minute_from``, ``reformat``) and
its format tokens, which were Arrow's (``YYYY-MM-DDTHH:mm:ss``; see FORMAT_TOKENS). A format with a
``%`` in it is taken as Python's strftime instead. Where 3.1 returned an Arrow object
(``needs_format=False``) this returns a timezone-aware ``datetime``.

Fixed from 3.1: ``today(tz=...)`` is the date in that timezone (3.1 took the local date at midnight
UTC and converted it, which could give yesterday), and ``isoutcnow`` works (3.1 called a method that
did not exist). A timezone is an IANA name (``Europe/Berlin``) or ``UTC``; None is the server's own.
"""

from __future__ import annotations

import re
from datetime import date as date_type
from datetime import datetime, timedelta, timezone, tzinfo, UTC
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DATE_FORMAT = 'YYYY-MM-DD'
DATE_TIME_FORMAT = 'YYYY-MM-DDTHH:mm:ss'
TIMESTAMP_FORMAT = 'YYYY-MM-DDTHH:mm:ss.SSSSSS'

_MONTHS = ('January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October',
           'November', 'December')
_DAYS = ('Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday')

# Arrow's tokens, longest first where one is the start of another; [text] is literal text
FORMAT_TOKENS = re.compile(r'\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|DDDD|DDD|DD|Do|D|dddd|ddd|d|HH|H|hh|h|mm|m|ss|s|S+|'
                           r'X|ZZZ|ZZ|Z|a|A|W')


def _offset(dt: datetime, sep: str) -> str:
    delta = dt.utcoffset()
    if delta is None:
        return ''
    minutes = int(delta.total_seconds() // 60)
    sign = '-' if minutes < 0 else '+'
    hours, minutes = divmod(abs(minutes), 60)
    return f'{sign}{hours:02d}{sep}{minutes:02d}'


def _ordinal(n: int) -> str:
    suffix = 'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')
    return f'{n}{suffix}'


def _hour12(dt: datetime) -> int:
    return dt.hour % 12 or 12


_FORMATTERS: dict[str, Any] = {
    'YYYY': lambda dt: f'{dt.year:04d}', 'YY': lambda dt: f'{dt.year % 100:02d}',
    'MMMM': lambda dt: _MONTHS[dt.month - 1], 'MMM': lambda dt: _MONTHS[dt.month - 1][:3],
    'MM': lambda dt: f'{dt.month:02d}', 'M': lambda dt: str(dt.month),
    'DDDD': lambda dt: f'{dt.timetuple().tm_yday:03d}', 'DDD': lambda dt: str(dt.timetuple().tm_yday),
    'DD': lambda dt: f'{dt.day:02d}', 'Do': lambda dt: _ordinal(dt.day), 'D': lambda dt: str(dt.day),
    'dddd': lambda dt: _DAYS[dt.weekday()], 'ddd': lambda dt: _DAYS[dt.weekday()][:3],
    'd': lambda dt: str(dt.isoweekday()),
    'HH': lambda dt: f'{dt.hour:02d}', 'H': lambda dt: str(dt.hour),
    'hh': lambda dt: f'{_hour12(dt):02d}', 'h': lambda dt: str(_hour12(dt)),
    'mm': lambda dt: f'{dt.minute:02d}', 'm': lambda dt: str(dt.minute),
    'ss': lambda dt: f'{dt.second:02d}', 's': lambda dt: str(dt.second),
    'X': lambda dt: str(int(dt.timestamp())),
    'ZZZ': lambda dt: dt.tzname() or '', 'ZZ': lambda dt: _offset(dt, ':'), 'Z': lambda dt: _offset(dt, ''),
    'a': lambda dt: 'am' if dt.hour < 12 else 'pm', 'A': lambda dt: 'AM' if dt.hour < 12 else 'PM',
    'W': lambda dt: '{}-W{:02d}-{}'.format(*dt.isocalendar()),
}


def format_datetime(value: datetime, format: str) -> str:  # noqa: A002 - 3.1's argument name
    """`value` as `format` says: Arrow's tokens, or strftime's when the format has a %."""
    if '%' in format:
        return value.strftime(format)

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if token[0] == '[':
            return token[1:-1]
        if token[0] == 'S':  # fractions of a second, as many digits as S's
            return f'{value.microsecond:06d}'[:len(token)].ljust(len(token), '0')
        return str(_FORMATTERS[token](value))

    return FORMAT_TOKENS.sub(one, format)


_NAMES = '|'.join(_MONTHS + tuple(m[:3] for m in _MONTHS))
_PARSERS = {
    'YYYY': r'(?P<year>\d{4})', 'YY': r'(?P<year2>\d{2})', 'MMMM': f'(?P<month_name>{_NAMES})',
    'MMM': f'(?P<month_name>{_NAMES})', 'MM': r'(?P<month>\d{2})', 'M': r'(?P<month>\d{1,2})',
    'DDDD': r'(?P<yday>\d{3})', 'DDD': r'(?P<yday>\d{1,3})', 'DD': r'(?P<day>\d{2})',
    'Do': r'(?P<day>\d{1,2})(?:st|nd|rd|th)', 'D': r'(?P<day>\d{1,2})',
    'dddd': '(?:' + '|'.join(_DAYS) + ')', 'ddd': '(?:' + '|'.join(d[:3] for d in _DAYS) + ')', 'd': r'[1-7]',
    'HH': r'(?P<hour>\d{2})', 'H': r'(?P<hour>\d{1,2})', 'hh': r'(?P<hour12>\d{2})', 'h': r'(?P<hour12>\d{1,2})',
    'mm': r'(?P<minute>\d{2})', 'm': r'(?P<minute>\d{1,2})', 'ss': r'(?P<second>\d{2})',
    's': r'(?P<second>\d{1,2})', 'X': r'(?P<timestamp>\d+(?:\.\d+)?)', 'ZZZ': r'(?P<tzname>[A-Za-z_/+-]+)',
    'ZZ': r'(?P<offset>Z|[+-]\d{2}:?\d{2})', 'Z': r'(?P<offset>Z|[+-]\d{2}:?\d{2})',
    'a': r'(?P<ampm>am|pm|AM|PM)', 'A': r'(?P<ampm>AM|PM|am|pm)',
}


def _parse_pattern(format: str) -> re.Pattern[str]:  # noqa: A002
    parts, seen, pos = [], set(), 0
    for m in FORMAT_TOKENS.finditer(format):
        parts.append(re.escape(format[pos:m.start()]))
        token = m.group(0)
        if token[0] == '[':
            parts.append(re.escape(token[1:-1]))
        elif token[0] == 'S':
            parts.append(r'(?P<fraction>\d+)')
        elif token == 'W':  # noqa: S105 - a format token, not a secret
            raise ValueError('The token W cannot be parsed')
        else:
            pattern = _PARSERS[token]
            group = re.match(r'\(\?P<(\w+)>', pattern)
            if group and group.group(1) in seen:  # the same field twice: match, do not capture again
                pattern = '(?:' + pattern[len(group.group(0)):]
            elif group:
                seen.add(group.group(1))
            parts.append(pattern)
        pos = m.end()
    parts.append(re.escape(format[pos:]))
    return re.compile(''.join(parts))


def parse_datetime(value: str, format: str) -> datetime:  # noqa: A002
    """`value` read as `format` says (Arrow's tokens, or strptime's with a %); ValueError if it does not
    match. Without an offset or a timezone in the format, the datetime is naive."""
    if '%' in format:
        return datetime.strptime(value, format)
    m = _parse_pattern(format).fullmatch(value.strip())
    if m is None:
        raise ValueError(f'`{value}` does not match the format `{format}`')
    f = {k: v for k, v in m.groupdict().items() if v is not None}
    if 'timestamp' in f:
        return datetime.fromtimestamp(float(f['timestamp']), UTC)
    year = int(f['year']) if 'year' in f else 2000 + int(f['year2']) if 'year2' in f else 1900
    month = int(f.get('month', 1))
    if 'month_name' in f:
        month = [n[:3] for n in _MONTHS].index(f['month_name'][:3]) + 1
    day = int(f.get('day', 1))
    hour = int(f.get('hour', 0))
    if 'hour12' in f:
        hour = int(f['hour12']) % 12 + (12 if f.get('ampm', '').lower() == 'pm' else 0)
    fraction = f.get('fraction', '0')
    microsecond = int(fraction[:6].ljust(6, '0'))
    tz: tzinfo | None = None
    if 'offset' in f:
        tz = UTC if f['offset'] == 'Z' else _offset_tz(f['offset'])
    elif 'tzname' in f:
        tz = zone(f['tzname'])
    try:
        if 'yday' in f:
            base = datetime(year, 1, 1) + timedelta(days=int(f['yday']) - 1)
            month, day = base.month, base.day
        return datetime(year, month, day, hour, int(f.get('minute', 0)), int(f.get('second', 0)), microsecond, tz)
    except ValueError as e:
        raise ValueError(f'`{value}` read as `{format}` is not a valid date or time: {e}') from None


def _offset_tz(text: str) -> timezone:
    sign = -1 if text[0] == '-' else 1
    digits = text[1:].replace(':', '')
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def zone(tz: str | tzinfo | None) -> tzinfo:
    """The timezone `tz` names: an IANA name, 'UTC', a tzinfo as it is, None for the server's own."""
    if tz is None:
        local = datetime.now().astimezone().tzinfo
        assert local is not None
        return local
    if isinstance(tz, tzinfo):
        return tz
    if tz.upper() == 'UTC':
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'Unknown timezone `{tz}`; expected an IANA name such as `Europe/Berlin`, or `UTC`') from None


def _as_datetime(value: str | datetime | date_type) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date_type):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f'`{value}` is not an ISO 8601 date or date and time') from None


class TimeUtil:
    """What ``self.time`` is. Formats default to ISO 8601, so formatted values sort as text."""

    def __init__(self, clock: Any = None) -> None:
        # The current time as a timezone-aware datetime in UTC (tests pass a fixed one)
        self._clock = clock or (lambda: datetime.now(UTC))

    # Now

    def utc_now(self) -> datetime:
        """The current time in UTC, timezone-aware."""
        return self._clock()

    def now(self, format: str = DATE_TIME_FORMAT, tz: str | tzinfo | None = None,  # noqa: A002
            needs_format: bool = True, delta: timedelta | None = None) -> str | datetime:
        """Now in the timezone `tz` (None: the server's), plus `delta` if given, formatted with `format`
        or, with needs_format=False, as a timezone-aware datetime."""
        value = self._clock().astimezone(zone(tz))
        if delta:
            value = value + delta
        return format_datetime(value, format) if needs_format else value

    def utcnow(self, format: str = DATE_TIME_FORMAT, needs_format: bool = True) -> str | datetime:  # noqa: A002
        """Now in UTC, formatted with `format` (default `YYYY-MM-DDTHH:mm:ss`) or as a datetime."""
        return self.now(format, UTC, needs_format)

    def isonow(self, tz: str | tzinfo | None = None, needs_format: bool = True) -> str | datetime:
        """Now in `tz` with microseconds, `YYYY-MM-DDTHH:mm:ss.SSSSSS`."""
        return self.now(TIMESTAMP_FORMAT, tz, needs_format)

    def isoutcnow(self, needs_format: bool = True) -> str | datetime:
        """Now in UTC with microseconds, `YYYY-MM-DDTHH:mm:ss.SSSSSS`."""
        return self.now(TIMESTAMP_FORMAT, UTC, needs_format)

    # Days

    def today(self, format: str = DATE_FORMAT, tz: str | tzinfo | None = None,  # noqa: A002
              needs_format: bool = True) -> str | datetime:
        """Today's date in `tz`; with needs_format=False, its midnight in `tz` as a datetime."""
        return self._day(0, format, tz, needs_format)

    def yesterday(self, format: str = DATE_TIME_FORMAT, tz: str | tzinfo | None = None,  # noqa: A002
                  needs_format: bool = True) -> str | datetime:
        """Now in `tz` minus one day (3.1: a date and time, not a date)."""
        return self.now(format, tz, needs_format, delta=timedelta(days=-1))

    def tomorrow(self, format: str = DATE_TIME_FORMAT, tz: str | tzinfo | None = None,  # noqa: A002
                 needs_format: bool = True) -> str | datetime:
        """Now in `tz` plus one day."""
        return self.now(format, tz, needs_format, delta=timedelta(days=1))

    def _day(self, days: int, format: str, tz: str | tzinfo | None, needs_format: bool) -> str | datetime:  # noqa: A002
        zone_ = zone(tz)
        local = self._clock().astimezone(zone_)
        midnight = datetime(local.year, local.month, local.day, tzinfo=zone_) + timedelta(days=days)
        return format_datetime(midnight, format) if needs_format else midnight

    # From a given moment

    def one_day_from(self, date: str | datetime | date_type, format: str = DATE_FORMAT,  # noqa: A002
                     needs_format: bool = True) -> str | datetime:
        """`date` (a datetime, a date or ISO 8601 text) plus one day."""
        return self._from(date, timedelta(days=1), format, needs_format)

    def one_hour_from(self, date: str | datetime | date_type, format: str = DATE_FORMAT,  # noqa: A002
                      needs_format: bool = True) -> str | datetime:
        """`date` plus one hour (3.1's default format is a date: pass a format with the time to see it)."""
        return self._from(date, timedelta(hours=1), format, needs_format)

    def one_minute_from(self, date: str | datetime | date_type, format: str = DATE_FORMAT,  # noqa: A002
                        needs_format: bool = True) -> str | datetime:
        """`date` plus one minute."""
        return self._from(date, timedelta(minutes=1), format, needs_format)

    @staticmethod
    def _from(date: str | datetime | date_type, delta: timedelta, format: str,  # noqa: A002
              needs_format: bool) -> str | datetime:
        value = _as_datetime(date) + delta
        return format_datetime(value, format) if needs_format else value

    # Conversions

    @staticmethod
    def reformat(value: str, from_: str, to: str) -> str:
        """`value` read with the format `from_` and written with `to`, e.g. `23-03-2013` from
        `DD-MM-YYYY` to `MM/DD/YY` is `03/23/13`; ValueError if `value` does not match `from_`."""
        return format_datetime(parse_datetime(value, from_), to)

    @staticmethod
    def to_timezone(value: datetime | str, tz: str | tzinfo | None, format: str | None = None) -> str | datetime:  # noqa: A002
        """The same moment in `tz`: a timezone-aware `value` is converted, a naive one is taken as UTC
        (as 3.1 stored times). ISO 8601 text is accepted. Formatted when `format` is given."""
        dt = _as_datetime(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        dt = dt.astimezone(zone(tz))
        return format_datetime(dt, format) if format else dt

    @staticmethod
    def native_to_utc(dt: datetime) -> datetime:
        """A naive datetime taken as UTC, made timezone-aware (3.1's name)."""
        return dt.replace(tzinfo=UTC)

    @staticmethod
    def datetime_to_ms(dt: datetime) -> float:
        """Milliseconds since the UNIX epoch; a naive `dt` is taken as UTC."""
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp() * 1000

    @staticmethod
    def datetime_from_ms(ms: float, isoformat: bool = True) -> str | datetime:
        """The UTC moment `ms` milliseconds after the UNIX epoch: ISO 8601 text, or a datetime."""
        value = datetime.fromtimestamp(ms / 1000, UTC)
        return value.isoformat() if isoformat else value
