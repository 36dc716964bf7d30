"""The outgoing WebSocket connection against real servers on real sockets.

Well-behaved peers are `websockets` servers, each in OS threads of this process; peers that
misbehave on purpose (drop at once, never answer) are a few lines of plain sockets. The test
process is not monkey-patched: the client uses gevent's sockets explicitly and the tests drive it
with gevent calls, while the servers' threads run whenever the hub waits.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, basic_auth, serve

from zato.connectors import wsx
from zato.connectors.wsx import (
    OutgoingWSX, WSXConfig, WSXConnectionError, WSXInvokeError, WSXTimeoutError, backoff_delay)

# Short timeouts and backoffs, so that reconnects show within a test's seconds
FAST: dict[str, Any] = {'connect_timeout': 3.0, 'reconnect_min': 0.05, 'reconnect_max': 0.5}

REPO = Path(__file__).resolve().parents[2]

USERS = {'zato.user': 'zato.secret'}
NOT_AUTHORIZED = 'You are not authorized to access this resource'
WS_GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> bool:
    """Poll `predicate` while letting greenlets run; True once it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(0.01)
    return True


def live_greenlets() -> set[gevent.Greenlet]:
    found = set()
    for obj in gc.get_objects():
        try:
            if isinstance(obj, gevent.Greenlet) and not obj.dead:
                found.add(obj)
        except ReferenceError:  # a weak proxy whose object is gone
            pass
    return found


def reconnects(caplog: pytest.LogCaptureFixture) -> list[tuple[int, float]]:
    """(attempt, delay) of each reconnect the client logged so far."""
    found = []
    for record in caplog.records:
        if record.name == 'zato.connectors.wsx':
            if match := re.search(r'reconnect attempt (\d+) in ([\d.]+)s', record.getMessage()):
                found.append((int(match[1]), float(match[2])))
    return found


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == 'zato.connectors.wsx' and r.levelno == logging.WARNING]


# ################################################################################################
# Peers


class Peer:
    """A `websockets` server in OS threads, with a record of what it saw."""

    def __init__(self, handler: Callable[[Peer, ServerConnection], None], **kwargs: Any) -> None:
        self.handler = handler
        self.connections: list[float] = []  # when each WebSocket connection was opened
        self.received: list[Any] = []
        self.close_codes: list[int | None] = []  # the close code each client sent, None if none
        self.extensions: list[list[str]] = []  # the extensions agreed on each connection
        kwargs.setdefault('close_timeout', 1)
        self.server = serve(self._handle, '127.0.0.1', 0, **kwargs)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def address(self, path: str = '/', scheme: str = 'ws') -> str:
        return f'{scheme}://127.0.0.1:{self.port}{path}'

    def _handle(self, conn: ServerConnection) -> None:
        self.connections.append(time.monotonic())
        self.extensions.append([ext.name for ext in conn.protocol.extensions])
        try:
            self.handler(self, conn)
        except ConnectionClosed:
            pass
        finally:
            received = conn.protocol.close_rcvd
            self.close_codes.append(received.code if received is not None else None)

    def close(self) -> None:
        # In the hub's thread pool: shutting down blocks, and the client's greenlets must keep running
        gevent.get_hub().threadpool.apply(self.server.shutdown)
        self.thread.join(5)


def echo(peer: Peer, conn: ServerConnection) -> None:
    """Echoes each message; a few texts are commands instead."""
    for message in conn:
        peer.received.append(message)
        if message == 'drop':
            conn.socket.shutdown(socket.SHUT_RDWR)
            return
        if message == 'no-reply':
            continue
        if isinstance(message, str) and message.startswith('push '):
            for n in range(int(message.split()[1])):
                conn.send(f'pushed {n}' if n % 2 == 0 else f'pushed {n}'.encode())
            continue
        if isinstance(message, str) and message.startswith('later '):
            time.sleep(float(message.split()[1]))
        if isinstance(message, str) and message.startswith('big '):
            conn.send('x' * int(message.split()[1]))
            continue
        conn.send(message)


def zato_channel(peer: Peer, conn: ServerConnection) -> None:
    """What a Zato 3.1 WSX channel answers: create-session, then invoke-service with in_reply_to."""

    def reply(in_reply_to: str, status: int, data: Any, kind: str = 'rsp-ok') -> str:
        meta = {'status': status, 'timestamp': '2024-01-01T00:00:00', 'in_reply_to': in_reply_to,
                'id': f'zato.ws.srv.{kind}.{secrets.token_hex(6)}'}
        return json.dumps({'meta': meta, 'data': data})

    token = None
    for raw in conn:
        msg = json.loads(raw)
        peer.received.append(msg)
        meta = msg['meta']
        if meta['action'] == 'create-session':
            if USERS.get(meta.get('username')) != meta.get('secret'):
                conn.send(reply(meta['id'], 403, NOT_AUTHORIZED, 'rsp-auth'))
                conn.close()
                return
            token = 'ws.token.' + secrets.token_hex(8)
            conn.send(reply(meta['id'], 200, {'token': token}, 'rsp-auth'))
            continue

        assert meta['action'] == 'invoke-service'
        if meta.get('token') != token:
            conn.send(reply(meta['id'], 401, 'Invalid token'))
            continue
        data = msg['data']
        if data == 'no-reply':
            continue
        if data == 'drop':
            conn.socket.shutdown(socket.SHUT_RDWR)
            return
        if data == 'ask':  # what invoke_client of a Zato service sends, and wait for the client-response
            conn.send(json.dumps({'meta': {'id': 'zato.ws.srv.rq.1', 'timestamp': '2024-01-01T00:00:00',
                                           'action': 'zwsx.rqc'}, 'data': {'question': 'name?'}}))
            answer = json.loads(conn.recv(timeout=5))
            peer.received.append(answer)
            conn.send(reply(meta['id'], 200, {'answer': answer['data']}))
            continue
        if data == 'push':
            conn.send(json.dumps({'meta': {'id': 'zato.ws.srv.push.1'}, 'data': {'pushed': 'envelope'}}))
            conn.send(json.dumps({'pushed': 'plain JSON'}))
            conn.send('not JSON at all')
        if isinstance(data, dict) and 'fail' in data:
            conn.send(reply(meta['id'], data['fail'], 'Something went wrong'))
            continue
        conn.send(reply(meta['id'], 200, {'echo': data}))


class RawPeer:
    """A TCP server of plain sockets for peers that misbehave on purpose.

    `drop` closes each connection as soon as it is accepted; `mute` reads and never answers;
    `silent` completes the WebSocket handshake and then never sends a byte, pongs included.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections: list[float] = []
        self.received: list[bytes] = []  # what came after the handshake, chunk by chunk
        self.sock = socket.create_server(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def address(self) -> str:
        return f'ws://127.0.0.1:{self.port}/'

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(time.monotonic())
            if self.mode == 'drop':
                conn.close()
            else:
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b''
            while b'\r\n\r\n' not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            if self.mode == 'silent':
                match = re.search(rb'(?i)sec-websocket-key:[ \t]*(\S+)', head)
                assert match is not None
                accept = base64.b64encode(hashlib.sha1(match[1] + WS_GUID).digest())
                conn.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                             b'Sec-WebSocket-Accept: ' + accept + b'\r\n\r\n')
            try:
                while chunk := conn.recv(4096):
                    self.received.append(chunk)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread on Linux
        except OSError:
            pass
        self.sock.close()


def closed_port() -> int:
    """A port nothing listens on."""
    with socket.create_server(('127.0.0.1', 0)) as sock:
        return sock.getsockname()[1]


@pytest.fixture
def peer() -> Iterator[Callable[..., Peer]]:
    """Starts `websockets` servers; shuts them down when the test ends."""
    started: list[Peer] = []

    def start(handler: Callable[[Peer, ServerConnection], None] = echo, **kwargs: Any) -> Peer:
        started.append(Peer(handler, **kwargs))
        return started[-1]

    yield start
    for one in started:
        one.close()


@pytest.fixture
def raw_peer() -> Iterator[Callable[[str], RawPeer]]:
    started: list[RawPeer] = []

    def start(mode: str) -> RawPeer:
        started.append(RawPeer(mode))
        return started[-1]

    yield start
    for one in started:
        one.close()


@pytest.fixture
def client(peer: Callable[..., Peer], raw_peer: Callable[[str], RawPeer]) -> Iterator[Callable[..., OutgoingWSX]]:
    """Makes and starts clients; stops them when the test ends, before the peers they use."""
    made: list[OutgoingWSX] = []

    def make(address: str, *, on_message: Callable[[Any], None] | None = None,
             on_connect: Callable[[], None] | None = None, on_close: Callable[[int | None, str], None] | None = None,
             start: bool = True, **config: Any) -> OutgoingWSX:
        conn = OutgoingWSX(WSXConfig(name='test.wsx', address=address, **{**FAST, **config}),
                           on_message=on_message, on_connect=on_connect, on_close=on_close)
        made.append(conn)
        if start:
            conn.start()
        return conn

    yield make
    for conn in made:
        conn.stop()


# ################################################################################################
# A generic remote


def test_start_returns_at_once_and_the_connection_comes_up_in_the_background(peer, client):
    server = peer()
    conn = client(server.address())
    assert not conn.is_connected  # start() did not wait
    assert conn.wait_connected(5)
    assert conn.is_connected


def test_invoke_returns_the_echo_of_text_binary_and_json(peer, client):
    server = peer()
    conn = client(server.address('/echo?x=1'))
    assert conn.wait_connected(5)

    assert conn.invoke('zażółć') == 'zażółć'
    assert conn.invoke(b'\x00\x01\xff') == b'\x00\x01\xff'
    assert json.loads(conn.invoke({'a': [1, 2], 'b': None})) == {'a': [1, 2], 'b': None}
    assert server.received == ['zażółć', b'\x00\x01\xff', '{"a":[1,2],"b":null}']


def test_concurrent_invokes_take_turns_and_each_gets_its_own_reply(peer, client):
    server = peer()
    conn = client(server.address())
    assert conn.wait_connected(5)

    calls = [gevent.spawn(conn.invoke, f'later 0.05 #{n}') for n in range(4)]
    gevent.joinall(calls, timeout=5, raise_error=True)
    assert [call.value for call in calls] == [f'later 0.05 #{n}' for n in range(4)]


def test_on_message_gets_what_the_server_pushes_as_str_or_bytes(peer, client):
    server = peer()
    received: list[Any] = []
    conn = client(server.address(), on_message=received.append)
    assert conn.wait_connected(5)

    conn.send('push 4')
    assert wait_until(lambda: len(received) == 4)
    assert received == ['pushed 0', b'pushed 1', 'pushed 2', b'pushed 3']


def test_a_failing_on_message_callback_does_not_stop_later_deliveries(peer, client, caplog):
    server = peer()
    received: list[Any] = []

    def on_message(data: Any) -> None:
        received.append(data)
        if data == 'pushed 0':
            raise ValueError('callback bug')

    conn = client(server.address(), on_message=on_message)
    assert conn.wait_connected(5)
    conn.send('push 3')

    assert wait_until(lambda: len(received) == 3)
    assert conn.is_connected
    assert any('on_message callback failed' in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_invoke_without_a_reply_times_out_and_the_late_reply_goes_to_on_message(peer, client):
    server = peer()
    received: list[Any] = []
    conn = client(server.address(), on_message=received.append)
    assert conn.wait_connected(5)

    started = time.monotonic()
    with pytest.raises(WSXTimeoutError, match='test.wsx: no reply within 0.2s'):
        conn.invoke('later 0.4', timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 0.4

    assert wait_until(lambda: received == ['later 0.4'])
    assert conn.invoke('next') == 'next'  # the late reply was not taken for this one's


def test_a_pending_invoke_fails_with_a_connection_error_when_the_server_drops(peer, client):
    server = peer()
    conn = client(server.address())
    assert conn.wait_connected(5)

    started = time.monotonic()
    with pytest.raises(WSXConnectionError, match='lost before a reply came') as info:
        conn.invoke('drop', timeout=5)
    assert not isinstance(info.value, WSXTimeoutError)
    assert time.monotonic() - started < 2


def test_send_invoke_and_ping_raise_when_not_connected(client, caplog):
    conn = client(f'ws://127.0.0.1:{closed_port()}/', start=False)
    with pytest.raises(WSXConnectionError, match='test.wsx: not connected'):
        conn.send('before start')

    conn.start()
    assert wait_until(lambda: reconnects(caplog))
    for call in (lambda: conn.send('x'), lambda: conn.invoke('x'), conn.ping):
        with pytest.raises(WSXConnectionError, match=r'test.wsx: not connected to ws://127.0.0.1:\d+/ \(.*refused'):
            call()


def test_connection_failures_are_logged_once_each_in_one_line_without_a_traceback(client, caplog):
    client(f'ws://127.0.0.1:{closed_port()}/')
    assert wait_until(lambda: len(reconnects(caplog)) >= 3)

    lines = warnings_of(caplog)
    assert len(lines) == len(reconnects(caplog))
    for record in caplog.records:
        if record.name == 'zato.connectors.wsx':
            assert not record.exc_info
            assert '\n' not in record.getMessage()
    assert 'WSX test.wsx: could not connect to ws://127.0.0.1:' in lines[0]
    assert 'Connection refused' in lines[0]


def test_the_handshake_times_out_after_connect_timeout(raw_peer, client, caplog):
    server = raw_peer('mute')
    conn = client(server.address(), connect_timeout=0.3)
    assert wait_until(lambda: reconnects(caplog))
    assert not conn.is_connected
    assert 'not connected within 0.3s' in warnings_of(caplog)[0]


def test_a_large_message_round_trips_compressed_with_permessage_deflate(peer, client):
    server = peer()
    conn = client(server.address(), max_message=4 << 20)
    assert conn.wait_connected(5)

    text = 'Zato ' * 200_000  # 1 MB
    assert conn.invoke(text) == text
    assert server.extensions == [['permessage-deflate']]


def test_deflate_off_is_not_offered(peer, client):
    server = peer()
    conn = client(server.address(), deflate=False)
    assert conn.wait_connected(5)
    assert conn.invoke('plain') == 'plain'
    assert server.extensions == [[]]


def test_a_message_above_max_message_closes_with_1009_and_the_client_reconnects(peer, client):
    server = peer()
    closes: list[tuple[int | None, str]] = []
    conn = client(server.address(), max_message=1000, on_close=lambda code, reason: closes.append((code, reason)))
    assert conn.wait_connected(5)

    conn.send('big 2000')
    assert wait_until(lambda: len(server.connections) == 2 and conn.is_connected)
    assert server.close_codes[0] == 1009
    assert closes[0][0] == 1009
    assert conn.invoke('still works') == 'still works'


def test_extra_headers_and_basic_auth_go_with_the_handshake(peer, client):
    seen: list[Any] = []
    check = basic_auth(credentials=('api.user', 'api.secret'))

    def process_request(conn: ServerConnection, request: Any) -> Any:
        seen.append(request.headers)
        return check(conn, request)

    server = peer(process_request=process_request)
    conn = client(server.address(), username='api.user', secret='api.secret', headers=[('X-Zato-Test', 'yes')])
    assert conn.wait_connected(5)
    assert conn.invoke('hi') == 'hi'
    assert seen[0]['X-Zato-Test'] == 'yes'
    assert seen[0]['Authorization'] == 'Basic ' + base64.b64encode(b'api.user:api.secret').decode()


def test_wrong_basic_auth_credentials_are_refused_at_the_handshake(peer, client, caplog):
    server = peer(process_request=basic_auth(credentials=('api.user', 'api.secret')))
    conn = client(server.address(), username='api.user', secret='wrong')
    assert wait_until(lambda: len(reconnects(caplog)) >= 2)
    assert not conn.is_connected
    assert server.connections == []
    assert 'handshake refused with HTTP 401 Unauthorized' in warnings_of(caplog)[0]
    assert 'wrong' not in ' '.join(warnings_of(caplog))  # nor any secret


# ################################################################################################
# Reconnecting


def test_backoff_delay_is_full_jitter_under_a_doubling_cap():
    assert [backoff_delay(n, 0.5, 30, 1.0) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(3, 0.5, 30, 0.25) == 1.0
    assert backoff_delay(0, 0.5, 30, 0.0) == 0.0
    assert backoff_delay(10_000, 0.5, 30, 1.0) == 30  # no overflow after days of failures


def test_reconnect_delays_double_while_connections_drop_before_the_handshake(raw_peer, client, caplog, monkeypatch):
    monkeypatch.setattr(wsx, '_jitter', lambda: 1.0)  # the cap itself, so delays are predictable
    server = raw_peer('drop')
    client(server.address(), reconnect_min=0.05, reconnect_max=10)

    assert wait_until(lambda: len(server.connections) >= 5)
    gaps = [b - a for a, b in zip(server.connections, server.connections[1:], strict=False)][:4]
    expected = [0.05, 0.1, 0.2, 0.4]
    for gap, delay in zip(gaps, expected, strict=True):
        assert gap >= delay * 0.9
    assert gaps == sorted(gaps)
    assert reconnects(caplog)[:4] == [(1, 0.05), (2, 0.1), (3, 0.2), (4, 0.4)]


def test_sessions_that_drop_at_once_count_as_failed_attempts(peer, client, caplog, monkeypatch):
    monkeypatch.setattr(wsx, '_jitter', lambda: 1.0)

    def drop_at_once(peer: Peer, conn: ServerConnection) -> None:
        conn.socket.shutdown(socket.SHUT_RDWR)

    server = peer(drop_at_once)
    connects: list[int] = []
    client(server.address(), reconnect_min=0.02, reconnect_max=0.1, on_connect=lambda: connects.append(1))

    assert wait_until(lambda: len(reconnects(caplog)) >= 4)
    assert [attempt for attempt, _ in reconnects(caplog)][:4] == [1, 2, 3, 4]
    assert [delay for _, delay in reconnects(caplog)][:4] == [0.02, 0.04, 0.08, 0.1]  # capped at reconnect_max
    assert 'lost the connection to' in warnings_of(caplog)[0]
    assert len(connects) >= 3


def test_a_session_that_stayed_up_resets_the_backoff(peer, client, caplog, monkeypatch):
    monkeypatch.setattr(wsx, 'STABLE_AFTER', 0.1)

    def drop_later(peer: Peer, conn: ServerConnection) -> None:
        time.sleep(0.2)
        conn.socket.shutdown(socket.SHUT_RDWR)

    server = peer(drop_later)
    client(server.address())
    assert wait_until(lambda: len(reconnects(caplog)) >= 3)
    assert [attempt for attempt, _ in reconnects(caplog)][:3] == [1, 1, 1]
    assert len(server.connections) >= 3


def test_keep_alive_pings_hold_a_quiet_connection_open(peer, client):
    server = peer()
    conn = client(server.address(), ping_interval=0.05, pings_missed_threshold=2)
    assert conn.wait_connected(5)
    gevent.sleep(0.6)  # six intervals, three times the threshold, without a message
    assert conn.is_connected
    assert len(server.connections) == 1


def test_a_server_that_never_answers_pings_is_dropped_and_reconnected(raw_peer, client, caplog):
    server = raw_peer('silent')
    closes: list[tuple[int | None, str]] = []
    conn = client(server.address(), ping_interval=0.1, pings_missed_threshold=3, connect_timeout=0.5,
                  on_close=lambda code, reason: closes.append((code, reason)))
    assert conn.wait_connected(5)

    started = time.monotonic()
    assert wait_until(lambda: closes)
    assert 0.3 <= time.monotonic() - started < 1.0
    assert closes[0][0] is None and '3 pings missed' in closes[0][1]
    assert server.received[0][:2] == b'\x89\x80'  # a masked ping without payload
    assert wait_until(lambda: len(server.connections) >= 2)
    assert 'pings missed' in warnings_of(caplog)[0]


def test_ping_returns_the_round_trip_time(peer, client):
    server = peer()
    conn = client(server.address())
    assert conn.wait_connected(5)
    assert 0 < conn.ping() < 1


def test_ping_times_out_when_no_pong_comes(raw_peer, client):
    server = raw_peer('silent')
    conn = client(server.address(), connect_timeout=0.5)
    assert conn.wait_connected(5)
    with pytest.raises(WSXTimeoutError, match='no pong within 0.1s'):
        conn.ping(timeout=0.1)


# ################################################################################################
# Closing


def test_stop_closes_with_1000_and_leaves_no_greenlets_running(peer, client):
    before = live_greenlets()
    server = peer()
    closes: list[tuple[int | None, str]] = []
    conn = client(server.address(), ping_interval=0.05, on_close=lambda code, reason: closes.append((code, reason)))
    assert conn.wait_connected(5)
    conn.send('push 2')  # callbacks in flight too

    conn.stop()
    assert not conn.is_connected
    assert closes == [(1000, '')]
    assert live_greenlets() - before == set()
    assert wait_until(lambda: server.close_codes == [1000])

    conn.stop()  # a second time changes nothing
    gevent.sleep(0.2)
    assert len(server.connections) == 1
    with pytest.raises(WSXConnectionError, match='not connected'):
        conn.send('after stop')


def test_stop_gives_up_on_a_close_the_remote_end_never_answers(raw_peer, client):
    server = raw_peer('silent')
    conn = client(server.address(), connect_timeout=0.3)
    assert conn.wait_connected(5)

    started = time.monotonic()
    conn.stop()
    assert 0.3 <= time.monotonic() - started < 1
    assert server.received[-1][:2] == b'\x88\x82'  # a masked close frame with a code: 1000
    assert not conn.is_connected


def test_stop_during_a_backoff_returns_at_once(client, caplog):
    conn = client(f'ws://127.0.0.1:{closed_port()}/', reconnect_min=30, reconnect_max=60)
    assert wait_until(lambda: reconnects(caplog))

    started = time.monotonic()
    conn.stop()
    assert time.monotonic() - started < 0.5
    assert len(reconnects(caplog)) == 1


def test_without_auto_reconnect_a_closed_connection_stays_closed(peer, client, caplog):
    def close_with_4000(peer: Peer, conn: ServerConnection) -> None:
        conn.recv()
        conn.close(4000, 'bye')

    server = peer(close_with_4000)
    closes: list[tuple[int | None, str]] = []
    conn = client(server.address(), has_auto_reconnect=False,
                  on_close=lambda code, reason: closes.append((code, reason)))
    assert conn.wait_connected(5)
    conn.send('hello')

    assert wait_until(lambda: closes)
    assert closes == [(4000, 'bye')]
    gevent.sleep(0.3)
    assert len(server.connections) == 1
    assert not conn.is_connected
    assert 'closed the connection with 4000 bye' in warnings_of(caplog)[0]
    assert 'not reconnecting' in warnings_of(caplog)[0]
    assert server.close_codes == [4000]  # our answer echoed the server's code


# ################################################################################################
# A Zato remote


def test_a_zato_remote_gets_create_session_first_then_invocations_with_the_token(peer, client):
    server = peer(zato_channel)
    conn = client(server.address('/zato/ws'), is_zato=True, username='zato.user', secret='zato.secret')
    assert conn.wait_connected(5)

    assert conn.invoke({'service': 'zato.helpers.echo', 'request': {'n': 1}}) == \
        {'echo': {'service': 'zato.helpers.echo', 'request': {'n': 1}}}

    login, invocation = server.received
    assert login['meta']['action'] == 'create-session'
    assert login['meta']['id'].startswith('zato.ws.cli.') and len(login['meta']['id']) == len('zato.ws.cli.') + 24
    assert (login['meta']['username'], login['meta']['secret']) == ('zato.user', 'zato.secret')
    assert login['meta']['client_name'] == 'test.wsx'
    assert login['meta']['client_id'] and login['meta']['timestamp']
    assert 'data' not in login

    assert invocation['meta']['action'] == 'invoke-service'
    assert invocation['meta']['token'].startswith('ws.token.')
    assert invocation['meta']['id'].startswith('zato.ws.cli.')
    assert invocation['meta']['id'] != login['meta']['id']
    assert invocation['data'] == {'service': 'zato.helpers.echo', 'request': {'n': 1}}


def test_a_zato_remote_without_a_username_is_invoked_without_a_session(peer, client):
    server = peer(zato_channel)
    conn = client(server.address(), is_zato=True)
    assert conn.wait_connected(5)
    assert conn.invoke([1, 2]) == {'echo': [1, 2]}
    assert [msg['meta']['action'] for msg in server.received] == ['invoke-service']
    assert 'token' not in server.received[0]['meta']


def test_a_zato_reply_with_another_status_raises_WSXInvokeError(peer, client):
    server = peer(zato_channel)
    conn = client(server.address(), is_zato=True, username='zato.user', secret='zato.secret')
    assert conn.wait_connected(5)

    with pytest.raises(WSXInvokeError, match='status 500: Something went wrong') as info:
        conn.invoke({'fail': 500})
    assert (info.value.status, info.value.data) == (500, 'Something went wrong')
    assert conn.invoke('next') == {'echo': 'next'}


def test_bad_zato_credentials_are_refused_with_403_and_retried_with_backoff(peer, client, caplog):
    server = peer(zato_channel)
    conn = client(server.address(), is_zato=True, username='zato.user', secret='wrong')

    assert wait_until(lambda: len(server.connections) >= 3)
    assert not conn.is_connected
    assert [attempt for attempt, _ in reconnects(caplog)][:2] == [1, 2]
    assert f'create-session refused with status 403: {NOT_AUTHORIZED}' in warnings_of(caplog)[0]
    with pytest.raises(WSXConnectionError, match=f'not connected .*403: {NOT_AUTHORIZED}'):
        conn.invoke('x')


def test_zato_messages_that_are_not_awaited_replies_reach_on_message(peer, client, caplog):
    server = peer(zato_channel)
    received: list[Any] = []
    conn = client(server.address(), is_zato=True, username='zato.user', secret='zato.secret',
                  on_message=received.append)
    assert conn.wait_connected(5)

    # The three pushes come before the reply; the reply itself is awaited, so it is not among them
    assert conn.invoke('push') == {'echo': 'push'}
    assert wait_until(lambda: len(received) == 3)
    assert received == [{'pushed': 'envelope'}, {'pushed': 'plain JSON'}, 'not JSON at all']

    # send() waits for nothing, so its reply is a message like any other; an error is only logged
    conn.send('sent')
    conn.send({'fail': 400})
    assert wait_until(lambda: len(received) == 4)
    assert received[3] == {'echo': 'sent'}
    assert wait_until(lambda: any('status 400: Something went wrong' in line for line in warnings_of(caplog)))


def test_a_zato_request_to_the_client_is_answered_with_what_on_message_returns(peer, client):
    server = peer(zato_channel)
    asked: list[Any] = []

    def on_message(data: Any) -> Any:
        asked.append(data)
        return {'name': 'client one'}

    conn = client(server.address(), is_zato=True, username='zato.user', secret='zato.secret', on_message=on_message)
    assert conn.wait_connected(5)

    assert conn.invoke('ask') == {'answer': {'name': 'client one'}}
    assert asked == [{'question': 'name?'}]
    response = server.received[-1]
    assert response['meta']['action'] == 'client-response'
    assert response['meta']['in_reply_to'] == 'zato.ws.srv.rq.1'
    assert response['meta']['token'].startswith('ws.token.')


def test_on_connect_runs_once_the_zato_session_exists_and_may_invoke(peer, client):
    server = peer(zato_channel)
    results: list[Any] = []
    conn: OutgoingWSX | None = None

    def on_connect() -> None:
        assert conn is not None
        results.append(conn.invoke('from on_connect'))

    conn = client(server.address(), is_zato=True, username='zato.user', secret='zato.secret',
                  on_connect=on_connect)
    assert wait_until(lambda: results)
    assert results == [{'echo': 'from on_connect'}]


def test_a_zato_invoke_times_out_or_fails_when_the_server_drops(peer, client):
    server = peer(zato_channel)
    conn = client(server.address(), is_zato=True, username='zato.user', secret='zato.secret')
    assert conn.wait_connected(5)

    with pytest.raises(WSXTimeoutError, match='no reply to zato.ws.cli.[0-9a-f]+ within 0.1s'):
        conn.invoke('no-reply', timeout=0.1)
    with pytest.raises(WSXConnectionError, match='lost before a reply came'):
        conn.invoke('drop', timeout=5)
    assert wait_until(lambda: conn.is_connected)  # and back after the backoff
    assert conn.invoke('again') == {'echo': 'again'}


# ################################################################################################
# TLS and configuration


@pytest.fixture(scope='module')
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    path = tmp_path_factory.mktemp('wsx-tls')
    cert, key = str(path / 'cert.pem'), str(path / 'key.pem')
    try:
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                        '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
                        '-addext', 'subjectAltName=IP:127.0.0.1'], check=True, capture_output=True)
    except FileNotFoundError:
        pytest.skip('openssl is not installed')
    return cert, key


def test_wss_with_a_ca_file_connects_and_without_it_the_certificate_is_refused(peer, client, caplog, certificate):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = peer(ssl=context)

    trusting = client(server.address(scheme='wss'), ca_file=cert)
    assert trusting.wait_connected(5)
    assert trusting.invoke('over TLS') == 'over TLS'

    client(server.address(scheme='wss'))
    assert wait_until(lambda: reconnects(caplog))
    assert 'CERTIFICATE_VERIFY_FAILED' in warnings_of(caplog)[0]


@pytest.mark.parametrize('address', [
    'http://127.0.0.1/', 'ws://', 'ws://127.0.0.1:99999/', 'ws://user:pass@127.0.0.1/', '127.0.0.1:8080'])
def test_a_malformed_address_is_refused_with_the_config(address):
    with pytest.raises(ValueError, match='Invalid WSX address'):
        WSXConfig(name='bad', address=address)


def test_a_config_with_impossible_timings_is_refused():
    with pytest.raises(ValueError, match='ping_interval must be above 0'):
        WSXConfig(name='bad', address='ws://127.0.0.1/', ping_interval=0)
    with pytest.raises(ValueError, match='reconnect_max'):
        WSXConfig(name='bad', address='ws://127.0.0.1/', reconnect_min=5, reconnect_max=1)


# What a worker does: patch first. Threads become greenlets, the server's included.
PATCHED = textwrap.dedent('''
    from gevent import monkey
    monkey.patch_all()
    import threading
    from websockets.sync.server import serve
    from zato.connectors.wsx import OutgoingWSX, WSXConfig

    def echo(conn):
        for message in conn:
            conn.send(message)

    server = serve(echo, '127.0.0.1', 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = OutgoingWSX(WSXConfig('patched', f'ws://127.0.0.1:{server.socket.getsockname()[1]}/', ping_interval=0.05))
    conn.start()
    assert conn.wait_connected(5)
    assert conn.invoke('ok') == 'ok'
    assert conn.ping() < 1
    conn.stop()
    server.shutdown()
    print('done')
''')


def test_it_works_the_same_in_a_monkey_patched_process():
    result = subprocess.run([sys.executable, '-c', PATCHED], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ, 'PYTHONPATH': str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'done'
