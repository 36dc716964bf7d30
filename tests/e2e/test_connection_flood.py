"""A client that opens thousands of connections and sends nothing must not take the server offline.

A quickstart with its default worker_connections (1,000 per worker, two workers) gets 2,000 silent
connections held open; meanwhile /zato/ping on new connections answers within 100 ms throughout, and
the silent connections are closed once the header timeout (from accept, not from a first byte) ends.
Its own environment: the flood would disturb the other e2e tests.
"""

from __future__ import annotations

import selectors
import socket
import time

import pytest

from tests.e2e.harness import Env

SILENT = 2000
HEADER_TIMEOUT = 3.0


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    e = Env(str(tmp_path_factory.mktemp('flood') / 'env'), env={'ZATO_HTTP_HEADER_TIMEOUT': str(HEADER_TIMEOUT)})
    e.start()
    yield e
    e.stop()


def ping_time(port: int) -> float:
    """Seconds /zato/ping takes on a new connection (a generous 5 s at most)."""
    started = time.monotonic()
    with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
        s.sendall(b'GET /zato/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = b''
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b'HTTP/1.1 200 ') and b'"pong"' in data, data[:200]
    return time.monotonic() - started


def test_silent_connections_neither_starve_new_ones_nor_outlive_the_header_timeout(env):
    port = env.base_port
    silent = []
    opened = time.monotonic()
    pings = []
    try:
        for i in range(SILENT):
            s = socket.socket()
            s.setblocking(True)
            s.connect(('127.0.0.1', port))
            silent.append(s)
            if i % 250 == 249:
                # Answered while the flood comes in, though maybe not at once: this new connection
                # waits in the kernel's accept queue behind the silent ones that came before it
                ping_time(port)
        all_open = time.monotonic()

        # Every silent connection is closed by the server (EOF, or a reset for one it shed), while new
        # connections keep being answered at once, as long as the silent ones are held open
        sel = selectors.DefaultSelector()
        for s in silent:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        closed_at = {}
        deadline = all_open + HEADER_TIMEOUT + 5
        while len(closed_at) < SILENT and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(4096)
                except ConnectionResetError:
                    data = b''
                if not data:
                    closed_at[key.fileobj] = time.monotonic() - opened
                    sel.unregister(key.fileobj)
            if len(pings) < 200:
                pings.append(ping_time(port))
        sel.close()
    finally:
        for s in silent:
            s.close()

    assert len(closed_at) == SILENT, f'{SILENT - len(closed_at)} silent connections still open'
    # Closed once the timeout from accept is over: none was left to the 75 s keep-alive timeout
    assert max(closed_at.values()) < (all_open - opened) + HEADER_TIMEOUT + 2
    assert max(pings) < 0.1, sorted(pings)[-5:]


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout_without_an_answer(env):
    with socket.create_connection(('127.0.0.1', env.base_port), timeout=HEADER_TIMEOUT + 5) as s:
        started = time.monotonic()
        assert s.recv(4096) == b''
        took = time.monotonic() - started
    assert HEADER_TIMEOUT - 0.5 < took < HEADER_TIMEOUT + 1.5


SLOW = '''
import time
from zato.server.service import Service

class Slow(Service):
    def handle(self):
        time.sleep(float(self.request.payload['seconds']))
        self.response.payload = {'slept': True}
'''


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    """One worker of four connections, at most three from one address."""
    e = Env(str(tmp_path_factory.mktemp('flood-small') / 'env'), workers=1,
            env={'ZATO_MAIN_WORKER_CONNECTIONS': '4', 'ZATO_HTTP_MAX_CONNECTIONS_PER_ADDRESS': '3'})
    e.start()
    e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'flood_slow.py', 'source': SLOW})
    e.wait_for(lambda: 'flood-slow.slow' in [s['name'] for s in e.admin.call('GET', '/zato/admin/services')])
    e.channel('flood-slow', '/flood/slow', 'flood-slow.slow')
    yield e
    e.stop()


def connect(env, source: str = '127.0.0.1') -> socket.socket:
    s = socket.create_connection(('127.0.0.1', env.base_port), timeout=10, source_address=(source, 0))
    time.sleep(0.05)  # accepted and counted before the next one
    return s


def answer(s: socket.socket) -> bytes:
    data = b''
    try:
        while chunk := s.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_full_worker_closes_its_longest_idle_connection_for_a_new_one(small):
    oldest, *others = [connect(small, f'127.0.0.{n}') for n in (2, 3, 4, 5)]
    try:
        assert ping_time(small.base_port) < 0.1
        oldest.settimeout(2)
        assert answer(oldest) == b''  # closed, without an answer: it never asked anything
        for s in others:
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)  # still open
    finally:
        for s in (oldest, *others):
            s.close()


def test_a_worker_whose_connections_are_all_busy_answers_503_with_retry_after(small):
    busy = [connect(small, f'127.0.0.{n}') for n in (2, 3, 4, 5)]
    try:
        body = b'{"seconds": 2}'
        for s in busy:
            s.sendall(b'POST /flood/slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' % (len(body), body))
        time.sleep(0.3)
        late = connect(small, '127.0.0.6')
        data = answer(late)
        late.close()
        assert data.startswith(b'HTTP/1.1 503 ') and b'Retry-After: 1\r\n' in data and b'Server busy' in data
        for s in busy:
            assert answer_one(s).startswith(b'HTTP/1.1 200 ')  # the busy ones finish
    finally:
        for s in busy:
            s.close()


def answer_one(s: socket.socket) -> bytes:
    data = b''
    while b'\r\n\r\n' not in data:
        data += s.recv(4096)
    return data


def test_one_address_may_keep_only_its_share_of_connections_open(small):
    mine = [connect(small, '127.0.0.7') for _ in range(3)]
    try:
        refused = connect(small, '127.0.0.7')
        data = answer(refused)
        refused.close()
        assert data.startswith(b'HTTP/1.1 503 ') and b'Too many connections from this address' in data
        assert ping_time(small.base_port) < 0.1  # from 127.0.0.1: another address
    finally:
        for s in mine:
            s.close()
