"""The default rate-limit definition (is_default) is the IP level of every request on every user
channel: a REST call and a WebSocket handshake alike. Its own environment, since a default definition
applies to everything."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.harness import Env
from tests.e2e.wsx_raw import handshake_request, new_key

ECHO = '''
from zato.server.service import Service

class Echo(Service):
    def handle(self):
        self.response.payload = {'ok': True}
'''


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    e = Env(str(tmp_path_factory.mktemp('default-allow') / 'env'))
    e.start()
    e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'da_echo.py', 'source': ECHO})
    e.wait_for(lambda: 'da-echo.echo' in [s['name'] for s in e.admin.call('GET', '/zato/admin/services')])
    e.channel('da-rest', '/da/rest', 'da-echo.echo')
    e.admin.call('POST', '/zato/admin/channels/wsx', {'name': 'da-wsx', 'url_path': '/da/wsx', 'service': 'da-echo.echo'})
    e.admin.call('POST', '/zato/admin/rate-limits', {
        'name': 'da-default', 'is_default': True,
        'rules': '127.0.0.1 = 1000000/s\n127.0.0.3 = 2/m'})
    yield e
    e.stop()


def status_from(env, source: str, request: bytes) -> int:
    """The status of the answer to `request`, sent from the loopback address `source`."""
    with socket.create_connection(('127.0.0.1', env.base_port), timeout=5, source_address=(source, 0)) as s:
        s.sendall(request)
        head = b''
        while b'\r\n' not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b' ', 2)[1])


def rest_get(path: str) -> bytes:
    return f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'.encode()


def handshake() -> bytes:
    return handshake_request('/da/wsx', '127.0.0.1', new_key())


def wait_until_applied(env) -> None:
    env.wait_for(lambda: {status_from(env, '127.0.0.2', rest_get('/da/rest')) for _ in range(6)} == {403})


def test_an_address_the_default_definition_does_not_list_gets_403_on_rest(env):
    wait_until_applied(env)
    assert status_from(env, '127.0.0.1', rest_get('/da/rest')) == 200


def test_an_address_the_default_definition_does_not_list_gets_403_at_the_websocket_handshake(env):
    wait_until_applied(env)
    assert {status_from(env, '127.0.0.2', handshake()) for _ in range(6)} == {403}
    assert {status_from(env, '127.0.0.1', handshake()) for _ in range(6)} == {101}


def test_websocket_handshakes_are_charged_to_the_default_definitions_limit(env):
    wait_until_applied(env)
    # 2 a minute per worker, two workers: five handshakes cannot all pass
    got = [status_from(env, '127.0.0.3', handshake()) for _ in range(5)]
    assert 101 in got and 429 in got, got
