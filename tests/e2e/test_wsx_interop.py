"""WebSocket (WSX) channels used by real client libraries: `websockets` (its sync client, which offers
permessage-deflate by default) and `websocket-client`."""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from contextlib import ExitStack
from types import SimpleNamespace

import pytest
import requests
import websocket
from websocket import ABNF
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from tests.e2e.wsx_raw import create_channel, deploy, wait_until_served

PREFIX = '/ws/e2e-interop'
LIMIT = 4096
DEFAULT_LIMIT = 1048576
TIMEOUT = 5

SERVICES = '''
import base64
import json
import os
from zato.server.service import Service


class Echo(Service):
    name = 'e2e-wsx-interop.echo'

    def handle(self):
        payload = self.request.payload
        if payload == 'whoami':
            self.response.payload = json.dumps({'id': self.environ['pub_client_id'], 'pid': os.getpid()})
        else:
            self.response.payload = payload


class JSONEcho(Service):
    name = 'e2e-wsx-interop.json-echo'

    def handle(self):
        self.response.payload = {'echo': self.request.payload, 'channel': self.channel.name}
'''

CHANNELS = {
    'raw': ('/raw', 'e2e-wsx-interop.echo', {'data_format': ''}),
    'json': ('/json', 'e2e-wsx-interop.json-echo', {'data_format': 'json'}),
    'limits': ('/limits', 'e2e-wsx-interop.echo', {'data_format': '', 'max_message_size': LIMIT}),
    'secure': ('/secure', 'e2e-wsx-interop.json-echo', {'data_format': 'json', 'new_token_wait_time': 2}),
    'keepalive': ('/keepalive', 'e2e-wsx-interop.echo', {'data_format': '', 'ping_interval': 1,
                                                         'pings_missed_threshold': 2}),
    'admin': ('/admin', 'e2e-wsx-interop.echo', {'data_format': ''}),
}


@pytest.fixture(scope='module')
def wsx(env):
    deploy(env, 'e2e_wsx_interop.py', SERVICES)
    sec = env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-wsx-interop-basic', 'kind': 'basic_auth',
                                                          'username': 'interop-user'})
    ns = SimpleNamespace(env=env, username='interop-user', password=sec['password'], ids={}, urls={}, names={})
    for key, (path, service, extra) in CHANNELS.items():
        if key == 'secure':
            extra = {**extra, 'security': 'e2e-wsx-interop-basic'}
        name = f'e2e-wsx-interop-{key}'
        ns.ids[key] = create_channel(env, name, PREFIX + path, service, **extra)['id']
        ns.urls[key] = f'ws://127.0.0.1:{env.base_port}{PREFIX}{path}'
        ns.names[key] = name
    for path, *_ in CHANNELS.values():
        wait_until_served(env, PREFIX + path)
    yield ns
    for path in [f'/zato/admin/channels/wsx/{chan_id}' for chan_id in ns.ids.values()] + [
            f'/zato/admin/security/{sec["id"]}']:
        try:
            env.admin.call('DELETE', path)
        except Exception:
            pass


def ws_connect(wsx, key: str = 'raw', **kwargs):
    """The `websockets` sync client, with every wait bounded and no proxy from the environment."""
    options = {'open_timeout': TIMEOUT, 'close_timeout': TIMEOUT, 'proxy': None, 'ping_interval': None}
    options.update(kwargs)
    return connect(wsx.urls[key], **options)


def wc_connect(wsx, key: str = 'raw', **kwargs) -> websocket.WebSocket:
    """The `websocket-client` client."""
    return websocket.create_connection(wsx.urls[key], timeout=TIMEOUT, **kwargs)


def auth_header(username: str, password: str) -> str:
    return 'Basic ' + base64.b64encode(f'{username}:{password}'.encode()).decode()


def wc_close_frame(ws: websocket.WebSocket) -> int | None:
    """Reads until the server's close frame; its code (None if it has none)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        if opcode == ABNF.OPCODE_CLOSE:
            return struct.unpack('!H', frame.data[:2])[0] if len(frame.data) >= 2 else None
    raise AssertionError('no close frame')


def admin_request(env, method: str, path: str, payload=None) -> requests.Response:
    return requests.request(method, env.admin.base_url + path, headers=env.admin.headers,
                            data=None if payload is None else json.dumps(payload), timeout=5)


# The `websockets` package


class TestWebsockets:

    def test_text_and_binary_echo(self, wsx):
        with ws_connect(wsx) as ws:
            ws.send('hello from websockets')
            assert ws.recv(timeout=TIMEOUT) == 'hello from websockets'
            ws.send(b'\x00\x01\x02\xff')
            assert ws.recv(timeout=TIMEOUT) == b'\x00\x01\x02\xff'
            ws.send('κόσμε 😀')
            assert ws.recv(timeout=TIMEOUT) == 'κόσμε 😀'
            ws.send('')
            assert ws.recv(timeout=TIMEOUT) == ''

    def test_a_fragmented_message_from_an_iterable(self, wsx):
        with ws_connect(wsx) as ws:
            ws.send(['frag', 'ment', 'ed'])
            assert ws.recv(timeout=TIMEOUT) == 'fragmented'
            ws.send([b'\x01', b'\x02' * 70000, b'\x03'])
            assert ws.recv(timeout=TIMEOUT) == b'\x01' + b'\x02' * 70000 + b'\x03'

    @pytest.mark.parametrize('compression', ['deflate', None])
    def test_large_messages(self, wsx, compression):
        text = ('large message ' * (DEFAULT_LIMIT // 14 + 1))[:DEFAULT_LIMIT - 1]
        # The cap holds on the wire too, and incompressible data grows a little when deflated
        data = os.urandom(DEFAULT_LIMIT - (4096 if compression else 1))
        with ws_connect(wsx, compression=compression) as ws:
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text
            ws.send(data)
            assert ws.recv(timeout=TIMEOUT) == data

    def test_ping_pong(self, wsx):
        with ws_connect(wsx) as ws:
            assert ws.ping(b'are you there').wait(TIMEOUT)
            assert ws.ping().wait(TIMEOUT)
            started = time.monotonic()
            for _ in range(20):
                assert ws.ping().wait(TIMEOUT)
            assert time.monotonic() - started < 2
            ws.pong(b'unsolicited')
            ws.send('after pong')
            assert ws.recv(timeout=TIMEOUT) == 'after pong'

    def test_compression_is_negotiated_by_default(self, wsx):
        with ws_connect(wsx) as ws:
            extensions = ws.response.headers.get('Sec-WebSocket-Extensions', '')
            assert extensions.lower().startswith('permessage-deflate'), extensions
            text = json.dumps([{'id': i, 'name': 'compressible', 'tags': ['a', 'b', 'c']} for i in range(3000)])
            for _ in range(3):
                ws.send(text)
                assert ws.recv(timeout=TIMEOUT) == text
            ws.send(os.urandom(50000))
            assert len(ws.recv(timeout=TIMEOUT)) == 50000

    def test_compression_declined_by_the_client(self, wsx):
        with ws_connect(wsx, compression=None) as ws:
            assert 'Sec-WebSocket-Extensions' not in ws.response.headers
            ws.send('plain')
            assert ws.recv(timeout=TIMEOUT) == 'plain'

    def test_a_message_over_the_limit_is_closed_with_1009(self, wsx):
        for compression in ('deflate', None):
            with ws_connect(wsx, 'limits', compression=compression) as ws:
                ws.send(b'x' * LIMIT)
                assert ws.recv(timeout=TIMEOUT) == b'x' * LIMIT
                ws.send(b'x' * (LIMIT + 1))
                with pytest.raises(ConnectionClosedError) as info:
                    ws.recv(timeout=TIMEOUT)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1009

    @pytest.mark.parametrize('code', [1000, 1001, 3000, 4999])
    def test_the_client_close_code_is_echoed(self, wsx, code):
        with ws_connect(wsx) as ws:
            ws.send('x')
            ws.recv(timeout=TIMEOUT)
            ws.close(code, 'bye')
            assert ws.close_code == code

    def test_json_channel(self, wsx):
        with ws_connect(wsx, 'json') as ws:
            ws.send(json.dumps({'a': 1}))
            assert json.loads(ws.recv(timeout=TIMEOUT)) == {'echo': {'a': 1}, 'channel': wsx.names['json']}
            ws.send('{oops')
            resp = json.loads(ws.recv(timeout=TIMEOUT))
            assert resp['result'] == 'ZATO_ERROR' and 'Invalid JSON' in resp['details']
            ws.send('[1]')
            assert json.loads(ws.recv(timeout=TIMEOUT))['echo'] == [1]

    def test_basic_auth_at_the_handshake(self, wsx):
        headers = {'Authorization': auth_header(wsx.username, wsx.password)}
        with ws_connect(wsx, 'secure', additional_headers=headers) as ws:
            ws.send(json.dumps({'q': 1}))
            assert json.loads(ws.recv(timeout=TIMEOUT))['echo'] == {'q': 1}
        with pytest.raises(InvalidStatus) as info:
            ws_connect(wsx, 'secure', additional_headers={'Authorization': auth_header(wsx.username, 'wrong')})
        assert info.value.response.status_code == 401

    def test_create_session_and_invoke_service(self, wsx):
        with ws_connect(wsx, 'secure') as ws:
            ws.send(json.dumps({'meta': {'action': 'create-session', 'id': 'm1', 'username': wsx.username,
                                         'secret': wsx.password}}))
            resp = json.loads(ws.recv(timeout=TIMEOUT))
            assert (resp['meta']['status'], resp['meta']['in_reply_to']) == (200, 'm1')
            token = resp['data']['token']
            ws.send(json.dumps({'meta': {'action': 'invoke-service', 'id': 'm2', 'token': token}, 'data': {'x': 1}}))
            resp = json.loads(ws.recv(timeout=TIMEOUT))
            assert (resp['meta']['status'], resp['meta']['in_reply_to']) == (200, 'm2')
            assert resp['data']['echo'] == {'x': 1}

    def test_a_first_message_without_a_session_is_closed_with_1008(self, wsx):
        with ws_connect(wsx, 'secure') as ws:
            ws.send(json.dumps({'x': 1}))
            with pytest.raises(ConnectionClosedError) as info:
                ws.recv(timeout=TIMEOUT)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008

    def test_wrong_session_credentials_get_403_then_1008(self, wsx):
        with ws_connect(wsx, 'secure') as ws:
            ws.send(json.dumps({'meta': {'action': 'create-session', 'id': 'm1', 'username': wsx.username,
                                         'secret': 'wrong'}}))
            resp = json.loads(ws.recv(timeout=TIMEOUT))
            assert resp['meta']['status'] == 403
            assert resp['data'] == 'You are not authorized to access this resource'
            with pytest.raises(ConnectionClosedError) as info:
                ws.recv(timeout=TIMEOUT)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008

    def test_the_client_answers_keep_alive_pings_and_stays_connected(self, wsx):
        with ws_connect(wsx, 'keepalive') as ws:
            time.sleep(3.5)   # the server pings every second and gives up after two missed pongs
            ws.send('still here')
            assert ws.recv(timeout=TIMEOUT) == 'still here'

    def test_deleted_by_the_admin_api_the_client_sees_1000(self, wsx):
        with ws_connect(wsx, 'admin') as ws:
            ws.send('whoami')
            me = json.loads(ws.recv(timeout=TIMEOUT))
            r = admin_request(wsx.env, 'DELETE', f'/zato/admin/wsx/clients/{me["id"]}')
            assert r.status_code == 200, r.text
            with pytest.raises(ConnectionClosedOK) as info:
                ws.recv(timeout=TIMEOUT)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1000


# The `websocket-client` package


class TestWebsocketClient:

    def test_text_and_binary_echo(self, wsx):
        ws = wc_connect(wsx)
        try:
            ws.send('hello from websocket-client')
            assert ws.recv() == 'hello from websocket-client'
            ws.send_binary(b'\x00\xff\x10')
            opcode, data = ws.recv_data()
            assert (opcode, data) == (ABNF.OPCODE_BINARY, b'\x00\xff\x10')
            ws.send('κόσμε 😀')
            assert ws.recv() == 'κόσμε 😀'
        finally:
            ws.close()

    def test_large_messages(self, wsx):
        ws = wc_connect(wsx)
        try:
            text = ('large ' * (DEFAULT_LIMIT // 6 + 1))[:DEFAULT_LIMIT - 1]
            ws.send(text)
            assert ws.recv() == text
            data = os.urandom(DEFAULT_LIMIT - 1)
            ws.send_binary(data)
            assert ws.recv_data()[1] == data
        finally:
            ws.close()

    def test_fragmented_frames(self, wsx):
        ws = wc_connect(wsx)
        try:
            ws.send_frame(ABNF.create_frame('one ', ABNF.OPCODE_TEXT, fin=0))
            ws.ping('in between')
            ws.send_frame(ABNF.create_frame('two', ABNF.OPCODE_CONT, fin=1))
            opcode, frame = ws.recv_data_frame(control_frame=True)
            assert (opcode, frame.data) == (ABNF.OPCODE_PONG, b'in between')
            assert ws.recv() == 'one two'
        finally:
            ws.close()

    def test_ping_pong(self, wsx):
        ws = wc_connect(wsx)
        try:
            ws.ping('hello')
            opcode, frame = ws.recv_data_frame(control_frame=True)
            assert (opcode, frame.data) == (ABNF.OPCODE_PONG, b'hello')
            ws.pong('unsolicited')
            ws.send('after')
            assert ws.recv() == 'after'
        finally:
            ws.close()

    def test_over_the_limit_is_closed_with_1009(self, wsx):
        ws = wc_connect(wsx, 'limits')
        try:
            ws.send_binary(b'y' * (LIMIT + 1))
            assert wc_close_frame(ws) == 1009
        finally:
            ws.shutdown()

    def test_invalid_utf8_text_is_closed_with_1007(self, wsx):
        ws = wc_connect(wsx)
        try:
            ws.send(b'bad \xff utf-8', opcode=ABNF.OPCODE_TEXT)
            assert wc_close_frame(ws) == 1007
        finally:
            ws.shutdown()

    @pytest.mark.parametrize('code', [1000, 1001, 3000, 4999])
    def test_the_client_close_code_is_echoed(self, wsx, code):
        ws = wc_connect(wsx)
        try:
            ws.send_close(status=code, reason=b'bye')
            assert wc_close_frame(ws) == code
        finally:
            ws.shutdown()

    def test_basic_auth_at_the_handshake(self, wsx):
        ws = wc_connect(wsx, 'secure', header=[f'Authorization: {auth_header(wsx.username, wsx.password)}'])
        try:
            ws.send(json.dumps({'q': 2}))
            assert json.loads(ws.recv())['echo'] == {'q': 2}
        finally:
            ws.close()
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            wc_connect(wsx, 'secure', header=[f'Authorization: {auth_header("nobody", "x")}'])
        assert info.value.status_code == 401

    def test_no_session_in_time_is_closed_with_1008(self, wsx):
        ws = wc_connect(wsx, 'secure')
        try:
            started = time.monotonic()
            assert wc_close_frame(ws) == 1008
            assert time.monotonic() - started < 4.5
        finally:
            ws.shutdown()

    def test_admin_send_and_delete(self, wsx):
        ws = wc_connect(wsx, 'admin')
        try:
            ws.send('whoami')
            me = json.loads(ws.recv())
            r = admin_request(wsx.env, 'POST', f'/zato/admin/wsx/clients/{me["id"]}/send', {'data': {'k': 'v'}})
            assert r.status_code == 200, r.text
            assert json.loads(ws.recv()) == {'k': 'v'}
            r = admin_request(wsx.env, 'DELETE', f'/zato/admin/wsx/clients/{me["id"]}')
            assert r.status_code == 200, r.text
            assert wc_close_frame(ws) == 1000
        finally:
            ws.shutdown()


# Both libraries together


def test_a_broadcast_reaches_clients_of_both_libraries(wsx):
    with ExitStack() as stack:
        sockets = [stack.enter_context(ws_connect(wsx, 'admin', compression=c)) for c in ('deflate', None)
                   for _ in range(5)]
        clients = [wc_connect(wsx, 'admin') for _ in range(10)]
        for ws in clients:
            stack.callback(ws.shutdown)
        ids = set()
        for ws in sockets:
            ws.send('whoami')
            ids.add(json.loads(ws.recv(timeout=TIMEOUT))['id'])
        for ws in clients:
            ws.send('whoami')
            ids.add(json.loads(ws.recv())['id'])
        listed = {item['id'] for item in wsx.env.admin.call('GET', f'/zato/admin/channels/wsx/{wsx.ids["admin"]}/clients')}
        assert ids <= listed
        r = admin_request(wsx.env, 'POST', f'/zato/admin/channels/wsx/{wsx.ids["admin"]}/broadcast',
                          {'data': 'hello, everyone ' * 100})
        assert r.status_code == 202, r.text
        for ws in sockets:
            assert ws.recv(timeout=TIMEOUT) == 'hello, everyone ' * 100
        for ws in clients:
            assert ws.recv() == 'hello, everyone ' * 100
