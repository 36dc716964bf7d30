"""self.time: 3.1's TimeUtil names, arguments and Arrow-style format tokens, timezone-aware throughout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zato.service.base import Service
from zato.service.timeutil import TimeUtil, format_datetime, parse_datetime


def at(*args: int) -> TimeUtil:
    moment = datetime(*args, tzinfo=UTC)
    return TimeUtil(lambda: moment)


# 00:30 UTC on the night Europe moves its clocks forward (01:00 UTC), still the 28th in New York
NIGHT = (2026, 3, 29, 0, 30, 0, 123456)


def test_utcnow_is_iso_8601_to_the_second_by_default_or_as_the_format_says():
    t = at(*NIGHT)
    assert t.utcnow() == '2026-03-29T00:30:00'
    assert t.utcnow(format='YYYY-MM-DD HH:mm:ss.SSS ZZ') == '2026-03-29 00:30:00.123 +00:00'
    assert t.utcnow('DD/MM/YY hh:mm a') == '29/03/26 12:30 am'
    assert t.utcnow(format='%Y%m%d-%H%M') == '20260329-0030'
    assert t.utcnow(needs_format=False) == datetime(*NIGHT, tzinfo=UTC)
    assert t.utc_now() == datetime(*NIGHT, tzinfo=UTC) and t.utc_now().tzinfo is not None
    assert t.isoutcnow() == '2026-03-29T00:30:00.123456'


def test_now_in_a_timezone_follows_its_daylight_saving_time():
    assert at(*NIGHT).now(tz='Europe/Berlin', format='YYYY-MM-DD HH:mm Z ZZZ') == '2026-03-29 01:30 +0100 CET'
    assert at(2026, 3, 29, 1, 30).now(tz='Europe/Berlin', format='HH:mm ZZ ZZZ') == '03:30 +02:00 CEST'
    value = at(*NIGHT).now(tz='Asia/Tokyo', needs_format=False)
    assert value.utcoffset() == timedelta(hours=9) and value == datetime(*NIGHT, tzinfo=UTC)
    assert at(*NIGHT).isonow(tz='UTC') == '2026-03-29T00:30:00.123456'


def test_today_is_the_date_in_the_timezone_asked_for():
    t = at(*NIGHT)
    assert t.today(tz='UTC') == '2026-03-29'
    assert t.today(tz='America/New_York') == '2026-03-28'  # 3.1 could answer the day before that
    assert t.today(tz='Asia/Tokyo') == '2026-03-29'
    midnight = t.today(tz='Europe/Berlin', needs_format=False)
    assert midnight == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert t.yesterday(tz='UTC') == '2026-03-28T00:30:00' and t.tomorrow(tz='UTC') == '2026-03-30T00:30:00'


def test_one_day_hour_or_minute_from_a_given_moment():
    t = TimeUtil()
    assert t.one_day_from('2024-02-28') == '2024-02-29'
    assert t.one_day_from(datetime(2024, 12, 31, 23, 0)) == '2025-01-01'
    assert t.one_hour_from('2024-02-28T23:30:00', format='YYYY-MM-DDTHH:mm') == '2024-02-29T00:30'
    assert t.one_minute_from('2024-02-28T23:59:00+01:00', needs_format=False) == \
        datetime(2024, 2, 29, 0, 0, tzinfo=timezone(timedelta(hours=1)))


@pytest.mark.parametrize('value, from_, to, expected', [
    ('23-03-2013', 'DD-MM-YYYY', 'MM/DD/YY', '03/23/13'),
    ('7 March 2024 3:05 PM', 'D MMMM YYYY h:mm A', 'YYYY-MM-DDTHH:mm', '2024-03-07T15:05'),
    ('Thu, 07 Mar 2024 12:05:09 +0100', 'ddd, DD MMM YYYY HH:mm:ss Z', 'YYYY-MM-DDTHH:mm:ssZZ',
     '2024-03-07T12:05:09+01:00'),
    ('2024-03-07T12:05:09.5Z', 'YYYY-MM-DDTHH:mm:ss.SZZ', 'X', '1709813109'),
    ('07.03.2024', '%d.%m.%Y', 'dddd [the] Do [of] MMMM', 'Thursday the 7th of March'),
    ('2024-067', 'YYYY-DDDD', 'YYYY-MM-DD', '2024-03-07'),
    ('1709813109', 'X', 'YYYY-MM-DD HH:mm:ss ZZ', '2024-03-07 12:05:09 +00:00'),
])
def test_reformat_reads_one_format_and_writes_another(value, from_, to, expected):
    assert TimeUtil.reformat(value, from_, to) == expected


@pytest.mark.parametrize('value, from_', [('2013-03-23', 'DD-MM-YYYY'), ('31-02-2024', 'DD-MM-YYYY'),
                                          ('24:00', 'HH:mm'), ('', 'YYYY')])
def test_reformat_refuses_what_does_not_match_or_is_no_real_date_with_a_clear_error(value, from_):
    with pytest.raises(ValueError, match=f'`{value}`'):
        TimeUtil.reformat(value, from_, 'YYYY')


def test_an_unknown_timezone_is_a_clear_error():
    with pytest.raises(ValueError, match='Unknown timezone `Mars/Olympus`'):
        TimeUtil().now(tz='Mars/Olympus')


def test_conversions_between_timezones_keep_the_moment():
    t = TimeUtil()
    assert t.to_timezone('2026-07-01T12:00:00', 'Europe/Berlin', 'YYYY-MM-DD HH:mm ZZ') == '2026-07-01 14:00 +02:00'
    aware = datetime(2026, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert t.to_timezone(aware, 'UTC') == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)
    assert t.native_to_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert t.datetime_to_ms(datetime(1970, 1, 1, 0, 0, 1)) == 1000
    assert t.datetime_from_ms(1500) == '1970-01-01T00:00:01.500000+00:00'


FULL = 'YYYY-MM-DDTHH:mm:ss.SSSSSSZZ'


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-11))])))
def test_what_is_formatted_reads_back_as_the_same_moment(value):
    assert parse_datetime(format_datetime(value, FULL), FULL) == value
    assert format_datetime(value, FULL) == value.isoformat(timespec='microseconds')


def test_a_service_has_self_time():
    assert isinstance(Service().time, TimeUtil)
