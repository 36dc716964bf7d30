"""Zato's REST channels against its Python peers, one worker process each, in one run.

    .venv/bin/python bench/rest.py                 # 10 s x 3 runs per configuration, ~5 minutes
    .venv/bin/python bench/rest.py --quick         # 3 s x 1 run, for a quick look
    .venv/bin/python bench/rest.py --json /tmp/rest.json --only zato-get,starlette-get

Each server runs one worker process pinned to one CPU (``--server-cpu``, default 0) and wrk runs
pinned to another (``--client-cpu``, default 1), over keep-alive connections to 127.0.0.1:

* GET of a JSON hello world: Zato with the compiled HTTP parser and with its pure-Python twin
  (``ZATO_PURE_PYTHON=1``), gunicorn ``-k gevent`` + Falcon, uvicorn (uvloop, httptools) +
  Starlette, FastAPI on the same uvicorn, and the ceiling of Zato's design: a bare hand-parsed
  gevent loop in a gunicorn worker (``peers/bare_loop.py``), of which Zato's share is reported;
* POST of a ~190-byte JSON body with 10 typed fields: FastAPI with a pydantic model against Zato
  with SimpleIO declaring the same fields (both parse, validate and convert the body and check
  the same 5-field response);
* what Zato's request-path guards cost: the same hello-world POST (``{"name": "World"}``) to a
  plain channel and to one with HTTP Basic Auth, a rate-limit definition and a service that
  declares a JSON Schema, so that every request is authenticated, counted and validated.

Every response is checked once before it is measured. Each configuration is warmed up, then
the measured runs go round-robin over all configurations (run 1 of each, then run 2 of each ...)
so that a burst of unrelated load on a shared machine spreads over all of them instead of
landing on one. The table gives the median of the runs and, per group, how many times Zato's
throughput is that of each peer (for the guards: the guarded channel's share of the bare one's),
and the worker's CPU time per request, which other work on the machine hardly moves.
bench/README.md has the figures and how to read them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers  # noqa: E402
import wrk  # noqa: E402

HELLO = {'message': 'Hello, World!'}
ORDER = {'customer': 'Alice Smith', 'email': 'alice@example.com', 'sku': 'SKU-10042', 'quantity': 3,
         'price': 19.99, 'currency': 'EUR', 'express': True, 'delivery_date': '2026-12-01', 'country': 'DE',
         'postcode': '10115'}
ORDER_BODY = json.dumps(ORDER, separators=(',', ':')).encode()
ORDER_RESULT = {'ok': True, 'customer': 'Alice Smith', 'total': 59.97, 'currency': 'EUR', 'express': True}

# The guards: the same body, and the same service code, to a plain channel and to a guarded one
HELLO_POST_BODY = b'{"name": "World"}'
HELLO_SCHEMA = {'$schema': 'http://json-schema.org/draft-07/schema#', 'type': 'object', 'required': ['name'],
                'properties': {'name': {'type': 'string'}}}
GUARD_USER, GUARD_PASSWORD = 'bench', 'bench-guards-only-on-127.0.0.1-0f3c9a51e7d24b68'
GUARD_AUTH = {'Authorization': 'Basic ' + base64.b64encode(f'{GUARD_USER}:{GUARD_PASSWORD}'.encode()).decode()}
GUARD_LIMIT, GUARD_RULES = 'bench-limit', '* = 100000000/m'  # counted on every request, never refusing

SERVICES_FILE = os.path.join(servers.BENCH, 'zato_services.py')
ZATO_SCHEMAS = {'hello.json': json.dumps(HELLO_SCHEMA, indent=2)}
ZATO_SECURITY = [{'name': 'bench-basic', 'kind': 'basic_auth', 'username': GUARD_USER, 'password': GUARD_PASSWORD}]
ZATO_RATE_LIMITS = [{'name': GUARD_LIMIT, 'rules': GUARD_RULES, 'mode': 'approximate'}]
ZATO_CHANNELS = [
    {'name': 'bench.hello', 'url_path': '/hello', 'service': 'bench.hello', 'method': 'GET'},
    {'name': 'bench.order', 'url_path': '/order', 'service': 'bench.order', 'method': 'POST'},
    {'name': 'bench.hello-post', 'url_path': '/hello-post', 'service': 'bench.hello-post', 'method': 'POST'},
    {'name': 'bench.hello-post-guarded', 'url_path': '/hello-post-guarded', 'service': 'bench.hello-post-guarded',
     'method': 'POST', 'security': 'bench-basic', 'rate_limit': GUARD_LIMIT},
]

GET_GROUP = 'GET /hello, JSON hello world'
POST_GROUP = f'POST /order, {len(ORDER_BODY)}-byte JSON body, 10 fields validated'
GUARDS_GROUP = (f'POST /hello-post, {len(HELLO_POST_BODY)}-byte JSON body, Zato (compiled parser) without and '
                'with the request-path guards')

# (measured, against, wanted, what): the first's median req/s at least `wanted` times the second's, per worker
TARGETS = [
    ('zato-get', 'starlette-get', 1.5, ''),
    ('zato-py-get', 'starlette-get', 1.5, ''),
    ('zato-get', 'falcon-get', 3.0, ''),
    ('zato-py-get', 'falcon-get', 3.0, ''),
    ('zato-get', 'bare-get', 0.8, "a share of the ceiling of Zato's design, the bare hand-parsed gevent loop"),
    ('zato-get', 'bare-yield-get', 0.8, 'the same loop yielding after each batch, as Zato does'),
    ('zato-post', 'fastapi-post', 5.0, ''),
    ('zato-guarded-post', 'zato-bare-post', 0.9, 'Basic Auth, rate limit and JSON Schema together cost at most 10%'),
]


@dataclass
class Refusal:
    """A request a guarded configuration must refuse, checked before it is measured."""

    what: str
    status: int
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    """One thing measured: a request to one server."""

    id: str
    label: str
    server: str
    group: str
    method: str
    path: str
    expected: Any
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    rate_limit: str = ''  # the channel's rate-limit definition, checked to refuse when tightened
    runs: list[dict[str, Any]] = field(default_factory=list)
    failure: str = ''


def all_configs() -> list[Config]:
    get, post, guards = GET_GROUP, POST_GROUP, GUARDS_GROUP
    guarded_refusals = [
        Refusal('no credentials', 401, HELLO_POST_BODY),
        Refusal('a wrong password', 401, HELLO_POST_BODY,
                {'Authorization': 'Basic ' + base64.b64encode(f'{GUARD_USER}:wrong-password'.encode()).decode()}),
        Refusal('a body without `name`', 400, b'{"nome": "World"}', GUARD_AUTH),
        Refusal('a `name` that is not a string', 400, b'{"name": 1}', GUARD_AUTH),
    ]
    return [
        Config('zato-get', 'Zato (compiled parser)', 'zato', get, 'GET', '/hello', HELLO),
        Config('zato-py-get', 'Zato (pure Python, ZATO_PURE_PYTHON=1)', 'zato-pure-python', get, 'GET', '/hello',
               HELLO),
        Config('falcon-get', 'gunicorn -k gevent + Falcon', 'gunicorn-falcon', get, 'GET', '/hello', HELLO),
        Config('starlette-get', 'uvicorn (uvloop, httptools) + Starlette', 'uvicorn-starlette', get, 'GET', '/hello',
               HELLO),
        Config('fastapi-get', 'FastAPI on uvicorn', 'uvicorn-fastapi', get, 'GET', '/hello', HELLO),
        Config('bare-get', 'bare hand-parsed gevent loop in a gunicorn worker (the ceiling)', 'gunicorn-bare-loop',
               get, 'GET', '/hello', HELLO),
        Config('bare-yield-get', 'the same loop, gevent.sleep(0) after each batch as in Zato', 'gunicorn-bare-loop-yield',
               get, 'GET', '/hello', HELLO),
        Config('zato-post', 'Zato + SimpleIO (compiled parser)', 'zato', post, 'POST', '/order', ORDER_RESULT,
               ORDER_BODY),
        Config('zato-py-post', 'Zato + SimpleIO (pure Python)', 'zato-pure-python', post, 'POST', '/order',
               ORDER_RESULT, ORDER_BODY),
        Config('fastapi-post', 'FastAPI + pydantic model', 'uvicorn-fastapi', post, 'POST', '/order', ORDER_RESULT,
               ORDER_BODY),
        Config('zato-bare-post', 'bare: no security, no rate limit, no schema', 'zato', guards, 'POST', '/hello-post',
               HELLO, HELLO_POST_BODY),
        Config('zato-guarded-post', f'guarded: Basic Auth + rate limit ({GUARD_RULES}) + JSON Schema', 'zato',
               guards, 'POST', '/hello-post-guarded', HELLO, HELLO_POST_BODY, GUARD_AUTH, guarded_refusals,
               GUARD_LIMIT),
    ]


_STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = int(time.monotonic() - _STARTED)
    print(f'[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}', flush=True)


# ################################################################################################
# The machine

def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def proc_stat() -> dict[str, list[int]]:
    """Jiffies per CPU line of /proc/stat ('cpu' is the sum)."""
    out = {}
    with open('/proc/stat', encoding='ascii') as f:
        for line in f:
            if line.startswith('cpu'):
                name, *values = line.split()
                out[name] = [int(v) for v in values]
    return out


def busy_and_steal(before: dict[str, list[int]], after: dict[str, list[int]]) -> tuple[float, float]:
    """CPU seconds spent by anything (user, nice, system, irq, softirq) and stolen by the hypervisor."""
    b, a = before['cpu'], after['cpu']
    d = [x - y for x, y in zip(a, b, strict=True)]
    tick = os.sysconf('SC_CLK_TCK')
    busy = d[0] + d[1] + d[2] + d[5] + d[6]
    steal = d[7] if len(d) > 7 else 0
    return busy / tick, steal / tick


def wait_for_quiet_machine(max_load: float, wait_s: float) -> float:
    """Waits up to ``wait_s`` for the 1-minute load average to drop below ``max_load``."""
    deadline = time.monotonic() + wait_s
    while True:
        load = os.getloadavg()[0]
        if load <= max_load or time.monotonic() >= deadline:
            if load > max_load:
                log(f'! load average still {load:.2f} (> {max_load}) after {wait_s:.0f} s; measuring anyway')
            return load
        log(f'  load average {load:.2f} > {max_load}; waiting for the machine to calm down ...')
        time.sleep(min(20.0, max(1.0, deadline - time.monotonic())))


# ################################################################################################
# Running

class Bench:
    def __init__(self, args: argparse.Namespace, configs: list[Config], work_dir: str) -> None:
        self.args = args
        self.configs = configs
        self.work_dir = work_dir
        self.servers: dict[str, servers.Server] = {}
        self.memory: dict[str, dict[str, Any]] = {}
        self.wrk_procs: list[subprocess.Popen] = []

    def make_servers(self) -> None:
        a = self.args
        needed = {c.server for c in self.configs}
        ports = iter(range(a.base_port, a.base_port + 10))
        made: dict[str, servers.Server] = {
            'zato': servers.Zato(next(ports), a.server_cpu, self.work_dir, os.path.join(self.work_dir, 'env-compiled'),
                                 pure_python=False),
            'zato-pure-python': servers.Zato(next(ports), a.server_cpu, self.work_dir,
                                             os.path.join(self.work_dir, 'env-pure-python'), pure_python=True),
            'gunicorn-falcon': servers.GunicornFalcon(next(ports), a.server_cpu, self.work_dir),
            'uvicorn-starlette': servers.UvicornStarlette(next(ports), a.server_cpu, self.work_dir),
            'uvicorn-fastapi': servers.UvicornFastAPI(next(ports), a.server_cpu, self.work_dir),
            'gunicorn-bare-loop': servers.GunicornBareLoop(next(ports), a.server_cpu, self.work_dir),
            'gunicorn-bare-loop-yield': servers.GunicornBareLoop(next(ports), a.server_cpu, self.work_dir, yields=True),
        }
        self.servers = {k: v for k, v in made.items() if k in needed}

    def start_servers(self) -> None:
        for name, server in self.servers.items():
            if isinstance(server, servers.Zato):
                log(f'- preparing the environment of {name} ...')
                prepared = server.prepare(SERVICES_FILE, ZATO_CHANNELS, ZATO_SCHEMAS, ZATO_SECURITY, ZATO_RATE_LIMITS)
                log('  ' + prepared.replace('\n', '\n  '))
            log(f'- starting {name} on port {server.port} ...')
            server.start()
            pid = server.worker_pid()
            self.memory[name] = {'worker_pid': pid, 'idle': servers.memory_kib(pid), **server.notes}

    def call(self, config: Config, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request of a configuration, with its own body and headers unless others are given."""
        url = self.servers[config.server].base_url + config.path
        try:
            return servers.http_call(url, config.method, config.body if body is None else body,
                                     headers=config.headers if headers is None else headers)
        except OSError as e:
            return 0, str(e).encode()

    def verify(self, config: Config) -> None:
        for _attempt in range(20):
            status, body = self.call(config)
            if status == 200:
                break
            time.sleep(0.25)  # a channel just created may take a moment to reach the worker
        try:
            got = json.loads(body) if status == 200 else None
        except ValueError:
            got = None
        if status != 200 or got != config.expected:
            config.failure = f'HTTP {status}: {body[:300].decode("utf-8", "replace")}'
        # The guards must really be on: each of these must be refused, and with the right status
        for refusal in config.refusals:
            if config.failure:
                break
            status, body = self.call(config, refusal.body, refusal.headers)
            if status != refusal.status:
                config.failure = (f'{refusal.what}: HTTP {status} instead of {refusal.status}: '
                                  f'{body[:200].decode("utf-8", "replace")}')
        if config.rate_limit and not config.failure:
            try:
                config.failure = self.verify_rate_limit(config)
            except Exception as e:  # noqa: BLE001 - the admin API said no; this configuration is not measured
                config.failure = f'rate limit `{config.rate_limit}`: {e}'
        if config.failure:
            log(f'! {config.id}: unexpected response, not measured: {config.failure}')
        elif config.refusals or config.rate_limit:
            what = [r.what for r in config.refusals] + (['a rate limit of 1/m'] if config.rate_limit else [])
            log(f'- {config.id}: refused as it should be: {", ".join(what)}')

    def verify_rate_limit(self, config: Config) -> str:
        """Tightens the channel's rate-limit definition to one request a minute, expects a 429, and
        puts the rules back (which starts the counters afresh). An empty string if all went well."""
        server = self.servers[config.server]
        assert isinstance(server, servers.Zato)
        client = server.admin()
        limit = next((x for x in client.call('GET', '/zato/admin/rate-limits') if x['name'] == config.rate_limit), None)
        if limit is None:
            return f'no rate-limit definition `{config.rate_limit}`'
        path = f'/zato/admin/rate-limits/{limit["id"]}'
        status = 0
        try:
            client.call('PUT', path, {'rules': '* = 1/m'})
            for _attempt in range(40):  # until the change reaches the worker
                status, _ = self.call(config)
                if status == 429:
                    break
                time.sleep(0.1)
        finally:
            client.call('PUT', path, {'rules': limit['rules']})
        if status != 429:
            return f'rate limit `{config.rate_limit}` tightened to 1/m: HTTP {status} instead of 429'
        for _attempt in range(40):
            status, body = self.call(config)
            if status == 200:
                return ''
            time.sleep(0.1)
        return f'rate limit `{config.rate_limit}` put back to `{limit["rules"]}`: still HTTP {status}'

    def wrk_run(self, config: Config, duration: float) -> tuple[wrk.WrkResult, dict[str, float]]:
        a = self.args
        server = self.servers[config.server]
        pid = server.worker_pid()
        cpu_before, stat_before, started = servers.cpu_seconds(pid), proc_stat(), time.monotonic()
        result = wrk.run(server.base_url + config.path, duration=duration, connections=a.connections,
                         threads=a.threads, cpu=a.client_cpu, method=config.method, body=config.body,
                         headers=config.headers or None, procs=self.wrk_procs)
        wall = time.monotonic() - started
        worker_cpu = servers.cpu_seconds(pid) - cpu_before
        busy, steal = busy_and_steal(stat_before, proc_stat())
        # What else ran on the machine meanwhile: all busy CPU time minus the worker and wrk.
        # Loopback networking done in softirq context is counted here too, so it is never zero.
        other = max(0.0, busy - worker_cpu - result.cpu_s)
        # CPU time per request does not drop when somebody else's work takes the server's CPU away
        usage = {'worker_cpu_percent': round(100 * worker_cpu / wall, 1),
                 'worker_cpu_us_per_req': round(1e6 * worker_cpu / result.requests, 1) if result.requests else 0.0,
                 'other_cpu_percent': round(100 * other / wall, 1),
                 'steal_percent': round(100 * steal / wall, 1),
                 'load_1m': round(os.getloadavg()[0], 2)}
        return result, usage

    def run(self) -> None:
        a = self.args
        self.make_servers()
        self.start_servers()
        for config in self.configs:
            self.verify(config)
        live = [c for c in self.configs if not c.failure]

        if a.warmup > 0:
            for config in live:
                log(f'- warming up {config.id} ({a.warmup:.0f} s)')
                self.wrk_run(config, a.warmup)

        for run_no in range(1, a.runs + 1):
            for config in live:
                result, usage = self.wrk_run(config, a.duration)
                config.runs.append({**result.to_dict(), **usage})
                errs = result.errors + result.errors_timeout
                log(f'  run {run_no}/{a.runs} {config.id:<17} {result.rps:>9,.0f} req/s  p50 {result.p50_ms:6.2f} ms'
                    f'  p99 {result.p99_ms:7.2f} ms  errors {errs}  worker CPU {usage["worker_cpu_percent"]:.0f}%'
                    f'  wrk CPU {result.cpu_percent:.0f}%  other CPU {usage["other_cpu_percent"]:.0f}%')

        for name, server in self.servers.items():
            self.memory[name]['after'] = servers.memory_kib(server.worker_pid())

    def stop(self) -> None:
        for proc in list(self.wrk_procs):
            servers.kill_group(proc.pid, timeout=2)
        for name, server in self.servers.items():
            log(f'- stopping {name}')
            try:
                server.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                print(f'! stopping {name} failed: {e}', file=sys.stderr)


# ################################################################################################
# Results

def summarize(config: Config) -> dict[str, Any]:
    runs = config.runs
    if not runs:
        return {}
    med = statistics.median
    return {
        'rps': med(r['rps'] for r in runs),
        'p50_ms': med(r['p50_ms'] for r in runs),
        'p99_ms': med(r['p99_ms'] for r in runs),
        'rps_min': min(r['rps'] for r in runs),
        'rps_max': max(r['rps'] for r in runs),
        'errors': sum(sum(v for k, v in r['errors'].items() if k != 'timeout') for r in runs),
        'timeouts': sum(r['errors']['timeout'] for r in runs),
        'worker_cpu_percent': med(r['worker_cpu_percent'] for r in runs),
        # Not in results saved before it was measured
        'worker_cpu_us_per_req': med(r['worker_cpu_us_per_req'] for r in runs) if 'worker_cpu_us_per_req' in runs[0]
        else None,
        'other_cpu_percent': med(r['other_cpu_percent'] for r in runs),
    }


def zato_reference(configs: list[Config], group: str) -> Config | None:
    return next((c for c in configs if c.group == group and c.server == 'zato' and c.runs), None)


def table(configs: list[Config], memory: dict[str, dict[str, Any]]) -> str:
    lines = []
    for group in dict.fromkeys(c.group for c in configs):
        ref = zato_reference(configs, group)
        ref_sum = summarize(ref) if ref else {}
        ref_rps, ref_cpu = ref_sum.get('rps'), ref_sum.get('worker_cpu_us_per_req')
        # Zato against its peers: how many times faster Zato is; the guards: what is left of the bare req/s.
        # The same in worker CPU per request, which other work on a shared machine hardly moves.
        guards = group == GUARDS_GROUP
        lines += ['', f'**{group}**', '',
                  f'| {"channel" if guards else "server"} | req/s (min–max) | p50 ms | p99 ms | errors / timeouts | '
                  f'{"this ÷ bare" if guards else "Zato ÷ this"} | the same by CPU µs/req | worker CPU | '
                  'worker CPU µs/req | other CPU | worker RSS MiB (idle → after) | worker PSS MiB (idle → after) |',
                  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|']
        for c in (c for c in configs if c.group == group):
            mem = memory.get(c.server, {})
            rss = pss = '-'
            if 'idle' in mem:
                rss, pss = (f'{mem["idle"][key] / 1024:.0f}' if key in mem['idle'] else '-' for key in ('VmRSS', 'Pss'))
                if 'after' in mem:
                    rss += f' → {mem["after"]["VmRSS"] / 1024:.0f}'
                    pss += f' → {mem["after"]["Pss"] / 1024:.0f}' if 'Pss' in mem['after'] else ''
            if not c.runs:
                reason = c.failure or 'not measured'
                lines.append(f'| {c.label} | failed: {reason[:120]} | | | | | | | | | {rss} | {pss} |')
                continue
            s = summarize(c)
            ratio = cpu_ratio = '-'
            if ref_rps and s['rps']:
                ratio = f'{(s["rps"] / ref_rps if guards else ref_rps / s["rps"]):.2f}x'
            mine = s['worker_cpu_us_per_req']
            if ref_cpu and mine:
                cpu_ratio = f'{(ref_cpu / mine if guards else mine / ref_cpu):.2f}x'
            spread = f' ({s["rps_min"]:,.0f}–{s["rps_max"]:,.0f})' if len(c.runs) > 1 else ''
            per_req = '-' if mine is None else f'{mine:.1f}'
            lines.append(f'| {c.label} | {s["rps"]:,.0f}{spread} | {s["p50_ms"]:.2f} | {s["p99_ms"]:.2f} | '
                         f'{s["errors"]} / {s["timeouts"]} | {ratio} | {cpu_ratio} | {s["worker_cpu_percent"]:.0f}% | '
                         f'{per_req} | {s["other_cpu_percent"]:.0f}% | {rss} | {pss} |')
    return '\n'.join(lines)


def ceiling(configs: list[Config]) -> dict[str, Any]:
    """Zato's hello GET as a share of each bare gevent loop's, by req/s and by worker CPU per request."""
    by_id = {c.id: c for c in configs}
    zato = by_id.get('zato-get')
    out: dict[str, Any] = {}
    for bare_id in ('bare-get', 'bare-yield-get'):
        bare = by_id.get(bare_id)
        if zato is None or bare is None or not zato.runs or not bare.runs:
            continue
        zs, bs = summarize(zato), summarize(bare)
        one = {'zato_rps': zs['rps'], 'bare_rps': bs['rps'], 'share_by_rps': round(zs['rps'] / bs['rps'], 3)}
        if zs['worker_cpu_us_per_req'] and bs['worker_cpu_us_per_req']:
            one.update(zato_cpu_us_per_req=zs['worker_cpu_us_per_req'], bare_cpu_us_per_req=bs['worker_cpu_us_per_req'],
                       share_by_cpu=round(bs['worker_cpu_us_per_req'] / zs['worker_cpu_us_per_req'], 3))
        out[bare_id] = one
    return out


def targets(configs: list[Config]) -> list[dict[str, Any]]:
    by_id = {c.id: c for c in configs}
    out = []
    for zato_id, peer_id, wanted, what in TARGETS:
        zato, peer = by_id.get(zato_id), by_id.get(peer_id)
        if zato is None or peer is None or not zato.runs or not peer.runs:
            continue
        zs, ps = summarize(zato), summarize(peer)
        ratio = zs['rps'] / ps['rps']
        t = {'zato': zato_id, 'peer': peer_id, 'wanted': wanted, 'ratio': round(ratio, 2), 'met': ratio >= wanted}
        if what:
            t['what'] = what
        if zs['worker_cpu_us_per_req'] and ps['worker_cpu_us_per_req']:
            # The same comparison in worker CPU per request, which other work on the machine hardly moves
            t['cpu_us_per_req'] = [zs['worker_cpu_us_per_req'], ps['worker_cpu_us_per_req']]
            t['cpu_ratio'] = round(ps['worker_cpu_us_per_req'] / zs['worker_cpu_us_per_req'], 2)
        out.append(t)
    return out


def target_line(t: dict[str, Any]) -> str:
    what = f' ({t["what"]})' if t.get('what') else ''
    line = f'target {t["zato"]} >= {t["wanted"]}x {t["peer"]}{what}: {t["ratio"]:.2f}x -> {"met" if t["met"] else "MISSED"}'
    if 'cpu_ratio' in t:
        mine, theirs = t['cpu_us_per_req']
        line += f' (in worker CPU per request: {theirs:.1f} / {mine:.1f} µs = {t["cpu_ratio"]:.2f}x)'
    return line


def machine_info(load_before: float) -> dict[str, Any]:
    return {'nproc': os.cpu_count(), 'cpu_model': cpu_model(), 'kernel': platform.release(),
            'python': platform.python_version(), 'load_1m_before': round(load_before, 2),
            'load_after': [round(x, 2) for x in os.getloadavg()]}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in ('gunicorn', 'gevent', 'falcon', 'uvicorn', 'uvloop', 'httptools', 'starlette', 'fastapi',
                 'pydantic', 'orjson'):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = 'not installed'
    try:
        out['wrk'] = subprocess.run(['wrk', '-v'], capture_output=True, text=True, check=False).stdout.split()[1]
    except (OSError, IndexError):
        out['wrk'] = 'unknown'
    return out


# ################################################################################################

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ids = [c.id for c in all_configs()]
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--duration', type=float, default=10.0, help='seconds per measured run (default 10)')
    p.add_argument('--connections', type=int, default=50, help='keep-alive connections (default 50)')
    p.add_argument('--runs', type=int, default=3, help='measured runs per configuration; the median is reported')
    p.add_argument('--warmup', type=float, default=3.0, help='seconds of warm-up per configuration (default 3)')
    p.add_argument('--threads', type=int, default=1, help='wrk threads (default 1: wrk has one CPU)')
    p.add_argument('--quick', action='store_true', help='3 s, one run, 1 s warm-up, no waiting for a quiet machine')
    p.add_argument('--only', default='', help=f'comma-separated subset of: {", ".join(ids)}')
    p.add_argument('--json', metavar='FILE', help='also save the results as JSON')
    p.add_argument('--server-cpu', type=int, default=0)
    p.add_argument('--client-cpu', type=int, default=1)
    p.add_argument('--base-port', type=int, default=17410, help='first of the 7 ports used (default 17410)')
    p.add_argument('--max-load', type=float, default=None,
                   help='wait until the 1-minute load average is below this (default 0.5; 0 disables; '
                        '--quick disables it unless given)')
    p.add_argument('--load-wait', type=float, default=600, help='longest wait for --max-load, seconds')
    p.add_argument('--keep', action='store_true', help='keep the work directory (logs, Zato environments)')
    p.add_argument('--show', metavar='FILE', help='only print the table of results saved earlier with --json')
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.runs, args.warmup = 3.0, 1, 1.0
    if args.max_load is None:
        args.max_load = 0.0 if args.quick else 0.5
    wanted = [x for x in args.only.split(',') if x]
    unknown = set(wanted) - set(ids)
    if unknown:
        p.error(f'--only: unknown {", ".join(sorted(unknown))}; choose from {", ".join(ids)}')
    args.only = wanted
    if args.duration < 1 or args.runs < 1 or args.connections < 1:
        p.error('--duration, --runs and --connections must be at least 1')
    return args


def check_tools(args: argparse.Namespace) -> None:
    for tool in ('wrk', 'taskset'):
        if shutil.which(tool) is None:
            sys.exit(f'rest.py: `{tool}` is not installed (apt-get install -y {"wrk" if tool == "wrk" else "util-linux"})')
    ncpu = os.cpu_count() or 1
    for name in ('server_cpu', 'client_cpu'):
        if getattr(args, name) >= ncpu:
            sys.exit(f'rest.py: --{name.replace("_", "-")} {getattr(args, name)} but this machine has {ncpu} CPUs')
    if args.server_cpu == args.client_cpu:
        log('! the server and wrk share a CPU; the figures will be lower and noisier')


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def show(path: str) -> int:
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    configs = [Config(r['id'], r['label'], r['server'], r['group'], '', '', None, runs=r['runs'], failure=r['failure'])
               for r in data['results']]
    m = data['machine']
    print(f'{data["when"]}: {m["cpu_model"]}, {m["nproc"]} CPUs, load average {m["load_1m_before"]} before the run')
    print(table(configs, data['workers']))
    print()
    for t in targets(configs):
        print(target_line(t))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        return show(args.show)
    check_tools(args)
    configs = [c for c in all_configs() if not args.only or c.id in args.only]

    load = os.getloadavg()[0]
    if args.max_load > 0:
        load = wait_for_quiet_machine(args.max_load, args.load_wait)
    print(f'{cpu_model()}, {os.cpu_count()} CPUs, load average {load:.2f}; server on CPU {args.server_cpu}, '
          f'wrk on CPU {args.client_cpu}; {args.connections} connections, {args.duration:.0f} s x {args.runs} runs',
          flush=True)

    work_dir = tempfile.mkdtemp(prefix='zato-bench-rest-')
    bench = Bench(args, configs, work_dir)
    # Both stop the run and go through the clean-up below; SIGINT too, because a shell starts
    # background jobs with it ignored
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    ok = failed = False
    try:
        bench.run()
        ok = True
    except KeyboardInterrupt:
        print('\ninterrupted; stopping everything', file=sys.stderr)
    except (servers.ServerError, wrk.WrkError) as e:
        failed = True
        print(f'rest.py: error: {e}', file=sys.stderr)
    except BaseException:
        failed = True
        raise
    finally:
        # A second Ctrl-C or a SIGTERM must not cut the clean-up short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            bench.stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if args.keep or failed:
            print(f'work directory kept (logs, Zato environments): {work_dir}', file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    if not ok:
        return 1

    print(table(configs, bench.memory))
    checked = targets(configs)
    if checked:
        print()
    for t in checked:
        print(target_line(t))

    if args.json:
        data = {
            'when': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
            'settings': {'duration_s': args.duration, 'connections': args.connections, 'runs': args.runs,
                         'warmup_s': args.warmup, 'wrk_threads': args.threads, 'server_cpu': args.server_cpu,
                         'client_cpu': args.client_cpu, 'post_body_bytes': len(ORDER_BODY),
                         'hello_post_body_bytes': len(HELLO_POST_BODY), 'guard_rules': GUARD_RULES},
            'machine': machine_info(load),
            'versions': versions(),
            'results': [{'id': c.id, 'label': c.label, 'server': c.server, 'group': c.group,
                         'failure': c.failure, 'median': summarize(c), 'runs': c.runs} for c in configs],
            'workers': bench.memory,
            'targets': checked,
            # Zato's hello GET as a share of the ceiling of its design (the bare gevent loop)
            'ceiling': ceiling(configs),
        }
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=2)
        print(f'\nresults saved to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
