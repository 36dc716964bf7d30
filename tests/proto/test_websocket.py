"""The sans-IO WebSocket core (zato/proto/websocket.py): handshakes, frames, messages, permessage-deflate.

Each rule in the module's docstring has a test that feeds a hand-built frame; Hypothesis then sends
random messages, fragmented at random and fed in random chunks, between our two sides, and the
`websockets` package's sans-IO protocols and websocket-client's frames serve as independent peers.
"""

from __future__ import annotations

import ast
import base64
import os
import random
import tracemalloc
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websocket._abnf import ABNF
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from zato.proto import websocket as ws
from zato.proto import wsmask
from zato.proto.http1 import NEED_DATA, RequestParser

ROOT = Path(__file__).resolve().parents[2]
KEY = b'\x37\xfa\x21\x3d'

# ################################################################################################
# Helpers


def frame(opcode: int, payload: bytes = b'', *, fin: bool = True, rsv1: bool = False, rsv2: bool = False,
          rsv3: bool = False, mask: bytes | None = KEY, length: int | None = None) -> bytes:
    """A frame built by hand, bit by bit, as RFC 6455 section 5.2 draws it; ``length`` overrides the real one."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0) | opcode
    masked = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes([first, masked | size])
    elif size < 1 << 16:
        head = bytes([first, masked | 126]) + size.to_bytes(2, 'big')
    else:
        head = bytes([first, masked | 127]) + size.to_bytes(8, 'big')
    if mask is None:
        return head + payload
    return head + mask + bytes(octet ^ mask[i % 4] for i, octet in enumerate(payload))


def events(conn: ws.Connection, data: bytes = b'') -> list:
    """Feeds ``data`` and returns every event until next_event asks for more."""
    conn.feed(data)
    result = []
    while (event := conn.next_event()) is not None:
        result.append(event)
    return result


def rejected(data: bytes, code: int, role: str = 'server', **kwargs) -> ws.WebSocketError:
    """Asserts that a fresh Connection in ``role`` fails on ``data`` with ``code``, and returns the error."""
    conn = ws.Connection(role, **kwargs)
    with pytest.raises(ws.WebSocketError) as info:
        events(conn, data)
    assert info.value.code == code, info.value
    return info.value


def raw_deflate(data: bytes, bits: int = 15) -> bytes:
    """``data`` compressed as one permessage-deflate message, without the trailing 00 00 ff ff."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -bits)
    compressed = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressed.endswith(b'\x00\x00\xff\xff')
    return compressed[:-4]


def upgrade_headers(**changes: str | None) -> dict[str, str]:
    """The headers of a valid upgrade request (as zato.proto.http1 gives them), with ``changes``; None removes one."""
    headers = {'host': 'example.com', 'upgrade': 'websocket', 'connection': 'Upgrade',
               'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13'}
    for name, value in changes.items():
        name = name.replace('_', '-')
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


def handshake_fails(status: int, method: str = 'GET', version: str = '1.1', **changes: str | None) -> ws.HandshakeError:
    with pytest.raises(ws.HandshakeError) as info:
        ws.check_request(method, version, upgrade_headers(**changes))
    assert info.value.status == status, info.value
    return info.value


def deflate_offer(value: str) -> ws.DeflateParams | None:
    return ws.check_request('GET', '1.1', upgrade_headers(sec_websocket_extensions=value)).deflate


def parse_request(data: bytes):
    """An upgrade request parsed by our own HTTP/1.1 parser, as the server will see it."""
    parser = RequestParser()
    parser.feed(data)
    request = parser.next_event()
    assert request is not NEED_DATA
    return request


def response_101(key: str = 'dGhlIHNhbXBsZSBub25jZQ==', *extra: str) -> tuple[int, dict[str, str], bytes]:
    head = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade',
            f'Sec-WebSocket-Accept: {ws.accept_key(key)}', *extra]
    parsed = ws.parse_response(('\r\n'.join(head) + '\r\n\r\n').encode())
    assert parsed is not None
    return parsed


def response_fails(*extra: str, status: int = 502, offered_deflate: bool = True,
                   subprotocols: tuple[str, ...] = ()) -> ws.HandshakeError:
    code, headers, _ = response_101('dGhlIHNhbXBsZSBub25jZQ==', *extra)
    with pytest.raises(ws.HandshakeError) as info:
        ws.check_response(code, headers, 'dGhlIHNhbXBsZSBub25jZQ==', offered_deflate=offered_deflate,
                          subprotocols=subprotocols)
    assert info.value.status == status, info.value
    return info.value


# ################################################################################################
# Module structure and constants


def test_the_module_imports_no_io_modules():
    for name in ('websocket.py', 'ws_handshake.py', 'wsmask.py'):
        tree = ast.parse((ROOT / 'zato/proto' / name).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split('.')[0])
        assert imported.isdisjoint({'socket', 'ssl', 'gevent', 'select', 'time', 'asyncio'}), (name, imported)


def test_the_constants_have_their_rfc_values():
    assert (ws.OP_CONT, ws.OP_TEXT, ws.OP_BINARY, ws.OP_CLOSE, ws.OP_PING, ws.OP_PONG) == (0, 1, 2, 8, 9, 10)
    assert (ws.CLOSE_NORMAL, ws.CLOSE_GOING_AWAY, ws.CLOSE_PROTOCOL_ERROR, ws.CLOSE_UNSUPPORTED_DATA,
            ws.CLOSE_NO_STATUS, ws.CLOSE_ABNORMAL, ws.CLOSE_INVALID_DATA, ws.CLOSE_POLICY, ws.CLOSE_TOO_BIG,
            ws.CLOSE_INTERNAL_ERROR) == (1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011)
    assert ws.GUID == '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


def test_errors_carry_their_code_status_reason_and_headers():
    error = ws.WebSocketError(1002, 'bad frame')
    assert (error.code, error.reason, str(error)) == (1002, 'bad frame', '1002 bad frame')
    error2 = ws.HandshakeError(426, 'version', [('Sec-WebSocket-Version', '13')])
    assert (error2.status, error2.reason, error2.headers) == (426, 'version', [('Sec-WebSocket-Version', '13')])
    assert ws.HandshakeError(400, 'x').headers == []


def test_events_compare_by_value():
    assert ws.Message(ws.OP_TEXT, 'a') == ws.Message(ws.OP_TEXT, 'a') != ws.Message(ws.OP_BINARY, b'a')
    assert ws.Close(None, '') != ws.Close(1000, '')
    assert ws.Ping(b'x') != ws.Pong(b'x')
    assert repr(ws.Close(1000, 'bye')) == "Close(code=1000, reason='bye')"


# ################################################################################################
# Keys


def test_the_accept_key_of_the_rfc_example():
    assert ws.accept_key('dGhlIHNhbXBsZSBub25jZQ==') == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='


def test_a_new_key_is_16_random_bytes_in_base64():
    keys = {ws.new_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(base64.b64decode(key, validate=True)) == 16 for key in keys)


# ################################################################################################
# Server handshake


def test_a_valid_upgrade_request_is_accepted_with_its_key():
    hs = ws.check_request('GET', '1.1', upgrade_headers())
    assert (hs.key, hs.subprotocol, hs.deflate) == ('dGhlIHNhbXBsZSBub25jZQ==', None, None)


def test_a_method_other_than_get_is_405_with_allow():
    assert handshake_fails(405, method='POST').headers == [('Allow', 'GET')]


def test_http_1_0_is_400():
    handshake_fails(400, version='1.0')


@pytest.mark.parametrize('upgrade', [None, '', 'h2c', 'websockets'])
def test_an_upgrade_header_without_websocket_is_400(upgrade):
    handshake_fails(400, upgrade=upgrade)


@pytest.mark.parametrize('connection', [None, '', 'keep-alive', 'upgraded'])
def test_a_connection_header_without_upgrade_is_400(connection):
    handshake_fails(400, connection=connection)


def test_upgrade_and_connection_are_case_insensitive_comma_lists():
    ws.check_request('GET', '1.1', upgrade_headers(upgrade='h2c, WebSocket', connection='keep-alive, UPGRADE'))


@pytest.mark.parametrize('version', [None, '', '8', '12', '13, 8', '14'])
def test_a_version_other_than_13_is_426_naming_13(version):
    assert handshake_fails(426, sec_websocket_version=version).headers == [('Sec-WebSocket-Version', '13')]


@pytest.mark.parametrize('key', [None, '', 'not base64!', 'dGhlIHNhbXBsZSBub25jZQ', 'dGhlIHNhbXBsZSBub25j',
                                 base64.b64encode(b'x' * 17).decode(), 'dGhlIHNhbXBs ZSBub25jZQ=='])
def test_a_key_that_is_not_16_bytes_in_base64_is_400(key):
    handshake_fails(400, sec_websocket_key=key)


def test_the_subprotocol_is_the_clients_first_choice_among_ours():
    headers = upgrade_headers(sec_websocket_protocol='chat.v2, chat.v1, other')
    assert ws.check_request('GET', '1.1', headers, subprotocols=('chat.v1', 'chat.v2')).subprotocol == 'chat.v2'
    assert ws.check_request('GET', '1.1', headers, subprotocols=('chat.v1',)).subprotocol == 'chat.v1'
    assert ws.check_request('GET', '1.1', headers, subprotocols=('mqtt',)).subprotocol is None
    assert ws.check_request('GET', '1.1', headers).subprotocol is None
    assert ws.check_request('GET', '1.1', upgrade_headers(), subprotocols=('chat.v1',)).subprotocol is None


def test_a_plain_deflate_offer_is_accepted_with_default_parameters():
    params = deflate_offer('permessage-deflate')
    assert params == ws.DeflateParams(False, False, 15, 15)
    assert params is not None and params.header_value() == 'permessage-deflate; server_max_window_bits=15'


def test_every_deflate_parameter_is_taken_from_the_offer_and_answered():
    params = deflate_offer('permessage-deflate; server_no_context_takeover; client_no_context_takeover; '
                           'server_max_window_bits=10; client_max_window_bits=9')
    assert params is not None
    assert (params.server_no_context_takeover, params.client_no_context_takeover, params.server_max_window_bits,
            params.client_max_window_bits) == (True, True, 10, 9)
    assert params.header_value() == ('permessage-deflate; server_no_context_takeover; client_no_context_takeover; '
                                     'server_max_window_bits=10; client_max_window_bits=9')


def test_client_max_window_bits_without_a_value_means_the_client_supports_it():
    params = deflate_offer('permessage-deflate; client_max_window_bits')
    assert params == ws.DeflateParams(client_max_window_bits=15)
    # 15 is what the client uses when the answer leaves it out, and a client that did not offer it must not get it
    assert params is not None and 'client_max_window_bits' not in params.header_value()


def test_a_quoted_parameter_value_is_unquoted():
    params = deflate_offer('permessage-deflate; server_max_window_bits="12"')
    assert params is not None and params.server_max_window_bits == 12


@pytest.mark.parametrize('offer', [
    'permessage-deflate; unknown_param',
    'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=010',
    'permessage-deflate; client_max_window_bits=abc',
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate; client_no_context_takeover; client_no_context_takeover',
])
def test_an_invalid_deflate_offer_is_declined(offer):
    assert deflate_offer(offer) is None


def test_the_first_valid_deflate_offer_is_taken():
    params = deflate_offer('x-webkit-deflate-frame, permessage-deflate; bogus, '
                           'permessage-deflate; server_max_window_bits=11, permessage-deflate')
    assert params == ws.DeflateParams(server_max_window_bits=11)


@pytest.mark.parametrize('value', ['permessage-deflate; a=', 'permessage-deflate;; x', '"permessage-deflate"', ';'])
def test_a_malformed_extensions_header_is_ignored(value):
    assert deflate_offer(value) is None


def test_deflate_is_not_taken_when_not_allowed():
    headers = upgrade_headers(sec_websocket_extensions='permessage-deflate')
    assert ws.check_request('GET', '1.1', headers, allow_deflate=False).deflate is None


def test_the_accept_response_is_exactly_as_the_rfc_shows_it():
    hs = ws.check_request('GET', '1.1', upgrade_headers())
    assert ws.accept_response(hs) == (b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'
                                      b'Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n')


def test_the_accept_response_names_the_subprotocol_the_extension_and_extra_headers():
    hs = ws.check_request('GET', '1.1', upgrade_headers(sec_websocket_protocol='chat',
                                                        sec_websocket_extensions='permessage-deflate'),
                          subprotocols=['chat'])
    response = ws.accept_response(hs, [('X-Served-By', 'zato')])
    assert response.endswith(b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n'
                             b'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15\r\n'
                             b'X-Served-By: zato\r\n\r\n')


def test_an_extra_header_cannot_inject_lines():
    hs = ws.check_request('GET', '1.1', upgrade_headers())
    with pytest.raises(ValueError):
        ws.accept_response(hs, [('X-A', 'b\r\nSet-Cookie: x')])


# ################################################################################################
# Client handshake


def test_the_client_request_is_a_valid_upgrade_for_our_own_parser_and_server():
    key = ws.new_key()
    data = ws.client_request('example.com:8080', '/chat?x=1', key, origin='https://example.com',
                             subprotocols=['a', 'b'], headers=[('Authorization', 'Bearer t')])
    request = parse_request(data)
    assert (request.method, request.target, request.headers['host']) == ('GET', '/chat?x=1', 'example.com:8080')
    assert request.headers['origin'] == 'https://example.com'
    assert request.headers['authorization'] == 'Bearer t'
    hs = ws.check_request(request.method, request.version, request.headers, subprotocols=['b'])
    assert (hs.key, hs.subprotocol, hs.deflate) == (key, 'b', ws.DeflateParams())


def test_the_client_request_without_deflate_offers_no_extension():
    request = parse_request(ws.client_request('h', '/', ws.new_key(), deflate=False))
    assert 'sec-websocket-extensions' not in request.headers
    assert 'sec-websocket-protocol' not in request.headers and 'origin' not in request.headers


def test_the_client_request_cannot_be_given_a_line_break():
    with pytest.raises(ValueError):
        ws.client_request('h', '/', ws.new_key(), headers=[('X', 'a\nb')])
    with pytest.raises(ValueError):
        ws.client_request('h', '/ HTTP/1.1\r\nX: y', ws.new_key())


def test_a_response_head_is_none_until_complete_then_parsed_with_the_rest():
    data = b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-A: 1\r\nx-a: 2\r\n\r\n\x81\x02hi'
    for end in range(len(data) - 6):
        assert ws.parse_response(data[:end]) is None
    assert ws.parse_response(data) == (101, {'upgrade': 'websocket', 'x-a': '1, 2'}, b'\x81\x02hi')
    assert ws.parse_response(bytearray(data)) == (101, {'upgrade': 'websocket', 'x-a': '1, 2'}, b'\x81\x02hi')


def test_a_response_head_over_16_kib_is_502():
    with pytest.raises(ws.HandshakeError) as info:
        ws.parse_response(b'HTTP/1.1 101 OK\r\nX-Big: ' + b'a' * 17000)
    assert info.value.status == 502
    with pytest.raises(ws.HandshakeError):
        ws.parse_response(b'HTTP/1.1 101 OK\r\nX-Big: ' + b'a' * 17000 + b'\r\n\r\n')


@pytest.mark.parametrize('head', [b'HTTP/1.1 101', b'HTTP/2 101 OK', b'HTTP/1.1 1010 OK', b'ICY 200 OK', b'HTTP/1.1 101 OK\r\nBad Name: x',
                                  b'HTTP/1.1 101 OK\r\nNoColon', b'HTTP/1.1 101 OK\r\n folded: x', b'HTTP/1.1 101 OK\nX: y'])
def test_a_malformed_response_head_is_502(head):
    if head == b'HTTP/1.1 101':
        # A status line without a reason phrase is allowed
        assert ws.parse_response(head + b'\r\n\r\n') == (101, {}, b'')
        return
    with pytest.raises(ws.HandshakeError) as info:
        ws.parse_response(head + b'\r\n\r\n')
    assert info.value.status == 502


def test_a_valid_101_is_checked_into_what_was_agreed():
    status, headers, _ = response_101('dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: chat',
                                      'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; '
                                      'server_max_window_bits=12; client_max_window_bits=10')
    ch = ws.check_response(status, headers, 'dGhlIHNhbXBsZSBub25jZQ==', offered_deflate=True, subprotocols=['x', 'chat'])
    assert ch.subprotocol == 'chat'
    assert ch.deflate == ws.DeflateParams(True, False, 12, 10)


def test_a_101_without_extensions_or_subprotocol_agrees_to_neither():
    status, headers, _ = response_101()
    ch = ws.check_response(status, headers, 'dGhlIHNhbXBsZSBub25jZQ==', offered_deflate=True, subprotocols=['x'])
    assert (ch.subprotocol, ch.deflate) == (None, None)


def test_a_status_other_than_101_is_raised_with_that_status():
    with pytest.raises(ws.HandshakeError) as info:
        ws.check_response(403, {}, 'k', offered_deflate=False)
    assert info.value.status == 403
    with pytest.raises(ws.HandshakeError) as info:
        ws.check_response(0, {}, 'k', offered_deflate=False)
    assert info.value.status == 502


def test_a_wrong_accept_key_is_502():
    status, headers, _ = response_101(ws.new_key())
    with pytest.raises(ws.HandshakeError) as info:
        ws.check_response(status, headers, 'dGhlIHNhbXBsZSBub25jZQ==', offered_deflate=False)
    assert info.value.status == 502


@pytest.mark.parametrize('drop', ['upgrade', 'connection'])
def test_a_101_without_upgrade_or_connection_is_502(drop):
    status, headers, _ = response_101()
    del headers[drop]
    with pytest.raises(ws.HandshakeError):
        ws.check_response(status, headers, 'dGhlIHNhbXBsZSBub25jZQ==', offered_deflate=False)


def test_a_subprotocol_that_was_not_offered_is_502():
    response_fails('Sec-WebSocket-Protocol: chat', subprotocols=('other',))
    response_fails('Sec-WebSocket-Protocol: chat')
    response_fails('Sec-WebSocket-Protocol: chat, other', subprotocols=('chat', 'other'))


@pytest.mark.parametrize('value', [
    'x-custom',
    'permessage-deflate, permessage-deflate',
    'permessage-deflate; unknown',
    'permessage-deflate; client_max_window_bits',
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate;;',
])
def test_an_extension_answer_that_does_not_fit_the_offer_is_502(value):
    response_fails(f'Sec-WebSocket-Extensions: {value}')


def test_deflate_in_the_answer_when_not_offered_is_502():
    response_fails('Sec-WebSocket-Extensions: permessage-deflate', offered_deflate=False)


def test_our_client_and_our_server_agree_on_every_deflate_parameter():
    key = ws.new_key()
    request = parse_request(ws.client_request('h', '/', key).replace(
        b'client_max_window_bits', b'client_max_window_bits=11; server_max_window_bits=9; server_no_context_takeover'))
    hs = ws.check_request('GET', '1.1', request.headers)
    parsed = ws.parse_response(ws.accept_response(hs))
    assert parsed is not None
    ch = ws.check_response(parsed[0], parsed[1], key, offered_deflate=True)
    assert ch.deflate == hs.deflate == ws.DeflateParams(True, False, 9, 11)


# ################################################################################################
# Frames: encoding


@pytest.mark.parametrize('size, head', [(0, b'\x82\x00'), (125, b'\x82\x7d'), (126, b'\x82\x7e\x00\x7e'),
                                        (65535, b'\x82\x7e\xff\xff'), (65536, b'\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00')])
def test_frame_lengths_use_the_shortest_form(size, head):
    assert ws.encode_frame(ws.OP_BINARY, b'a' * size) == head + b'a' * size


def test_the_rfc_examples_of_frames_are_encoded_exactly():
    # RFC 6455 section 5.7
    assert ws.encode_frame(ws.OP_TEXT, b'Hello') == bytes.fromhex('810548656c6c6f')
    assert ws.encode_frame(ws.OP_TEXT, b'Hello', mask=KEY) == bytes.fromhex('818537fa213d7f9f4d5158')
    assert ws.encode_frame(ws.OP_TEXT, b'Hel', fin=False) + ws.encode_frame(ws.OP_CONT, b'lo') == \
        bytes.fromhex('010348656c80026c6f')
    assert ws.encode_frame(ws.OP_PING, b'Hello') == bytes.fromhex('890548656c6c6f')


def test_rsv1_and_payload_views_are_encoded():
    assert ws.encode_frame(ws.OP_TEXT, memoryview(b'xHix')[1:3], rsv1=True) == b'\xc1\x02Hi'


@pytest.mark.parametrize('opcode, payload, fin', [(ws.OP_PING, b'a' * 126, True), (ws.OP_CLOSE, b'', False),
                                                  (3, b'', True), (11, b'', True), (16, b'', True)])
def test_an_invalid_frame_is_not_encoded(opcode, payload, fin):
    with pytest.raises(ValueError):
        ws.encode_frame(opcode, payload, fin=fin)


# ################################################################################################
# Frames: the rules of a Connection


def test_a_server_reads_a_masked_frame():
    assert events(ws.Connection('server'), frame(ws.OP_TEXT, b'Hello')) == [ws.Message(ws.OP_TEXT, 'Hello')]


def test_a_client_reads_an_unmasked_frame():
    assert events(ws.Connection('client'), frame(ws.OP_BINARY, b'\x00', mask=None)) == [ws.Message(ws.OP_BINARY, b'\x00')]


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError):
        ws.Connection('peer')


def test_an_unmasked_frame_to_a_server_is_1002():
    rejected(frame(ws.OP_TEXT, b'Hello', mask=None), 1002)
    rejected(frame(ws.OP_PING, b'', mask=None), 1002)


def test_a_masked_frame_to_a_client_is_1002():
    rejected(frame(ws.OP_TEXT, b'Hello'), 1002, role='client')


@pytest.mark.parametrize('bits', [{'rsv2': True}, {'rsv3': True}, {'rsv2': True, 'rsv3': True}])
def test_rsv2_or_rsv3_is_1002_even_with_deflate(bits):
    rejected(frame(ws.OP_TEXT, b'x', **bits), 1002)
    rejected(frame(ws.OP_TEXT, b'x', **bits), 1002, deflate=ws.DeflateParams())


def test_rsv1_without_deflate_is_1002():
    rejected(frame(ws.OP_TEXT, raw_deflate(b'x'), rsv1=True), 1002)


def test_rsv1_on_a_continuation_is_1002_even_with_deflate():
    data = frame(ws.OP_TEXT, raw_deflate(b'x'), rsv1=True, fin=False) + frame(ws.OP_CONT, b'', rsv1=True)
    rejected(data, 1002, deflate=ws.DeflateParams())


@pytest.mark.parametrize('opcode', [ws.OP_PING, ws.OP_PONG, ws.OP_CLOSE])
def test_rsv1_on_a_control_frame_is_1002_even_with_deflate(opcode):
    rejected(frame(opcode, b'', rsv1=True), 1002, deflate=ws.DeflateParams())


@pytest.mark.parametrize('opcode', [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_a_reserved_opcode_is_1002(opcode):
    rejected(frame(opcode, b'x'), 1002)
    rejected(frame(opcode, b'x', mask=None), 1002, role='client')


@pytest.mark.parametrize('opcode', [ws.OP_PING, ws.OP_PONG, ws.OP_CLOSE])
def test_a_control_frame_over_125_bytes_is_1002_from_its_header_alone(opcode):
    data = frame(opcode, b'\x03\xe8' + b'a' * 124)
    rejected(data[:4], 1002)


@pytest.mark.parametrize('opcode', [ws.OP_PING, ws.OP_PONG, ws.OP_CLOSE])
def test_a_fragmented_control_frame_is_1002(opcode):
    rejected(frame(opcode, b'', fin=False), 1002)


def test_a_control_frame_of_125_bytes_is_fine():
    assert events(ws.Connection('server'), frame(ws.OP_PING, b'p' * 125)) == [ws.Ping(b'p' * 125)]


def test_a_continuation_without_a_message_in_progress_is_1002():
    rejected(frame(ws.OP_CONT, b'x'), 1002)
    rejected(frame(ws.OP_TEXT, b'a') + frame(ws.OP_CONT, b'x'), 1002)


@pytest.mark.parametrize('opcode', [ws.OP_TEXT, ws.OP_BINARY])
@pytest.mark.parametrize('fin', [True, False])
def test_a_new_message_while_a_fragmented_one_is_in_progress_is_1002(opcode, fin):
    rejected(frame(ws.OP_TEXT, b'a', fin=False) + frame(opcode, b'b', fin=fin), 1002)
    rejected(frame(ws.OP_TEXT, raw_deflate(b'a'), rsv1=True, fin=False) + frame(opcode, raw_deflate(b'b'), rsv1=True, fin=fin),
             1002, deflate=ws.DeflateParams())


def test_control_frames_may_come_between_fragments():
    data = (frame(ws.OP_TEXT, b'Hel', fin=False) + frame(ws.OP_PING, b'1') + frame(ws.OP_CONT, b'l', fin=False)
            + frame(ws.OP_PONG, b'2') + frame(ws.OP_CONT, b'o'))
    assert events(ws.Connection('server'), data) == [ws.Ping(b'1'), ws.Pong(b'2'), ws.Message(ws.OP_TEXT, 'Hello')]


def test_empty_fragments_make_an_empty_message():
    data = frame(ws.OP_BINARY, b'', fin=False) + frame(ws.OP_CONT, b'', fin=False) + frame(ws.OP_CONT, b'')
    assert events(ws.Connection('server'), data) == [ws.Message(ws.OP_BINARY, b'')]


def test_a_64_bit_length_with_the_top_bit_set_is_1002():
    head = bytes([0x82, 0xff]) + (1 << 63 | 5).to_bytes(8, 'big') + KEY
    rejected(head, 1002, max_message=1 << 70)


@pytest.mark.parametrize('first', [{}, {'fin': False}, {'rsv1': True}, {'rsv1': True, 'fin': False}])
def test_a_frame_longer_than_the_cap_is_1009_from_its_header_alone(first):
    # Whole or the first fragment, plain or compressed (which may be a little longer than the cap:
    # what deflate adds to an incompressible message of that size, 1000 + 0 + 64)
    head = frame(ws.OP_BINARY, length=1065 if first.get('rsv1') else 1001, **first)[:8]
    conn = ws.Connection('server', max_message=1000, deflate=ws.DeflateParams())
    with pytest.raises(ws.WebSocketError) as info:
        events(conn, head)
    assert info.value.code == 1009
    # At exactly the cap it is fine
    assert events(ws.Connection('server', max_message=1000), frame(ws.OP_BINARY, b'a' * 1000)) == \
        [ws.Message(ws.OP_BINARY, b'a' * 1000)]


def test_fragments_adding_up_past_the_cap_are_1009_at_the_header_of_the_one_that_crosses_it():
    conn = ws.Connection('server', max_message=1000)
    assert events(conn, frame(ws.OP_TEXT, b'a' * 600, fin=False)) == []
    # The control frame in between does not count
    assert events(conn, frame(ws.OP_PING, b'p' * 100)) == [ws.Ping(b'p' * 100)]
    with pytest.raises(ws.WebSocketError) as info:
        events(conn, frame(ws.OP_CONT, length=401)[:8])
    assert info.value.code == 1009


def test_the_cap_counts_a_message_not_the_connection():
    conn = ws.Connection('server', max_message=10)
    data = b''.join(frame(ws.OP_BINARY, b'0123456789') for _ in range(100))
    assert len(events(conn, data)) == 100


def test_a_compressed_message_past_the_cap_on_the_wire_is_1009():
    payload = os.urandom(2000)
    rejected(frame(ws.OP_BINARY, raw_deflate(payload), rsv1=True), 1009, max_message=1000, deflate=ws.DeflateParams())


def test_a_compressed_message_that_inflates_past_the_cap_is_1009():
    payload = b'a' * 1001
    assert events(ws.Connection('server', max_message=1001, deflate=ws.DeflateParams()),
                  frame(ws.OP_BINARY, raw_deflate(payload), rsv1=True)) == [ws.Message(ws.OP_BINARY, payload)]
    rejected(frame(ws.OP_BINARY, raw_deflate(payload), rsv1=True), 1009, max_message=1000, deflate=ws.DeflateParams())
    # Also when the excess is only in the last fragment
    compressed = raw_deflate(payload)
    data = frame(ws.OP_BINARY, compressed[:5], rsv1=True, fin=False) + frame(ws.OP_CONT, compressed[5:])
    rejected(data, 1009, max_message=1000, deflate=ws.DeflateParams())


def test_a_deflate_bomb_is_stopped_without_inflating_it():
    bomb = raw_deflate(bytes(200 << 20))  # 200 MiB of zeros in about 200 KiB
    assert len(bomb) < 300_000
    data = frame(ws.OP_BINARY, bomb, rsv1=True)
    conn = ws.Connection('server', max_message=1 << 20, deflate=ws.DeflateParams())
    conn.feed(data)
    tracemalloc.start()
    try:
        with pytest.raises(ws.WebSocketError) as info:
            conn.next_event()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == 1009
    # The payload and its unmasked copy, and at most the cap inflated; never the 200 MiB
    assert peak < 4 * len(data) + (2 << 20), peak


def test_invalid_compressed_data_is_1007():
    rejected(frame(ws.OP_BINARY, b'\xff\xff\xff\xff', rsv1=True), 1007, deflate=ws.DeflateParams())


@pytest.mark.parametrize('payload', [b'\xff', b'\xc0\xaf', b'\xed\xa0\x80', b'a\xf5', b'\xf4\x90\x80\x80', b'\xce'])
def test_text_that_is_not_utf8_is_1007(payload):
    rejected(frame(ws.OP_TEXT, payload), 1007)
    rejected(frame(ws.OP_TEXT, payload, fin=False) + frame(ws.OP_CONT, b''), 1007)
    rejected(frame(ws.OP_TEXT, raw_deflate(payload), rsv1=True), 1007, deflate=ws.DeflateParams())


@pytest.mark.parametrize('payload', [b'\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80', b'\xf5', b'ab\xc0',
                                     b'\xf4\x90'])
def test_text_fails_on_the_first_fragment_that_cannot_be_valid(payload):
    # The rest of the message never arrives: the first fragment alone is enough to tell
    rejected(frame(ws.OP_TEXT, payload, fin=False), 1007)
    compressed = raw_deflate(payload)
    rejected(frame(ws.OP_TEXT, compressed, rsv1=True, fin=False), 1007, deflate=ws.DeflateParams())


def test_a_character_split_between_fragments_is_fine():
    snowman = '\N{SNOWMAN}'.encode()
    data = frame(ws.OP_TEXT, b'a' + snowman[:1], fin=False) + frame(ws.OP_CONT, snowman[1:2], fin=False) + \
        frame(ws.OP_CONT, snowman[2:] + b'b')
    assert events(ws.Connection('server'), data) == [ws.Message(ws.OP_TEXT, 'a\N{SNOWMAN}b')]


def test_text_ending_inside_a_character_is_1007():
    rejected(frame(ws.OP_TEXT, b'a\xe2\x98', fin=False) + frame(ws.OP_CONT, b''), 1007)
    rejected(frame(ws.OP_TEXT, b'a\xe2\x98'), 1007)


def test_invalid_utf8_in_the_first_piece_of_a_text_frame_fails_before_the_rest_arrives():
    # 64 KiB declared, 100 bytes sent: the 0xff among them is enough, the other 65,436 never come
    piece = b'a' * 50 + b'\xff' + b'b' * 49
    rejected(frame(ws.OP_TEXT, piece, length=65536), 1007)
    rejected(frame(ws.OP_TEXT, piece, length=65536, mask=None), 1007, role='client')
    # The same in a continuation frame, and in a compressed message once what arrived is inflated
    rejected(frame(ws.OP_TEXT, b'fine', fin=False) + frame(ws.OP_CONT, piece, length=65536), 1007)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)
    rejected(frame(ws.OP_TEXT, deflated, rsv1=True, length=65536), 1007, deflate=ws.DeflateParams())


def test_invalid_utf8_fails_in_the_piece_that_carries_it_and_not_before():
    conn = ws.Connection('server')
    data = frame(ws.OP_TEXT, b'x' * 3000 + b'\xff' + b'y' * 3000)
    assert events(conn, data[:3008]) == []   # the 8 bytes of header and key, and the 3,000 valid bytes
    with pytest.raises(ws.WebSocketError) as info:
        events(conn, data[3008:3010])
    assert info.value.code == 1007


@pytest.mark.parametrize('role', ['server', 'client'])
def test_a_text_frame_read_piece_by_piece_is_the_whole_message_whatever_the_cuts(role):
    # Every character of 1 to 4 bytes is cut at every byte by some pair of cuts, and the masking key
    # must go on where each piece left it
    text = 'a\N{MICRO SIGN}\N{SNOWMAN}\N{GRINNING FACE}z' * 3
    data = frame(ws.OP_TEXT, text.encode(), mask=KEY if role == 'server' else None)
    for first in range(1, len(data)):
        for second in range(first, len(data)):
            conn = ws.Connection(role)
            assert events(conn, data[:first]) == []
            assert events(conn, data[first:second]) == []
            assert events(conn, data[second:]) == [ws.Message(ws.OP_TEXT, text)]


def test_a_character_cut_between_pieces_and_between_fragments_is_fine():
    snowman = '\N{SNOWMAN}'.encode()
    data = frame(ws.OP_TEXT, b'ab' + snowman[:1], fin=False) + frame(ws.OP_CONT, snowman[1:] + b'cd')
    conn = ws.Connection('server')
    # The first fragment in two pieces, the second split after its first byte
    assert events(conn, data[:7]) == []
    assert events(conn, data[7:16]) == []
    assert events(conn, data[16:]) == [ws.Message(ws.OP_TEXT, 'ab\N{SNOWMAN}cd')]


def test_a_message_ending_inside_a_character_is_1007_when_its_last_frame_came_in_pieces():
    data = frame(ws.OP_TEXT, b'abc\xe2\x98')
    conn = ws.Connection('server')
    assert events(conn, data[:8]) == []
    with pytest.raises(ws.WebSocketError) as info:
        events(conn, data[8:])
    assert info.value.code == 1007


def test_a_control_frame_after_a_text_frame_read_in_pieces_is_read_as_a_frame():
    data = frame(ws.OP_TEXT, b'one two', fin=False) + frame(ws.OP_PING, b'p') + frame(ws.OP_CONT, b' three')
    conn = ws.Connection('server')
    assert events(conn, data[:9]) == []
    assert events(conn, data[9:]) == [ws.Ping(b'p'), ws.Message(ws.OP_TEXT, 'one two three')]


def test_binary_is_never_checked_for_utf8():
    assert events(ws.Connection('server'), frame(ws.OP_BINARY, b'\xff')) == [ws.Message(ws.OP_BINARY, b'\xff')]


def test_an_empty_close_has_no_code():
    conn = ws.Connection('server')
    assert events(conn, frame(ws.OP_CLOSE)) == [ws.Close(None, '')]
    assert conn.close_received and not conn.close_sent


def test_a_close_with_a_code_and_a_reason():
    assert events(ws.Connection('server'), frame(ws.OP_CLOSE, b'\x03\xe8bye \xe2\x98\x83')) == \
        [ws.Close(1000, 'bye \N{SNOWMAN}')]


def test_a_close_with_one_byte_is_1002():
    rejected(frame(ws.OP_CLOSE, b'\x03'), 1002)


@pytest.mark.parametrize('code', [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_a_close_code_that_is_never_valid_on_the_wire_is_1002(code):
    rejected(frame(ws.OP_CLOSE, code.to_bytes(2, 'big')), 1002)


@pytest.mark.parametrize('code', [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_a_valid_close_code_is_reported(code):
    assert events(ws.Connection('server'), frame(ws.OP_CLOSE, code.to_bytes(2, 'big'))) == [ws.Close(code, '')]


def test_a_close_reason_that_is_not_utf8_is_1007():
    rejected(frame(ws.OP_CLOSE, b'\x03\xe8\xff'), 1007)


def test_nothing_after_a_close_is_read_even_an_invalid_frame():
    conn = ws.Connection('server')
    assert events(conn, frame(ws.OP_CLOSE, b'\x03\xe8') + frame(ws.OP_TEXT, b'late')) == [ws.Close(1000, '')]
    assert events(conn, frame(99, b'', mask=None)) == []
    assert conn.next_event() is None
    # Nothing is kept either
    assert not conn._buf


def test_an_error_is_raised_again_on_every_later_call():
    conn = ws.Connection('server')
    conn.feed(frame(ws.OP_TEXT, b'x', mask=None))
    with pytest.raises(ws.WebSocketError) as first:
        conn.next_event()
    conn.feed(frame(ws.OP_TEXT, b'fine'))
    for _ in range(3):
        with pytest.raises(ws.WebSocketError) as again:
            conn.next_event()
        assert again.value is first.value


BROKEN_FRAMES = {
    'rsv2': frame(ws.OP_TEXT, b'bad', rsv2=True),
    'rsv3': frame(ws.OP_BINARY, b'bad', rsv3=True),
    'reserved opcode': frame(3, b'bad'),
    'reserved control opcode': frame(11, b''),
    'stray continuation': frame(ws.OP_CONT, b'bad'),
    'unmasked': frame(ws.OP_TEXT, b'bad', mask=None),
    'invalid utf-8': frame(ws.OP_TEXT, b'\xff'),
}


@pytest.mark.parametrize('broken', BROKEN_FRAMES.values(), ids=list(BROKEN_FRAMES))
def test_the_events_before_a_broken_frame_come_out_first_and_the_error_only_when_it_is_reached(broken):
    good = frame(ws.OP_TEXT, b'whole') + frame(ws.OP_PING, b'p') + frame(ws.OP_BINARY, b'frag', fin=False) + \
        frame(ws.OP_CONT, b'ments')
    conn = ws.Connection('server')
    # All of it in one feed, as one TCP segment would bring it, and a good frame after the broken one
    conn.feed(good + broken + frame(ws.OP_TEXT, b'never'))
    assert conn.next_event() == ws.Message(ws.OP_TEXT, 'whole')
    assert conn.next_event() == ws.Ping(b'p')
    assert conn.next_event() == ws.Message(ws.OP_BINARY, b'fragments')
    with pytest.raises(ws.WebSocketError) as info:
        conn.next_event()
    assert info.value.code in (1002, 1007)
    with pytest.raises(ws.WebSocketError):
        conn.next_event()


def test_many_frames_in_one_feed_and_one_frame_byte_by_byte():
    data = b''.join(frame(ws.OP_TEXT, str(i).encode()) for i in range(1000))
    assert [event.data for event in events(ws.Connection('server'), data)] == [str(i) for i in range(1000)]
    conn = ws.Connection('server')
    payload = os.urandom(70_000)
    one = frame(ws.OP_BINARY, payload)
    for i in range(len(one) - 1):
        conn.feed(one[i:i + 1])
        assert conn.next_event() is None
    assert events(conn, one[-1:]) == [ws.Message(ws.OP_BINARY, payload)]


def test_the_receive_buffer_keeps_only_unread_bytes_and_a_bounded_consumed_prefix():
    conn = ws.Connection('server')
    one = frame(ws.OP_BINARY, b'x' * 1000)
    # Each feed ends in the middle of a frame, so the buffer is never simply emptied
    stream = one * 500
    for start in range(0, len(stream), 1500):
        events(conn, stream[start:start + 1500])
        assert len(conn._buf) - conn._pos < len(one)
        assert len(conn._buf) < 65536 + 2 * len(one)


# ################################################################################################
# Sending


def test_a_server_sends_unmasked_frames():
    conn = ws.Connection('server')
    assert conn.send('Hello') == bytes.fromhex('810548656c6c6f')
    assert conn.send(b'\x01') == b'\x82\x01\x01'
    assert conn.send(bytearray(b'\x01')) == b'\x82\x01\x01'
    assert conn.send_ping(b'p') == b'\x89\x01p'
    assert conn.send_ping() == b'\x89\x00'
    assert conn.send_pong(b'p') == b'\x8a\x01p'
    assert conn.send_close() == b'\x88\x02\x03\xe8'
    assert conn.close_sent


def test_a_client_masks_every_frame_with_a_new_key():
    conn = ws.Connection('client')
    frames = [conn.send('Hello') for _ in range(10)]
    assert all(f[1] == 0x85 for f in frames)
    assert len({f[2:6] for f in frames}) == 10
    assert all(wsmask.mask(f[6:], f[2:6]) == b'Hello' for f in frames)


def test_a_close_reason_is_sent_in_utf8():
    assert ws.Connection('server').send_close(1001, '\N{SNOWMAN}') == b'\x88\x05\x03\xe9\xe2\x98\x83'


@pytest.mark.parametrize('code', [999, 1004, 1005, 1006, 1015, 2000, 5000])
def test_a_close_code_that_may_not_be_sent_is_refused(code):
    conn = ws.Connection('server')
    with pytest.raises(ValueError):
        conn.send_close(code)
    assert not conn.close_sent


def test_a_close_reason_is_cut_to_123_bytes_at_a_character_boundary():
    assert ws.Connection('server').send_close(1000, 'a' * 123) == b'\x88\x7d\x03\xe8' + b'a' * 123
    assert ws.Connection('server').send_close(1000, 'a' * 200) == b'\x88\x7d\x03\xe8' + b'a' * 123
    # 41 snowmen are 123 bytes; with one more ASCII letter in front, the last one no longer fits
    cut = ws.Connection('server').send_close(1000, 'x' + '\N{SNOWMAN}' * 41)
    assert cut == b'\x88\x7b\x03\xe8x' + '\N{SNOWMAN}'.encode() * 40
    assert events(ws.Connection('client'), cut) == [ws.Close(1000, 'x' + '\N{SNOWMAN}' * 40)]


def test_a_ping_over_125_bytes_is_refused():
    with pytest.raises(ValueError):
        ws.Connection('server').send_ping(b'a' * 126)


@pytest.mark.parametrize('params', [None, ws.DeflateParams()])
def test_nothing_is_sent_after_a_close(params):
    conn = ws.Connection('client', deflate=params)
    assert conn.send_close(1001)
    assert conn.close_sent
    assert conn.send('x') == conn.send(b'x') == conn.send_ping() == conn.send_pong(b'') == conn.send_close() == b''
    with pytest.raises(ValueError):
        conn.send_close(1005)


def test_a_compressed_message_has_rsv1_and_no_trailing_empty_block():
    conn = ws.Connection('server', deflate=ws.DeflateParams())
    data = conn.send('Hello' * 100)
    assert data[0] == 0xC1 and len(data) < 100
    assert zlib.decompressobj(-15).decompress(data[2:] + b'\x00\x00\xff\xff') == b'Hello' * 100
    # RFC 7692 section 7.2.3.1: "Hello" compressed without context takeover
    assert ws.Connection('server', deflate=ws.DeflateParams(server_no_context_takeover=True)).send('Hello') == \
        bytes.fromhex('c107f248cdc9c90700')


def test_context_takeover_makes_a_repeated_message_shorter_and_no_context_takeover_does_not():
    message = os.urandom(200)
    taking = ws.Connection('server', deflate=ws.DeflateParams())
    first, second = taking.send(message), taking.send(message)
    assert len(second) < len(first) / 4
    fresh = ws.Connection('server', deflate=ws.DeflateParams(server_no_context_takeover=True))
    assert fresh.send(message) == fresh.send(message)
    # Each direction has its own setting: a client without takeover still reads a server with it
    client = ws.Connection('client', deflate=ws.DeflateParams(client_no_context_takeover=True))
    assert events(client, first + second) == [ws.Message(ws.OP_BINARY, message)] * 2


def test_without_context_takeover_no_compression_state_is_kept_between_messages():
    params = ws.DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True)
    server, client = ws.Connection('server', deflate=params), ws.Connection('client', deflate=params)
    assert events(server, client.send('a' * 1000)) == [ws.Message(ws.OP_TEXT, 'a' * 1000)]
    assert events(client, server.send('b' * 1000)) == [ws.Message(ws.OP_TEXT, 'b' * 1000)]
    # Each zlib object holds 10-300 KiB; an idle connection should hold none
    assert server._decompressor is server._compressor is client._decompressor is client._compressor is None
    taking = ws.Connection('server', deflate=ws.DeflateParams())
    events(taking, ws.Connection('client', deflate=ws.DeflateParams()).send('a' * 1000))
    taking.send('b')
    assert taking._decompressor is not None and taking._compressor is not None


def test_with_deflate_an_uncompressed_message_is_read_as_is_and_leaves_the_context_alone():
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)

    def compressed(data: bytes) -> bytes:
        return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]

    first = compressed(b'the same words again and again')
    # The second refers back to the first: it can only be inflated with the context of the first
    second = compressed(b'the same words again and again')
    data = (frame(ws.OP_TEXT, first, rsv1=True) + frame(ws.OP_BINARY, b'\xff', fin=False) + frame(ws.OP_CONT, b'\xfe')
            + frame(ws.OP_TEXT, b'plain') + frame(ws.OP_TEXT, second, rsv1=True))
    assert events(ws.Connection('server', deflate=ws.DeflateParams()), data) == [
        ws.Message(ws.OP_TEXT, 'the same words again and again'), ws.Message(ws.OP_BINARY, b'\xff\xfe'),
        ws.Message(ws.OP_TEXT, 'plain'), ws.Message(ws.OP_TEXT, 'the same words again and again')]
    assert len(second) < len(first) / 2


def test_window_bits_8_are_compressed_with_9_and_still_read():
    params = ws.DeflateParams(server_max_window_bits=8, client_max_window_bits=8)
    server, client = ws.Connection('server', deflate=params), ws.Connection('client', deflate=params)
    message = os.urandom(300) * 3
    assert events(client, server.send(message)) == [ws.Message(ws.OP_BINARY, message)]
    assert events(server, client.send(message)) == [ws.Message(ws.OP_BINARY, message)]


def test_an_empty_message_is_sent_and_read_compressed_and_not():
    for params in (None, ws.DeflateParams()):
        server, client = ws.Connection('server', deflate=params), ws.Connection('client', deflate=params)
        assert events(server, client.send('') + client.send(b'')) == [ws.Message(ws.OP_TEXT, ''),
                                                                     ws.Message(ws.OP_BINARY, b'')]


def test_the_masker_twins_both_serve_the_connection(monkeypatch):
    compiled = pytest.importorskip('zato.cy.wsmask')
    for twin in (wsmask, compiled):
        monkeypatch.setattr(ws, '_mask', twin.mask)
        client, server = ws.Connection('client'), ws.Connection('server')
        assert events(server, client.send('x' * 1000)) == [ws.Message(ws.OP_TEXT, 'x' * 1000)]


# ################################################################################################
# Hypothesis: our client and our server


# Large payloads are made from a few drawn values, so that Hypothesis does not draw every byte: random
# (incompressible) bytes from a seed, and text repeated (compressible, often across fragment cuts)
LARGE_BINARY = st.builds(lambda seed, size: random.Random(seed).randbytes(size), st.integers(0, 1 << 32),
                         st.integers(5000, 70_000))
LARGE_TEXT = st.builds(lambda text, count: text * count, st.text(min_size=1, max_size=20), st.integers(50, 300))
MESSAGES = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300), LARGE_TEXT, LARGE_BINARY), max_size=8)
DEFLATE = st.one_of(st.none(), st.builds(ws.DeflateParams, st.booleans(), st.booleans(), st.integers(8, 15),
                                         st.integers(8, 15)))


def feed_in_chunks(conn: ws.Connection, data: bytes, sizes: list[int]) -> list:
    """Feeds ``data`` in pieces of the given sizes (cycled), collecting events after each."""
    result, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)] if sizes else len(data)
        result.extend(events(conn, data[pos:pos + size]))
        pos += size
        i += 1
    return result


def expected_event(message: str | bytes) -> ws.Message:
    return ws.Message(ws.OP_TEXT if isinstance(message, str) else ws.OP_BINARY, message)


class Fragmenter:
    """Sends messages split into random fragments with pings between them, compressing as a peer with ``params`` would."""

    def __init__(self, role: str, params: ws.DeflateParams | None) -> None:
        self.mask = role == 'client'
        self.params = params
        self.compressor = None
        if params is not None:
            bits = params.client_max_window_bits if self.mask else params.server_max_window_bits
            self.bits = max(9, bits)
            self.reset = params.client_no_context_takeover if self.mask else params.server_no_context_takeover

    def message(self, message: str | bytes, cuts: list[int], pings: list[bool]) -> tuple[bytes, list]:
        """The frames of ``message``, and the events a receiver must report for them, in order."""
        opcode = ws.OP_TEXT if isinstance(message, str) else ws.OP_BINARY
        payload = message.encode() if isinstance(message, str) else message
        if self.params is not None:
            if self.compressor is None or self.reset:
                self.compressor = zlib.compressobj(6, zlib.DEFLATED, -self.bits)
            payload = (self.compressor.compress(payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        bounds = sorted({cut % (len(payload) + 1) for cut in cuts})
        pieces = [payload[a:b] for a, b in zip([0, *bounds], [*bounds, len(payload)], strict=True)]
        out, expected = [], []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            out.append(ws.encode_frame(opcode if i == 0 else ws.OP_CONT, piece, fin=last,
                                       rsv1=i == 0 and self.params is not None,
                                       mask=os.urandom(4) if self.mask else None))
            if last:
                expected.append(expected_event(message))
            if i < len(pings) and pings[i]:
                out.append(ws.encode_frame(ws.OP_PING, b'ping %d' % i, mask=os.urandom(4) if self.mask else None))
                expected.append(ws.Ping(b'ping %d' % i))
        return b''.join(out), expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=MESSAGES, params=DEFLATE, sizes=st.lists(st.integers(1, 5000), max_size=5),
       sender=st.sampled_from(['client', 'server']), pings=st.lists(st.booleans(), max_size=8))
def test_messages_sent_by_one_side_are_read_by_the_other_whatever_the_chunking(messages, params, sizes, sender, pings):
    receiver = 'server' if sender == 'client' else 'client'
    out, into = ws.Connection(sender, deflate=params), ws.Connection(receiver, deflate=params, max_message=1 << 17)
    data, expected = [], []
    for i, message in enumerate(messages):
        data.append(out.send(message))
        expected.append(expected_event(message))
        if i < len(pings) and pings[i]:
            data.append(out.send_ping(b'%d' % i))
            expected.append(ws.Ping(b'%d' % i))
    data.append(out.send_close(1000, 'done'))
    expected.append(ws.Close(1000, 'done'))
    assert feed_in_chunks(into, b''.join(data), sizes) == expected
    assert into.close_received and out.close_sent


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=MESSAGES, params=DEFLATE, sizes=st.lists(st.integers(1, 3000), max_size=5),
       sender=st.sampled_from(['client', 'server']), data=st.data())
def test_fragmented_messages_with_pings_between_fragments_are_reassembled(messages, params, sizes, sender, data):
    receiver = 'server' if sender == 'client' else 'client'
    fragmenter, into = Fragmenter(sender, params), ws.Connection(receiver, deflate=params, max_message=1 << 17)
    stream, expected = [], []
    for message in messages:
        cuts = data.draw(st.lists(st.integers(0, 1 << 17), max_size=6))
        pings = data.draw(st.lists(st.booleans(), max_size=len(cuts)))
        frames, events_of_message = fragmenter.message(message, cuts, pings)
        stream.append(frames)
        expected.extend(events_of_message)
    # A ping between fragments is reported as it arrives, before the message it interrupts
    assert feed_in_chunks(into, b''.join(stream), sizes) == expected


def outcome(data: bytes, sizes: list[int]) -> tuple[list, int | None]:
    """The events a server reports for ``data`` fed in pieces of ``sizes``, and the close code it fails with."""
    conn, got, pos, i = ws.Connection('server'), [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)] if sizes else len(data)
        conn.feed(data[pos:pos + size])
        pos += size
        i += 1
        try:
            while (event := conn.next_event()) is not None:
                got.append(event)
        except ws.WebSocketError as e:
            return got, e.code
    return got, None


@settings(max_examples=200, deadline=None)
@given(fragments=st.lists(st.binary(max_size=12), min_size=1, max_size=4), sizes=st.lists(st.integers(1, 20), max_size=5),
       ping_after=st.integers(0, 4))
def test_how_text_is_cut_into_pieces_changes_neither_the_events_nor_the_error(fragments, sizes, ping_after):
    # Text that may well not be UTF-8, in fragments with a ping between two of them, then a good message
    frames = []
    for i, payload in enumerate(fragments):
        frames.append(frame(ws.OP_TEXT if i == 0 else ws.OP_CONT, payload, fin=i == len(fragments) - 1))
        if i == ping_after:
            frames.append(frame(ws.OP_PING, b'p'))
    data = b''.join(frames) + frame(ws.OP_TEXT, b'after')
    assert outcome(data, sizes) == outcome(data, [])


# ################################################################################################
# Oracles: the websockets package's sans-IO protocols and websocket-client's frames


def ws_frames_to_events(frames: list) -> list:
    """websockets gives frames, fragment by fragment; joins them into our events for comparison."""
    result, parts, opcode = [], [], None
    for f in frames:
        if f.opcode in (Opcode.TEXT, Opcode.BINARY):
            opcode, parts = f.opcode, [f.data]
        elif f.opcode == Opcode.CONT:
            parts.append(f.data)
        elif f.opcode == Opcode.PING:
            result.append(ws.Ping(bytes(f.data)))
            continue
        elif f.opcode == Opcode.PONG:
            result.append(ws.Pong(bytes(f.data)))
            continue
        elif f.opcode == Opcode.CLOSE:
            code = int.from_bytes(f.data[:2], 'big') if f.data else None
            result.append(ws.Close(code, bytes(f.data[2:]).decode()))
            continue
        if f.fin:
            payload = b''.join(parts)
            result.append(ws.Message(ws.OP_TEXT, payload.decode()) if opcode == Opcode.TEXT
                          else ws.Message(ws.OP_BINARY, payload))
    return result


CLIENT_DEFLATE_OFFERS = [
    None,
    {},
    {'server_no_context_takeover': True},
    {'client_no_context_takeover': True},
    {'server_max_window_bits': 10},
    {'client_max_window_bits': 9},
    {'server_no_context_takeover': True, 'client_no_context_takeover': True, 'server_max_window_bits': 12,
     'client_max_window_bits': 11},
]


def websockets_client_and_our_server(offer: dict | None) -> tuple[ClientProtocol, ws.Connection]:
    """A websockets ClientProtocol and our server Connection, through both handshakes."""
    extensions = None if offer is None else [ClientPerMessageDeflateFactory(**offer)]
    client = ClientProtocol(parse_uri('ws://example.com/chat'), extensions=extensions, subprotocols=['v2', 'v1'],
                            max_size=None)
    client.send_request(client.connect())
    request = parse_request(b''.join(client.data_to_send()))
    hs = ws.check_request(request.method, request.version, request.headers, subprotocols=['v1', 'v2'])
    client.receive_data(ws.accept_response(hs))
    [response] = client.events_received()
    assert response.status_code == 101
    assert client.handshake_exc is None
    assert client.state is State.OPEN
    assert client.subprotocol == 'v2' == hs.subprotocol
    if offer is None:
        assert hs.deflate is None and client.extensions == []
    else:
        assert hs.deflate is not None and isinstance(client.extensions[0], PerMessageDeflate)
    return client, ws.Connection('server', deflate=hs.deflate, max_message=1 << 17)


def our_client_and_websockets_server(server_options: dict | None) -> tuple[ws.Connection, ServerProtocol]:
    """Our client Connection and a websockets ServerProtocol, through both handshakes."""
    extensions = None if server_options is None else [ServerPerMessageDeflateFactory(**server_options)]
    server = ServerProtocol(extensions=extensions, subprotocols=['v1'], max_size=None)
    key = ws.new_key()
    server.receive_data(ws.client_request('example.com', '/chat', key, subprotocols=['v0', 'v1']))
    [request] = server.events_received()
    response = server.accept(request)
    server.send_response(response)
    assert server.state is State.OPEN, response
    parsed = ws.parse_response(b''.join(server.data_to_send()))
    assert parsed is not None
    status, headers, rest = parsed
    assert rest == b''
    ch = ws.check_response(status, headers, key, offered_deflate=True, subprotocols=['v0', 'v1'])
    assert ch.subprotocol == 'v1'
    assert (ch.deflate is None) == (server_options is None)
    return ws.Connection('client', deflate=ch.deflate, max_message=1 << 17), server


SERVER_DEFLATE_OPTIONS = [
    None,
    {},
    {'server_no_context_takeover': True},
    {'client_no_context_takeover': True},
    {'server_max_window_bits': 9},
    {'client_max_window_bits': 10},
    {'server_no_context_takeover': True, 'client_no_context_takeover': True, 'server_max_window_bits': 11,
     'client_max_window_bits': 12},
]

ORACLE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def send_fragmented(protocol, message: str | bytes, cuts: list[int], ping: bool) -> None:
    """Sends through a websockets protocol, fragmented at ``cuts`` (of the uncompressed payload)."""
    payload = message.encode() if isinstance(message, str) else message
    bounds = sorted({cut % (len(payload) + 1) for cut in cuts})
    pieces = [payload[a:b] for a, b in zip([0, *bounds], [*bounds, len(payload)], strict=True)]
    for i, piece in enumerate(pieces):
        fin = i == len(pieces) - 1
        if i == 0:
            (protocol.send_text if isinstance(message, str) else protocol.send_binary)(piece, fin=fin)
        else:
            protocol.send_continuation(piece, fin=fin)
        if ping and not fin:
            protocol.send_ping(b'between')


@pytest.mark.parametrize('offer', CLIENT_DEFLATE_OFFERS, ids=str)
@ORACLE
@given(messages=MESSAGES, data=st.data())
def test_websockets_client_frames_are_read_by_our_server_and_ours_by_it(offer, messages, data):
    client, server = websockets_client_and_our_server(offer)
    expected = []
    for message in messages:
        cuts = data.draw(st.lists(st.integers(0, 1 << 17), max_size=4))
        send_fragmented(client, message, cuts, data.draw(st.booleans()))
        expected.append(expected_event(message))
    client.send_close(1000, 'bye')
    received = [e for e in events(server, b''.join(client.data_to_send())) if not isinstance(e, ws.Ping)]
    assert received == [*expected, ws.Close(1000, 'bye')]

    # And back: what our server sends, websockets' client reads
    out = b''.join(server.send(message) for message in messages) + server.send_ping(b'p') + server.send_close(1000)
    client.receive_data(out)
    assert ws_frames_to_events(client.events_received()) == [*expected, ws.Ping(b'p'), ws.Close(1000, '')]


@pytest.mark.parametrize('options', SERVER_DEFLATE_OPTIONS, ids=str)
@ORACLE
@given(messages=MESSAGES, data=st.data())
def test_our_client_frames_are_read_by_websockets_server_and_its_by_ours(options, messages, data):
    client, server = our_client_and_websockets_server(options)
    expected = [expected_event(message) for message in messages]
    out = b''.join(client.send(message) for message in messages) + client.send_pong(b'q') + client.send_close(1001)
    server.receive_data(out)
    assert server.parser_exc is None
    assert ws_frames_to_events(server.events_received()) == [*expected, ws.Pong(b'q'), ws.Close(1001, '')]

    # And back, fragmented by websockets, with pings between fragments
    server2_client, server2 = our_client_and_websockets_server(options)
    for message in messages:
        send_fragmented(server2, message, data.draw(st.lists(st.integers(0, 1 << 17), max_size=4)), data.draw(st.booleans()))
    server2.send_close(1000, 'end')
    received = [e for e in events(server2_client, b''.join(server2.data_to_send())) if not isinstance(e, ws.Ping)]
    assert received == [*expected, ws.Close(1000, 'end')]


def test_websockets_frames_with_their_own_masks_and_lengths_are_read_by_our_server():
    for size in (0, 1, 125, 126, 65535, 65536, 100_000):
        payload = os.urandom(size)
        data = Frame(Opcode.BINARY, payload).serialize(mask=True)
        assert events(ws.Connection('server', max_message=1 << 17), data) == [ws.Message(ws.OP_BINARY, payload)]
        ours = ws.Connection('server').send(payload)
        parsed = ws_frames_to_events([_parse_websockets_frame(ours, mask=False)])
        assert parsed == [ws.Message(ws.OP_BINARY, payload)]


def _parse_websockets_frame(data: bytes, mask: bool) -> Frame:
    buffer = bytearray(data)

    def read_exact(n: int):
        chunk = bytes(buffer[:n])
        del buffer[:n]
        return chunk
        yield  # a generator, as websockets expects

    parser = Frame.parse(read_exact, mask=mask)
    try:
        next(parser)
    except StopIteration as stop:
        return stop.value
    raise AssertionError('not parsed')


@settings(max_examples=50, deadline=None)
@given(message=st.one_of(st.text(max_size=500), st.binary(max_size=500), LARGE_BINARY),
       cuts=st.lists(st.integers(0, 70_000), max_size=4))
def test_websocket_client_abnf_frames_are_read_by_our_server(message, cuts):
    opcode = ABNF.OPCODE_TEXT if isinstance(message, str) else ABNF.OPCODE_BINARY
    payload = message.encode() if isinstance(message, str) else message
    bounds = sorted({cut % (len(payload) + 1) for cut in cuts})
    pieces = [payload[a:b] for a, b in zip([0, *bounds], [*bounds, len(payload)], strict=True)]
    frames = [ABNF.create_frame(piece, opcode if i == 0 else ABNF.OPCODE_CONT, fin=int(i == len(pieces) - 1)).format()
              for i, piece in enumerate(pieces)]
    # The ping goes between the first two fragments, or before an unfragmented message
    frames.insert(1 if len(frames) > 1 else 0, ABNF.create_frame(b'ka', ABNF.OPCODE_PING).format())
    data = b''.join(frames)
    close = ABNF.create_frame(b'\x03\xe8', ABNF.OPCODE_CLOSE).format()
    assert events(ws.Connection('server', max_message=1 << 17), data + close) == \
        [ws.Ping(b'ka'), expected_event(message), ws.Close(1000, '')]


# ################################################################################################
# permessage-deflate: streams ended with a final block, incompressible messages at the cap


def _deflated_conn(max_message: int = 1 << 20) -> ws.Connection:
    return ws.Connection('server', max_message=max_message, deflate=ws.DeflateParams())


def test_a_message_ending_its_deflate_stream_with_a_final_block_is_followed_by_a_new_stream():
    conn = _deflated_conn()
    for text in ('final block', 'next message', 'and the one after'):
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_FINISH)  # BFINAL=1, no sync tail
        assert events(conn, frame(ws.OP_TEXT, data, rsv1=True)) == [ws.Message(ws.OP_TEXT, text)]


def test_compressed_data_after_the_end_of_a_deflate_stream_is_1007():
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    ended = compressor.compress(b'first') + compressor.flush(zlib.Z_FINISH)
    conn = _deflated_conn()
    with pytest.raises(ws.WebSocketError) as info:
        events(conn, frame(ws.OP_TEXT, ended + raw_deflate(b'more'), rsv1=True))
    assert info.value.code == ws.CLOSE_INVALID_DATA


def test_an_incompressible_message_of_the_cap_is_accepted_compressed_and_one_byte_more_is_1009():
    cap = 65536
    data = os.urandom(cap)
    compressed = raw_deflate(data)
    assert len(compressed) > cap  # deflate made it longer
    assert events(_deflated_conn(cap), frame(ws.OP_BINARY, compressed, rsv1=True)) == [ws.Message(ws.OP_BINARY, data)]
    rejected(frame(ws.OP_BINARY, raw_deflate(os.urandom(cap + 1)), rsv1=True), ws.CLOSE_TOO_BIG,
             max_message=cap, deflate=ws.DeflateParams())
