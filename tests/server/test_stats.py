"""The in-memory recorder of service statistics, on its own with injected clocks, and fed by real
invocations through the Invoker."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gevent
import pytest

from tests.server.stats_services import SOURCE
from zato.errors import InvocationTimeout
from zato.odb.histogram import bucket_of, percentile
from zato.server.stats import ServiceStats, is_internal
from zato.server.store import ServiceStore
from zato.config.channel import INVOKE_CHANNEL
from zato.service.invoker import Invoker
from zato.service.reqresp import Request

T0 = 1_800_000_000.0  # a whole minute since the epoch (30,000,000 minutes)


class Clock:
    """A wall clock and a perf_counter that move together, as the real ones do."""

    def __init__(self, wall: float = T0 + 5) -> None:
        self.wall = wall
        self.perf = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.perf += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stats(clock) -> ServiceStats:
    return ServiceStats(wall=lambda: clock.wall, perf=lambda: clock.perf)


def call(stats: ServiceStats, clock: Clock, name: str, seconds: float, status=200) -> None:
    started = clock.perf
    clock.advance(seconds)
    stats.record(name, started, clock.perf, status)


def by_name(rows) -> dict:
    return {row.name: row for row in rows}


def test_calls_are_counted_with_their_total_max_last_call_and_histogram(stats, clock):
    for seconds in (0.001, 0.003, 0.002):
        call(stats, clock, 'crm.get', seconds)
    row = by_name(stats.take())['crm.get']
    assert (row.minute, row.count, row.errors) == (T0 // 60, 3, 0)
    assert row.total == pytest.approx(0.006)
    assert row.max == pytest.approx(0.003)
    assert row.last_call == pytest.approx(clock.wall)
    assert sum(row.histogram) == 3
    assert row.histogram[bucket_of(0.003)] >= 1
    assert 0.001 < percentile(row.histogram, 0.5, row.max) <= 0.003


@pytest.mark.parametrize('status, is_error', [
    (200, False), (201, False), (400, False), (404, False), (429, False),
    (500, True), (503, True), (None, True), ('500', True),
])
def test_an_error_is_a_raise_or_a_5xx_and_a_client_error_is_not(stats, clock, status, is_error):
    call(stats, clock, 'crm.get', 0.001, status)
    assert by_name(stats.take())['crm.get'].errors == int(is_error)


@pytest.mark.parametrize('name', ['zato.ping', 'zato.service.invoke', 'pub.zato.channel.json-rpc.gateway'])
def test_internal_services_are_not_recorded(stats, clock, name):
    assert is_internal(name)
    call(stats, clock, name, 0.001)
    assert stats.take() == []


def test_a_user_service_with_zato_inside_its_name_is_recorded(stats, clock):
    assert not is_internal('my.zato.thing')
    call(stats, clock, 'my.zato.thing', 0.001)
    assert [row.name for row in stats.take()] == ['my.zato.thing']


def test_each_wall_clock_minute_has_rows_of_its_own(stats, clock):
    call(stats, clock, 'a', 0.001)
    clock.advance(60)
    call(stats, clock, 'a', 0.001)
    call(stats, clock, 'b', 0.001)
    rows = stats.take()
    assert sorted((row.minute - T0 // 60, row.name, row.count) for row in rows) == [(0, 'a', 1), (1, 'a', 1),
                                                                                     (1, 'b', 1)]


def test_a_row_is_taken_again_only_once_it_changes(stats, clock):
    call(stats, clock, 'a', 0.001)
    call(stats, clock, 'b', 0.001)
    stats.mark_sent(stats.take())
    assert stats.take() == []
    call(stats, clock, 'a', 0.001)
    rows = stats.take()
    # The whole minute so far, not the difference: writing it twice changes nothing
    assert [(row.name, row.count) for row in rows] == [('a', 2)]


def test_rows_not_marked_sent_are_taken_again(stats, clock):
    call(stats, clock, 'a', 0.001)
    first = stats.take()  # the write failed: nothing is marked
    call(stats, clock, 'a', 0.001)
    assert [(row.name, row.count) for row in first] == [('a', 1)]
    assert [(row.name, row.count) for row in stats.take()] == [('a', 2)]


def test_a_minute_that_ended_is_forgotten_once_sent_and_the_current_one_is_kept(stats, clock):
    call(stats, clock, 'a', 0.001)
    clock.advance(60)
    call(stats, clock, 'a', 0.001)
    stats.mark_sent(stats.take())
    assert list(stats.minutes) == [T0 // 60 + 1]


def test_a_minute_that_ends_while_nothing_is_called_is_forgotten_at_the_next_flush(stats, clock):
    call(stats, clock, 'a', 0.001)
    stats.mark_sent(stats.take())
    clock.advance(120)
    assert stats.take() == []
    stats.mark_sent([])
    assert list(stats.minutes) == [T0 // 60 + 2]


def test_when_the_odb_stays_away_the_oldest_minutes_are_dropped_and_counted(clock):
    stats = ServiceStats(wall=lambda: clock.wall, perf=lambda: clock.perf, max_pending=3)
    for _ in range(5):
        call(stats, clock, 'a', 0.001)
        call(stats, clock, 'a', 0.001)
        clock.advance(60)
    # Minutes 0 to 4 had calls; minute 5 has begun: three ended minutes are kept besides it
    rows = stats.take()
    assert sorted(row.minute - T0 // 60 for row in rows) == [2, 3, 4]
    assert stats.dropped == 4
    assert sum(row.count for row in rows) == 6


# Real invocations through the Invoker



@pytest.fixture
def real() -> SimpleNamespace:
    """An Invoker recording into a ServiceStats on the real clocks, as in a worker."""
    store = ServiceStore()
    store.deploy('stats_unit.py', SOURCE)
    runtime = SimpleNamespace(stats=ServiceStats())
    runtime.invoker = Invoker(store, runtime, runtime.stats)
    return runtime


def invoke_counts(invoker: Invoker, name: str) -> None:
    try:
        invoker.invoke(name)
    except Exception:  # noqa: BLE001 - the failures are what is counted
        pass


def test_invocations_are_recorded_with_errors_only_for_raises_and_5xx(real):
    for name in ('ok', 'fail', 'refuse', 'unavailable'):
        for _ in range(3):
            invoke_counts(real.invoker, f'stats-unit.{name}')
    rows = by_name(real.stats.take())
    assert {name: (row.count, row.errors) for name, row in rows.items()} == {
        'stats-unit.ok': (3, 0), 'stats-unit.fail': (3, 3), 'stats-unit.refuse': (3, 0),
        'stats-unit.unavailable': (3, 3)}
    assert all(row.total > 0 and row.max > 0 for row in rows.values())


def test_a_nested_invoke_is_counted_for_both_services_and_the_outer_one_lasts_longer(real):
    real.invoker.run(real.invoker.store.get('stats-unit.outer'), 'cid1', INVOKE_CHANNEL, Request())
    rows = by_name(real.stats.take())
    assert rows['stats-unit.outer'].count == rows['stats-unit.ok'].count == 1
    assert rows['stats-unit.outer'].total > rows['stats-unit.ok'].total


def test_an_invocation_past_its_timeout_counts_as_an_error(real):
    with pytest.raises(InvocationTimeout):
        real.invoker.invoke('stats-unit.slow', timeout=0.05)
    # The invocation's greenlet is killed without waiting; it records on its way out
    deadline = time.monotonic() + 5
    while not real.stats.take() and time.monotonic() < deadline:
        gevent.sleep(0.01)
    row = by_name(real.stats.take())['stats-unit.slow']
    assert (row.count, row.errors) == (1, 1)
