"""The hierarchy: every level and parent must pass, a refusal is charged nowhere, 403 before 429."""

from __future__ import annotations

import gevent
import pytest

from tests.security.ratelimit.conftest import EPOCH
from zato.security.ratelimit.exact import ExactResult
from zato.security.ratelimit.limiter import Decision, LimitDef, Limiter, retry_after

START = EPOCH - EPOCH % 86400  # midnight UTC, so every window starts together
CLIENT = '10.1.2.3'


class MemoryExact:
    """An exact store for these tests: all-or-nothing over a pure-Python Counters. With
    ``yield_inside`` it gives way to other greenlets mid-check, as a database round trip does."""

    def __init__(self, counters_module, yield_inside: bool = False) -> None:
        self.counters = counters_module.Counters()
        self.yield_inside = yield_inside
        self.calls: list[tuple[list[str], bool]] = []

    def probe_and_charge_all(self, items, now=None, charge=True):
        self.calls.append(([key for key, _ in items], charge))
        if self.yield_inside:
            gevent.sleep(0)
        waits = [self.counters.probe(key, rule, now) for key, rule in items]
        worst = max(waits)
        if worst > 0.0:
            return ExactResult(False, worst, waits.index(worst))
        if charge:
            for key, rule in items:
                self.counters.charge(key, rule, now)
        return ExactResult(True, 0.0)

    def clear(self, prefix=''):
        self.counters.clear()


@pytest.fixture
def limiter(counters_module):
    return Limiter(counters_module.Counters())


def passes(limiter, defs, n, ip=CLIENT, t=START):
    return sum(limiter.check(defs, ip, t).allowed for _ in range(n))


def test_a_request_within_every_limit_is_allowed_with_status_200(limiter):
    decision = limiter.check([LimitDef('channel:1', '* = 10/m')], CLIENT, START)
    assert decision == Decision(True, 200, 0, '', '')
    assert decision.headers == {}


def test_an_address_no_rule_matches_is_refused_with_403_and_no_cache(limiter):
    decision = limiter.check([LimitDef('channel:1', '10.0.0.0/8 = *')], '192.168.1.1', START)
    assert (decision.allowed, decision.status, decision.level) == (False, 403, 'channel:1')
    assert decision.headers == {'Cache-Control': 'no-store'}


def test_an_empty_definition_rejects_everyone(limiter):
    for ip in ('10.0.0.1', '::1', 'unix:'):
        assert limiter.check([LimitDef('channel:1', '')], ip, START).status == 403


def test_an_allow_list_is_a_network_with_an_unlimited_rate_and_nothing_else(limiter):
    allow = LimitDef('channel:1', '10.0.0.0/8 = *')
    assert all(limiter.check([allow], '10.9.9.9', START).allowed for _ in range(1000))
    assert limiter.check([allow], '11.0.0.1', START).status == 403
    assert len(limiter.counters) == 0


def test_over_a_limit_the_answer_is_429_with_retry_after_and_no_store(limiter):
    channel = LimitDef('channel:1', '* = 2/m')
    assert passes(limiter, [channel], 2, t=START + 10.5) == 2
    decision = limiter.check([channel], CLIENT, START + 10.5)
    assert (decision.status, decision.retry_after, decision.level) == (429, 50, 'channel:1')
    assert decision.headers == {'Retry-After': '50', 'Cache-Control': 'no-store'}


def test_retry_after_is_rounded_up_and_at_least_one_second():
    assert retry_after(0.000001) == 1
    assert retry_after(1.0) == 1
    assert retry_after(1.2) == 2


def test_a_request_refused_at_the_channel_is_not_charged_at_the_security_definition(limiter):
    sec_def = LimitDef('sec_def:5', '* = 5/m')
    channel = LimitDef('channel:1', '* = 1/m')
    assert passes(limiter, [sec_def, channel], 10) == 1
    # The nine refused requests cost the security definition nothing: 4 of its 5 remain
    other_channel = LimitDef('channel:2', '* = 100/m')
    assert passes(limiter, [sec_def, other_channel], 10) == 4


def test_a_request_refused_by_the_allow_list_of_a_later_level_charges_no_earlier_level(limiter):
    sec_def = LimitDef('sec_def:5', '* = 2/m')
    channel = LimitDef('channel:1', '10.0.0.0/8 = *')
    for _ in range(10):
        assert limiter.check([sec_def, channel], '192.168.0.1', START).status == 403
    assert passes(limiter, [sec_def], 5, ip='192.168.0.1') == 2


def test_a_parent_definition_is_enforced_with_its_own_limits(limiter):
    parent = LimitDef('group:1', '* = 3/m')
    child = LimitDef('sec_def:5', '* = 100/m', parent=parent)
    assert passes(limiter, [child], 3) == 3
    decision = limiter.check([child], CLIENT, START)
    assert (decision.status, decision.level) == (429, 'group:1')


def test_a_parent_refusing_the_address_gives_403_even_if_the_child_allows_it(limiter):
    parent = LimitDef('group:1', '10.0.0.0/8 = *')
    child = LimitDef('sec_def:5', '* = *', parent=parent)
    assert limiter.check([child], '192.168.0.1', START).status == 403
    assert limiter.check([child], '10.0.0.1', START).allowed


def test_a_parent_shared_by_two_objects_is_charged_once_per_request(limiter):
    parent = LimitDef('group:1', '* = 4/m')
    sec_def = LimitDef('sec_def:5', '* = *', parent=parent)
    channel = LimitDef('channel:1', '* = *', parent=parent)
    assert passes(limiter, [sec_def, channel], 10) == 4


def test_parents_shared_by_two_children_count_both_childrens_requests(limiter):
    parent = LimitDef('group:1', '* = 3/m')
    a = LimitDef('sec_def:1', '* = *', parent=parent)
    b = LimitDef('sec_def:2', '* = *', parent=parent)
    assert passes(limiter, [a], 2) + passes(limiter, [b], 2) == 3


def test_the_retry_after_is_the_longest_wait_among_refusing_levels(limiter):
    per_second = LimitDef('channel:1', '* = 1/s')
    per_minute = LimitDef('service:1', '* = 1/m')
    assert limiter.check([per_second, per_minute], CLIENT, START).allowed
    decision = limiter.check([per_second, per_minute], CLIENT, START + 0.5)
    assert (decision.retry_after, decision.level) == (60, 'service:1')


def test_a_definition_cannot_be_its_own_ancestor():
    a = LimitDef('sec_def:1', '* = *')
    b = LimitDef('group:1', '* = *', parent=a)
    with pytest.raises(ValueError, match='cycle: sec_def:1 -> group:1 -> sec_def:1'):
        LimitDef('sec_def:1', '* = 1/s', parent=b)


def test_a_definition_is_immutable_so_no_cycle_can_be_made_later():
    a = LimitDef('sec_def:1', '* = *')
    b = LimitDef('group:1', '* = *', parent=a)
    with pytest.raises(AttributeError):
        a.parent = b  # type: ignore[misc]


def test_invalid_definitions_are_refused():
    with pytest.raises(ValueError, match='mode'):
        LimitDef('sec_def:1', '* = *', mode='strict')
    with pytest.raises(ValueError, match='id'):
        LimitDef('a|b', '* = *')
    with pytest.raises(TypeError):
        LimitDef('sec_def:1', '* = *', parent='group:1')  # type: ignore[arg-type]


def test_an_ipv4_mapped_client_shares_the_count_of_its_ipv4_form(limiter):
    channel = LimitDef('channel:1', '10.0.0.0/8 = 2/m')
    assert limiter.check([channel], '::ffff:10.0.0.1', START).allowed
    assert limiter.check([channel], '10.0.0.1', START).allowed
    assert limiter.check([channel], '::ffff:10.0.0.1', START).status == 429


def test_a_cidr_rule_shares_one_count_across_the_network_and_star_counts_each_client(limiter):
    network = LimitDef('channel:1', '10.0.0.0/8 = 2/m')
    assert passes(limiter, [network], 1, ip='10.0.0.1') + passes(limiter, [network], 5, ip='10.0.0.2') == 2
    anyone = LimitDef('channel:2', '* = 2/m')
    assert passes(limiter, [anyone], 5, ip='10.0.0.1') + passes(limiter, [anyone], 5, ip='10.0.0.2') == 4


def test_a_definition_resolves_an_address_once_and_keeps_its_cache_bounded():
    channel = LimitDef('channel:1', '10.0.0.0/8 = 5/m\n* = 1/s', cache_size=100)
    rule, key, exact_key = channel.resolve('10.0.0.1')
    assert (rule.index, key, exact_key) == (0, ('channel:1', 0, '10.0.0.0/8'), 'channel:1|0|10.0.0.0/8')
    assert channel.resolve('10.0.0.1') is channel.resolve('10.0.0.1')
    for i in range(1000):
        assert channel.resolve(f'192.168.{i // 256}.{i % 256}')[1] == ('channel:1', 1, f'192.168.{i // 256}.{i % 256}')
    assert len(channel._resolved) <= 100


def test_the_limiter_reads_the_counters_clock_when_now_is_not_given(counters_module, clock):
    limiter = Limiter(counters_module.Counters(clock=clock))
    channel = LimitDef('channel:1', '* = 1/s')
    assert limiter.check([channel], CLIENT).allowed
    assert limiter.check([channel], CLIENT).status == 429
    clock.advance(1.0)
    assert limiter.check([channel], CLIENT).allowed


# ################################################################################################
# Exact levels in the hierarchy


def test_an_exact_level_is_checked_in_one_call_with_all_its_parents(counters_module):
    exact = MemoryExact(counters_module)
    limiter = Limiter(counters_module.Counters(), exact)
    parent = LimitDef('group:1', '* = 3/m', mode='exact')
    sec_def = LimitDef('sec_def:5', '* = 10/m', mode='exact', parent=parent)
    assert passes(limiter, [sec_def], 5) == 3
    assert exact.calls[0] == (['sec_def:5|0|10.1.2.3', 'group:1|0|10.1.2.3'], True)


def test_a_refusal_at_an_exact_level_refunds_the_approximate_reservations(counters_module):
    exact = MemoryExact(counters_module)
    limiter = Limiter(counters_module.Counters(), exact)
    sec_def = LimitDef('sec_def:5', '* = 5/m')
    service = LimitDef('service:1', '* = 1/m', mode='exact')
    assert passes(limiter, [sec_def, service], 10) == 1
    decision = limiter.check([sec_def, service], CLIENT, START)
    assert (decision.status, decision.level, decision.retry_after) == (429, 'service:1', 60)
    assert passes(limiter, [sec_def], 10) == 4


def test_a_refusal_at_an_approximate_level_charges_no_exact_level_but_reports_its_longer_wait(counters_module):
    exact = MemoryExact(counters_module)
    limiter = Limiter(counters_module.Counters(), exact)
    channel = LimitDef('channel:1', '* = 1/s')
    service = LimitDef('service:1', '* = 1/h', mode='exact')
    assert limiter.check([channel, service], CLIENT, START).allowed
    decision = limiter.check([channel, service], CLIENT, START + 0.5)
    assert (decision.retry_after, decision.level) == (3600, 'service:1')
    assert exact.calls[-1][1] is False  # only probed


def test_a_failing_exact_store_refunds_the_approximate_reservations_and_raises(counters_module):
    class Broken:
        def probe_and_charge_all(self, items, now=None, charge=True):
            raise ConnectionError('database is down')

    limiter = Limiter(counters_module.Counters(), Broken())
    sec_def = LimitDef('sec_def:5', '* = 1/m')
    service = LimitDef('service:1', '* = 1/m', mode='exact')
    with pytest.raises(ConnectionError):
        limiter.check([sec_def, service], CLIENT, START)
    assert limiter.check([sec_def], CLIENT, START).allowed


def test_an_exact_definition_without_a_store_is_a_configuration_error(limiter):
    with pytest.raises(RuntimeError, match='exact backend'):
        limiter.check([LimitDef('service:1', '* = 1/m', mode='exact')], CLIENT, START)


def test_200_greenlets_never_overshoot_an_approximate_level_while_an_exact_check_yields(counters_module):
    exact = MemoryExact(counters_module, yield_inside=True)
    limiter = Limiter(counters_module.Counters(), exact)
    sec_def = LimitDef('sec_def:5', '* = 50/m')
    service = LimitDef('service:1', '* = 1000/m', mode='exact')
    results = []

    def client(i):
        gevent.sleep(0)
        results.append(limiter.check([sec_def, service], CLIENT, START + i * 0.01).allowed)

    gevent.joinall([gevent.spawn(client, i) for i in range(200)], raise_error=True)
    assert sum(results) == 50


def test_200_greenlets_on_one_key_get_exactly_n_through_the_limiter(counters_module):
    limiter = Limiter(counters_module.Counters())
    channel = LimitDef('channel:1', '* = 7/s burst=13')
    results = []

    def client():
        gevent.sleep(0)
        results.append(limiter.check([channel], CLIENT, START).allowed)

    gevent.joinall([gevent.spawn(client) for _ in range(200)], raise_error=True)
    assert sum(results) == 14
