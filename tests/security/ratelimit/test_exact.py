"""Exact mode on real stores: PostgreSQL (required) and Redis (optional, skipped when absent).

Each store must compute what the pure-Python counters compute, charge all items or none, and never
let concurrent processes overshoot a limit.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import psycopg2
import pytest

from tests import pg
from tests.security.ratelimit.conftest import EPOCH
from zato.security.ratelimit import counters as pure
from zato.security.ratelimit.limiter import LimitDef, Limiter
from zato.security.ratelimit.rules import parse_rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
START = EPOCH - EPOCH % 86400


def rule(limit: str):
    return parse_rules(f'* = {limit}').rules[0]


def test_a_check_within_the_limits_passes_and_charges_every_item(exact_backend):
    a, b = rule('2/m'), rule('10/s burst=1')
    assert exact_backend.probe_and_charge_all([('a', a), ('b', b)], START) == (True, 0.0)
    assert exact_backend.probe_and_charge_all([('a', a), ('b', b)], START) == (True, 0.0)
    ok, wait = exact_backend.probe_and_charge_all([('a', a)], START + 1.5)
    assert (ok, wait) == (False, 58.5)


def test_when_one_item_refuses_no_item_is_charged(exact_backend):
    tight, loose = rule('1/m'), rule('3/m')
    assert exact_backend.probe_and_charge_all([('tight', tight), ('loose', loose)], START).ok
    for _ in range(5):
        result = exact_backend.probe_and_charge_all([('loose', loose), ('tight', tight)], START)
        assert (result.ok, result.refused) == (False, 1)
    # loose was charged once, by the first check only
    assert exact_backend.probe_and_charge_all([('loose', loose)], START).ok
    assert exact_backend.probe_and_charge_all([('loose', loose)], START).ok
    assert not exact_backend.probe_and_charge_all([('loose', loose)], START).ok


def test_a_probe_without_charge_writes_nothing(exact_backend):
    r = rule('1/m')
    for _ in range(3):
        assert exact_backend.probe_and_charge_all([('k', r)], START, charge=False).ok
    assert exact_backend.probe_and_charge_all([('k', r)], START).ok
    result = exact_backend.probe_and_charge_all([('k', r)], START, charge=False)
    assert (result.ok, result.wait) == (False, 60.0)


def test_the_stores_own_clock_is_used_when_now_is_not_given(exact_backend):
    r = rule('1/h')
    assert exact_backend.probe_and_charge_all([('k', r)]).ok
    result = exact_backend.probe_and_charge_all([('k', r)])
    assert not result.ok and 0.0 < result.wait <= 3600.0


def test_an_empty_check_passes_and_repeated_keys_are_refused(exact_backend):
    assert exact_backend.probe_and_charge_all([], START) == (True, 0.0)
    with pytest.raises(ValueError, match='distinct'):
        exact_backend.probe_and_charge_all([('k', rule('1/s')), ('k', rule('1/s'))], START)


def test_clear_forgets_only_the_keys_under_its_prefix(exact_backend):
    r = rule('1/m')
    exact_backend.probe_and_charge_all([('sec_def:1|0|x', r), ('sec_def:10|0|x', r), ('sec_%|0|x', r)], START)
    exact_backend.clear('sec_def:1|')
    assert exact_backend.probe_and_charge_all([('sec_def:1|0|x', r)], START).ok
    assert not exact_backend.probe_and_charge_all([('sec_def:10|0|x', r)], START).ok
    exact_backend.clear('sec_%')
    assert exact_backend.probe_and_charge_all([('sec_%|0|x', r)], START).ok
    assert not exact_backend.probe_and_charge_all([('sec_def:10|0|x', r)], START).ok


def test_the_store_decides_exactly_as_the_pure_python_counters_do(exact_backend):
    rng = random.Random(7)
    rules = [rule('3/s burst=2'), rule('1/s'), rule('4/m'), rule('2/h')]
    model = pure.Counters()
    t = START
    for _ in range(150):
        t += rng.choice((0.0, 0.01, 0.2, 0.7, 40.0))
        items = [(f'k{i}', r) for i, r in enumerate(rules) if rng.random() < 0.6] or [('k0', rules[0])]
        waits = [model.probe(key, r, t) for key, r in items]
        if max(waits) == 0.0:
            for key, r in items:
                model.charge(key, r, t)
        ok, wait = exact_backend.probe_and_charge_all(items, t)
        assert ok == (max(waits) == 0.0)
        assert wait == pytest.approx(max(waits), abs=1e-9)


def test_after_the_clock_steps_back_the_store_keeps_the_clamped_state(exact_backend):
    r = rule('2/s burst=1')
    exact_backend.probe_and_charge_all([('k', r)], EPOCH)
    exact_backend.probe_and_charge_all([('k', r)], EPOCH)
    ok, wait = exact_backend.probe_and_charge_all([('k', r)], EPOCH - 3600)
    assert not ok and wait == pytest.approx(0.5)
    assert exact_backend.probe_and_charge_all([('k', r)], EPOCH - 3600 + wait).ok


def test_the_limiter_refunds_approximate_levels_when_an_exact_store_refuses(exact_backend):
    limiter = Limiter(pure.Counters(), exact_backend)
    sec_def = LimitDef('sec_def:5', '* = 3/m')
    service = LimitDef('service:1', '* = 1/m', mode='exact')
    assert limiter.check([sec_def, service], '10.0.0.1', START).allowed
    decision = limiter.check([sec_def, service], '10.0.0.1', START)
    assert (decision.status, decision.level) == (429, 'service:1')
    assert [limiter.check([sec_def], '10.0.0.1', START).allowed for _ in range(3)] == [True, True, False]


@pytest.mark.postgresql
def test_purge_deletes_only_idle_states_from_postgresql(pg_exact):
    pg_exact.probe_and_charge_all([('second', rule('1/s')), ('minute', rule('1/m'))], START)
    assert pg_exact.purge(START + 30) == 1
    assert not pg_exact.probe_and_charge_all([('minute', rule('1/m'))], START + 30).ok


# ################################################################################################
# Concurrency: two processes, 100 threads each, one key

# Each process checks two keys, in opposite orders: the stores must neither overshoot nor deadlock.
# With greenlets, the process is patched first, as a gevent worker is.
HAMMER = textwrap.dedent('''
    import json, sys
    if sys.argv[6] == 'greenlets':
        from gevent import monkey
        monkey.patch_all()
    import threading
    sys.path.insert(0, {root!r})
    from zato.security.ratelimit.exact import PostgresExact, RedisExact
    from zato.security.ratelimit.rules import parse_rules

    kind, target, limit, now, reverse = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
    if kind == 'postgresql':
        backend = PostgresExact(target, pool_size=10, timeout=60)
    else:
        import redis
        backend = RedisExact(redis.Redis.from_url('redis://127.0.0.1:6379/0'), prefix=target)
    items = [('shared', parse_rules('* = ' + limit).rules[0]), ('loose', parse_rules('* = 100000/m').rules[0])]
    if reverse == '1':
        items.reverse()
    go = threading.Barrier(100)
    accepted = []

    def worker():
        go.wait()
        for _ in range(3):
            accepted.append(backend.probe_and_charge_all(items, now).ok)

    if sys.argv[6] == 'greenlets':
        import gevent
        from zato.odb.gevent_psycopg import is_installed
        gevent.joinall([gevent.spawn(worker) for _ in range(100)], raise_error=True)
        assert kind != 'postgresql' or is_installed()
    else:
        threads = [threading.Thread(target=worker) for _ in range(100)]
        for t in threads: t.start()
        for t in threads: t.join()
    print(json.dumps(sum(accepted)))
''')


def hammer(kind: str, target: str, limit: str, now: float, concurrency: str = 'threads') -> int:
    script = HAMMER.format(root=ROOT)
    procs = [subprocess.Popen([sys.executable, '-c', script, kind, target, limit, repr(now), str(i), concurrency],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    total = 0
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        total += json.loads(out)
    return total


@pytest.mark.postgresql
@pytest.mark.parametrize('limit, expected, concurrency', [
    ('50/m', 50, 'threads'), ('10/s burst=24', 25, 'threads'), ('50/m', 50, 'greenlets')])
def test_two_processes_of_100_threads_or_greenlets_on_one_postgresql_key_accept_exactly_n(pg_database, limit, expected,
                                                                                          concurrency):
    from zato.security.ratelimit.exact import PostgresExact

    backend = PostgresExact(pg.dsn(pg_database))
    backend.clear()
    # 600 attempts at one instant: exactly N pass, never one more
    assert hammer('postgresql', pg.dsn(pg_database), limit, START + 7, concurrency) == expected
    backend.close()
    # and the other key was charged by exactly the checks that passed
    conn = psycopg2.connect(**pg.connect_kwargs(pg_database))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count FROM rate_limit_state WHERE key = 'loose'")
        assert cur.fetchone() == (expected,)
    conn.close()


def test_two_processes_of_100_threads_on_one_redis_key_accept_exactly_n(redis_exact):
    assert hammer('redis', redis_exact._prefix, '50/m', START + 7) == 50
