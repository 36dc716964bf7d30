"""Micro-benchmark of service statistics on the request path: ns per recorded invocation.

Run from the repository root (in-process, about 20 s; pin it for steadier figures):

    taskset -c 1 .venv/bin/python bench/stats.py

What is measured, per call, best of several runs (noise only ever adds time):

* ``ServiceStats.record`` of a service already called in the current minute (the common case),
  with a 200 and with a 500 status, and of an internal service (not recorded);
* the two ``time.perf_counter`` calls the Invoker makes around an invocation;
* ``Invoker.run`` of a service whose ``handle`` does nothing, with statistics and without
  (``Invoker(..., stats=None)``): the difference is everything statistics add to an invocation;
* the flusher's side, once per flush interval: ``take`` + ``mark_sent`` of 100 services' rows.

The loop's own overhead is printed on its own line; the in-process figures include it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zato.server.stats import ServiceStats  # noqa: E402
from zato.server.store import ServiceStore  # noqa: E402
from zato.service.channel import INVOKE_CHANNEL  # noqa: E402
from zato.service.invoker import Invoker  # noqa: E402
from zato.service.reqresp import Request  # noqa: E402

COUNT = 500_000
REPEATS = 7

MODULE = '''
from zato.server.service import Service

class Nothing(Service):
    def handle(self):
        pass
'''


def best_ns(loop: Callable[[int], int], count: int = COUNT) -> float:
    loop(count // 10)  # warm-up
    return min(loop(count) for _ in range(REPEATS)) / count


def empty_loop(count: int) -> int:
    started = time.perf_counter_ns()
    for _ in range(count):
        pass
    return time.perf_counter_ns() - started


def record_loop(name: str, status: int) -> Callable[[int], int]:
    def loop(count: int) -> int:
        stats = ServiceStats()
        record = stats.record
        t = time.perf_counter()
        record(name, t, t, status)  # the minute's row exists from here on, as for a busy service
        started = time.perf_counter_ns()
        for _ in range(count):
            record(name, t, t + 0.0012, status)
        return time.perf_counter_ns() - started
    return loop


def clock_loop(count: int) -> int:
    perf = time.perf_counter
    started = time.perf_counter_ns()
    for _ in range(count):
        perf()
        perf()
    return time.perf_counter_ns() - started


def invoker_loop(with_stats: bool) -> Callable[[int], int]:
    store = ServiceStore()
    store.deploy('bench_stats.py', MODULE)
    cls = store.get('bench-stats.nothing')

    def loop(count: int) -> int:
        runtime = SimpleNamespace()
        run = Invoker(store, runtime, ServiceStats() if with_stats else None).run
        request = Request()
        started = time.perf_counter_ns()
        for _ in range(count):
            run(cls, 'cid', INVOKE_CHANNEL, request)
        return time.perf_counter_ns() - started
    return loop


def flush_side(services: int = 100) -> float:
    """us for take + mark_sent with `services` rows changed since the last flush."""
    stats = ServiceStats()
    names = [f'bench.service-{i}' for i in range(services)]
    best = float('inf')
    for _ in range(REPEATS):
        t = time.perf_counter()
        for name in names:
            stats.record(name, t, t + 0.001, 200)
        started = time.perf_counter_ns()
        stats.mark_sent(stats.take())
        best = min(best, (time.perf_counter_ns() - started) / 1000)
    return best


def main() -> None:
    rows = [
        ('ServiceStats.record, 200, row of this minute exists', best_ns(record_loop('crm.get-customer', 200))),
        ('ServiceStats.record, 500 (an error)', best_ns(record_loop('crm.get-customer', 500))),
        ('ServiceStats.record, internal service (skipped)', best_ns(record_loop('zato.ping', 200))),
        ('two time.perf_counter() calls (the Invoker makes them)', best_ns(clock_loop)),
    ]
    without = best_ns(invoker_loop(False), COUNT // 5)
    with_stats = best_ns(invoker_loop(True), COUNT // 5)
    rows += [('Invoker.run, empty handle, without statistics', without),
             ('Invoker.run, empty handle, with statistics', with_stats),
             ('  what statistics add to one invocation', with_stats - without)]
    print(f'{"per call":<58} {"ns":>8}')
    for label, ns in rows:
        print(f'{label:<58} {ns:>8.0f}')
    print(f'{"(loop overhead, included above)":<58} {best_ns(empty_loop):>8.0f}')
    print(f'\n{"once per flush: take + mark_sent of 100 changed rows":<58} {flush_side():>6.0f} us')


if __name__ == '__main__':
    main()
