"""When jobs are due: first due times, repeats, start dates in the past, daylight saving, misfires."""

from __future__ import annotations

from datetime import UTC, datetime

from zato.scheduler.cron import parse, zone
from zato.scheduler.schedule import Schedule, decide, interval_of

T0 = int(datetime(2024, 3, 9, 12, 0, tzinfo=UTC).timestamp())


def interval(seconds: int, start: int = T0, repeats: int | None = None) -> Schedule:
    return Schedule('interval_based', start, interval=seconds, repeats=repeats)


def test_an_interval_adds_up_its_parts():
    assert interval_of(weeks=1, days=1, hours=1, minutes=1, seconds=1) == 604800 + 86400 + 3600 + 60 + 1


def test_an_interval_job_starting_later_is_first_due_at_its_start():
    assert interval(10, start=T0 + 100).first_due(T0) == T0 + 100


def test_an_interval_job_started_in_the_past_is_first_due_at_the_first_step_not_before_now():
    job = interval(10)
    assert job.first_due(T0 + 25) == T0 + 30
    assert job.first_due(T0 + 30) == T0 + 30
    assert job.first_due(T0 + 30.5) == T0 + 40


def test_repeats_is_how_many_runs_in_all():
    job = interval(10, repeats=3)
    due, runs, fired = job.first_due(T0), 0, []
    while due is not None:
        decision = decide(job, due, runs, now=due, grace=5, misfire='fire_once')
        assert decision.fire
        fired.append(due)
        runs += 1
        due = decision.next_due
    assert fired == [T0, T0 + 10, T0 + 20]


def test_a_one_time_job_is_due_at_its_start_date_even_past_and_then_done():
    job = Schedule('one_time', T0)
    assert job.first_due(T0 + 3600) == T0
    assert decide(job, T0, 0, now=T0 + 1, grace=5, misfire='fire_once') == decide(job, T0, 0, T0, 5, 'skip')
    assert decide(job, T0, 0, now=T0 + 1, grace=5, misfire='skip').next_due is None


def test_an_interval_is_elapsed_time_a_daylight_saving_change_moves_nothing():
    # New York springs forward at 07:00 UTC on 10 March 2024: the 1-hour job stays an hour apart in UTC
    job = interval(3600)
    due, seen = T0, []
    for _ in range(30):
        seen.append(due)
        due = decide(job, due, 0, due, 5, 'fire_once').next_due
    assert {b - a for a, b in zip(seen, seen[1:], strict=False)} == {3600}


def test_a_cron_job_is_due_in_its_time_zone_through_a_daylight_saving_change():
    tz = zone('America/New_York')
    job = Schedule('cron_style', T0, cron_expr=parse('0 9 * * *'), tz=tz)
    due = job.first_due(T0)
    seen = []
    for _ in range(3):
        seen.append(datetime.fromtimestamp(due, tz).isoformat())
        due = decide(job, due, 0, due, 5, 'fire_once').next_due
    # 09:00 EST (14:00 UTC), then 09:00 EDT (13:00 UTC) after the change on 10 March
    assert seen == ['2024-03-09T09:00:00-05:00', '2024-03-10T09:00:00-04:00', '2024-03-11T09:00:00-04:00']


def test_a_cron_job_is_not_due_before_its_start_date():
    job = Schedule('cron_style', T0 + 86400 * 3, cron_expr=parse('0 * * * *'), tz=zone('UTC'))
    assert job.first_due(T0) == T0 + 86400 * 3


def test_a_due_time_within_the_grace_fires_however_late_and_the_next_is_the_next_step():
    decision = decide(interval(1), T0, 0, now=T0 + 4.5, grace=5, misfire='skip')
    assert decision.fire and not decision.late and decision.next_due == T0 + 1


def test_late_due_times_fire_once_then_the_job_goes_on_after_now():
    decision = decide(interval(10), T0, 0, now=T0 + 3605, grace=30, misfire='fire_once')
    assert decision.fire and decision.late and decision.next_due == T0 + 3610


def test_late_due_times_are_skipped_with_skip():
    decision = decide(interval(10), T0, 0, now=T0 + 3605, grace=30, misfire='skip')
    assert not decision.fire and decision.next_due == T0 + 3610


def test_skipped_due_times_do_not_count_against_repeats():
    job = interval(10, repeats=2)
    decision = decide(job, T0, 1, now=T0 + 3605, grace=30, misfire='skip')
    assert not decision.fire and decision.next_due == T0 + 3610
    assert decide(job, T0, 1, now=T0 + 3605, grace=30, misfire='fire_once').next_due is None


def test_a_late_cron_job_goes_on_from_its_first_due_time_after_now():
    job = Schedule('cron_style', T0, cron_expr=parse('*/15 * * * *'), tz=zone('UTC'))
    decision = decide(job, T0, 0, now=T0 + 7200 + 60, grace=30, misfire='fire_once')
    assert decision.fire and decision.next_due == T0 + 7200 + 900
