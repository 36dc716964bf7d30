"""Micro-benchmark of the rate-limit checks: ns per check, in-process, and us per exact-mode check.

Run from the repository root after ``python setup.py build_ext --inplace``:

    .venv/bin/pip install limits redis            # the peer library, and the optional Redis client
    ZATO_TEST_PG_USER=zato_test ZATO_TEST_PG_PASSWORD=zato_test .venv/bin/python bench/ratelimit.py

What is compared, per check of one key whose limit is not reached (the common case):

* ``zato.cy.ratelimit`` and its pure-Python twin ``zato.security.ratelimit.counters``: ``hit`` with a
  per-second GCRA rule and with a per-minute calendar window;
* the ``limits`` library (the model for algorithm x storage): FixedWindowRateLimiter and
  MovingWindowRateLimiter over MemoryStorage, ``hit(item, key)``;
* the whole ``Limiter.check`` over three levels (IP allow-list, security definition, channel);
* exact mode: PostgreSQL (a throwaway database, dropped at the end) and Redis if one answers,
  one round trip per check over loopback, sequential.

The in-process figures are the best of several runs (noise only ever adds time) and include the
loop and call overhead, printed on its own line for reference. Pin it for steadier figures:
``taskset -c 1 .venv/bin/python bench/ratelimit.py``.
"""

from __future__ import annotations

import importlib
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zato.security.ratelimit.limiter import LimitDef, Limiter  # noqa: E402
from zato.security.ratelimit.rules import parse_rules  # noqa: E402

COUNT = 200_000
REPEATS = 5
KEY = ('sec_def:5', 0, '10.0.0.1')
# Limits high enough that every timed check passes; time advances so GCRA never fills up
GCRA_RULE = parse_rules('* = 1000000/s burst=10').rules[0]
WINDOW_RULE = parse_rules('* = 999999999/m').rules[0]
STEP = 2e-6


def best_ns(loop: Callable[[int], int], count: int = COUNT) -> float:
    loop(count // 10)  # warm-up
    return min(loop(count) for _ in range(REPEATS)) / count


def empty_loop(count: int) -> int:
    t = 1.7e9
    started = time.perf_counter_ns()
    for _ in range(count):
        t += STEP
    return time.perf_counter_ns() - started


def counters_loop(module, rule) -> Callable[[int], int]:
    def loop(count: int) -> int:
        hit = module.Counters().hit
        t = 1.7e9
        started = time.perf_counter_ns()
        for _ in range(count):
            hit(KEY, rule, t)
            t += STEP
        elapsed = time.perf_counter_ns() - started
        assert hit(KEY, rule, t) == 0.0
        return elapsed
    return loop


def limits_loop(strategy: str) -> Callable[[int], int] | None:
    try:
        from limits import parse
        from limits.storage import MemoryStorage
        from limits import strategies
    except ImportError:
        return None

    def loop(count: int) -> int:
        limiter = getattr(strategies, strategy)(MemoryStorage())
        item = parse('1000000 per minute')
        hit = limiter.hit
        started = time.perf_counter_ns()
        for _ in range(count):
            hit(item, 'sec_def:5', '10.0.0.1')
        return time.perf_counter_ns() - started
    return loop


def limiter_loop(module) -> Callable[[int], int]:
    allow = LimitDef('ip:1', '10.0.0.0/8 = *\n192.168.0.0/16 = *')
    sec_def = LimitDef('sec_def:5', '* = 1000000/s burst=10')
    channel = LimitDef('channel:1', '10.0.0.0/8 = 999999999/m\n* = 10/m')
    defs = [allow, sec_def, channel]

    def loop(count: int) -> int:
        check = Limiter(module.Counters()).check
        t = 1.7e9
        started = time.perf_counter_ns()
        for _ in range(count):
            check(defs, '10.0.0.1', t)
            t += STEP
        elapsed = time.perf_counter_ns() - started
        assert check(defs, '10.0.0.1', t).allowed
        return elapsed
    return loop


def in_process() -> None:
    modules = {'pure': importlib.import_module('zato.security.ratelimit.counters')}
    try:
        modules['compiled'] = importlib.import_module('zato.cy.ratelimit')
    except ImportError:
        print('zato.cy.ratelimit is not built; run: python setup.py build_ext --inplace', file=sys.stderr)

    rows: list[tuple[str, float | None, float | None]] = []
    for label, rule in (('Counters.hit, 1000000/s burst=10 (GCRA)', GCRA_RULE),
                        ('Counters.hit, 999999999/m (calendar window)', WINDOW_RULE)):
        pure = best_ns(counters_loop(modules['pure'], rule))
        compiled = best_ns(counters_loop(modules['compiled'], rule)) if 'compiled' in modules else None
        rows.append((label, compiled, pure))
    pure = best_ns(limiter_loop(modules['pure']), COUNT // 4)
    compiled = best_ns(limiter_loop(modules['compiled']), COUNT // 4) if 'compiled' in modules else None
    rows.append(('Limiter.check, 3 levels (allow-list, /s, /m)', compiled, pure))

    print(f'{"in-process check":<52} {"Cython ns":>10} {"Python ns":>10} {"speed-up":>9}')
    for label, compiled, pure in rows:
        fast = f'{compiled:>10.0f}' if compiled is not None else f'{"-":>10}'
        ratio = f'{pure / compiled:>8.1f}x' if compiled else f'{"-":>9}'
        print(f'{label:<52} {fast} {pure:>10.0f} {ratio}')
    for strategy in ('FixedWindowRateLimiter', 'MovingWindowRateLimiter'):
        loop = limits_loop(strategy)
        if loop is None:
            print(f'limits {strategy}: not installed (pip install limits)')
            break
        print(f'{"limits " + strategy + ", MemoryStorage, 1000000/min":<52} {"":>10} {best_ns(loop, COUNT // 4):>10.0f}')
    print(f'{"(loop overhead, included above)":<52} {"":>10} {best_ns(empty_loop):>10.0f}')


def exact_loop(backend, items, count: int) -> float:
    """us per check, best of 3."""
    best = float('inf')
    for _ in range(3):
        t = 1.7e9
        started = time.perf_counter_ns()
        for _ in range(count):
            ok, _ = backend.probe_and_charge_all(items, t)
            t += 0.001
        best = min(best, (time.perf_counter_ns() - started) / count / 1000)
        assert ok
    return best


def exact() -> None:
    from zato.security.ratelimit.exact import PostgresExact, RedisExact

    one = [('sec_def:5|0|10.0.0.1', parse_rules('* = 100000/s').rules[0])]
    three = one + [('channel:1|0|10.0.0.0/8', parse_rules('* = 999999999/m').rules[0]),
                   ('service:1|0|10.0.0.1', parse_rules('* = 999999999/h').rules[0])]
    print(f'\n{"exact mode, one round trip per check, loopback":<52} {"1 key us":>10} {"3 keys us":>10}')

    user = os.environ.get('ZATO_TEST_PG_USER', 'postgres')
    password = os.environ.get('ZATO_TEST_PG_PASSWORD', '')
    auth = f'{user}:{password}' if password else user
    host = os.environ.get('ZATO_TEST_PG_HOST', '127.0.0.1')
    port = os.environ.get('ZATO_TEST_PG_PORT', '5432')
    db = f'zato_rl_bench_{secrets.token_hex(4)}'
    try:
        import psycopg2
        admin = psycopg2.connect(f'postgresql://{auth}@{host}:{port}/postgres', connect_timeout=3)
    except Exception as e:
        print(f'PostgreSQL: not reachable ({e})')
    else:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE {db}')
        try:
            backend = PostgresExact(f'postgresql://{auth}@{host}:{port}/{db}', pool_size=1)
            backend.create_schema()
            print(f'{"PostgreSQL (zato_rate_limit_check)":<52} {exact_loop(backend, one, 2000):>10.0f} '
                  f'{exact_loop(backend, three, 2000):>10.0f}')
            backend.close()
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS {db} WITH (FORCE)')
            admin.close()

    try:
        import redis
        client = redis.Redis(host='127.0.0.1', port=6379, socket_connect_timeout=1)
        client.ping()
    except Exception as e:
        print(f'Redis: not used ({e})')
        return
    backend = RedisExact(client, prefix=f'zato-bench:rl:{secrets.token_hex(4)}:')
    try:
        print(f'{"Redis (Lua script, EVALSHA)":<52} {exact_loop(backend, one, 5000):>10.0f} '
              f'{exact_loop(backend, three, 5000):>10.0f}')
    finally:
        backend.clear()


def main() -> None:
    in_process()
    exact()


if __name__ == '__main__':
    main()
