"""The outgoing REST connection against a real HTTP server of the standard library, in threads of
this process: paths and query strings, JSON both ways, headers, Basic Auth and API keys, timeouts,
a server that is down and comes back, and TLS verified against a CA of our own."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.pki import make_pki
from zato.connectors.base import ConnectorTimeout, ConnectorUnavailable, FieldError, validate
from zato.connectors.rest import REST_FIELDS, RESTConnector, RESTResponse


class Handler(BaseHTTPRequestHandler):
    """Echoes each request as JSON; /slow takes a second, /status/N answers N, /text answers plain text."""

    protocol_version = 'HTTP/1.1'

    def log_message(self, *_: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        parts = urlsplit(self.path)
        self.server.seen.append((self.command, self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        if parts.path == '/slow':
            time.sleep(1.0)
        status = int(parts.path.rsplit('/', 1)[1]) if parts.path.startswith('/status/') else 200
        if parts.path == '/text':
            out, content_type = b'plain words', 'text/plain'
        else:
            out = json.dumps({'method': self.command, 'path': parts.path, 'query': parse_qs(parts.query),
                              'body': body.decode('utf-8', 'replace'),
                              'content_type': self.headers.get('Content-Type')}).encode()
            content_type = 'application/json'
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer  # noqa: N815 - http.server's names


class QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) is expected here


class Server:
    def __init__(self, port: int = 0, context: ssl.SSLContext | None = None) -> None:
        self.httpd = QuietHTTPServer(('127.0.0.1', port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.seen = []  # type: ignore[attr-defined]
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)

    @property
    def seen(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        return self.httpd.seen  # type: ignore[attr-defined, no-any-return]

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as s:
        yield s


@pytest.fixture
def make() -> Iterator[Any]:
    made: list[RESTConnector] = []

    def make(port: int, secret: str = '', scheme: str = 'http', **config: Any) -> RESTConnector:
        data = {'address_host': f'{scheme}://127.0.0.1:{port}', **config}
        full, _ = validate(REST_FIELDS, data)
        RESTConnector.check_config(full)
        c = RESTConnector('my rest', full, secret)
        c.start()
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


# ################################################################################################ calls

def test_placeholders_are_filled_and_quoted_and_the_other_params_make_the_query_string(server, make):
    conn = make(server.port, address_url_path='/customers/{cust_id}/orders/{order}')
    r = conn.get('cid-1', params={'cust_id': 'a b/c', 'order': 7, 'page': 2, 'q': 'x&y'})
    assert isinstance(r, RESTResponse) and r.status_code == 200
    assert server.seen[-1][1] == '/customers/a%20b%2Fc/orders/7?page=2&q=x%26y'
    assert r.data['query'] == {'page': ['2'], 'q': ['x&y']}


def test_a_missing_placeholder_is_a_value_error_naming_it(server, make):
    conn = make(server.port, address_url_path='/customers/{cust_id}')
    with pytest.raises(ValueError, match='placeholder `cust_id`'):
        conn.get('cid', params={'other': 1})
    assert server.seen == []


def test_json_goes_out_encoded_and_comes_back_parsed(server, make):
    conn = make(server.port, address_url_path='/items')
    r = conn.post('cid-2', {'name': 'ünïcode', 'n': [1, 2]})
    sent = server.seen[-1]
    assert sent[0] == 'POST' and json.loads(sent[3]) == {'name': 'ünïcode', 'n': [1, 2]}
    assert sent[2]['Content-Type'] == 'application/json' and sent[2]['X-Zato-CID'] == 'cid-2'
    assert r.data['method'] == 'POST' and json.loads(r.text) == r.data
    assert r.headers['Content-Type'] == 'application/json'

    for method in ('put', 'patch', 'delete'):
        r = getattr(conn, method)('cid-3', {'m': method})
        assert r.data['method'] == method.upper() and json.loads(r.data['body']) == {'m': method}

    # Already serialized: sent as is
    conn.post('cid-4', b'{"raw": true}')
    assert server.seen[-1][3] == b'{"raw": true}'


def test_a_connection_without_a_data_format_sends_bytes_as_is_and_parses_nothing(server, make):
    conn = make(server.port, address_url_path='/text', data_format='')
    r = conn.post('cid', b'\x00\x01binary')
    assert server.seen[-1][3] == b'\x00\x01binary' and 'Content-Type' not in server.seen[-1][2]
    assert r.data is None and r.text == 'plain words'
    with pytest.raises(TypeError, match='must be bytes or str'):
        conn.post('cid', {'a': 1})


def test_a_non_json_response_of_a_json_connection_has_no_data_but_its_text(server, make):
    r = make(server.port, address_url_path='/text').get('cid')
    assert r.status_code == 200 and r.data is None and r.text == 'plain words'


def test_error_statuses_are_answers_not_exceptions(server, make):
    r = make(server.port, address_url_path='/status/{code}').get('cid', params={'code': 503})
    assert r.status_code == 503 and not r.ok and r.data['path'] == '/status/503'


def test_configured_and_per_call_headers_are_sent_and_the_call_wins(server, make):
    conn = make(server.port, headers={'X-App': 'zato', 'X-Env': 'test'})
    conn.get('cid-h', headers={'X-Env': 'prod', 'X-Zato-CID': 'overridden'})
    headers = server.seen[-1][2]
    assert headers['X-App'] == 'zato' and headers['X-Env'] == 'prod' and headers['X-Zato-CID'] == 'overridden'
    conn.head('cid-head')
    assert server.seen[-1][0] == 'HEAD' and server.seen[-1][2]['X-Zato-CID'] == 'cid-head'


def test_basic_auth_is_sent(server, make):
    conn = make(server.port, secret='pa:ss wörd', auth_type='basic_auth', username='api-user')
    conn.get('cid')
    scheme, token = server.seen[-1][2]['Authorization'].split()
    assert scheme == 'Basic' and base64.b64decode(token).decode('latin-1') == 'api-user:pa:ss w\xf6rd'


def test_an_api_key_is_sent_in_the_header_named_by_username(server, make):
    conn = make(server.port, secret='k-123', auth_type='apikey', username='X-API-Key')
    conn.get('cid')
    assert server.seen[-1][2]['X-API-Key'] == 'k-123' and 'Authorization' not in server.seen[-1][2]


def test_the_secret_is_not_in_the_connectors_repr(make, server):
    conn = make(server.port, secret='k-123', auth_type='apikey', username='X-API-Key')
    assert 'k-123' not in repr(conn) and 'k-123' not in repr(conn.config)


# ################################################################################################ faults

def test_a_slow_server_is_a_connector_timeout(server, make):
    conn = make(server.port, address_url_path='/slow', timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ConnectorTimeout) as info:
        conn.get('cid')
    assert time.monotonic() - started < 0.9
    assert '`my rest`' in str(info.value) and info.value.name == 'my rest' and info.value.kind == 'rest'


def test_a_server_that_is_down_is_unavailable_until_it_comes_back(make):
    port = free_port()
    conn = make(port, address_url_path='/items/{id}')
    with pytest.raises(ConnectorUnavailable, match='`my rest`.*127.0.0.1'):
        conn.post('cid', {'a': 1}, params={'id': 1})
    with pytest.raises(ConnectorUnavailable):
        conn.ping()
    with Server(port) as server:
        r = conn.post('cid', {'a': 1}, params={'id': 1})
        assert r.status_code == 200 and r.data['path'] == '/items/1'
        assert conn.ping() > 0
        # Ping is a HEAD to the path as configured
        assert server.seen[-1][0] == 'HEAD' and server.seen[-1][1] == '/items/%7Bid%7D'


class DyingServer:
    """Reads each request and closes the connection without answering: a remote end that dies mid-call."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(('127.0.0.1', port))
        self.port = self.listener.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            while True:
                sock, _ = self.listener.accept()
                self.received.append(sock.recv(65536))
                sock.close()
        except OSError:
            pass

    def __enter__(self) -> DyingServer:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)


def test_a_server_that_dies_mid_call_is_unavailable_and_the_next_call_reconnects(make):
    with DyingServer() as dying:
        conn = make(dying.port)
        with pytest.raises(ConnectorUnavailable, match='RemoteDisconnected|ConnectionResetError'):
            conn.get('cid')
    with Server(dying.port):
        assert conn.get('cid').status_code == 200


def test_a_post_is_never_sent_twice(make):
    with DyingServer() as dying:
        conn = make(dying.port)
        with pytest.raises(ConnectorUnavailable):
            conn.post('cid', {'pay': 100})
        time.sleep(0.2)
        assert len(dying.received) == 1 and dying.received[0].startswith(b'POST ')


# ################################################################################################ TLS

@pytest.fixture(scope='module')
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA of our own and a certificate it issued for 127.0.0.1."""
    made = make_pki(str(tmp_path_factory.mktemp('pki')), 'rest')
    return {'ca': Path(made.ca_file), 'cert': Path(made.cert_file), 'key': Path(made.key_file)}


@pytest.fixture
def tls_server(pki) -> Iterator[Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki['cert'], pki['key'])
    with Server(context=context) as s:
        yield s


def test_tls_is_verified_with_the_configured_ca_file(tls_server, pki, make):
    conn = make(tls_server.port, scheme='https', tls_ca_file=str(pki['ca']))
    r = conn.get('cid')
    assert r.status_code == 200 and r.data['method'] == 'GET'
    assert conn.ping() > 0


def test_tls_verification_fails_without_the_ca_file(tls_server, make):
    conn = make(tls_server.port, scheme='https')
    with pytest.raises(ConnectorUnavailable, match='CERTIFICATE_VERIFY_FAILED'):
        conn.get('cid')


def test_tls_verification_can_be_turned_off(tls_server, make):
    conn = make(tls_server.port, scheme='https', tls_verify=False)
    with pytest.warns(Warning, match='Unverified HTTPS'):
        assert conn.get('cid').status_code == 200


# ################################################################################################ config

@pytest.mark.parametrize('data, field', [
    ({'address_host': 'ftp://h'}, 'address_host'),
    ({'address_host': 'http://h:99999'}, 'address_host'),
    ({'address_host': 'http://h:port'}, 'address_host'),
    ({'address_host': 'http://user:pw@h'}, 'address_host'),
    ({'address_host': 'http://h?x=1'}, 'address_host'),
    ({'address_host': 'http://h', 'address_url_path': 'no-slash'}, 'address_url_path'),
    ({'address_host': 'http://h', 'address_url_path': '/a/{b'}, 'address_url_path'),
    ({'address_host': 'http://h', 'address_url_path': '/a/{b:>3}'}, 'address_url_path'),
    ({'address_host': 'http://h', 'address_url_path': '/a?b=1'}, 'address_url_path'),
    ({'address_host': 'http://h', 'timeout': 0}, 'timeout'),
    ({'address_host': 'http://h', 'timeout': 'soon'}, 'timeout'),
    ({'address_host': 'http://h', 'pool_size': 0}, 'pool_size'),
    ({'address_host': 'http://h', 'data_format': 'xml'}, 'data_format'),
    ({'address_host': 'http://h', 'auth_type': 'ntlm'}, 'auth_type'),
    ({'address_host': 'http://h', 'tls_ca_file': '/no/such/ca.pem'}, 'tls_ca_file'),
    ({'address_host': 'http://h', 'headers': {'Bad Name': 'v'}}, 'headers'),
    ({'address_host': 'http://h', 'headers': {'X-A': 'v\r\nX-B: w'}}, 'headers'),
    ({'address_host': 'http://h', 'auth_type': 'basic_auth'}, 'username'),
    ({'address_host': 'http://h', 'auth_type': 'apikey', 'username': 'Not a header'}, 'username'),
    ({}, 'address_host'),
])
def test_a_config_that_cannot_work_is_refused_naming_the_field(data, field):
    with pytest.raises(FieldError) as info:
        config, _ = validate(REST_FIELDS, data)
        RESTConnector.check_config(config)
    assert info.value.field == field


def test_the_defaults_are_those_of_zato_3_1():
    config, secret = validate(REST_FIELDS, {'address_host': 'https://api.example.com'})
    assert config['timeout'] == 10.0 and config['pool_size'] == 20 and config['tls_verify'] is True
    assert config['data_format'] == 'json' and config['address_url_path'] == '/' and 'secret' not in config
