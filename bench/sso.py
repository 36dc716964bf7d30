"""What SSO costs a worker: a UST verify over REST next to the hello-world GET, in the same run, and
logins per second.

    .venv/bin/python bench/sso.py                           # 5 s x 2 runs per request, ~2 minutes
    .venv/bin/python bench/sso.py --json bench/results/sso.json

One Zato server of one worker pinned to one CPU (``--server-cpu``, 0), wrk pinned to the other
(``--client-cpu``, 1), keep-alive connections to 127.0.0.1, SSO on (ZATO_COMPONENT_ENABLED_SSO):

* ``hello``: GET /hello -> {"message": "Hello, World!"} (bench/zato_services.py);
* ``verify``: POST /zato/sso/user/session {current_ust, target_ust, current_app} -> is_valid true,
  3.1's session verify, with the UST of one login made before the runs. Each verify hashes the UST,
  finds the session in the worker's cache of verified sessions (zato.sso.verify_cache; the ODB,
  SQLite here, is read once per `[session] verify_cache_seconds`) and answers in 3.1's envelope. The target: a verify costs the worker no more CPU than two hello-worlds (one
  extra hello-world);
* ``login``: POST /zato/sso/user/login with the right password, which argon2id bounds (the
  parameters are printed, from zato.security.passwords): each login verifies the hash and writes a
  session, so logins per second per worker are about 1 / (argon2 time + an insert).

As in bench/rest.py, every response is checked once before it is measured, every request gets a
warm-up, the measured runs go round-robin (hello, verify, hello, verify ...), and the worker's CPU
time per request is reported next to req/s: it is what other work on a shared machine hardly moves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rest  # noqa: E402
import servers  # noqa: E402
import wrk  # noqa: E402

SERVICES_FILE = os.path.join(servers.BENCH, 'zato_services.py')
CHANNELS = [{'name': 'bench.hello', 'url_path': '/hello', 'service': 'bench.hello', 'method': 'GET'}]
USERNAME, PASSWORD, APP = 'bench-sso', 'bench-sso-only-on-127.0.0.1-6d1f0b2c', 'CRM'


@dataclass
class Request:
    id: str
    method: str
    path: str
    body: bytes | None = None
    connections: int = 20
    runs: list[dict[str, Any]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(run[key] for run in self.runs)


def log(message: str) -> None:
    print(message, flush=True)


def argon2_parameters() -> dict[str, Any]:
    sys.path.insert(0, servers.REPO)
    from zato.security.passwords import _hasher
    return {'type': 'argon2id', 'time_cost': _hasher.time_cost, 'memory_cost_kib': _hasher.memory_cost,
            'parallelism': _hasher.parallelism, 'hash_len': _hasher.hash_len, 'salt_len': _hasher.salt_len}


def create_super_user(env_dir: str) -> None:
    subprocess.run([servers.PYTHON, '-m', 'zato.cli.main', 'sso', 'create-super-user', env_dir, USERNAME,
                    '--password-stdin'], input=PASSWORD + '\n', capture_output=True, text=True, check=True,
                   env=servers.child_env(), cwd=servers.REPO, timeout=120)


def login(base_url: str) -> str:
    status, body = servers.http_call(base_url + '/zato/sso/user/login', 'POST', json.dumps(
        {'username': USERNAME, 'password': PASSWORD, 'current_app': APP}).encode())
    if status != 200:
        raise servers.ServerError(f'login: HTTP {status}: {body[:300]!r}')
    return json.loads(body)['ust']


def check(base_url: str, request: Request) -> None:
    status, body = servers.http_call(base_url + request.path, request.method, request.body)
    got = json.loads(body) if status == 200 else None
    wanted = {'hello': lambda g: g == {'message': 'Hello, World!'},
              'verify': lambda g: g['status'] == 'ok' and g['is_valid'] is True,
              'login': lambda g: g['status'] == 'ok' and len(g['ust']) >= 43}[request.id]
    if got is None or not wanted(got):
        raise servers.ServerError(f'{request.id}: unexpected answer, HTTP {status}: {body[:300]!r}')


def measure(server: servers.Zato, request: Request, duration: float, args: argparse.Namespace) -> dict[str, Any]:
    pid = server.worker_pid()
    cpu_before, started = servers.cpu_seconds(pid), time.monotonic()
    result = wrk.run(server.base_url + request.path, duration=duration, connections=request.connections,
                     cpu=args.client_cpu, method=request.method, body=request.body, timeout_s=10)
    wall = time.monotonic() - started
    worker_cpu = servers.cpu_seconds(pid) - cpu_before
    return {**result.to_dict(), 'worker_cpu_percent': round(100 * worker_cpu / wall, 1),
            'worker_cpu_us_per_req': round(1e6 * worker_cpu / result.requests, 1) if result.requests else 0.0,
            'load_1m': round(os.getloadavg()[0], 2)}


def run(args: argparse.Namespace, work_dir: str) -> dict[str, Any]:
    # The servers started below inherit these: SSO on, and no web-admin, which nothing here needs
    os.environ.update(ZATO_COMPONENT_ENABLED_SSO='true', ZATO_WEB_ADMIN_ENABLED='false')
    server = servers.Zato(args.base_port, args.server_cpu, work_dir, os.path.join(work_dir, 'env'), pure_python=False)
    log('- preparing the environment ...')
    server.prepare(SERVICES_FILE, CHANNELS, rest.ZATO_SCHEMAS)  # zato_services.py's other services need it
    create_super_user(server.env_dir)
    try:
        log(f'- starting Zato (1 worker, compiled) on port {server.port} ...')
        server.start()
        ust = login(server.base_url)
        verify_body = json.dumps({'current_ust': ust, 'target_ust': ust, 'current_app': APP}).encode()
        login_body = json.dumps({'username': USERNAME, 'password': PASSWORD, 'current_app': APP}).encode()
        pair = [Request('hello', 'GET', '/hello', connections=args.connections),
                Request('verify', 'POST', '/zato/sso/user/session', verify_body, args.connections)]
        logins = Request('login', 'POST', '/zato/sso/user/login', login_body, args.login_connections)
        for request in [*pair, logins]:
            check(server.base_url, request)
        for request in pair:
            log(f'- warming up {request.id} ({args.warmup:.0f} s)')
            measure(server, request, args.warmup, args)
        for run_no in range(1, args.runs + 1):
            for request in pair:
                result = measure(server, request, args.duration, args)
                request.runs.append(result)
                log(f'  run {run_no}/{args.runs} {request.id:<7} {result["rps"]:>8,.0f} req/s  '
                    f'p50 {result["p50_ms"]:6.2f} ms  p99 {result["p99_ms"]:7.2f} ms  '
                    f'worker CPU {result["worker_cpu_us_per_req"]:7.1f} us/req ({result["worker_cpu_percent"]:.0f}%)'
                    f'  errors {sum(result["errors"].values())}  load {result["load_1m"]}')
        result = measure(server, logins, args.login_duration, args)
        logins.runs.append(result)
        log(f'  logins  {result["rps"]:>8,.1f} /s  p50 {result["p50_ms"]:6.1f} ms  worker CPU '
            f'{result["worker_cpu_us_per_req"] / 1000:6.1f} ms/login  errors {sum(result["errors"].values())}')
    finally:
        log('- stopping Zato')
        server.stop()
    return report(pair, logins)


def report(pair: list[Request], logins: Request) -> dict[str, Any]:
    hello, verify = pair
    hello_us, verify_us = hello.median('worker_cpu_us_per_req'), verify.median('worker_cpu_us_per_req')
    extra = (verify_us - hello_us) / hello_us
    out = {
        'argon2': argon2_parameters(),
        'hello': {'median_rps': hello.median('rps'), 'median_worker_cpu_us_per_req': hello_us, 'runs': hello.runs},
        'verify': {'median_rps': verify.median('rps'), 'median_worker_cpu_us_per_req': verify_us, 'runs': verify.runs},
        'verify_extra_hello_worlds': round(extra, 2),
        'target_met': extra <= 1.0,
        'login': {'per_second': logins.runs[0]['rps'], 'connections': logins.connections,
                  'worker_cpu_ms_per_login': round(logins.runs[0]['worker_cpu_us_per_req'] / 1000, 1),
                  'run': logins.runs[0]},
    }
    log('')
    log(f'hello  {hello.median("rps"):>8,.0f} req/s   worker CPU {hello_us:6.1f} us/req')
    log(f'verify {verify.median("rps"):>8,.0f} req/s   worker CPU {verify_us:6.1f} us/req   '
        f'= hello + {extra:.2f} hello-worlds (target: at most 1): {"met" if extra <= 1.0 else "NOT met"}')
    a = out['argon2']
    log(f'logins {out["login"]["per_second"]:>8,.1f} /s      worker CPU {out["login"]["worker_cpu_ms_per_login"]} ms/login'
        f'   argon2id t={a["time_cost"]} m={a["memory_cost_kib"]} KiB p={a["parallelism"]}')
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--duration', type=float, default=5, help='seconds per measured run of hello and verify')
    p.add_argument('--runs', type=int, default=2)
    p.add_argument('--warmup', type=float, default=2)
    p.add_argument('--connections', type=int, default=20)
    p.add_argument('--login-duration', type=float, default=5)
    p.add_argument('--login-connections', type=int, default=4)
    p.add_argument('--server-cpu', type=int, default=0)
    p.add_argument('--client-cpu', type=int, default=1)
    p.add_argument('--base-port', type=int, default=17460)
    p.add_argument('--json', help='write the results here')
    p.add_argument('--note', default='', help='a caveat to keep with the results')
    p.add_argument('--keep', action='store_true', help='keep the environment and its logs')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = tempfile.mkdtemp(prefix='zato-bench-sso-')
    try:
        out = run(args, work_dir)
    finally:
        if not args.keep:
            subprocess.run(['rm', '-rf', work_dir], check=False)
    out.update(load_1m_at_end=round(os.getloadavg()[0], 2), nproc=os.cpu_count(), note=args.note,
               args={k: v for k, v in vars(args).items() if k not in ('json', 'keep', 'note')},
               date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(out, f, indent=2)
            f.write('\n')
    return 0 if out['target_met'] else 1


if __name__ == '__main__':
    sys.exit(main())
