"""A minimal WebSocket client over raw sockets, for testing the server's RFC 6455 / RFC 7692 conformance.

Written from the RFCs only and independent of zato.proto.websocket, so the server is never checked
against its own code. It builds anything a test needs, valid or not: any opcode, RSV bits, a mask
or none, fragments, non-minimal length encodings, deflate-compressed payloads. Every socket
operation has a timeout, so a server that misbehaves fails a test instead of hanging it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
TIMEOUT = 5.0

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10

DEFLATE_TAIL = b'\x00\x00\xff\xff'


class ServerProtocolError(AssertionError):
    """The server sent something RFC 6455 forbids it to send (a masked frame, a bad length ...)."""


def accept_for(key: str | bytes) -> str:
    """The Sec-WebSocket-Accept a server must answer to a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    if isinstance(key, str):
        key = key.encode('ascii')
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode('ascii')  # noqa: S324 - the RFC's hash


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode('ascii')


def handshake_request(path: str, host: str, key: str | None = None, *, version: str | None = '13',
                      method: str = 'GET', upgrade: str | None = 'websocket', connection: str | None = 'Upgrade',
                      extensions: str | None = None, origin: str | None = None,
                      headers: list[tuple[str, str]] | None = None, http_version: str = 'HTTP/1.1') -> bytes:
    """An opening handshake; a None value leaves that header out."""
    lines = [f'{method} {path} {http_version}', f'Host: {host}']
    if upgrade is not None:
        lines.append(f'Upgrade: {upgrade}')
    if connection is not None:
        lines.append(f'Connection: {connection}')
    if key is not None:
        lines.append(f'Sec-WebSocket-Key: {key}')
    if version is not None:
        lines.append(f'Sec-WebSocket-Version: {version}')
    if extensions is not None:
        lines.append(f'Sec-WebSocket-Extensions: {extensions}')
    if origin is not None:
        lines.append(f'Origin: {origin}')
    for name, value in headers or ():
        lines.append(f'{name}: {value}')
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


def basic_auth(username: str, password: str) -> tuple[str, str]:
    token = base64.b64encode(f'{username}:{password}'.encode()).decode('ascii')
    return 'Authorization', f'Basic {token}'


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b''
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, 'big') ^ int.from_bytes(repeated, 'big')).to_bytes(n, 'big')


def build_frame(opcode: int, payload: bytes | str = b'', *, fin: bool = True, rsv: int = 0, mask: bool = True,
                mask_key: bytes | None = None, length_bytes: int | None = None, declared_length: int | None = None) -> bytes:
    """One frame, byte by byte as RFC 6455 section 5.2 lays it out.

    rsv: any of RSV1 | RSV2 | RSV3. length_bytes: 0 (7-bit), 2 (16-bit) or 8 (64-bit) to force an
    encoding; the minimal one otherwise. declared_length: a length other than the payload's, to
    send a header that announces more than follows.
    """
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    length = len(payload) if declared_length is None else declared_length
    if length_bytes is None:
        length_bytes = 0 if length <= 125 else 2 if length <= 0xFFFF else 8
    first = (0x80 if fin else 0) | rsv | (opcode & 0x0F)
    mask_bit = 0x80 if mask else 0
    if length_bytes == 0:
        head = struct.pack('!BB', first, mask_bit | length)
    elif length_bytes == 2:
        head = struct.pack('!BBH', first, mask_bit | 126, length)
    else:
        head = struct.pack('!BBQ', first, mask_bit | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4) if mask_key is None else mask_key
    return head + key + mask_bytes(payload, key)


def close_payload(code: int | None = None, reason: bytes | str = b'') -> bytes:
    if code is None:
        return b''
    if isinstance(reason, str):
        reason = reason.encode('utf-8')
    return struct.pack('!H', code) + reason


class Deflater:
    """The sending side of permessage-deflate: one message in, its compressed payload out."""

    def __init__(self, no_context_takeover: bool = False, window_bits: int = 15) -> None:
        self.no_context_takeover = no_context_takeover
        self.window_bits = window_bits
        self.obj = self._new()

    def _new(self) -> Any:
        return zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.window_bits)

    def compress(self, data: bytes | str) -> bytes:
        if isinstance(data, str):
            data = data.encode('utf-8')
        if self.no_context_takeover:
            self.obj = self._new()
        out = self.obj.compress(data) + self.obj.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(DEFLATE_TAIL)
        return out[:-4]


class Inflater:
    """The receiving side of permessage-deflate; a fresh decompressor per message when the server
    promised server_no_context_takeover, which proves it kept that promise."""

    def __init__(self, no_context_takeover: bool = False, window_bits: int = 15) -> None:
        self.no_context_takeover = no_context_takeover
        # Exactly the window the server agreed to: a reference further back fails to inflate
        self.window_bits = window_bits
        self.obj = zlib.decompressobj(-window_bits)

    def inflate(self, data: bytes) -> bytes:
        if self.no_context_takeover:
            self.obj = zlib.decompressobj(-self.window_bits)
        try:
            return self.obj.decompress(data + DEFLATE_TAIL)
        except zlib.error as e:
            raise ServerProtocolError(f'the server sent data that does not inflate: {e}') from None


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes
    length_bytes: int = 0  # how the server encoded the length: 0, 2 or 8 extra bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack('!H', self.payload[:2])[0]

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]


@dataclass
class Message:
    opcode: int
    data: bytes
    compressed: bool = False

    @property
    def text(self) -> str:
        assert self.opcode == OP_TEXT, f'expected a text message, got opcode {self.opcode}'
        return self.data.decode('utf-8')

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class HTTPResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    def header_list(self, name: str) -> list[str]:
        """All values of a header, with comma-separated lists split."""
        out = []
        for key, value in self.raw_headers:
            if key.lower() == name.lower():
                out.extend(v.strip() for v in value.split(','))
        return out


@dataclass
class CloseResult:
    code: int | None
    reason: bytes
    frames: list[Frame]   # everything that arrived before the close frame
    got_close_frame: bool
    tcp_closed: bool


class WSClient:
    """One raw connection. Use connect() for a normal session, or open() + send_raw() for anything else."""

    def __init__(self, host: str, port: int, path: str, timeout: float = TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.response: HTTPResponse | None = None
        self.inflater: Inflater | None = None
        self.deflater: Deflater | None = None
        self.extensions: dict[str, str | None] | None = None  # the negotiated permessage-deflate parameters
        self.key = ''

    # Connecting

    def open(self) -> WSClient:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.timeout)
        return self

    @property
    def host_header(self) -> str:
        return f'{self.host}:{self.port}'

    def request(self, **kwargs: Any) -> bytes:
        self.key = kwargs.pop('key', None) or new_key()
        return handshake_request(self.path, kwargs.pop('host', self.host_header), self.key, **kwargs)

    def connect(self, *, extensions: str | None = None, headers: list[tuple[str, str]] | None = None,
                origin: str | None = None, after: bytes = b'', expect_status: int | None = 101) -> WSClient:
        """Opens, sends a handshake (plus `after` in the same write) and reads the response."""
        self.open()
        self.send_raw(self.request(extensions=extensions, headers=headers, origin=origin) + after)
        resp = self.read_response()
        if expect_status is not None:
            assert resp.status == expect_status, (resp.status, resp.headers, resp.body)
        if resp.status == 101:
            self._check_accept(resp)
            self._setup_extensions(resp)
        return self

    def _check_accept(self, resp: HTTPResponse) -> None:
        got = resp.headers.get('sec-websocket-accept')
        if got != accept_for(self.key):
            raise ServerProtocolError(f'Sec-WebSocket-Accept {got!r}, expected {accept_for(self.key)!r}')

    def _setup_extensions(self, resp: HTTPResponse) -> None:
        value = resp.headers.get('sec-websocket-extensions')
        if not value:
            return
        params = parse_extension(value)
        if params is None:
            raise ServerProtocolError(f'unexpected Sec-WebSocket-Extensions {value!r}')
        self.extensions = params
        self.inflater = Inflater('server_no_context_takeover' in params,
                                 int(params.get('server_max_window_bits') or 15))
        bits = params.get('client_max_window_bits')
        window = 15 if not bits else max(9, int(bits))
        self.deflater = Deflater('client_no_context_takeover' in params, window)

    def read_response(self) -> HTTPResponse:
        """An HTTP response head and its Content-Length body; any bytes after it stay buffered as frames."""
        while b'\r\n\r\n' not in self.buf:
            self._recv_more('the handshake response')
        end = self.buf.index(b'\r\n\r\n')
        head = bytes(self.buf[:end]).decode('latin-1')
        del self.buf[:end + 4]
        lines = head.split('\r\n')
        _, status, *reason = lines[0].split(' ', 2)
        raw_headers = []
        for line in lines[1:]:
            name, _, value = line.partition(':')
            raw_headers.append((name.strip(), value.strip()))
        headers = {}
        for name, value in raw_headers:
            headers[name.lower()] = value if name.lower() not in headers else headers[name.lower()] + ', ' + value
        body = b''
        if int(status) != 101:
            length = int(headers.get('content-length', '0'))
            while len(self.buf) < length:
                self._recv_more('the response body')
            body = bytes(self.buf[:length])
            del self.buf[:length]
        self.response = HTTPResponse(int(status), reason[0] if reason else '', headers, body, raw_headers)
        return self.response

    # Sending

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes | str = b'', **kwargs: Any) -> None:
        self.send_raw(build_frame(opcode, payload, **kwargs))

    def send_text(self, text: str | bytes, compress: bool = False) -> None:
        self.send_message(OP_TEXT, text, compress)

    def send_binary(self, data: bytes, compress: bool = False) -> None:
        self.send_message(OP_BINARY, data, compress)

    def send_message(self, opcode: int, data: bytes | str, compress: bool = False) -> None:
        if isinstance(data, str):
            data = data.encode('utf-8')
        if compress:
            assert self.deflater is not None, 'permessage-deflate was not negotiated'
            self.send_frame(opcode, self.deflater.compress(data), rsv=RSV1)
        else:
            self.send_frame(opcode, data)

    def ping(self, payload: bytes = b'') -> None:
        self.send_frame(OP_PING, payload)

    def close(self, code: int | None = 1000, reason: bytes | str = b'') -> None:
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    # Receiving

    def _recv_more(self, what: str) -> None:
        assert self.sock is not None
        try:
            chunk = self.sock.recv(262144)
        except TimeoutError:
            raise TimeoutError(f'nothing from the server within {self.timeout} s while reading {what}') from None
        if not chunk:
            raise ConnectionError(f'the server closed the TCP connection while we read {what}')
        self.buf += chunk

    def _take(self, n: int, what: str) -> bytes:
        while len(self.buf) < n:
            self._recv_more(what)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_frame(self) -> Frame:
        """One frame as the server sent it; a masked frame or a bad length is a server bug."""
        b0, b1 = self._take(2, 'a frame header')
        if b1 & 0x80:
            raise ServerProtocolError('the server masked a frame')
        length = b1 & 0x7F
        length_bytes = 0
        if length == 126:
            length_bytes = 2
            length = struct.unpack('!H', self._take(2, 'a frame length'))[0]
        elif length == 127:
            length_bytes = 8
            length = struct.unpack('!Q', self._take(8, 'a frame length'))[0]
            if length >> 63:
                raise ServerProtocolError('the most significant bit of a 64-bit length is set')
        opcode = b0 & 0x0F
        if opcode in (3, 4, 5, 6, 7) or opcode > OP_PONG:
            raise ServerProtocolError(f'the server sent reserved opcode {opcode}')
        if opcode >= 8 and (length > 125 or not b0 & 0x80 or b0 & 0x70):
            raise ServerProtocolError(f'control frame {opcode} of {length} bytes, fin={bool(b0 & 0x80)}, '
                                      f'rsv={b0 & 0x70:#x}')
        if length_bytes == 2 and length <= 125 or length_bytes == 8 and length <= 0xFFFF:
            raise ServerProtocolError(f'{length} bytes with a {length_bytes}-byte length: not the minimal encoding')
        payload = self._take(length, 'a frame payload')
        frame = Frame(bool(b0 & 0x80), b0 & 0x70, opcode, payload, length_bytes)
        if opcode == OP_CLOSE:
            check_server_close(frame)
        return frame

    def recv_message(self, *, answer_pings: bool = True, controls: list[Frame] | None = None) -> Message:
        """The next data message, reassembled from fragments and inflated if compressed. Pings are
        answered; control frames are appended to `controls` if given; a close frame is an error."""
        parts: list[bytes] = []
        first: Frame | None = None
        while True:
            frame = self.recv_frame()
            if frame.opcode >= 8:
                if controls is not None:
                    controls.append(frame)
                if frame.opcode == OP_CLOSE:
                    raise AssertionError(f'got close {frame.close_code} {frame.close_reason!r} instead of a message')
                if frame.opcode == OP_PING and answer_pings:
                    self.send_frame(OP_PONG, frame.payload)
                continue
            if first is None:
                if frame.opcode not in (OP_TEXT, OP_BINARY):
                    raise ServerProtocolError(f'data frame with opcode {frame.opcode} starts a message')
                if frame.rsv & ~RSV1 or (frame.rsv & RSV1 and self.inflater is None):
                    raise ServerProtocolError(f'RSV bits {frame.rsv:#x} set')
                first = frame
            else:
                if frame.opcode != OP_CONT:
                    raise ServerProtocolError(f'opcode {frame.opcode} inside a fragmented message')
                if frame.rsv:
                    raise ServerProtocolError(f'RSV bits {frame.rsv:#x} set on a continuation frame')
            parts.append(frame.payload)
            if frame.fin:
                break
        data = b''.join(parts)
        compressed = bool(first.rsv & RSV1)
        if compressed:
            assert self.inflater is not None
            data = self.inflater.inflate(data)
        if first.opcode == OP_TEXT:
            try:
                data.decode('utf-8')
            except UnicodeDecodeError:
                raise ServerProtocolError('the server sent a text message that is not UTF-8') from None
        return Message(first.opcode, data, compressed)

    def recv_text(self) -> str:
        return self.recv_message().text

    def recv_json(self) -> Any:
        return self.recv_message().json()

    def expect_close(self, timeout: float | None = None) -> CloseResult:
        """Reads until the server's close frame (answering it) and then until TCP closes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        frames: list[Frame] = []
        assert self.sock is not None
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f'no close frame within {timeout or self.timeout} s; got {frames_summary(frames)}')
            try:
                frame = self.recv_frame()
            except (ConnectionError, OSError) as e:
                if isinstance(e, TimeoutError):
                    raise TimeoutError(f'no close frame; got {frames_summary(frames)}') from None
                return CloseResult(None, b'', frames, False, True)
            if frame.opcode == OP_CLOSE:
                try:
                    self.send_frame(OP_CLOSE, frame.payload[:2])
                except OSError:
                    pass
                return CloseResult(frame.close_code, frame.close_reason, frames, True,
                                   self.tcp_closed(max(0.5, deadline - time.monotonic())))
            frames.append(frame)

    def expect_close_code(self, code: int, timeout: float | None = None) -> CloseResult:
        result = self.expect_close(timeout)
        assert result.got_close_frame, f'TCP closed without a close frame (expected {code})'
        assert result.code == code, f'close code {result.code} {result.reason!r}, expected {code}'
        assert result.tcp_closed, 'the server did not close the TCP connection after the close handshake'
        return result

    def tcp_closed(self, timeout: float | None = None) -> bool:
        """True when the server closed the connection within `timeout`; data arriving first is an error."""
        assert self.sock is not None
        if self.buf:
            raise ServerProtocolError(f'{len(self.buf)} bytes after the close frame: {bytes(self.buf[:40])!r}')
        self.sock.settimeout(timeout or self.timeout)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if chunk:
            raise ServerProtocolError(f'data after the close frame: {chunk[:40]!r}')
        return True

    def nothing_arrives(self, wait: float = 0.3) -> bool:
        """True when the server sends nothing (and keeps the connection open) for `wait` seconds."""
        assert self.sock is not None
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if chunk:
            self.buf += chunk
        return False

    def shutdown(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self) -> WSClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def check_server_close(frame: Frame) -> None:
    """A close frame as RFC 6455 section 7.4 allows an endpoint to send it."""
    if len(frame.payload) == 1:
        raise ServerProtocolError('a close frame with a 1-byte payload')
    code = frame.close_code
    if code is not None and not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        raise ServerProtocolError(f'the server sent close code {code}, which may not be sent')
    try:
        frame.close_reason.decode('utf-8')
    except UnicodeDecodeError:
        raise ServerProtocolError(f'a close reason that is not UTF-8: {frame.close_reason!r}') from None


def frames_summary(frames: list[Frame]) -> str:
    return ', '.join(f'op={f.opcode} len={len(f.payload)}' for f in frames[:10]) or 'nothing'


def parse_extension(value: str) -> dict[str, str | None] | None:
    """permessage-deflate's parameters from a Sec-WebSocket-Extensions response; None if it names
    another extension or more than one."""
    items = [item.strip() for item in value.split(',') if item.strip()]
    if len(items) != 1:
        return None
    name, *params = [p.strip() for p in items[0].split(';')]
    if name.lower() != 'permessage-deflate':
        return None
    out: dict[str, str | None] = {}
    for param in params:
        key, eq, val = param.partition('=')
        out[key.strip().lower()] = val.strip().strip('"') if eq else None
    return out


# The environment: services and channels through the admin API


def deploy(env: Any, file_name: str, source: str) -> list[str]:
    out = env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': source})
    return out['services']


def create_channel(env: Any, name: str, url_path: str, service: str, **extra: Any) -> dict[str, Any]:
    return env.admin.call('POST', '/zato/admin/channels/wsx',
                          {'name': name, 'url_path': url_path, 'service': service, **extra})


def wait_until_served(env: Any, url_path: str, headers: list[tuple[str, str]] | None = None,
                      status: int = 101, timeout: float = 10.0) -> None:
    """Polls with fresh connections until several handshakes in a row get `status`, so every worker serves it."""
    deadline = time.monotonic() + timeout
    ok = 0
    last: Any = None
    while ok < 8:
        if time.monotonic() > deadline:
            raise AssertionError(f'{url_path} not served within {timeout} s; last {last}')
        with WSClient('127.0.0.1', env.base_port, url_path) as c:
            try:
                c.connect(headers=headers, expect_status=None)
                last = c.response.status if c.response else None
            except (OSError, ConnectionError) as e:
                last = e
        if last == status:
            ok += 1
        else:
            ok = 0
            time.sleep(0.05)
