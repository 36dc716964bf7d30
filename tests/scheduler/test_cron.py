"""Cron expressions against croniter, the reference, with the clock injected: the same due times from
the same instant, in zones with and without daylight saving time, across their changes."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from croniter import croniter

from zato.scheduler.cron import parse, zone

ZONES = ('UTC', 'America/New_York', 'Europe/London', 'Europe/Prague', 'Australia/Sydney', 'Asia/Kolkata',
         'America/Sao_Paulo')

# Each a few days before a change of offset in one of the zones above (and one ordinary day)
STARTS = (datetime(2024, 3, 9, 12, 0, 7, tzinfo=UTC), datetime(2024, 3, 30, 22, 0, tzinfo=UTC),
          datetime(2024, 11, 2, 20, 0, tzinfo=UTC), datetime(2024, 10, 26, 23, 59, 59, tzinfo=UTC),
          datetime(2024, 4, 6, 10, 0, tzinfo=UTC), datetime(2024, 10, 5, 14, 0, tzinfo=UTC),
          datetime(2024, 6, 15, 0, 0, tzinfo=UTC))

EXPRESSIONS = ('* * * * *', '*/20 * * * *', '30 2 * * *', '30 1 * * *', '0 2 * * *', '15,45 1-3 * * *',
               '0 0 1 * *', '0 12 * * mon-fri', '0 0 */10 * mon', '5 4 * jan,mar,nov *', '0 0 29 2 *',
               '0 */6 * * 0', '0 0 * * 7', '@hourly', '@daily', '@weekly', '@monthly', '@yearly',
               '*/15 * * * * 30', '0 2 * * * */20', '45 23 31 * *', '0 0 1-7 * sun')


def reference(expr: str, start: datetime, tz_name: str, count: int) -> list[int]:
    it = croniter(expr, start.astimezone(zone(tz_name)))
    return [int(it.get_next(datetime).timestamp()) for _ in range(count)]


def ours(expr: str, start: datetime, tz_name: str, count: int) -> list[int]:
    parsed, tz, now = parse(expr), zone(tz_name), int(start.timestamp())
    found = []
    for _ in range(count):
        now = parsed.next_after(now, tz)
        found.append(now)
    return found


@pytest.mark.parametrize('tz_name', ZONES)
@pytest.mark.parametrize('expr', EXPRESSIONS)
def test_due_times_are_croniters_from_the_same_instant_across_daylight_saving_changes(expr, tz_name):
    if len(expr.split()) == 6 and tz_name not in ('UTC', 'Asia/Kolkata'):
        # With seconds, croniter fires a time in a spring-forward gap at its next match after the gap,
        # not at the gap's end as it does without them; ours follows one rule (see the test below)
        pytest.skip('croniter has no one rule for a gap with seconds')
    count = 200 if expr.startswith(('*', '@hourly', '15', '0 */6')) else 12
    for start in STARTS:
        assert ours(expr, start, tz_name, count) == reference(expr, start, tz_name, count), (expr, start)


def test_random_expressions_match_croniter():
    rnd = random.Random(13)

    def item(low: int, high: int) -> str:
        kind = rnd.randrange(5)
        a = rnd.randint(low, high - 1)
        b = rnd.randint(a + 1, high)  # not `29-29`: croniter takes it for something else
        return ['*', f'*/{rnd.randint(1, high - low + 1)}', str(a), f'{a}-{b}', f'{a}-{b}/{rnd.randint(1, 5)}'][kind]

    def field(low: int, high: int) -> str:
        return ','.join(item(low, high) for _ in range(rnd.randint(1, 2)))

    for _ in range(150):
        expr = ' '.join((field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 6)))
        tz_name = rnd.choice(ZONES)
        start = rnd.choice(STARTS)
        parsed, fields = parse(expr), expr.split()
        if not croniter.is_valid(expr) or (len(parsed.days) == 31 and '*' not in fields[2].split(',')) or \
                (len(parsed.weekdays) == 7 and '*' not in fields[4].split(',')):
            # croniter takes a whole month's or week's days written without a bare `*` (`1-31`, `*/1`)
            # for a restriction or not depending on the other field; ours never does
            continue
        assert ours(expr, start, tz_name, 8) == reference(expr, start, tz_name, 8), (expr, tz_name, start)


def new_york(*args: int) -> int:
    return int(datetime(*args, tzinfo=zone('America/New_York')).timestamp())


def local(instant: int, tz_name: str = 'America/New_York') -> str:
    return datetime.fromtimestamp(instant, zone(tz_name)).isoformat()


def test_a_wall_clock_time_skipped_by_spring_forward_fires_once_at_the_end_of_the_gap():
    due = parse('30 2 * * *').next_after(new_york(2024, 3, 9, 12, 0), zone('America/New_York'))
    assert local(due) == '2024-03-10T03:00:00-04:00'


def test_a_wall_clock_time_repeated_by_fall_back_fires_at_both_instants():
    tz = zone('America/New_York')
    first = parse('30 1 * * *').next_after(new_york(2024, 11, 2, 12, 0), tz)
    second = parse('30 1 * * *').next_after(first, tz)
    assert (local(first), local(second)) == ('2024-11-03T01:30:00-04:00', '2024-11-03T01:30:00-05:00')
    assert second - first == 3600


def test_a_half_hour_fall_back_repeats_its_half_hour_too_where_croniter_does_not():
    # Lord Howe Island falls back from 02:00 +11:00 to 01:30 +10:30: 01:40 happens twice, and fires twice
    # by the rule one-hour changes follow (croniter agrees for those, but not for this one: it goes on
    # to 02:00, which is why this zone is not among ZONES)
    tz = zone('Australia/Lord_Howe')
    start = int(datetime(2024, 4, 7, 1, 30, tzinfo=tz).timestamp())
    found = ours('*/20 * * * *', datetime.fromtimestamp(start, UTC), 'Australia/Lord_Howe', 3)
    assert [local(t, 'Australia/Lord_Howe') for t in found] == [
        '2024-04-07T01:40:00+11:00', '2024-04-07T01:40:00+10:30', '2024-04-07T02:00:00+10:30']


def test_a_time_with_seconds_in_a_spring_forward_gap_fires_at_the_end_of_the_gap_too():
    tz = zone('Europe/Prague')
    start = int(datetime(2024, 3, 31, 1, 50, tzinfo=tz).timestamp())
    found = ours('*/15 * * * * 30', datetime.fromtimestamp(start, UTC), 'Europe/Prague', 3)
    assert [local(t, 'Europe/Prague') for t in found] == [
        '2024-03-31T03:00:00+02:00', '2024-03-31T03:00:30+02:00', '2024-03-31T03:15:30+02:00']


def test_the_sixth_field_is_seconds():
    due = parse('* * * * * 30').next_after(int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()), zone('UTC'))
    assert datetime.fromtimestamp(due, UTC) == datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)


def test_an_expression_that_never_matches_has_no_next_due_time():
    assert parse('0 0 31 2 *').next_after(0, zone('UTC')) is None


@pytest.mark.parametrize('expr, says', [
    ('* * * *', 'expected 5 fields'), ('* * * * * * *', 'expected 5 fields'), ('60 * * * *', 'minute `60`'),
    ('* 24 * * *', 'hour `24`'), ('* * 0 * *', 'day of month `0`'), ('* * * 13 *', 'month `13`'),
    ('* * * * 8', 'day of week `8`'), ('*/0 * * * *', 'step'), ('5-1 * * * *', 'wrap around'),
    ('* * L * *', 'day of month `L`'), ('* * * * 1#2', 'day of week'), ('* * ? * *', 'day of month'),
    ('', 'non-empty'), ('x' * 500, 'at most'), ('* * * foo *', 'month `foo`'), ('١ * * * *', 'minute'),
])
def test_bad_expressions_are_refused_naming_the_field(expr, says):
    with pytest.raises(ValueError, match=says):
        parse(expr)


@pytest.mark.parametrize('name', ['Nowhere/City', '', '../etc/passwd', '/etc/localtime', 'x' * 200])
def test_an_unknown_time_zone_is_refused(name):
    with pytest.raises(ValueError, match='Unknown time zone'):
        zone(name)
