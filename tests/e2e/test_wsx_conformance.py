"""WebSocket (WSX) channels over raw sockets: RFC 6455 and RFC 7692 conformance, organised like the
Autobahn TestSuite's categories, plus the Zato-specific rules (sessions, keep-alive, hooks, admin API).

Every frame is built by tests/e2e/wsx_raw.py, never by the server's own code.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from types import SimpleNamespace

import pytest
import requests

from tests.e2e.wsx_raw import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, RSV2, RSV3, WSClient,
                               accept_for, basic_auth, build_frame, close_payload, create_channel, deploy,
                               handshake_request, wait_until_served)

PREFIX = '/ws/e2e-conf'
LIMIT = 4096
DEFAULT_LIMIT = 1048576

SERVICES = '''
import json
import os
from zato.server.service import Service

COUNT_FILE = {count_file!r}
HOOKS_FILE = {hooks_file!r}


class Echo(Service):
    name = 'e2e-wsx-conf.echo'

    def handle(self):
        payload = self.request.payload
        if payload == 'whoami':
            self.response.payload = json.dumps({{'id': self.environ['pub_client_id'], 'pid': os.getpid()}})
        else:
            self.response.payload = payload


class JSONEcho(Service):
    name = 'e2e-wsx-conf.json-echo'

    def handle(self):
        self.response.payload = {{'echo': self.request.payload}}


class Counted(Service):
    name = 'e2e-wsx-conf.counted'

    def handle(self):
        with open(COUNT_FILE, 'a') as f:
            f.write('ran\\n')
        self.response.payload = {{'ran': True, 'got': self.request.payload}}


class Hooks(Service):
    name = 'e2e-wsx-conf.hooks'

    def _record(self, event):
        with open(HOOKS_FILE, 'a') as f:
            f.write(json.dumps({{'event': event, 'pub_client_id': self.environ.get('pub_client_id'),
                                'peer_host': self.environ.get('peer_host')}}) + '\\n')

    def on_connected(self):
        self._record('connected')

    def on_disconnected(self):
        self._record('disconnected')

    def handle(self):
        self.response.payload = {{'pub_client_id': self.environ['pub_client_id']}}
'''

CHANNELS = {
    # key: (url path, service, extra)
    'raw': ('/raw', 'e2e-wsx-conf.echo', {'data_format': ''}),
    'json': ('/json', 'e2e-wsx-conf.json-echo', {'data_format': 'json', 'origins': ['*']}),
    'origins': ('/origins', 'e2e-wsx-conf.echo', {'data_format': '', 'origins': ['https://good.example']}),
    'limits': ('/limits', 'e2e-wsx-conf.echo', {'data_format': '', 'max_message_size': LIMIT}),
    'secure': ('/secure', 'e2e-wsx-conf.counted', {'data_format': 'json', 'new_token_wait_time': 1}),
    'keepalive': ('/keepalive', 'e2e-wsx-conf.echo', {'data_format': '', 'ping_interval': 1,
                                                      'pings_missed_threshold': 2}),
    'hooks': ('/hooks', 'e2e-wsx-conf.hooks', {'data_format': 'json'}),
    'admin': ('/admin', 'e2e-wsx-conf.echo', {'data_format': ''}),
    'slow': ('/slow', 'e2e-wsx-conf.echo', {'data_format': '', 'send_queue_max': 5}),
}


@pytest.fixture(scope='module')
def wsx(env, tmp_path_factory):
    work = tmp_path_factory.mktemp('wsx-conf')
    count_file = str(work / 'count.txt')
    hooks_file = str(work / 'hooks.jsonl')
    deploy(env, 'e2e_wsx_conf.py', SERVICES.format(count_file=count_file, hooks_file=hooks_file))
    sec = env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-wsx-conf-basic', 'kind': 'basic_auth',
                                                          'username': 'wsx-user'})
    ns = SimpleNamespace(env=env, count_file=count_file, hooks_file=hooks_file, username='wsx-user',
                         password=sec['password'], ids={}, paths={}, names={})
    for key, (path, service, extra) in CHANNELS.items():
        if key == 'secure':
            extra = {**extra, 'security': 'e2e-wsx-conf-basic'}
        name = f'e2e-wsx-conf-{key}'
        created = create_channel(env, name, PREFIX + path, service, **extra)
        ns.ids[key] = created['id']
        ns.paths[key] = PREFIX + path
        ns.names[key] = name
    for key in CHANNELS:
        wait_until_served(env, ns.paths[key])
    yield ns
    for path in [f'/zato/admin/channels/wsx/{chan_id}' for chan_id in ns.ids.values()] + [
            f'/zato/admin/security/{sec["id"]}']:
        try:
            env.admin.call('DELETE', path)
        except Exception:
            pass


def client(wsx, key: str = 'raw', **kwargs) -> WSClient:
    return WSClient('127.0.0.1', wsx.env.base_port, wsx.paths[key]).connect(**kwargs)


def raw_response(wsx, request: bytes) -> tuple[WSClient, object]:
    c = WSClient('127.0.0.1', wsx.env.base_port, '/').open()
    c.send_raw(request)
    return c, c.read_response()


def assert_refused(c: WSClient, resp, status: int) -> None:
    assert resp.status == status, (resp.status, resp.headers, resp.body)
    body = resp.json()
    assert body['result'] == 'ZATO_ERROR'
    assert body['cid'] and isinstance(body['cid'], str)
    assert body['details']
    assert resp.headers['content-type'].startswith('application/json')
    assert c.tcp_closed(), 'the connection stays open after a refused handshake'


def count_runs(wsx) -> int:
    try:
        with open(wsx.count_file, encoding='utf-8') as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def hook_records(wsx) -> list[dict]:
    try:
        with open(wsx.hooks_file, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass   # a line being written right now
    return out


def admin_request(env, method: str, path: str, payload=None) -> requests.Response:
    return requests.request(method, env.admin.base_url + path, headers=env.admin.headers,
                            data=None if payload is None else json.dumps(payload), timeout=5)


def text_of(n: int) -> str:
    return ('abcdefghijklmnopqrstuvwxyz0123456789' * (n // 36 + 1))[:n]


def whoami(c: WSClient) -> dict:
    c.send_text('whoami')
    return json.loads(c.recv_text())


# 1. Opening handshake


class TestHandshake:

    def test_the_rfc_example_key_gets_the_rfc_accept_value(self, wsx):
        assert accept_for('dGhlIHNhbXBsZSBub25jZQ==') == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
        with WSClient('127.0.0.1', wsx.env.base_port, wsx.paths['raw']).open() as c:
            c.send_raw(c.request(key='dGhlIHNhbXBsZSBub25jZQ=='))
            resp = c.read_response()
            assert resp.status == 101
            assert resp.headers['sec-websocket-accept'] == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='

    def test_101_has_upgrade_connection_and_accept_and_no_unasked_protocol_or_extension(self, wsx):
        with client(wsx) as c:
            resp = c.response
            assert resp.status == 101
            assert resp.headers['upgrade'].lower() == 'websocket'
            assert 'upgrade' in [v.lower() for v in resp.header_list('connection')]
            assert resp.headers['sec-websocket-accept'] == accept_for(c.key)
            assert 'sec-websocket-extensions' not in resp.headers
            assert 'sec-websocket-protocol' not in resp.headers
            assert 'content-length' not in resp.headers or resp.headers['content-length'] == '0'
            c.send_text('after the handshake')
            assert c.recv_text() == 'after the handshake'

    def test_header_values_are_case_insensitive_and_connection_is_a_token_list(self, wsx):
        with WSClient('127.0.0.1', wsx.env.base_port, wsx.paths['raw']).open() as c:
            c.send_raw(c.request(upgrade='WebSocket', connection='keep-alive, Upgrade'))
            resp = c.read_response()
            assert resp.status == 101, (resp.status, resp.body)
            assert resp.headers['sec-websocket-accept'] == accept_for(c.key)
            c.send_text('ok')
            assert c.recv_text() == 'ok'

    def test_an_unsupported_subprotocol_is_not_selected(self, wsx):
        with client(wsx, headers=[('Sec-WebSocket-Protocol', 'chat, superchat')]) as c:
            assert c.response.headers.get('sec-websocket-protocol') in (None, 'chat', 'superchat')
            c.send_text('x')
            assert c.recv_text() == 'x'

    def test_an_unknown_extension_is_not_accepted(self, wsx):
        with client(wsx, extensions='x-webkit-unknown-frame; level=9') as c:
            assert 'sec-websocket-extensions' not in c.response.headers
            c.send_text('x')
            assert c.recv_text() == 'x'

    @pytest.mark.parametrize('version', ['8', '12', '14', '0', 'abc'])
    def test_a_version_other_than_13_gets_426_naming_13(self, wsx, version):
        c, resp = raw_response(wsx, handshake_request(wsx.paths['raw'], 'x', 'dGhlIHNhbXBsZSBub25jZQ==',
                                                      version=version))
        with c:
            assert '13' in [v.strip() for v in resp.headers.get('sec-websocket-version', '').split(',')]
            assert_refused(c, resp, 426)

    def test_a_missing_version_is_refused(self, wsx):
        c, resp = raw_response(wsx, handshake_request(wsx.paths['raw'], 'x', 'dGhlIHNhbXBsZSBub25jZQ==',
                                                      version=None))
        with c:
            assert resp.status in (400, 426)
            assert_refused(c, resp, resp.status)

    @pytest.mark.parametrize('key', [None, '', 'abc', 'dGhlIHNhbXBsZSBub25jZQ', 'AAAAAAAAAAAAAAAAAAAA',
                                     'not base64 at all!!!!!==', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAA'])
    def test_a_missing_or_bad_key_gets_400(self, wsx, key):
        c, resp = raw_response(wsx, handshake_request(wsx.paths['raw'], 'x', key))
        with c:
            assert_refused(c, resp, 400)

    def test_a_plain_get_on_a_websocket_path_gets_426(self, wsx):
        path = wsx.paths['raw'].encode()
        c, resp = raw_response(wsx, b'GET ' + path + b' HTTP/1.1\r\nHost: x\r\n\r\n')
        with c:
            assert_refused(c, resp, 426)

    def test_a_post_with_upgrade_headers_gets_405(self, wsx):
        c, resp = raw_response(wsx, handshake_request(wsx.paths['raw'], 'x', 'dGhlIHNhbXBsZSBub25jZQ==',
                                                      method='POST', headers=[('Content-Length', '0')]))
        with c:
            assert_refused(c, resp, 405)

    def test_origin_rules_without_an_allow_list(self, wsx):
        port = wsx.env.base_port
        # No Origin (not a browser): allowed; a page of the same origin: allowed
        with client(wsx):
            pass
        with client(wsx, origin=f'http://127.0.0.1:{port}'):
            pass
        for origin in ('https://evil.example', 'null', f'http://127.0.0.1:{port + 1}'):
            c = WSClient('127.0.0.1', port, wsx.paths['raw'])
            with c.connect(origin=origin, expect_status=None):
                assert_refused(c, c.response, 403)

    def test_origin_rules_with_an_allow_list_and_with_a_wildcard(self, wsx):
        port = wsx.env.base_port
        with client(wsx, 'origins', origin='https://good.example') as c:
            c.send_text('hi')
            assert c.recv_text() == 'hi'
        for origin in ('https://evil.example', 'https://good.example.evil.example', 'http://good.example'):
            c = WSClient('127.0.0.1', port, wsx.paths['origins'])
            with c.connect(origin=origin, expect_status=None):
                assert_refused(c, c.response, 403)
        with client(wsx, 'json', origin='https://anything.example'):
            pass

    def test_frames_sent_with_the_handshake_request_are_processed(self, wsx):
        frames = build_frame(OP_TEXT, 'early bird') + build_frame(OP_BINARY, b'\x00\x01worm')
        with client(wsx, after=frames) as c:
            assert c.recv_message().text == 'early bird'
            msg = c.recv_message()
            assert (msg.opcode, msg.data) == (OP_BINARY, b'\x00\x01worm')

    @pytest.mark.parametrize('kwargs', [{'http_version': 'HTTP/1.0'}, {'connection': 'keep-alive'},
                                        {'connection': None}, {'upgrade': 'h2c'}])
    def test_a_handshake_that_is_not_a_websocket_upgrade_gets_400(self, wsx, kwargs):
        with WSClient('127.0.0.1', wsx.env.base_port, wsx.paths['raw']).open() as c:
            c.send_raw(c.request(**kwargs))
            assert_refused(c, c.read_response(), 400)

    def test_an_upgrade_pipelined_behind_a_plain_http_request(self, wsx):
        with WSClient('127.0.0.1', wsx.env.base_port, wsx.paths['raw']).open() as c:
            c.send_raw(b'GET /zato/ping HTTP/1.1\r\nHost: x\r\n\r\n' + c.request() + build_frame(OP_TEXT, 'piped'))
            assert c.read_response().status == 200
            resp = c.read_response()
            assert resp.status == 101 and resp.headers['sec-websocket-accept'] == accept_for(c.key)
            assert c.recv_text() == 'piped'

    def test_a_handshake_trickled_in_pieces(self, wsx):
        with WSClient('127.0.0.1', wsx.env.base_port, wsx.paths['raw']).open() as c:
            request = c.request()
            for start in range(0, len(request), 7):
                c.send_raw(request[start:start + 7])
                time.sleep(0.005)
            assert c.read_response().status == 101
            c.send_text('trickled')
            assert c.recv_text() == 'trickled'

    def test_a_query_string_does_not_change_the_channel(self, wsx):
        with WSClient('127.0.0.1', wsx.env.base_port, wsx.paths['raw'] + '?client=1&x=y').connect() as c:
            c.send_text('query')
            assert c.recv_text() == 'query'

    def test_an_unknown_websocket_path_is_a_404(self, wsx):
        c = WSClient('127.0.0.1', wsx.env.base_port, PREFIX + '/no-such-channel')
        with c.connect(expect_status=None):
            assert c.response.status == 404


# 2. Framing


class TestFraming:

    @pytest.mark.parametrize('length', [0, 1, 125, 126, 127, 128, 65535, 65536, DEFAULT_LIMIT - 1])
    def test_text_echo_of_each_length_encoding(self, wsx, length):
        text = text_of(length)
        with client(wsx) as c:
            c.send_text(text)
            msg = c.recv_message()
            assert msg.opcode == OP_TEXT
            assert len(msg.data) == length and msg.text == text

    @pytest.mark.parametrize('length', [0, 125, 126, 127, 65535, 65536, DEFAULT_LIMIT - 1])
    def test_binary_echo_of_each_length_encoding(self, wsx, length):
        data = os.urandom(length)
        with client(wsx) as c:
            c.send_binary(data)
            msg = c.recv_message()
            assert msg.opcode == OP_BINARY
            assert msg.data == data

    @pytest.mark.parametrize('length, length_bytes', [(125, 0), (126, 2), (65535, 2), (65536, 8)])
    def test_the_server_uses_the_minimal_length_encoding(self, wsx, length, length_bytes):
        with client(wsx) as c:
            c.send_binary(b'\xab' * length)
            frame = c.recv_frame()
            assert frame.opcode == OP_BINARY and frame.fin
            assert len(frame.payload) == length
            assert frame.length_bytes == length_bytes

    def test_an_unmasked_client_frame_is_closed_with_1002(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, 'not masked', mask=False)
            c.expect_close_code(1002)

    def test_an_unmasked_frame_after_a_good_one(self, wsx):
        with client(wsx) as c:
            c.send_text('good')
            assert c.recv_text() == 'good'
            c.send_frame(OP_BINARY, b'bad', mask=False)
            c.expect_close_code(1002)

    def test_many_frames_in_one_tcp_write_are_all_answered_in_order(self, wsx):
        with client(wsx) as c:
            c.send_raw(b''.join(build_frame(OP_TEXT, f'message {i}') for i in range(200)))
            for i in range(200):
                assert c.recv_text() == f'message {i}'

    def test_a_frame_trickled_byte_by_byte(self, wsx):
        with client(wsx) as c:
            frame = build_frame(OP_TEXT, 'slowly, byte by byte: ' + 'x' * 130)   # a 16-bit length
            for i in range(len(frame)):
                c.send_raw(frame[i:i + 1])
                time.sleep(0.002)
            assert c.recv_text() == 'slowly, byte by byte: ' + 'x' * 130

    def test_a_frame_split_at_every_header_boundary(self, wsx):
        with client(wsx) as c:
            frame = build_frame(OP_BINARY, b'z' * 70000)   # a 64-bit length
            for cut in (1, 2, 10, 14, 100, 40000):
                c.send_raw(frame[:cut])
                frame = frame[cut:]
                time.sleep(0.01)
            c.send_raw(frame)
            assert c.recv_message().data == b'z' * 70000

    def test_the_most_significant_bit_of_a_64_bit_length_is_an_error(self, wsx):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_BINARY, b'', declared_length=1 << 63 | 5) + b'abcde')
            result = c.expect_close()
            assert result.got_close_frame and result.code in (1002, 1009), result.code
            assert result.tcp_closed

    def test_an_all_zero_mask_key_is_still_a_mask(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, 'zero mask', mask_key=b'\x00\x00\x00\x00')
            assert c.recv_text() == 'zero mask'


# 3. Pings and pongs


class TestPingsPongs:

    @pytest.mark.parametrize('payload', [b'', b'hello', bytes(range(125)), b'\xff\xfe\x00'])
    def test_a_ping_gets_a_pong_with_the_same_payload(self, wsx, payload):
        with client(wsx) as c:
            c.ping(payload)
            frame = c.recv_frame()
            assert frame.opcode == OP_PONG and frame.fin
            assert frame.payload == payload

    def test_a_ping_of_126_bytes_is_closed_with_1002(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_PING, b'p' * 126)
            result = c.expect_close_code(1002)
            assert not [f for f in result.frames if f.opcode == OP_PONG]

    def test_an_unsolicited_pong_is_ignored(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_PONG, b'unsolicited')
            c.send_frame(OP_PONG, b'')
            c.send_text('still here')
            frame = c.recv_frame()
            assert (frame.opcode, frame.payload) == (OP_TEXT, b'still here')

    def test_a_pong_with_the_payload_of_an_earlier_ping_is_ignored(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_PONG, b'zato')
            c.send_frame(OP_PONG, b'p' * 125)
            c.send_text('fine')
            assert c.recv_text() == 'fine'

    def test_many_pings_in_one_write_the_last_one_is_answered(self, wsx):
        with client(wsx) as c:
            c.send_raw(b''.join(build_frame(OP_PING, b'ping %d' % i) for i in range(10)) + build_frame(OP_TEXT, 'end'))
            pongs = []
            msg = c.recv_message(controls=pongs)
            assert msg.text == 'end'
            payloads = [f.payload for f in pongs if f.opcode == OP_PONG]
            assert payloads and payloads[-1] == b'ping 9'
            assert payloads == sorted(payloads, key=lambda p: int(p.split()[1]))

    def test_a_ping_during_a_large_message_is_answered(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_BINARY, b'a' * 50000, fin=False)
            c.ping(b'between')
            frame = c.recv_frame()
            assert (frame.opcode, frame.payload) == (OP_PONG, b'between')
            c.send_frame(OP_CONT, b'b' * 50000)
            assert c.recv_message().data == b'a' * 50000 + b'b' * 50000


# 4. Reserved bits


class TestReservedBits:

    @pytest.mark.parametrize('rsv', [RSV1, RSV2, RSV3, RSV1 | RSV2, RSV2 | RSV3, RSV1 | RSV2 | RSV3])
    @pytest.mark.parametrize('opcode', [OP_TEXT, OP_BINARY, OP_PING])
    def test_reserved_bits_without_an_extension_are_closed_with_1002(self, wsx, rsv, opcode):
        with client(wsx) as c:
            c.send_frame(opcode, b'hello', rsv=rsv)
            result = c.expect_close_code(1002)
            assert not [f for f in result.frames if f.opcode in (OP_TEXT, OP_BINARY, OP_PONG)]

    def test_reserved_bits_on_a_close_frame(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_CLOSE, close_payload(1000), rsv=RSV2)
            c.expect_close_code(1002)

    @pytest.mark.parametrize('rsv', [RSV1, RSV2, RSV3])
    def test_after_a_good_message_and_before_a_ping_the_ping_is_never_answered(self, wsx, rsv):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_TEXT, 'good') + build_frame(OP_TEXT, 'bad', rsv=rsv) + build_frame(OP_PING, b'p'))
            result = c.expect_close_code(1002)
            assert not [f for f in result.frames if f.opcode == OP_PONG]
            # The good message came first, so it is answered first
            assert [f.payload for f in result.frames if f.opcode == OP_TEXT] == [b'good']

    def test_reserved_bits_on_a_continuation_frame(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, 'first', fin=False)
            c.send_frame(OP_CONT, 'second', rsv=RSV3)
            c.expect_close_code(1002)


# 5. Opcodes


class TestOpcodes:

    @pytest.mark.parametrize('opcode', [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
    def test_a_reserved_opcode_is_closed_with_1002(self, wsx, opcode):
        with client(wsx) as c:
            c.send_frame(opcode, b'')
            c.expect_close_code(1002)

    @pytest.mark.parametrize('opcode', [3, 7, 11, 15])
    def test_a_reserved_opcode_with_payload_after_a_good_message(self, wsx, opcode):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_TEXT, 'good') + build_frame(opcode, b'reserved payload')
                       + build_frame(OP_PING, b'never'))
            result = c.expect_close_code(1002)
            assert not [f for f in result.frames if f.opcode == OP_PONG]


# 6. Fragmentation


class TestFragmentation:

    def test_a_text_message_in_two_fragments_arrives_whole(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, 'frag', fin=False)
            c.send_frame(OP_CONT, 'mented')
            msg = c.recv_message()
            assert (msg.opcode, msg.text) == (OP_TEXT, 'fragmented')

    def test_a_binary_message_in_many_fragments_some_empty(self, wsx):
        parts = [b'', b'a', b'', b'bc' * 100, os.urandom(70000), b'', b'end']
        with client(wsx) as c:
            c.send_frame(OP_BINARY, parts[0], fin=False)
            for part in parts[1:-1]:
                c.send_frame(OP_CONT, part, fin=False)
            c.send_frame(OP_CONT, parts[-1])
            msg = c.recv_message()
            assert (msg.opcode, msg.data) == (OP_BINARY, b''.join(parts))

    def test_a_message_of_one_byte_fragments_in_one_write(self, wsx):
        text = text_of(300)
        frames = [build_frame(OP_TEXT, text[0], fin=False)]
        frames += [build_frame(OP_CONT, ch, fin=False) for ch in text[1:-1]]
        frames.append(build_frame(OP_CONT, text[-1]))
        with client(wsx) as c:
            c.send_raw(b''.join(frames))
            assert c.recv_text() == text

    def test_an_empty_message_in_empty_fragments(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, b'', fin=False)
            c.send_frame(OP_CONT, b'', fin=False)
            c.send_frame(OP_CONT, b'')
            msg = c.recv_message()
            assert (msg.opcode, msg.data) == (OP_TEXT, b'')

    def test_pings_interleaved_in_a_fragmented_message_are_answered_and_the_message_arrives_whole(self, wsx):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_TEXT, 'one ', fin=False) + build_frame(OP_PING, b'ping-1')
                       + build_frame(OP_CONT, 'two ', fin=False) + build_frame(OP_PING, b'ping-2')
                       + build_frame(OP_CONT, 'three'))
            controls = []
            msg = c.recv_message(controls=controls)
            assert msg.text == 'one two three'
            assert [(f.opcode, f.payload) for f in controls] == [(OP_PONG, b'ping-1'), (OP_PONG, b'ping-2')]

    def test_pings_interleaved_one_write_at_a_time(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_BINARY, b'\x01', fin=False)
            for i in range(5):
                c.ping(b'%d' % i)
                frame = c.recv_frame()
                assert (frame.opcode, frame.payload) == (OP_PONG, b'%d' % i)
                c.send_frame(OP_CONT, b'\x02', fin=False)
            c.send_frame(OP_CONT, b'\x03')
            assert c.recv_message().data == b'\x01' + b'\x02' * 5 + b'\x03'

    def test_an_unsolicited_pong_inside_a_fragmented_message(self, wsx):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_TEXT, 'a', fin=False) + build_frame(OP_PONG, b'x') + build_frame(OP_CONT, 'b'))
            assert c.recv_text() == 'ab'

    @pytest.mark.parametrize('opcode', [OP_PING, OP_PONG, OP_CLOSE])
    def test_a_fragmented_control_frame_is_closed_with_1002(self, wsx, opcode):
        with client(wsx) as c:
            payload = close_payload(1000) if opcode == OP_CLOSE else b'frag'
            c.send_frame(opcode, payload, fin=False)
            c.send_frame(OP_CONT, b'ment')
            result = c.expect_close_code(1002)
            assert not [f for f in result.frames if f.opcode == OP_PONG]

    def test_a_continuation_with_nothing_to_continue_is_closed_with_1002(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_CONT, 'orphan')
            c.expect_close_code(1002)

    def test_a_non_final_continuation_with_nothing_to_continue(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_CONT, 'orphan', fin=False)
            c.send_frame(OP_CONT, 'orphan')
            c.expect_close_code(1002)

    def test_a_continuation_after_a_complete_message_is_closed_with_1002(self, wsx):
        with client(wsx) as c:
            c.send_text('complete')
            assert c.recv_text() == 'complete'
            c.send_frame(OP_CONT, 'more')
            c.expect_close_code(1002)

    @pytest.mark.parametrize('first, second', [(OP_TEXT, OP_TEXT), (OP_TEXT, OP_BINARY), (OP_BINARY, OP_TEXT),
                                               (OP_BINARY, OP_BINARY)])
    def test_a_new_data_frame_in_the_middle_of_a_fragmented_message_is_closed_with_1002(self, wsx, first, second):
        with client(wsx) as c:
            c.send_frame(first, b'start', fin=False)
            c.send_frame(second, b'intruder')
            result = c.expect_close_code(1002)
            assert not [f for f in result.frames if f.opcode in (OP_TEXT, OP_BINARY)]


# 6b. Frames are handled in the order they arrive, even when the last of them breaks the protocol


BROKEN_FRAMES = {
    'rsv1 without an extension': build_frame(OP_TEXT, 'bad', rsv=RSV1),
    'rsv2': build_frame(OP_TEXT, 'bad', rsv=RSV2),
    'rsv3': build_frame(OP_BINARY, b'bad', rsv=RSV3),
    'reserved data opcode': build_frame(3, b'bad'),
    'reserved control opcode': build_frame(11, b''),
    'stray continuation': build_frame(OP_CONT, 'bad'),
    'unmasked frame': build_frame(OP_TEXT, 'bad', mask=False),
}


class TestOrderBeforeAnError:

    @pytest.mark.parametrize('broken', BROKEN_FRAMES.values(), ids=list(BROKEN_FRAMES))
    def test_messages_before_a_broken_frame_in_the_same_write_are_answered_before_the_close(self, wsx, broken):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_TEXT, 'first') + build_frame(OP_BINARY, b'second')
                       + build_frame(OP_TEXT, 'third', fin=False) + build_frame(OP_CONT, ' and last') + broken)
            result = c.expect_close_code(1002)
            assert [(f.opcode, f.payload) for f in result.frames] == [
                (OP_TEXT, b'first'), (OP_BINARY, b'second'), (OP_TEXT, b'third and last')]

    def test_a_message_before_invalid_utf8_in_the_same_write_is_answered_before_the_1007(self, wsx):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_TEXT, 'good') + build_frame(OP_TEXT, b'\xff'))
            result = c.expect_close_code(1007)
            assert [(f.opcode, f.payload) for f in result.frames] == [(OP_TEXT, b'good')]

    def test_a_json_message_before_a_broken_frame_gets_its_service_answer_first(self, wsx):
        with client(wsx, 'json') as c:
            c.send_raw(build_frame(OP_TEXT, '{"n": 1}') + build_frame(OP_TEXT, 'bad', rsv=RSV2))
            result = c.expect_close_code(1002)
            assert [json.loads(f.payload) for f in result.frames] == [{'echo': {'n': 1}}]


# 7. UTF-8 handling


VALID_UTF8 = ['Hello-µ@ßöäüàá-UTF-8!!', 'κόσμε', '\u0080', '\u07ff', '\u0800', '\ufeff BOM', '\uffff',
              '\U00010000', '\U0010ffff', '😀 emoji 😀', '\ud7ff\ue000', 'ab\x00cd']

INVALID_UTF8 = [
    b'\xff', b'\xfe', b'\x80', b'\xbf', b'\xc0\xaf', b'\xc1\xbf', b'\xe0\x80\xaf', b'\xf0\x80\x80\xaf',
    b'\xed\xa0\x80', b'\xed\xbf\xbf', b'\xf4\x90\x80\x80', b'\xf5\x80\x80\x80', b'\xf8\x88\x80\x80\x80',
    b'\xce\xba\xe1', b'\xce\xba\xe1\xbd', b'\xc2', b'Hello\xc3(world', b'\xe2\x82', b'\xf0\x9f\x98',
    'κόσμε'.encode() + b'\xed\xa0\x80edited',
]


class TestUTF8Handling:

    @pytest.mark.parametrize('text', VALID_UTF8)
    def test_valid_text_is_echoed_exactly(self, wsx, text):
        with client(wsx) as c:
            c.send_text(text)
            assert c.recv_message().data == text.encode('utf-8')

    @pytest.mark.parametrize('payload', INVALID_UTF8)
    def test_invalid_utf8_in_a_text_message_is_closed_with_1007(self, wsx, payload):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, payload)
            result = c.expect_close_code(1007)
            assert not [f for f in result.frames if f.opcode == OP_TEXT]

    @pytest.mark.parametrize('payload', [b'\xff', b'\xc0\xaf', b'\xed\xa0\x80', b'\xf4\x90\x80\x80'])
    def test_invalid_utf8_is_fine_in_a_binary_message(self, wsx, payload):
        with client(wsx) as c:
            c.send_binary(payload)
            msg = c.recv_message()
            assert (msg.opcode, msg.data) == (OP_BINARY, payload)

    @pytest.mark.parametrize('first', [b'\xce\xba\xff', b'a' * 1000 + b'\xff' + b'b' * 10, b'\xed\xa0\x80',
                                       b'\xc0\xaf'])
    def test_invalid_utf8_in_the_first_fragment_fails_fast_without_waiting_for_the_rest(self, wsx, first):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, first, fin=False)
            c.expect_close_code(1007)

    def test_invalid_utf8_in_a_middle_fragment_fails_fast(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, 'valid start ', fin=False)
            c.send_frame(OP_CONT, b'\xce', fin=False)
            c.send_frame(OP_CONT, b'\x41', fin=False)   # a continuation byte was due
            c.expect_close_code(1007)

    def test_a_message_ending_in_the_middle_of_a_character_is_closed_with_1007(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, 'ends with half of κ ', fin=False)
            c.send_frame(OP_CONT, b'\xce')
            c.expect_close_code(1007)

    def test_a_multibyte_character_split_across_fragments_is_fine(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, b'\xce', fin=False)
            # Half a character so far is not an error: the connection is alive
            c.ping(b'alive?')
            frame = c.recv_frame()
            assert (frame.opcode, frame.payload) == (OP_PONG, b'alive?')
            c.send_frame(OP_CONT, b'\xba')
            assert c.recv_text() == 'κ'

    def test_invalid_utf8_at_the_start_of_a_large_text_frame_is_closed_with_1007_before_the_rest_arrives(self, wsx):
        payload = b'a' * 50 + b'\xff' + b'b' * (65536 - 51)
        frame = build_frame(OP_TEXT, payload)
        head = 2 + 8 + 4  # a 64-bit length and the masking key
        with WSClient('127.0.0.1', wsx.env.base_port, wsx.paths['raw'], timeout=1.0).connect() as c:
            started = time.monotonic()
            # 100 bytes of the 65,536 the header announces; the rest is never sent
            c.send_raw(frame[:head + 100])
            result = c.expect_close_code(1007)
            assert time.monotonic() - started < 1.0
            assert not result.frames

    def test_a_character_cut_between_two_writes_of_one_text_frame_is_fine(self, wsx):
        text = 'κόσμε-😀-µ-€-' * 3000   # 23 bytes of 1- to 4-byte characters, 69,000 bytes in all
        frame = build_frame(OP_TEXT, text)
        head = 2 + 8 + 4
        # Cut inside the first κ, then inside an emoji (bytes 11 to 14 of each 23), at payload offsets
        # that are not multiples of 4, so the masking key must go on where each write left it
        cuts = [head + 1, head + 23 * 1500 + 13, len(frame)]
        with client(wsx) as c:
            start = 0
            for cut in cuts:
                c.send_raw(frame[start:cut])
                start = cut
                if cut < len(frame):
                    # Half a character so far is no error: nothing comes back, the connection stays open
                    assert c.nothing_arrives(0.2)
            assert c.recv_text() == text

    def test_a_four_byte_character_one_byte_per_fragment(self, wsx):
        data = '😀'.encode()
        with client(wsx) as c:
            c.send_frame(OP_TEXT, data[:1], fin=False)
            c.send_frame(OP_CONT, data[1:2], fin=False)
            c.send_frame(OP_CONT, data[2:3], fin=False)
            c.send_frame(OP_CONT, data[3:])
            assert c.recv_text() == '😀'

    def test_every_character_of_a_long_text_split_at_every_byte(self, wsx):
        text = 'κόσμε-😀-µ-€-' * 20
        data = text.encode()
        frames = [build_frame(OP_TEXT, data[:1], fin=False)]
        frames += [build_frame(OP_CONT, data[i:i + 1], fin=False) for i in range(1, len(data) - 1)]
        frames.append(build_frame(OP_CONT, data[-1:]))
        with client(wsx) as c:
            c.send_raw(b''.join(frames))
            assert c.recv_text() == text


# 8. Close handling


class TestCloseHandling:

    def test_a_client_close_1000_is_echoed_and_tcp_is_closed(self, wsx):
        with client(wsx) as c:
            c.send_text('before close')
            assert c.recv_text() == 'before close'
            c.close(1000, 'bye')
            c.expect_close_code(1000)

    def test_a_close_without_payload_gets_1000(self, wsx):
        with client(wsx) as c:
            c.close(None)
            c.expect_close_code(1000)

    def test_a_one_byte_close_payload_is_closed_with_1002(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_CLOSE, b'\x03')
            c.expect_close_code(1002)

    @pytest.mark.parametrize('code', [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
    def test_a_valid_close_code_is_echoed(self, wsx, code):
        with client(wsx) as c:
            c.close(code)
            c.expect_close_code(code)

    @pytest.mark.parametrize('code', [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    def test_an_invalid_close_code_is_closed_with_1002(self, wsx, code):
        with client(wsx) as c:
            c.close(code)
            c.expect_close_code(1002)

    def test_a_close_reason_of_123_bytes_is_fine(self, wsx):
        with client(wsx) as c:
            c.close(1000, 'r' * 123)
            c.expect_close_code(1000)

    def test_a_close_payload_of_126_bytes_is_closed_with_1002(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_CLOSE, close_payload(1000, 'r' * 124))
            c.expect_close_code(1002)

    def test_a_close_reason_that_is_valid_utf8(self, wsx):
        with client(wsx) as c:
            c.close(1000, 'κόσμε 😀')
            result = c.expect_close_code(1000)
            result.reason.decode('utf-8')

    @pytest.mark.parametrize('reason', [b'\xff', b'bad \xed\xa0\x80', b'\xce'])
    def test_a_close_reason_that_is_not_utf8_is_closed_with_1007(self, wsx, reason):
        with client(wsx) as c:
            c.close(1000, reason)
            c.expect_close_code(1007)

    def test_frames_after_the_clients_close_are_ignored(self, wsx):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_CLOSE, close_payload(1000)) + build_frame(OP_TEXT, 'after close')
                       + build_frame(OP_PING, b'after close'))
            result = c.expect_close_code(1000)
            assert result.frames == []

    def test_frames_after_the_clients_close_sent_later_are_ignored(self, wsx):
        with client(wsx) as c:
            c.close(1000)
            frame = c.recv_frame()
            assert (frame.opcode, frame.close_code) == (OP_CLOSE, 1000)
            try:
                c.send_raw(build_frame(OP_TEXT, 'late') + build_frame(OP_PING, b'late'))
            except OSError:
                pass
            assert c.tcp_closed()

    def test_messages_pipelined_before_the_close_never_come_after_the_close_frame(self, wsx):
        with client(wsx) as c:
            c.send_raw(b''.join(build_frame(OP_TEXT, f'message {i}') for i in range(20))
                       + build_frame(OP_CLOSE, close_payload(1000)))
            result = c.expect_close_code(1000)   # data after the close frame fails this
            echoed = [f.payload for f in result.frames if f.opcode == OP_TEXT]
            assert echoed == [b'message %d' % i for i in range(len(echoed))]

    def test_a_close_in_the_middle_of_a_fragmented_message(self, wsx):
        with client(wsx) as c:
            c.send_frame(OP_TEXT, 'never finished', fin=False)
            c.close(1000)
            result = c.expect_close_code(1000)
            assert not [f for f in result.frames if f.opcode in (OP_TEXT, OP_BINARY)]

    def test_the_server_closes_the_tcp_connection_when_the_client_just_goes_away(self, wsx):
        with client(wsx) as c:
            c.send_text('one')
            assert c.recv_text() == 'one'
        # And the server is still well
        with client(wsx) as c:
            c.send_text('two')
            assert c.recv_text() == 'two'


# 9. Limits


class TestLimits:

    def test_a_message_at_the_limit_is_echoed(self, wsx):
        with client(wsx, 'limits') as c:
            c.send_binary(b'l' * LIMIT)
            assert c.recv_message().data == b'l' * LIMIT
            c.send_text(text_of(LIMIT))
            assert c.recv_text() == text_of(LIMIT)

    @pytest.mark.parametrize('opcode', [OP_TEXT, OP_BINARY])
    def test_a_single_frame_one_byte_over_the_limit_is_closed_with_1009(self, wsx, opcode):
        with client(wsx, 'limits') as c:
            c.send_frame(opcode, b'o' * (LIMIT + 1))
            result = c.expect_close_code(1009)
            assert not [f for f in result.frames if f.opcode in (OP_TEXT, OP_BINARY)]

    def test_fragments_whose_sum_is_over_the_limit_are_closed_with_1009(self, wsx):
        with client(wsx, 'limits') as c:
            c.send_frame(OP_TEXT, b'a' * 2048, fin=False)
            c.send_frame(OP_CONT, b'b' * 2049)
            c.expect_close_code(1009)

    def test_many_small_fragments_over_the_limit_are_closed_with_1009(self, wsx):
        with client(wsx, 'limits') as c:
            frames = [build_frame(OP_BINARY, b'x' * 100, fin=False)]
            frames += [build_frame(OP_CONT, b'x' * 100, fin=False) for _ in range(45)]
            c.send_raw(b''.join(frames))
            c.expect_close_code(1009)

    def test_the_server_closes_at_the_header_without_reading_the_payload(self, wsx):
        with client(wsx, 'limits') as c:
            header = build_frame(OP_BINARY, b'', declared_length=LIMIT + 1)
            c.send_raw(header)   # the header (with its mask key) only: no payload follows
            c.expect_close_code(1009)

    def test_a_continuation_header_that_crosses_the_limit_is_closed_at_once(self, wsx):
        with client(wsx, 'limits') as c:
            c.send_frame(OP_TEXT, b'a' * 4000, fin=False)
            c.send_raw(build_frame(OP_CONT, b'', declared_length=200))
            c.expect_close_code(1009)

    def test_a_huge_declared_length_is_closed_at_once(self, wsx):
        with client(wsx, 'limits') as c:
            c.send_raw(build_frame(OP_BINARY, b'', declared_length=1 << 40))
            c.expect_close_code(1009)

    def test_the_default_limit_of_one_mib(self, wsx):
        with client(wsx) as c:
            c.send_raw(build_frame(OP_BINARY, b'', declared_length=DEFAULT_LIMIT + 1))
            c.expect_close_code(1009)

    def test_a_client_that_stops_reading_is_dropped_and_the_others_get_everything(self, wsx):
        chan = wsx.ids['slow']

        def listed() -> list[str]:
            return [item['id'] for item in wsx.env.admin.call('GET', f'/zato/admin/channels/wsx/{chan}/clients')]

        with client(wsx, 'slow') as stalled, client(wsx, 'slow') as reader:
            stalled_id = whoami(stalled)['id']
            whoami(reader)
            big = 'B' * (512 * 1024)
            # Until the stalled client's socket buffers and its send queue of 5 overflow; at most 100 MiB
            for i in range(200):
                r = admin_request(wsx.env, 'POST', f'/zato/admin/channels/wsx/{chan}/broadcast',
                                  {'data': f'{i:04d}' + big})
                assert r.status_code == 202, r.text
                msg = reader.recv_text()
                assert msg[:4] == f'{i:04d}' and len(msg) == len(big) + 4
                if i >= 10 and i % 10 == 0 and stalled_id not in listed():
                    break
            wsx.env.wait_for(lambda: stalled_id not in listed())
            reader.send_text('reader still served')
            assert reader.recv_text() == 'reader still served'

    def test_the_limit_and_the_server_stay_well_for_others(self, wsx):
        with client(wsx, 'limits') as c:
            c.send_text('still fine')
            assert c.recv_text() == 'still fine'


# 10. Compression (RFC 7692)


def compressed_client(wsx, key: str = 'raw', offer: str = 'permessage-deflate') -> WSClient:
    c = client(wsx, key, extensions=offer)
    assert c.extensions is not None, f'permessage-deflate not accepted: {c.response.headers}'
    return c


class TestCompression:

    def test_the_offer_is_accepted_with_a_response_header(self, wsx):
        with compressed_client(wsx) as c:
            params = c.extensions
            assert set(params) <= {'server_no_context_takeover', 'client_no_context_takeover',
                                   'server_max_window_bits', 'client_max_window_bits'}
            # client_max_window_bits may only be answered if offered
            assert 'client_max_window_bits' not in params

    def test_compressed_echo_with_context_takeover(self, wsx):
        text = 'Hello, compression! ' * 100
        with compressed_client(wsx) as c:
            sizes = []
            for _ in range(4):
                compressed = c.deflater.compress(text)
                sizes.append(len(compressed))
                c.send_frame(OP_TEXT, compressed, rsv=RSV1)
                msg = c.recv_message()
                assert (msg.opcode, msg.text) == (OP_TEXT, text)
                assert msg.compressed, 'a 2 KB repetitive text came back uncompressed'
            # Our own messages referred back to the earlier ones: the server kept its context
            assert sizes[1] < sizes[0]

    def test_compressed_binary_echo(self, wsx):
        data = bytes(range(256)) * 400
        with compressed_client(wsx) as c:
            c.send_binary(data, compress=True)
            msg = c.recv_message()
            assert (msg.opcode, msg.data) == (OP_BINARY, data)
            c.send_binary(os.urandom(3000), compress=True)   # incompressible
            assert len(c.recv_message().data) == 3000

    def test_an_uncompressed_message_on_a_compressed_connection(self, wsx):
        with compressed_client(wsx) as c:
            c.send_text('plain', compress=False)
            assert c.recv_text() == 'plain'
            c.send_text('squeezed', compress=True)
            assert c.recv_text() == 'squeezed'
            c.send_text('plain again', compress=False)
            assert c.recv_text() == 'plain again'

    def test_an_empty_compressed_message(self, wsx):
        with compressed_client(wsx) as c:
            c.send_text('', compress=True)
            assert c.recv_message().data == b''
            c.send_binary(b'', compress=True)
            assert c.recv_message().data == b''

    def test_no_context_takeover_both_ways(self, wsx):
        offer = 'permessage-deflate; client_no_context_takeover; server_no_context_takeover'
        text = 'No context takeover here. ' * 50
        with compressed_client(wsx, offer=offer) as c:
            assert 'server_no_context_takeover' in c.extensions
            c.deflater.no_context_takeover = True
            # A fresh inflater per message: the server must not refer back to earlier messages
            assert c.inflater.no_context_takeover
            for _ in range(4):
                c.send_text(text, compress=True)
                msg = c.recv_message()
                assert msg.text == text
                assert msg.compressed, 'without compression, server_no_context_takeover is not tested'

    def test_client_no_context_takeover_alone(self, wsx):
        with compressed_client(wsx, offer='permessage-deflate; client_no_context_takeover') as c:
            c.deflater.no_context_takeover = True
            for i in range(3):
                c.send_text(f'message {i} ' * 30, compress=True)
                assert c.recv_text() == f'message {i} ' * 30

    @pytest.mark.parametrize('bits', [8, 10, 12])
    def test_a_server_max_window_bits_offer(self, wsx, bits):
        with client(wsx, extensions=f'permessage-deflate; server_max_window_bits={bits}') as c:
            if c.extensions is not None:
                assert 8 <= int(c.extensions['server_max_window_bits']) <= bits
            # Repeats at distances of 300 to 3000 bytes: the server may only refer back within its window,
            # and our inflater has exactly that window
            block = os.urandom(300)
            data = b''.join(block + os.urandom(n) for n in (0, 200, 700, 2700)) + block
            for _ in range(3):
                c.send_binary(data, compress=c.extensions is not None)
                assert c.recv_message().data == data

    def test_a_client_max_window_bits_offer(self, wsx):
        with client(wsx, extensions='permessage-deflate; client_max_window_bits') as c:
            if c.extensions is not None and c.extensions.get('client_max_window_bits'):
                assert 8 <= int(c.extensions['client_max_window_bits']) <= 15
            c.send_text('window ' * 500, compress=c.extensions is not None)
            assert c.recv_text() == 'window ' * 500

    def test_an_offer_with_an_unknown_parameter_is_declined_in_favour_of_the_next(self, wsx):
        with client(wsx, extensions='permessage-deflate; no_such_param=1, permessage-deflate') as c:
            if c.extensions is not None:
                assert 'no_such_param' not in c.extensions
            c.send_text('ok', compress=c.extensions is not None)
            assert c.recv_text() == 'ok'

    def test_a_message_ending_with_a_bfinal_block_and_then_a_new_stream(self, wsx):
        # RFC 7692 section 7.2.3.3: a sender may end a message with a BFINAL block instead of a
        # sync flush; its next message then starts a new DEFLATE stream
        with compressed_client(wsx) as c:
            for text in ('final block', 'next message', 'and the one after'):
                deflate = zlib.compressobj(wbits=-15)
                c.send_frame(OP_TEXT, deflate.compress(text.encode()) + deflate.flush(zlib.Z_FINISH), rsv=RSV1)
                assert c.recv_text() == text

    def test_a_fragmented_compressed_message(self, wsx):
        text = 'fragmented and compressed ' * 200
        with compressed_client(wsx) as c:
            payload = c.deflater.compress(text)
            third = len(payload) // 3
            c.send_frame(OP_TEXT, payload[:third], rsv=RSV1, fin=False)
            c.send_frame(OP_CONT, payload[third:2 * third], fin=False)
            c.ping(b'mid')
            c.send_frame(OP_CONT, payload[2 * third:])
            controls = []
            assert c.recv_message(controls=controls).text == text
            assert [(f.opcode, f.payload) for f in controls] == [(OP_PONG, b'mid')]

    def test_rsv1_on_a_continuation_frame_is_closed_with_1002(self, wsx):
        with compressed_client(wsx) as c:
            payload = c.deflater.compress('abc' * 100)
            c.send_frame(OP_TEXT, payload[:5], rsv=RSV1, fin=False)
            c.send_frame(OP_CONT, payload[5:], rsv=RSV1)
            c.expect_close_code(1002)

    def test_rsv1_on_a_control_frame_is_closed_with_1002(self, wsx):
        with compressed_client(wsx) as c:
            c.send_frame(OP_PING, b'compressed?', rsv=RSV1)
            result = c.expect_close_code(1002)
            assert not [f for f in result.frames if f.opcode == OP_PONG]

    @pytest.mark.parametrize('rsv', [RSV2, RSV3])
    def test_other_reserved_bits_are_still_errors_with_compression(self, wsx, rsv):
        with compressed_client(wsx) as c:
            c.send_frame(OP_TEXT, c.deflater.compress('x'), rsv=RSV1 | rsv)
            c.expect_close_code(1002)

    def test_a_deflate_bomb_is_closed_with_1009(self, wsx):
        bomb = b'\x00' * (200 * 1024)
        with compressed_client(wsx, 'limits') as c:
            payload = c.deflater.compress(bomb)
            assert len(payload) < LIMIT // 4
            c.send_frame(OP_BINARY, payload, rsv=RSV1)
            result = c.expect_close_code(1009)
            assert not [f for f in result.frames if f.opcode in (OP_TEXT, OP_BINARY)]

    def test_a_fragmented_deflate_bomb_is_closed_with_1009(self, wsx):
        with compressed_client(wsx, 'limits') as c:
            payload = c.deflater.compress(b'\x00' * (LIMIT * 3))
            half = len(payload) // 2
            c.send_frame(OP_BINARY, payload[:half], rsv=RSV1, fin=False)
            c.send_frame(OP_CONT, payload[half:])
            c.expect_close_code(1009)

    def test_a_deflate_bomb_in_a_first_fragment_fails_fast(self, wsx):
        with compressed_client(wsx, 'limits') as c:
            c.send_frame(OP_BINARY, c.deflater.compress(b'\x00' * (LIMIT * 25)), rsv=RSV1, fin=False)
            c.expect_close_code(1009)

    def test_invalid_utf8_in_a_compressed_first_fragment_fails_fast(self, wsx):
        with compressed_client(wsx) as c:
            c.send_frame(OP_TEXT, c.deflater.compress(b'abc \xff def' * 10), rsv=RSV1, fin=False)
            c.expect_close_code(1007)

    def test_a_deflate_bomb_on_the_default_limit(self, wsx):
        with compressed_client(wsx) as c:
            c.send_binary(b'\x00' * (DEFAULT_LIMIT + 1), compress=True)
            c.expect_close_code(1009)

    def test_a_compressed_message_just_within_the_limit(self, wsx):
        with compressed_client(wsx, 'limits') as c:
            c.send_binary(b'\x00' * LIMIT, compress=True)
            assert c.recv_message().data == b'\x00' * LIMIT

    def test_compressed_text_that_inflates_to_invalid_utf8_is_closed_with_1007(self, wsx):
        with compressed_client(wsx) as c:
            c.send_frame(OP_TEXT, c.deflater.compress(b'valid then \xff invalid'), rsv=RSV1)
            c.expect_close_code(1007)

    def test_data_that_is_not_deflate_fails_the_connection(self, wsx):
        with compressed_client(wsx) as c:
            c.send_frame(OP_BINARY, b'\xff' * 20, rsv=RSV1)
            result = c.expect_close()
            assert result.got_close_frame and result.code in (1002, 1007), result.code

    def test_rsv1_without_negotiation_is_still_1002(self, wsx):
        with client(wsx) as c:
            compressed = zlib.compressobj(wbits=-15)
            payload = (compressed.compress(b'hello') + compressed.flush(zlib.Z_SYNC_FLUSH))[:-4]
            c.send_frame(OP_TEXT, payload, rsv=RSV1)
            c.expect_close_code(1002)


# 11. Security: authentication at the handshake and Zato 3.1's create-session


def create_session(c: WSClient, username: str, secret: str, msg_id: str = 'm1') -> dict:
    c.send_text(json.dumps({'meta': {'action': 'create-session', 'id': msg_id, 'username': username,
                                     'secret': secret}}))
    return c.recv_json()


class TestSecurity:

    def test_a_wrong_authorization_header_gets_401(self, wsx):
        for auth in (basic_auth(wsx.username, 'wrong password'), basic_auth('nobody', wsx.password),
                     ('Authorization', 'Basic !!!not-base64'), ('Authorization', 'Bearer xyz')):
            c = WSClient('127.0.0.1', wsx.env.base_port, wsx.paths['secure'])
            with c.connect(headers=[auth], expect_status=None):
                assert_refused(c, c.response, 401)

    def test_the_right_authorization_header_gets_101_and_messages_work(self, wsx):
        with client(wsx, 'secure', headers=[basic_auth(wsx.username, wsx.password)]) as c:
            c.send_text(json.dumps({'hello': 'world'}))
            assert c.recv_json() == {'ran': True, 'got': {'hello': 'world'}}

    def test_a_client_authenticated_at_the_handshake_invokes_through_the_envelope_without_a_token(self, wsx):
        with client(wsx, 'secure', headers=[basic_auth(wsx.username, wsx.password)]) as c:
            c.send_text(json.dumps({'meta': {'action': 'invoke-service', 'id': 'h1'}, 'data': {'x': 1}}))
            resp = c.recv_json()
            assert resp['meta']['status'] == 200 and resp['meta']['in_reply_to'] == 'h1'
            assert resp['data'] == {'ran': True, 'got': {'x': 1}}

    def test_the_admin_api_lists_the_authenticated_user(self, wsx):
        with client(wsx, 'secure', headers=[basic_auth(wsx.username, wsx.password)]) as c:
            c.send_text('{}')
            c.recv_json()
            clients = wsx.env.admin.call('GET', f'/zato/admin/channels/wsx/{wsx.ids["secure"]}/clients')
            assert wsx.username in [item.get('authenticated_as') for item in clients]

    def test_create_session_then_invoke_service_with_the_token(self, wsx):
        with client(wsx, 'secure') as c:
            resp = create_session(c, wsx.username, wsx.password)
            assert resp['meta']['status'] == 200
            assert resp['meta']['in_reply_to'] == 'm1'
            token = resp['data']['token']
            assert token.startswith('ws.token')
            before = count_runs(wsx)
            c.send_text(json.dumps({'meta': {'action': 'invoke-service', 'id': 'm2', 'token': token},
                                    'data': {'order': 123}}))
            resp = c.recv_json()
            assert resp['meta']['status'] == 200
            assert resp['meta']['in_reply_to'] == 'm2'
            assert resp['data'] == {'ran': True, 'got': {'order': 123}}
            assert count_runs(wsx) == before + 1
            c.close(1000)
            c.expect_close_code(1000)

    @pytest.mark.parametrize('username, secret', [('wsx-user', 'wrong'), ('nobody', None), ('', ''),
                                                  ('wsx-user', 123)])
    def test_wrong_credentials_get_403_and_close_1008(self, wsx, username, secret):
        secret = wsx.password if secret is None else secret
        with client(wsx, 'secure') as c:
            c.send_text(json.dumps({'meta': {'action': 'create-session', 'id': 'm1', 'username': username,
                                             'secret': secret}}))
            resp = c.recv_json()
            assert resp['meta']['status'] == 403
            assert resp['meta']['in_reply_to'] == 'm1'
            assert resp['data'] == 'You are not authorized to access this resource'
            c.expect_close_code(1008)

    @pytest.mark.parametrize('first', [
        ('text', json.dumps({'order': 1})),
        ('text', json.dumps({'meta': {'action': 'invoke-service', 'id': 'm2'}, 'data': {'order': 1}})),
        ('text', json.dumps({'meta': {'action': 'invoke-service', 'id': 'm2', 'token': 'ws.token.guessed'},
                             'data': {'order': 1}})),
        ('text', 'not json'),
        ('text', '[1, 2, 3]'),
        ('binary', b'\x00\x01\x02'),
    ])
    def test_any_other_first_message_is_closed_with_1008_and_the_service_never_runs(self, wsx, first):
        before = count_runs(wsx)
        with client(wsx, 'secure') as c:
            kind, data = first
            if kind == 'text':
                c.send_text(data)
            else:
                c.send_binary(data)
            result = c.expect_close_code(1008)
            for frame in result.frames:
                if frame.opcode == OP_TEXT:
                    assert 'ran' not in frame.payload.decode()
        time.sleep(0.2)
        assert count_runs(wsx) == before

    def test_messages_pipelined_behind_a_bad_first_one_never_reach_the_service(self, wsx):
        before = count_runs(wsx)
        with client(wsx, 'secure') as c:
            c.send_raw(b''.join(build_frame(OP_TEXT, json.dumps({'n': i})) for i in range(20)))
            c.expect_close_code(1008)
        time.sleep(0.2)
        assert count_runs(wsx) == before

    def test_no_create_session_within_new_token_wait_time_is_closed_with_1008(self, wsx):
        with client(wsx, 'secure') as c:
            started = time.monotonic()
            c.expect_close_code(1008, timeout=5)
            took = time.monotonic() - started
            assert 0.8 <= took <= 3.0, took

    def test_a_ping_does_not_count_as_creating_a_session(self, wsx):
        with client(wsx, 'secure') as c:
            started = time.monotonic()
            c.ping(b'keep me')
            result = c.expect_close_code(1008, timeout=5)
            assert [f.payload for f in result.frames if f.opcode == OP_PONG] == [b'keep me']
            assert time.monotonic() - started <= 3.0

    def test_a_session_created_in_time_is_not_closed_later(self, wsx):
        with client(wsx, 'secure') as c:
            token = create_session(c, wsx.username, wsx.password)['data']['token']
            time.sleep(1.5)
            c.send_text(json.dumps({'meta': {'action': 'invoke-service', 'id': 'm3', 'token': token},
                                    'data': {'late': True}}))
            resp = c.recv_json()
            assert (resp['meta']['status'], resp['data']) == (200, {'ran': True, 'got': {'late': True}})


# 12. Keep-alive


class TestKeepAlive:

    def test_a_client_that_answers_pings_stays_connected(self, wsx):
        with client(wsx, 'keepalive') as c:
            started = time.monotonic()
            pings = 0
            c.sock.settimeout(0.5)
            while time.monotonic() - started < 4.2:
                try:
                    frame = c.recv_frame()
                except TimeoutError:
                    continue
                assert frame.opcode == OP_PING, f'got {frame.opcode} {frame.payload!r}'
                pings += 1
                c.send_frame(OP_PONG, frame.payload)
            c.sock.settimeout(5)
            assert pings >= 2
            c.send_text('still connected')
            assert c.recv_message().text == 'still connected'

    def test_a_client_that_never_answers_is_closed(self, wsx):
        with client(wsx, 'keepalive') as c:
            started = time.monotonic()
            pings = 0
            code = None
            while True:
                try:
                    frame = c.recv_frame()
                except ConnectionError:
                    break
                if frame.opcode == OP_PING:
                    pings += 1
                    continue
                assert frame.opcode == OP_CLOSE, frame
                code = frame.close_code
                assert c.tcp_closed(3)
                break
            took = time.monotonic() - started
            assert pings >= 1
            assert code in (None, 1011)
            # Not before two pings went unanswered, and within (threshold + 1) * interval and some slack
            assert 1.5 <= took <= (2 + 1) * 1 + 2, took


# 13. Hooks


class TestHooks:

    def test_on_connected_and_on_disconnected_run_with_the_client_id(self, wsx):
        with client(wsx, 'hooks') as c:
            c.send_text('{}')
            client_id = c.recv_json()['pub_client_id']
            assert client_id
            wsx.env.wait_for(lambda: any(r['event'] == 'connected' and r['pub_client_id'] == client_id
                                         for r in hook_records(wsx)))
            c.close(1000)
            c.expect_close_code(1000)
        wsx.env.wait_for(lambda: any(r['event'] == 'disconnected' and r['pub_client_id'] == client_id
                                     for r in hook_records(wsx)))
        records = [r for r in hook_records(wsx) if r['pub_client_id'] == client_id]
        assert [r['event'] for r in records] == ['connected', 'disconnected']
        assert '127.0.0.1' in records[0]['peer_host']

    def test_on_disconnected_runs_when_the_tcp_connection_just_drops(self, wsx):
        with client(wsx, 'hooks') as c:
            c.send_text('{}')
            client_id = c.recv_json()['pub_client_id']
        wsx.env.wait_for(lambda: any(r['event'] == 'disconnected' and r['pub_client_id'] == client_id
                                     for r in hook_records(wsx)))


# 14. Data formats


class TestDataFormats:

    def test_a_json_channel_answers_json(self, wsx):
        with client(wsx, 'json') as c:
            c.send_text('{"a": [1, 2], "b": "κ"}')
            assert c.recv_json() == {'echo': {'a': [1, 2], 'b': 'κ'}}

    def test_json_channel_invalid_json_gets_an_error_and_the_connection_stays_open(self, wsx):
        with client(wsx, 'json') as c:
            c.send_text('{not json')
            resp = c.recv_json()
            assert resp['result'] == 'ZATO_ERROR'
            assert resp['cid'] and 'Invalid JSON' in resp['details']
            c.send_text('{"a": [1, 2]}')
            assert c.recv_json() == {'echo': {'a': [1, 2]}}


# 15. The admin API: clients, send, disconnect, broadcast


class TestAdminAPI:

    def test_a_connected_client_is_listed_with_its_peer(self, wsx):
        with client(wsx, 'admin') as c:
            me = whoami(c)
            clients = wsx.env.admin.call('GET', f'/zato/admin/channels/wsx/{wsx.ids["admin"]}/clients')
            mine = [item for item in clients if item['id'] == me['id']]
            assert len(mine) == 1
            assert mine[0]['channel'] == wsx.names['admin']
            assert '127.0.0.1' in mine[0]['peer']
            assert mine[0]['connected_at']

    def test_send_to_each_client_by_id_on_either_worker_and_only_to_it(self, wsx):
        clients = []
        try:
            pids = {}
            while len(clients) < 4 or (len(set(pids.values())) < 2 and len(clients) < 40):
                c = client(wsx, 'admin')
                clients.append(c)
                me = whoami(c)
                pids[me['id']] = me['pid']
                c.client_id = me['id']
            assert len(set(pids.values())) >= 2, 'every connection went to one worker'
            for c in clients:
                r = admin_request(wsx.env, 'POST', f'/zato/admin/wsx/clients/{c.client_id}/send',
                                  {'data': {'for': c.client_id}})
                assert r.status_code == 200, r.text
            for c in clients:
                assert c.recv_json() == {'for': c.client_id}
            r = admin_request(wsx.env, 'POST', f'/zato/admin/wsx/clients/{clients[0].client_id}/send',
                              {'data': 'plain text'})
            assert r.status_code == 200, r.text
            assert clients[0].recv_message().text == 'plain text'
            for c in clients[1:]:
                assert c.nothing_arrives(0.05)
            # Disconnect one client on each worker
            for pid in set(pids.values()):
                c = next(c for c in clients if pids[c.client_id] == pid)
                r = admin_request(wsx.env, 'DELETE', f'/zato/admin/wsx/clients/{c.client_id}')
                assert r.status_code == 200, r.text
                c.expect_close_code(1000)
        finally:
            for c in clients:
                c.shutdown()

    def test_send_to_an_unknown_client_is_404(self, wsx):
        r = admin_request(wsx.env, 'POST', '/zato/admin/wsx/clients/wsx.no-such-client/send', {'data': 'x'})
        assert r.status_code == 404
        r = admin_request(wsx.env, 'DELETE', '/zato/admin/wsx/clients/wsx.no-such-client')
        assert r.status_code == 404

    def test_delete_disconnects_the_client_with_1000(self, wsx):
        with client(wsx, 'admin') as c:
            me = whoami(c)
            r = admin_request(wsx.env, 'DELETE', f'/zato/admin/wsx/clients/{me["id"]}')
            assert r.status_code == 200, r.text
            c.expect_close_code(1000)
        wsx.env.wait_for(lambda: me['id'] not in [item['id'] for item in wsx.env.admin.call(
            'GET', f'/zato/admin/channels/wsx/{wsx.ids["admin"]}/clients')])

    def test_a_broadcast_reaches_every_client_on_every_worker(self, wsx):
        clients = []
        try:
            pids = set()
            ids = set()
            while len(clients) < 20 or (len(pids) < 2 and len(clients) < 80):
                c = client(wsx, 'admin')
                clients.append(c)
                me = whoami(c)
                pids.add(me['pid'])
                ids.add(me['id'])
            assert len(pids) >= 2, f'{len(clients)} fresh connections all went to one worker'
            listed = {item['id'] for item in wsx.env.admin.call(
                'GET', f'/zato/admin/channels/wsx/{wsx.ids["admin"]}/clients')}
            assert ids <= listed
            r = admin_request(wsx.env, 'POST', f'/zato/admin/channels/wsx/{wsx.ids["admin"]}/broadcast',
                              {'data': 'to everyone'})
            assert r.status_code == 202, r.text
            for c in clients:
                assert c.recv_text() == 'to everyone'
            r = admin_request(wsx.env, 'POST', f'/zato/admin/channels/wsx/{wsx.ids["admin"]}/broadcast',
                              {'data': {'n': 2}})
            assert r.status_code == 202, r.text
            for c in clients:
                assert c.recv_json() == {'n': 2}
        finally:
            for c in clients:
                c.shutdown()

    def test_a_channel_deleted_refuses_new_handshakes(self, wsx):
        created = create_channel(wsx.env, 'e2e-wsx-conf-temp', PREFIX + '/temp', 'e2e-wsx-conf.echo', data_format='')
        wait_until_served(wsx.env, PREFIX + '/temp')
        wsx.env.admin.call('DELETE', f'/zato/admin/channels/wsx/{created["id"]}')
        wait_until_served(wsx.env, PREFIX + '/temp', status=404)
