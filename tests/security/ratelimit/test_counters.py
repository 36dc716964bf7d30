"""Approximate counters, run against both twins: GCRA with nginx burst semantics, calendar windows,
Retry-After that is never too short, memory bounds, and properties over any request schedule."""

from __future__ import annotations

import math
import random

import gevent
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.security.ratelimit.conftest import EPOCH, FakeClock
from zato.security.ratelimit.rules import parse_rules

KEY = ('channel:1', 0, '10.0.0.1')


def rule(limit: str):
    return parse_rules(f'* = {limit}').rules[0]


def hits(counters, r, times, key=KEY):
    return [counters.hit(key, r, t) == 0.0 for t in times]


# ################################################################################################
# GCRA


def test_a_per_second_limit_without_burst_accepts_one_then_one_per_interval(counters_module):
    counters = counters_module.Counters()
    r = rule('10/s')
    assert hits(counters, r, [EPOCH, EPOCH + 0.05, EPOCH + 0.1, EPOCH + 0.15, EPOCH + 0.2]) == \
        [True, False, True, False, True]


def test_a_burst_admits_one_plus_burst_requests_at_once_then_one_per_interval(counters_module):
    counters = counters_module.Counters()
    r = rule('10/s burst=3')
    assert hits(counters, r, [EPOCH] * 6) == [True] * 4 + [False] * 2
    assert hits(counters, r, [EPOCH + 0.1, EPOCH + 0.1]) == [True, False]


def test_a_refused_request_does_not_move_the_theoretical_arrival_time(counters_module):
    counters = counters_module.Counters()
    r = rule('1/s')
    assert counters.hit(KEY, r, EPOCH) == 0.0
    for i in range(1, 100):
        assert counters.hit(KEY, r, EPOCH + i / 100) > 0.0
    assert counters.hit(KEY, r, EPOCH + 1.0) == 0.0


def test_the_wait_of_a_refused_request_is_when_it_would_pass(counters_module):
    counters = counters_module.Counters()
    r = rule('4/s burst=1')
    counters.hit(KEY, r, EPOCH)
    counters.hit(KEY, r, EPOCH)
    assert counters.hit(KEY, r, EPOCH + 0.1) == pytest.approx(0.15, abs=1e-6)


def test_probe_does_not_charge_and_charge_always_does(counters_module):
    counters = counters_module.Counters()
    r = rule('1/m')
    for _ in range(5):
        assert counters.probe(KEY, r, EPOCH) == 0.0
    counters.charge(KEY, r, EPOCH)
    assert counters.probe(KEY, r, EPOCH) > 0.0
    counters.charge(KEY, r, EPOCH)  # charging over the limit is the caller's decision
    counters.refund(KEY, r, EPOCH)
    assert counters.probe(KEY, r, EPOCH) > 0.0
    counters.refund(KEY, r, EPOCH)
    assert counters.probe(KEY, r, EPOCH) == 0.0


def test_a_refund_exactly_undoes_a_gcra_charge_even_after_others_charged(counters_module):
    counters = counters_module.Counters()
    r = rule('10/s burst=2')
    counters.charge(KEY, r, EPOCH)
    counters.charge(KEY, r, EPOCH)
    counters.charge(KEY, r, EPOCH)
    assert counters.probe(KEY, r, EPOCH) > 0.0
    counters.refund(KEY, r, EPOCH)
    assert counters.probe(KEY, r, EPOCH) == 0.0


def test_hit_all_charges_every_level_if_all_pass_and_none_if_one_refuses(counters_module):
    counters = counters_module.Counters()
    loose, tight = rule('3/m'), rule('1/m')
    items = [(('loose',), loose), (('tight',), tight), (('free',), rule('*'))]
    assert counters.hit_all(items, EPOCH) == 0.0
    for _ in range(5):
        assert counters.hit_all(items, EPOCH) > 0.0
    # loose was charged by the first call only: two of its three remain
    assert hits(counters, loose, [EPOCH] * 3, key=('loose',)) == [True, True, False]
    assert counters.hit_all([], EPOCH) == 0.0


def test_hit_all_returns_the_longest_wait(counters_module):
    counters = counters_module.Counters()
    per_second, per_hour = rule('1/s'), rule('1/h')
    counters.hit_all([(('s',), per_second), (('h',), per_hour)], EPOCH - EPOCH % 3600)
    assert counters.hit_all([(('s',), per_second), (('h',), per_hour)], EPOCH - EPOCH % 3600 + 0.5) == \
        pytest.approx(3599.5)


def test_a_state_created_for_a_check_survives_a_sweep_in_the_same_check(counters_module):
    counters = counters_module.Counters(max_keys=3000)
    r = rule('1/m')
    for i in range(1023):
        counters.hit(('old', i), r, EPOCH - 3600)  # idle by EPOCH
    # The second new key triggers a sweep; the first, new and not yet charged, must be kept
    assert counters.hit_all([(('a',), r), (('b',), r)], EPOCH) == 0.0
    assert len(counters) == 2
    assert counters.probe(('a',), r, EPOCH) > 0.0 and counters.probe(('b',), r, EPOCH) > 0.0


def test_an_unlimited_rule_always_passes_and_keeps_no_state(counters_module):
    counters = counters_module.Counters()
    r = rule('*')
    assert all(counters.hit(KEY, r, EPOCH) == 0.0 for _ in range(1000))
    assert len(counters) == 0


def test_keys_are_counted_apart(counters_module):
    counters = counters_module.Counters()
    r = rule('1/s')
    assert counters.hit(('a',), r, EPOCH) == 0.0
    assert counters.hit(('b',), r, EPOCH) == 0.0
    assert counters.hit(('a',), r, EPOCH) > 0.0


def test_the_injected_clock_is_read_when_now_is_not_given(counters_module):
    clock = FakeClock()
    counters = counters_module.Counters(clock=clock)
    r = rule('1/s')
    assert counters.hit(KEY, r) == 0.0
    assert counters.hit(KEY, r) == pytest.approx(1.0)
    clock.advance(1.0)
    assert counters.hit(KEY, r) == 0.0
    assert counters.clock is clock


def test_after_the_wall_clock_steps_back_an_hour_a_client_waits_at_most_its_burst_span(counters_module):
    counters = counters_module.Counters()
    r = rule('2/s burst=1')
    counters.hit(KEY, r, EPOCH)
    counters.hit(KEY, r, EPOCH)
    wait = counters.hit(KEY, r, EPOCH - 3600)
    assert 0.0 < wait <= 0.5 + 1e-6
    assert counters.hit(KEY, r, EPOCH - 3600 + wait) == 0.0


def test_a_re_parsed_rule_with_the_same_limits_keeps_the_count_and_a_changed_one_resets_it(counters_module):
    counters = counters_module.Counters()
    counters.hit(KEY, rule('1/m'), EPOCH)
    assert counters.hit(KEY, rule('1/m'), EPOCH) > 0.0
    assert counters.hit(KEY, rule('2/m'), EPOCH) == 0.0


# ################################################################################################
# Calendar windows


def test_the_rate_limit_rejects_the_101st_request_in_a_minute(counters_module):
    counters = counters_module.Counters()
    r = rule('100/m')
    start = EPOCH - EPOCH % 60
    assert hits(counters, r, [start + i * 0.5 for i in range(100)]) == [True] * 100
    wait = counters.hit(KEY, r, start + 50.25)
    assert wait == pytest.approx(9.75)


def test_windows_are_utc_calendar_minutes_hours_and_days_not_sliding(counters_module):
    counters = counters_module.Counters()
    day_end = 1_700_006_400.0  # 2023-11-15T00:00:00Z
    for unit, period in (('m', 60), ('h', 3600), ('d', 86400)):
        r = rule(f'1/{unit}')
        key = ('x', unit)
        assert counters.hit(key, r, day_end - 0.5) == 0.0
        assert counters.hit(key, r, day_end - 0.25) == pytest.approx(0.25)
        # A new window starts at the boundary, half a second after the last request
        assert counters.hit(key, r, day_end) == 0.0
        assert counters.hit(key, r, day_end + period - 1) == pytest.approx(1.0)


def test_after_the_wall_clock_steps_back_a_window_keeps_counting_in_its_newer_window(counters_module):
    counters = counters_module.Counters()
    r = rule('1/m')
    start = EPOCH - EPOCH % 60
    counters.hit(KEY, r, start + 10)
    assert counters.hit(KEY, r, start - 30) == pytest.approx(90.0)


# ################################################################################################
# Memory


def test_idle_states_are_swept_when_the_table_grows(counters_module):
    counters = counters_module.Counters(max_keys=10_000)
    r = rule('10/s')
    for i in range(5000):
        counters.hit(('k', i), r, EPOCH + i)  # each key idle 0.1 s after its request
    assert len(counters) <= 1025


def test_memory_never_exceeds_max_keys_even_when_every_key_is_active(counters_module):
    counters = counters_module.Counters(max_keys=2000)
    r = rule('1/d')
    for i in range(20_000):
        counters.hit(('k', i), r, EPOCH)
        assert len(counters) <= 2000
    # The most recent keys are still counted
    assert counters.hit(('k', 19_999), r, EPOCH) > 0.0


def test_clear_forgets_every_state(counters_module):
    counters = counters_module.Counters()
    r = rule('1/m')
    counters.hit(KEY, r, EPOCH)
    counters.clear()
    assert len(counters) == 0
    assert counters.hit(KEY, r, EPOCH) == 0.0


# ################################################################################################
# Concurrency


def test_200_greenlets_on_one_key_get_exactly_n_accepted_in_a_window(counters_module):
    counters = counters_module.Counters()
    r = rule('50/m')
    start = EPOCH - EPOCH % 60
    accepted = []

    def client(i):
        for attempt in range(3):
            gevent.sleep(0)  # interleave the greenlets between checks
            if counters.hit(KEY, r, start + i * 0.01 + attempt) == 0.0:
                accepted.append(i)

    gevent.joinall([gevent.spawn(client, i) for i in range(200)], raise_error=True)
    assert len(accepted) == 50


# ################################################################################################
# Properties over any schedule

rates = st.integers(1, 50)
bursts = st.integers(0, 10)
# Gaps in whole microseconds, from simultaneous to two seconds; sums of them are exact in floats near EPOCH
gaps = st.lists(st.integers(0, 2_000_000), min_size=1, max_size=120)


def times_from(gaps_us):
    t, times = 0, []
    for gap in gaps_us:
        t += gap
        times.append(EPOCH + t / 1e6)
    return times


@settings(max_examples=150, deadline=None)
@given(rate=rates, burst=bursts, gaps_us=gaps)
def test_no_horizon_ever_sees_more_than_burst_plus_one_plus_rate_times_its_length(counters_module, rate, burst,
                                                                                 gaps_us):
    counters = counters_module.Counters()
    r = rule(f'{rate}/s burst={burst}')
    accepted = [t for t in times_from(gaps_us) if counters.hit(KEY, r, t) == 0.0]
    # Every horizon that holds accepted requests is covered by one from an accepted request to another
    slack = rate * 2e-6  # the 1 us decision slack, and rounding
    for i, first in enumerate(accepted):
        for j in range(i, len(accepted)):
            assert j - i + 1 <= burst + 1 + rate * (accepted[j] - first) + slack


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(1, 20), unit=st.sampled_from('mh'), gaps_us=st.lists(st.integers(0, 30_000_000), max_size=120))
def test_no_calendar_window_ever_sees_more_than_n_accepted(counters_module, limit, unit, gaps_us):
    counters = counters_module.Counters()
    r = rule(f'{limit}/{unit}')
    per_window: dict[float, int] = {}
    for t in times_from(gaps_us):
        if counters.hit(KEY, r, t) == 0.0:
            window = t - t % r.period
            per_window[window] = per_window.get(window, 0) + 1
    assert all(count <= limit for count in per_window.values())


@settings(max_examples=150, deadline=None)
@given(rate=rates, burst=bursts, extra_us=st.lists(st.integers(0, 500_000), min_size=1, max_size=100))
def test_a_client_that_keeps_within_its_rate_is_never_refused(counters_module, rate, burst, extra_us):
    counters = counters_module.Counters()
    r = rule(f'{rate}/s burst={burst}')
    t = EPOCH
    for extra in extra_us:
        assert counters.hit(KEY, r, t) == 0.0
        t += 1.0 / rate + extra / 1e6


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(1, 20), extra_us=st.lists(st.integers(0, 10_000_000), min_size=1, max_size=60))
def test_a_client_that_keeps_within_a_window_limit_is_never_refused(counters_module, limit, extra_us):
    counters = counters_module.Counters()
    r = rule(f'{limit}/m')
    t = EPOCH
    for extra in extra_us:
        assert counters.hit(KEY, r, t) == 0.0
        t += 60.0 / limit + 1e-6 + extra / 1e6


limits = st.one_of(
    st.builds(lambda n, b: f'{n}/s burst={b}', rates, bursts),
    st.builds(lambda n, u: f'{n}/{u}', st.integers(1, 20), st.sampled_from('mhd')))


@settings(max_examples=200, deadline=None)
@given(limit=limits, gaps_us=st.lists(st.integers(0, 300_000), min_size=1, max_size=200))
def test_retrying_at_the_wait_of_the_first_refusal_succeeds_and_a_little_before_fails(counters_module, limit, gaps_us):
    counters = counters_module.Counters()
    r = rule(limit)
    for t in times_from(gaps_us):
        wait = counters.hit(KEY, r, t)
        if wait > 0.0:
            # probe charges nothing, so all three ask about the same state
            assert counters.probe(KEY, r, t + wait) == 0.0
            assert counters.probe(KEY, r, t + math.ceil(wait)) == 0.0
            if wait > 0.001:
                assert counters.probe(KEY, r, t + wait - 0.001) > 0.0
            break


# ################################################################################################
# The twins agree


def test_the_compiled_twin_returns_exactly_what_the_python_twin_returns(twins):
    pure, compiled = twins
    rng = random.Random(20261128)
    rules = parse_rules('1.0.0.0/8 = 7/s burst=3\n2.0.0.0/8 = 1/s\n3.0.0.0/8 = 5/m\n4.0.0.0/8 = 2/h\n* = 3/d').rules
    a, b = pure.Counters(max_keys=50), compiled.Counters(max_keys=50)
    t = EPOCH
    for _ in range(20_000):
        t += rng.choice((0.0, 0.001, 0.05, 0.3, 2.0, 61.0))
        r = rng.choice(rules)
        key = ('d', r.index, rng.randrange(80))
        op = rng.choice(('hit', 'hit', 'probe', 'charge', 'refund', 'hit_all'))
        if op == 'hit_all':
            items = [(('d', x.index, rng.randrange(80)), x) for x in rng.sample(rules, rng.randrange(1, 4))]
            assert a.hit_all(items, t) == b.hit_all(items, t), (items, t)
        else:
            assert getattr(a, op)(key, r, t) == getattr(b, op)(key, r, t), (op, r, t)
        assert len(a) == len(b)
