"""Differential test: our GCRA against Debian's nginx ``limit_req ... burst=B nodelay``.

One real-time run (about 5 s, the only test here that sleeps) sends two generated request schedules
to nginx on loopback, one request at a time on a keep-alive connection, and records for each request
when it was sent, when its answer arrived, and whether nginx said 200 or 429. Both twins then replay
the same timestamps with an injected clock.

Tolerance: nginx decides at its own cached clock reading, in whole milliseconds, somewhere between
our send (less 1 ms of truncation) and our receipt of the answer. So each request has a window of
possible decision times, and two models bracket nginx: a strict one that charges accepted requests
at the end of their window and decides at the start, and a permissive one that does the opposite
(GCRA is monotone in both). Where they agree, nginx must agree with them; where they do not, the
request fell on a boundary within that window (a few ms) and nginx's answer is taken as it is. Both
models follow nginx's answers, so one boundary case does not cascade. The test requires at most 3
boundary cases in 40 requests; typically there are none.

Note for whoever writes the nginx side of a comparison: ``return 200`` runs in nginx's rewrite phase,
before limit_req's preaccess phase, so it is never limited. The location serves a static file instead.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time

import pytest

from tests.security.ratelimit.conftest import EPOCH
from zato.security.ratelimit.rules import parse_rules

# (location, rate per second, burst, seed)
SCHEDULES = [('/a', 10, 3, 20261128), ('/b', 4, 0, 7)]
REQUESTS = 40
HORIZON = 2.4           # seconds per schedule
TRUNCATION = 0.001      # nginx's clock is whole milliseconds, truncated
MAX_BOUNDARY_CASES = 3

CONFIG = '''
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 16; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000;
    {zones}
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        limit_req_status 429;
        {locations}
    }}
}}
'''


def find_or_install_nginx() -> tuple[str | None, str]:
    """The nginx binary, installing Debian's nginx-light if it is missing and we are root."""
    found = shutil.which('nginx') or next((p for p in ('/usr/sbin/nginx',) if os.path.exists(p)), None)
    if found:
        return found, ''
    if os.geteuid() != 0 or not shutil.which('apt-get'):
        return None, 'nginx is not installed and cannot be installed here (needs root and apt-get)'
    env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
    install = ['apt-get', 'install', '-y', '-qq', 'nginx-light']
    try:
        if subprocess.run(install, env=env, capture_output=True, timeout=180).returncode != 0:
            subprocess.run(['apt-get', 'update', '-qq'], env=env, capture_output=True, timeout=180)
            subprocess.run(install, env=env, capture_output=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f'nginx could not be installed: {e}'
    found = shutil.which('nginx') or ('/usr/sbin/nginx' if os.path.exists('/usr/sbin/nginx') else None)
    return found, '' if found else 'nginx could not be installed with apt-get (nginx-light)'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def make_schedule(seed: int) -> list[float]:
    """Offsets in seconds: half spread evenly at random, half in tight clusters that exercise bursts."""
    rng = random.Random(seed)
    offsets = [rng.uniform(0, HORIZON) for _ in range(REQUESTS // 2)]
    for _ in range(REQUESTS // 8):
        center = rng.uniform(0, HORIZON)
        offsets.extend(center + rng.uniform(0, 0.01) for _ in range(4))
    return sorted(offsets)[:REQUESTS]


class Client:
    """One keep-alive HTTP/1.1 connection, reading just enough to find each answer's status."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b''

    def get(self, path: str) -> tuple[float, float, int]:
        if self.sock is None:
            self.sock = socket.create_connection(('127.0.0.1', self.port), timeout=5)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = f'GET {path} HTTP/1.1\r\nHost: oracle\r\n\r\n'.encode()
        sent = time.monotonic()
        self.sock.sendall(request)
        while b'\r\n\r\n' not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split(' ')[1])
        headers = dict(line.lower().split(': ', 1) for line in lines[1:])
        length = int(headers.get('content-length', '0'))
        while len(self.buffer) < length:
            self.buffer += self._recv()
        received = time.monotonic()
        self.buffer = self.buffer[length:]
        if headers.get('connection') == 'close':
            self.sock.close()
            self.sock, self.buffer = None, b''
        return sent, received, status

    def _recv(self) -> bytes:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError('nginx closed the connection')
        return data

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


# Session scope, and asked for before counters_module, so that switching twins does not run it again
@pytest.fixture(scope='session')
def nginx_traces(tmp_path_factory) -> dict[str, list[tuple[float, float, int]]]:
    """For each schedule: (sent, received, status) per request, in real time against nginx."""
    binary, reason = find_or_install_nginx()
    if binary is None:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp('nginx')
    (tmp / 'www').mkdir()
    for location, *_ in SCHEDULES:
        (tmp / 'www' / location.strip('/')).write_text('ok\n')
    port = free_port()
    zones = '\n    '.join(f'limit_req_zone $binary_remote_addr zone=z{loc.strip("/")}:1m rate={rate}r/s;'
                           for loc, rate, _, _ in SCHEDULES)
    # nginx refuses burst=0 (0 is its default)
    locations = '\n        '.join(
        f'location = {loc} {{ limit_req zone=z{loc.strip("/")}{f" burst={burst}" if burst else ""} nodelay; }}'
        for loc, _, burst, _ in SCHEDULES)
    (tmp / 'nginx.conf').write_text(CONFIG.format(tmp=tmp, port=port, zones=zones, locations=locations))
    proc = subprocess.Popen([binary, '-p', str(tmp), '-c', str(tmp / 'nginx.conf'), '-e', str(tmp / 'error.log')],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f'nginx did not start: {proc.stderr.read().decode() if proc.stderr else ""}')
                time.sleep(0.02)
        traces = {}
        for location, _, _, seed in SCHEDULES:
            client = Client(port)
            start = time.monotonic()
            trace = []
            for offset in make_schedule(seed):
                delay = start + offset - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                trace.append(client.get(location))
            client.close()
            traces[location] = trace
        return traces
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize('location, rate, burst, seed', SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_our_gcra_accepts_and_refuses_the_same_requests_as_nginx_limit_req(nginx_traces, counters_module, location,
                                                                          rate, burst, seed):
    trace = nginx_traces[location]
    statuses = [status for _, _, status in trace]
    assert set(statuses) == {200, 429}, f'the schedule should exercise both answers: {statuses}'

    rule = parse_rules(f'* = {rate}/s burst={burst}').rules[0]
    strict, permissive = counters_module.Counters(), counters_module.Counters()
    key = ('oracle',)
    base = EPOCH - trace[0][0]  # same intervals, at production-sized timestamps
    boundary, mismatches = [], []
    for i, (sent, received, status) in enumerate(trace):
        earliest, latest = base + sent - TRUNCATION, base + received
        nginx_ok = status == 200
        strict_ok = strict.probe(key, rule, earliest) == 0.0
        permissive_ok = permissive.probe(key, rule, latest) == 0.0
        if strict_ok == permissive_ok:
            if nginx_ok != strict_ok:
                mismatches.append((i, round(sent - trace[0][0], 4), status))
        else:
            boundary.append(i)
        if nginx_ok:
            strict.charge(key, rule, latest)
            permissive.charge(key, rule, earliest)

    assert mismatches == [], f'nginx disagrees outside any tolerance window: {mismatches}; statuses {statuses}'
    assert len(boundary) <= MAX_BOUNDARY_CASES, f'too many boundary cases: {boundary}'
