"""Instructions per request through the real dispatcher, in one process, with no sockets: a number
that does not move with the machine's load, for comparing two versions of the request path.

    .venv/bin/python bench/callgrind.py                       # every request kind, ~3 minutes
    .venv/bin/python bench/callgrind.py --only order --keep   # one kind; keep the environment

A quickstart environment is prepared as bench/rest.py prepares it (the same services, channels, JSON
Schema, Basic Auth definition and rate limit), then, for each kind of request, this script runs itself
twice under ``valgrind --tool=callgrind`` in a child: a Runtime of that environment in the child's own
process (the worker's, without gunicorn), a Dispatcher over it, and the request's raw bytes fed
through the HTTP parser and dispatched ``--warm`` times and then ``n`` times, once with n = ``--small``
and once with n = ``--large``. The difference of the two runs' instruction counts divided by the
difference of n is what one request costs: start-up, warm-up and the process's exit cancel out.
Both runs use the same hash seed (PYTHONHASHSEED=0): with random ones, dictionaries' collisions
differ from run to run, and so does the count, by up to ~20% a request.

Each answer is checked (status 200 and the expected body) before anything is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rest  # noqa: E402
import servers  # noqa: E402


def raw(method: str, path: str, body: bytes = b'', headers: dict[str, str] | None = None) -> bytes:
    head = [f'{method} {path} HTTP/1.1', 'Host: 127.0.0.1']
    if body:
        head += ['Content-Type: application/json', f'Content-Length: {len(body)}']
    head += [f'{k}: {v}' for k, v in (headers or {}).items()]
    return ('\r\n'.join(head) + '\r\n\r\n').encode('latin-1') + body


# kind -> (request bytes, the JSON body expected back)
REQUESTS = {
    'get': (raw('GET', '/hello'), rest.HELLO),
    'order': (raw('POST', '/order', rest.ORDER_BODY), rest.ORDER_RESULT),
    'bare-post': (raw('POST', '/hello-post', rest.HELLO_POST_BODY), rest.HELLO),
    'guarded-post': (raw('POST', '/hello-post-guarded', rest.HELLO_POST_BODY, rest.GUARD_AUTH), rest.HELLO),
}


def child(env_dir: str, kind: str, warm: int, n: int) -> None:
    """Runs inside valgrind: the worker's runtime in this process, the request dispatched warm + n times."""
    from gevent import monkey
    monkey.patch_all()
    from zato import accel
    from zato.server.dispatcher import Dispatcher
    from zato.server.runtime import Runtime
    http1 = accel.load('zato.proto.http1')
    runtime = Runtime(env_dir, 'server1')
    runtime.start(watch_pickup=False)
    try:
        dispatcher = Dispatcher(runtime)
        limits = http1.Limits(max_request_line=8192, max_header_count=100, max_header_bytes=16384,
                              max_body=10 * 1024 * 1024)
        data, expected = REQUESTS[kind]

        def one() -> bytes:
            parser = http1.RequestParser(limits)
            parser.feed(data)
            return dispatcher.dispatch(parser.next_event(), '127.0.0.1')

        answer = one()
        head, _, body = answer.partition(b'\r\n\r\n')
        if not head.startswith(b'HTTP/1.1 200 ') or json.loads(body) != expected:
            raise SystemExit(f'{kind}: unexpected answer {answer[:300]!r}')
        for _ in range(warm):
            one()
        for _ in range(n):
            one()
    finally:
        runtime.stop()


def instructions(env_dir: str, kind: str, warm: int, n: int, out_dir: str) -> int:
    out = os.path.join(out_dir, f'callgrind.{kind}.{n}')
    cmd = ['valgrind', '--tool=callgrind', f'--callgrind-out-file={out}', sys.executable, os.path.abspath(__file__),
           '--child', env_dir, kind, str(warm), str(n)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=servers.child_env(PYTHONHASHSEED='0'))
    if done.returncode != 0:
        raise SystemExit(f'{kind}, n={n}: valgrind failed:\n{done.stderr[-3000:]}')
    found = re.search(r'Collected : (\d+)', done.stderr)
    if not found:
        raise SystemExit(f'{kind}, n={n}: no instruction count in valgrind output:\n{done.stderr[-2000:]}')
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['--child']:
        child(argv[1], argv[2], int(argv[3]), int(argv[4]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--only', help=f'comma-separated kinds: {", ".join(REQUESTS)}')
    p.add_argument('--warm', type=int, default=200, help='requests before the counted ones (default 200)')
    p.add_argument('--small', type=int, default=200)
    p.add_argument('--large', type=int, default=1200)
    p.add_argument('--port', type=int, default=17490)
    p.add_argument('--keep', action='store_true', help='keep the environment and the callgrind files')
    args = p.parse_args(argv)
    if shutil.which('valgrind') is None:
        raise SystemExit('valgrind is not installed (apt-get install valgrind)')
    kinds = args.only.split(',') if args.only else list(REQUESTS)
    unknown = [k for k in kinds if k not in REQUESTS]
    if unknown:
        raise SystemExit(f'unknown kind(s): {", ".join(unknown)}; known: {", ".join(REQUESTS)}')

    work_dir = tempfile.mkdtemp(prefix='zato-bench-callgrind-')
    env_dir = os.path.join(work_dir, 'env')
    try:
        server = servers.Zato(args.port, None, work_dir, env_dir, pure_python=False, workers=1)
        server.prepare(rest.SERVICES_FILE, rest.ZATO_CHANNELS, rest.ZATO_SCHEMAS, rest.ZATO_SECURITY,
                       rest.ZATO_RATE_LIMITS)
        print('| request | instructions per request |\n|---|--:|')
        for kind in kinds:
            small = instructions(env_dir, kind, args.warm, args.small, work_dir)
            large = instructions(env_dir, kind, args.warm, args.large, work_dir)
            print(f'| {kind} | {(large - small) / (args.large - args.small):,.0f} |', flush=True)
    finally:
        if args.keep:
            print(f'kept: {work_dir}', file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
