"""The server over raw sockets: framing, pipelining, limits and timeouts as RELIABILITY.md asks."""

from __future__ import annotations

import json
import socket
import time

import pytest


def connect(env) -> socket.socket:
    s = socket.create_connection(('127.0.0.1', env.base_port), timeout=5)
    return s


def read_responses(s: socket.socket, count: int, timeout: float = 5.0) -> list[tuple[int, dict, bytes]]:
    """Reads `count` responses framed by Content-Length."""
    s.settimeout(timeout)
    buf = b''
    out = []
    while len(out) < count:
        while b'\r\n\r\n' not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError(f'closed after {len(out)} responses; buffer {buf!r}')
            buf += chunk
        head, _, buf = buf.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split(' ')[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(':') for line in lines[1:])}
        if status == 100:
            out.append((status, headers, b''))
            continue
        length = int(headers.get('content-length', '0'))
        while len(buf) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError('closed mid-body')
            buf += chunk
        out.append((status, headers, buf[:length]))
        buf = buf[length:]
    return out


def is_closed(s: socket.socket, timeout: float = 3.0) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b''
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


PING = b'GET /zato/ping HTTP/1.1\r\nHost: x\r\n\r\n'


def test_pipelined_requests_are_answered_in_order(env):
    with connect(env) as s:
        s.sendall(PING + b'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n' + PING)
        statuses = [r[0] for r in read_responses(s, 3)]
    assert statuses == [200, 404, 200]


def test_keep_alive_serves_many_requests_on_one_connection(env):
    with connect(env) as s:
        for _ in range(20):
            s.sendall(PING)
            assert read_responses(s, 1)[0][0] == 200


def test_a_chunked_request_body_is_decoded(env):
    body = b'{"n": 21}'
    req = (b'POST /zato/admin/invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
           + b'%x\r\n' % 4 + body[:4] + b'\r\n' + b'%x\r\n' % (len(body) - 4) + body[4:] + b'\r\n0\r\n\r\n')
    with connect(env) as s:
        s.sendall(req)
        status, headers, _ = read_responses(s, 1)[0]
    # Reached the admin channel with a decoded body: refused for lack of credentials, not for framing
    assert status == 401


def test_expect_100_continue_gets_an_interim_response_before_the_body(env):
    with connect(env) as s:
        s.sendall(b'POST /zato/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n')
        assert read_responses(s, 1)[0][0] == 100
        s.sendall(b'{}')
        assert read_responses(s, 1)[0][0] == 200


@pytest.mark.parametrize('request_bytes, status', [
    (b'GET /zato/ping HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello', 400),
    (b'GET /zato/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 400),
    (b'GET /zato/ping HTTP/1.1\r\nHost : x\r\n\r\n', 400),
    (b'GET /zato/ping HTTP/1.1\r\n\r\n', 400),
    (b'GET /zato/ping HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', 400),
    (b'GET /zato/ping HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n', 400),
    (b'GET  /zato/ping HTTP/1.1\r\nHost: x\r\n\r\n', 400),
    (b'POST /zato/ping HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
    (b'POST /zato/ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', 400),
    (b'GET /zato/ping HTTP/2.0\r\nHost: x\r\n\r\n', 505),
    (b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\nHost: x\r\n\r\n', 414),
    (b'GET /zato/ping HTTP/1.1\r\nHost: x\r\n' + b''.join(b'X-%d: 1\r\n' % i for i in range(150)) + b'\r\n', 431),
    (b'POST /zato/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n', 413),
])
def test_a_framing_error_gets_its_status_and_the_connection_is_closed(env, request_bytes, status):
    assert_refused_and_closed(env, request_bytes, status)


def assert_refused_and_closed(env, request_bytes: bytes, status: int) -> None:
    with connect(env) as s:
        s.sendall(request_bytes + PING)
        got, headers, body = read_responses(s, 1)[0]
        assert got == status
        assert headers['connection'] == 'close'
        assert b'ZATO_ERROR' in body
        assert len(headers['x-zato-cid']) == 24
        # Never resynchronised: the ping smuggled behind the bad request is not answered
        assert is_closed(s)


POST_PING = b'POST /zato/ping HTTP/1.1\r\nHost: x\r\n'
CHUNKED = POST_PING + b'Transfer-Encoding: chunked\r\n\r\n'


@pytest.mark.parametrize('request_bytes', [
    POST_PING + b'Content-Length: 2,2\r\n\r\n{}',
    POST_PING + b'Content-Length: 2, 2\r\n\r\n{}',
    POST_PING + b'Content-Length: 1000,1000\r\n\r\n{}',
    POST_PING + b'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}',
], ids=['list', 'list-with-space', 'list-of-1000', 'repeated'])
def test_a_list_valued_content_length_gets_400_and_the_connection_is_closed(env, request_bytes):
    assert_refused_and_closed(env, request_bytes, 400)


@pytest.mark.parametrize('size_line', [b'2;', b'2;;a', b'2;a=', b'2;a="b', b'2;a b', b'2;a=b;'])
def test_a_malformed_chunk_extension_gets_400_and_the_connection_is_closed(env, size_line):
    assert_refused_and_closed(env, CHUNKED + size_line + b'\r\n{}\r\n0\r\n\r\n', 400)


@pytest.mark.parametrize('line', [
    b'Content_Length: 2', b'CONTENT_LENGTH: 2', b'Content--Length: 2', b'ContentLength: 2', b'Transfer_Encoding: chunked',
    b'Transfer---Encoding: chunked', b'transfer_encoding: chunked', b'Ho_st: y',
])
def test_a_header_name_imitating_a_framing_header_gets_400_and_the_connection_is_closed(env, line):
    assert_refused_and_closed(env, POST_PING + line + b'\r\n\r\n2\r\n{}\r\n0\r\n\r\n', 400)


@pytest.mark.parametrize('start', [
    b'OPTIONS * HTTP/1.1', b'CONNECT 127.0.0.1:443 HTTP/1.1', b'CONNECT /zato/ping HTTP/1.1',
    b'GET ftp://x/zato/ping HTTP/1.1', b'GET http:///zato/ping HTTP/1.1', b'GET http://u@x/zato/ping HTTP/1.1',
    b'GET zato/ping HTTP/1.1',
])
def test_a_request_target_in_a_form_not_served_gets_400_and_the_connection_is_closed(env, start):
    assert_refused_and_closed(env, start + b'\r\nHost: x\r\n\r\n', 400)


def test_an_absolute_form_target_is_routed_on_its_path_and_the_connection_kept(env):
    authority = b'127.0.0.1:%d' % env.base_port
    with connect(env) as s:
        s.sendall(b'GET http://' + authority + b'/zato/ping HTTP/1.1\r\nHost: ' + authority + b'\r\n\r\n'
                  + b'GET HTTPS://' + authority + b'/zato/ping?x=1 HTTP/1.1\r\nHost: x\r\n\r\n' + PING)
        responses = read_responses(s, 3)
    assert [(status, body) for status, _, body in responses] == [(200, b'{"pong":"zato"}')] * 3


ECHO = '''
from zato.server.service import Service

class Echo(Service):
    def handle(self):
        http = self.request.http
        self.response.payload = {'host': http.headers['host'], 'path': http.path, 'query': http.GET}
'''


def test_a_service_called_with_an_absolute_form_target_sees_its_authority_as_the_host(env):
    env.drop('e2e_absolute_form.py', ECHO)
    env.wait_for(lambda: 'e2e-absolute-form.echo' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.channel('e2e-absolute-form', '/e2e/absolute-form', 'e2e-absolute-form.echo')
    env.wait_for(lambda: env.fresh_get(env.url + '/e2e/absolute-form').status_code == 200)
    with connect(env) as s:
        # RFC 9112 3.2.2: the Host header is ignored in favour of the target's authority
        s.sendall(b'GET http://example.org:81/e2e/absolute-form?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        status, _, body = read_responses(s, 1)[0]
    assert status == 200
    assert json.loads(body) == {'host': 'example.org:81', 'path': '/e2e/absolute-form', 'query': {'x': '1'}}


def test_a_client_that_never_finishes_its_head_gets_408_after_the_header_timeout(env):
    # The e2e environment runs with ZATO_HTTP_HEADER_TIMEOUT=2
    with connect(env) as s:
        started = time.monotonic()
        s.sendall(b'GET /zato/ping HTTP/1.1\r\nHost: x\r\n')
        for _ in range(4):
            time.sleep(0.3)
            s.sendall(b'X-Slow: 1\r\n')  # trickling bytes does not extend the deadline
        status = read_responses(s, 1, timeout=6)[0][0]
        assert status == 408
        assert 1.5 < time.monotonic() - started < 4.5
        assert is_closed(s)


def test_connection_close_from_the_client_is_honoured(env):
    with connect(env) as s:
        s.sendall(b'GET /zato/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        status, headers, _ = read_responses(s, 1)[0]
        assert status == 200 and headers['connection'] == 'close'
        assert is_closed(s)


def test_http_1_0_without_keep_alive_is_closed_after_the_response(env):
    with connect(env) as s:
        s.sendall(b'GET /zato/ping HTTP/1.0\r\n\r\n')
        assert read_responses(s, 1)[0][0] == 200
        assert is_closed(s)
