"""Micro-benchmark of zato.proto.http1 (pure Python) against zato.cy.http1 (Cython).

Run from the repository root after ``python setup.py build_ext --inplace``:

    .venv/bin/python bench/http1_parser.py

Each case feeds one request to a long-lived parser and calls next_event() until NEED_DATA, as the
connection loop does, and prints the best ns/request of several runs (as timeit does: on a shared
machine noise only ever adds time). Pin it to one core for steadier figures: ``taskset -c 1 ...``.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GET = (
    b'GET /api/v1/customers/12345?fields=name,email HTTP/1.1\r\n'
    b'Host: api.example.com\r\n'
    b'User-Agent: curl/8.5.0\r\n'
    b'Accept: application/json\r\n'
    b'Accept-Encoding: gzip, deflate\r\n'
    b'Connection: keep-alive\r\n'
    b'X-Request-Id: 4f1c2a9e-77b1\r\n'
    b'\r\n'
)

_BODY = bytes(range(32, 128)) * 11  # 1056 bytes of printable data
_CHUNKS = b''.join(b'%x\r\n%s\r\n' % (len(part), part) for part in (_BODY[:256], _BODY[256:512], _BODY[512:768], _BODY[768:1024]))
CHUNKED_POST = (
    b'POST /api/v1/orders HTTP/1.1\r\n'
    b'Host: api.example.com\r\n'
    b'User-Agent: python-requests/2.31\r\n'
    b'Content-Type: application/json\r\n'
    b'Accept: application/json\r\n'
    b'Transfer-Encoding: chunked\r\n'
    b'\r\n' + _CHUNKS + b'0\r\n\r\n'
)


def parse_loop(http1: ModuleType, data: bytes, count: int) -> int:
    """Parses ``data`` ``count`` times; returns the elapsed nanoseconds."""
    parser = http1.RequestParser()
    feed, next_event, need_data = parser.feed, parser.next_event, http1.NEED_DATA
    started = time.perf_counter_ns()
    for _ in range(count):
        feed(data)
        next_event()
        if next_event() is not need_data:
            raise AssertionError('one request expected')
    return time.perf_counter_ns() - started


def serialize_loop(http1: ModuleType, count: int) -> int:
    serialize = http1.serialize_response
    headers = [('Content-Type', 'application/json'), ('X-Zato-CID', 'zato4f1c2a9e77b1')]
    body = b'{"name":"Alice","email":"alice@example.com"}'
    started = time.perf_counter_ns()
    for _ in range(count):
        serialize(200, headers, body, True)
    return time.perf_counter_ns() - started


def best_ns(run, count: int, repeats: int = 7) -> float:
    run(count // 10)  # warm-up
    return min(run(count) for _ in range(repeats)) / count


def main() -> None:
    modules = {'pure': importlib.import_module('zato.proto.http1')}
    try:
        modules['compiled'] = importlib.import_module('zato.cy.http1')
    except ImportError:
        print('zato.cy.http1 is not built; run: python setup.py build_ext --inplace', file=sys.stderr)

    # Sanity: both twins read the cases the same way before anything is timed
    for module in modules.values():
        for data in (GET, CHUNKED_POST):
            parser = module.RequestParser()
            parser.feed(data)
            request = parser.next_event()
            assert request.method in ('GET', 'POST') and len(request.body) in (0, 1024)

    cases = {
        f'GET, {len(GET)} bytes, 6 headers': lambda m, n: parse_loop(m, GET, n),
        f'chunked POST, {len(CHUNKED_POST)} bytes, 1 KiB body in 4 chunks': lambda m, n: parse_loop(m, CHUNKED_POST, n),
        'serialize_response, 200 with 2 headers': serialize_loop,
    }
    count = 20_000
    print(f'{"case":<55} {"pure ns":>10} {"compiled ns":>12} {"speed-up":>9}')
    for name, case in cases.items():
        results = {label: best_ns(lambda n, m=module, c=case: c(m, n), count) for label, module in modules.items()}
        pure = results['pure']
        compiled = results.get('compiled')
        if compiled is None:
            print(f'{name:<55} {pure:>10.0f} {"-":>12} {"-":>9}')
        else:
            print(f'{name:<55} {pure:>10.0f} {compiled:>12.0f} {pure / compiled:>8.1f}x')


if __name__ == '__main__':
    main()
