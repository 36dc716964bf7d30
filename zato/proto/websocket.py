"""Sans-IO WebSockets (RFC 6455) with permessage-deflate (RFC 7692): handshakes, frames, messages.

Nothing here does I/O. The server side checks an upgrade request (``check_request``) and answers it
(``accept_response``); the client side builds a request (``client_request``) and checks the answer
(``parse_response``, ``check_response``). After the handshake a ``Connection`` turns received bytes
into events (``feed`` then ``next_event``) and messages into bytes (``send``, ``send_ping`` ...).
Masking goes through ``zato.accel``, so the compiled masker is used when it is built. The handshake
functions live in zato.proto.ws_handshake and are re-exported here.

The rules a Connection enforces, in prose (each one has a named test; RELIABILITY.md, "WebSockets"):

* A server receives only masked frames and a client only unmasked ones; a client masks what it sends
  with a fresh random key per frame, a server never masks.
* RSV2 and RSV3 are never set. RSV1 means "compressed" and is allowed only when permessage-deflate
  was negotiated, and only on the first frame of a text or binary message.
* Opcodes 3-7 and 11-15 are reserved. Control frames (close, ping, pong) carry at most 125 bytes and
  are never fragmented; they may arrive between the fragments of a message.
* A continuation needs a message in progress, and a new text or binary frame needs none.
* A 64-bit length has its most significant bit clear.
* A message is at most ``max_message`` bytes once inflated, and on the wire (compressed, at most what
  deflate may add to an incompressible message of that size). A frame header that
  would take it past the cap fails at once, before its payload is buffered, and inflating never
  produces more than the cap, so a deflate bomb costs no memory.
* Text is UTF-8, checked as it arrives: a text frame that is not all there yet is read piece by piece,
  each piece unmasked and fed to an incremental decoder that carries a character cut between pieces or
  fragments over to the next one. A message that cannot be valid fails on the first bytes that show it,
  without waiting for the rest of its frame; a complete message ends on a character boundary. A frame
  that arrives whole is decoded in one call.
* Events come out in the order of the frames that make them. An error is raised only when next_event
  reaches the frame that breaks a rule, after every event that arrived before it has been returned.
* A close frame is empty or carries a code and a UTF-8 reason; 1005, 1006, 1015, codes below 1000,
  1004, 1016-2999 and 5000 and above are never valid on the wire. After a close frame is received
  nothing more is read.

A violation raises WebSocketError with the close code to send, and the Connection stays failed: every
later call to next_event raises the same error. Close codes: 1002 for framing, 1007 for invalid
text or compressed data, 1009 for a message too big.

Sending: ``send`` makes one unfragmented frame, compressed when permessage-deflate was agreed. Once
``send_close`` has been called every send method returns ``b''``, so greenlets racing a close need
not check first. A broadcast frame made once with ``encode_frame`` (uncompressed) is valid on every
connection, with or without permessage-deflate, and does not disturb a compression context. zlib
cannot compress raw deflate with 8 window bits, so 9 is used when 8 was agreed (and 9 when inflating,
which is what a zlib-based peer sends in that case).
"""

from __future__ import annotations

import codecs
import os
import zlib
from typing import TYPE_CHECKING

from zato.accel import load
from zato.proto.ws_handshake import (GUID, ClientHandshake, DeflateParams, HandshakeError, ServerHandshake,
                                     accept_key, accept_response, check_request, check_response, client_request,
                                     new_key, parse_response)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    'CLOSE_ABNORMAL', 'CLOSE_GOING_AWAY', 'CLOSE_INTERNAL_ERROR', 'CLOSE_INVALID_DATA', 'CLOSE_NORMAL',
    'CLOSE_NO_STATUS', 'CLOSE_POLICY', 'CLOSE_PROTOCOL_ERROR', 'CLOSE_TOO_BIG', 'CLOSE_UNSUPPORTED_DATA', 'GUID',
    'OP_BINARY', 'OP_CLOSE', 'OP_CONT', 'OP_PING', 'OP_PONG', 'OP_TEXT', 'ClientHandshake', 'Close', 'Connection',
    'DeflateParams', 'HandshakeError', 'Message', 'Ping', 'Pong', 'ServerHandshake', 'WebSocketError', 'accept_key',
    'accept_response', 'check_request', 'check_response', 'client_request', 'encode_frame', 'new_key',
    'parse_response',
]

_mask: Callable[[bytes | bytearray | memoryview, bytes | bytearray], bytes] = load('zato.proto.wsmask').mask

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

MAX_CONTROL_PAYLOAD = 125

# What RFC 7692 calls the empty uncompressed block that ends every compressed message
_DEFLATE_TAIL = b'\x00\x00\xff\xff'

# Text that comes in pieces (fragments, the parts of a frame read before all of it arrived) and compressed
# text is checked with this, piece by piece; a whole uncompressed frame with bytes.decode, in one call.
# bench/wsmask.py, 16 KiB in 4 fragments: 3.6 us ASCII, 19 us mixed scripts, against 51 us for wsaccel's
# validator, which moreover gives no str, so the message would still have to be decoded.
_UTF8_DECODER = codecs.getincrementaldecoder('utf-8')

# Trim consumed bytes off the receive buffer once this many have piled up in front of the unread ones
_TRIM_AT = 65536


def _turn(key: bytes, size: int) -> bytes:
    """The masking key for the bytes that follow ``size`` masked ones: byte i of a payload goes with key[i % 4]."""
    turn = size & 3
    return key[turn:] + key[:turn] if turn else key


def _close_code_is_valid(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 section 7.4, and the IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class WebSocketError(Exception):
    """The peer broke the protocol; send a close frame with ``code`` and drop the connection."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f'{self.code} {self.reason}'


# ################################################################################################
# Events


class _Event:
    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        fields = ', '.join(f'{name}={getattr(self, name)!r}' for name in self.__slots__)
        return f'{type(self).__name__}({fields})'


class Message(_Event):
    """A complete data message: ``data`` is a str for OP_TEXT and bytes for OP_BINARY."""

    __slots__ = ('opcode', 'data')

    def __init__(self, opcode: int, data: str | bytes) -> None:
        self.opcode = opcode
        self.data = data


class Ping(_Event):
    """A ping; answer it with ``Connection.send_pong(data)``."""

    __slots__ = ('data',)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Pong(_Event):
    """A pong, solicited or not."""

    __slots__ = ('data',)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Close(_Event):
    """A close frame; ``code`` is None when it had no payload (reported to applications as 1005)."""

    __slots__ = ('code', 'reason')

    def __init__(self, code: int | None, reason: str = '') -> None:
        self.code = code
        self.reason = reason


# ################################################################################################
# Frames


def encode_frame(opcode: int, payload: bytes | bytearray | memoryview, *, fin: bool = True, rsv1: bool = False,
                 mask: bytes | None = None) -> bytes:
    """One frame, masked with the 4-byte ``mask`` if given (clients mask, servers do not).

    A server broadcasting a message builds its frame once with this and sends the same bytes to every client.
    """
    size = len(payload) if not isinstance(payload, memoryview) else payload.nbytes
    if opcode & 8:
        if opcode > OP_PONG:
            raise ValueError(f'reserved opcode {opcode}')
        if size > MAX_CONTROL_PAYLOAD or not fin:
            raise ValueError('a control frame carries at most 125 bytes and is never fragmented')
    elif opcode > OP_BINARY or opcode < 0:
        raise ValueError(f'reserved opcode {opcode}')
    first = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    masked = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes((first, masked | size))
    elif size < 65536:
        head = bytes((first, masked | 126)) + size.to_bytes(2, 'big')
    else:
        head = bytes((first, masked | 127)) + size.to_bytes(8, 'big')
    if mask is None:
        return head + payload
    if len(mask) != 4:
        raise ValueError('a masking key has 4 bytes')
    return head + mask + _mask(payload, mask)


class Connection:
    """One side of an open WebSocket connection: bytes in, events out; messages in, bytes out.

    ``role`` is 'server' or 'client'; ``deflate`` the permessage-deflate parameters the handshake agreed,
    or None. ``max_message`` caps the size of a received message in bytes, compressed and inflated alike.
    """

    def __init__(self, role: str, *, max_message: int = 1 << 20, deflate: DeflateParams | None = None) -> None:
        if role not in ('server', 'client'):
            raise ValueError(f"role is 'server' or 'client', not {role!r}")
        self.role = role
        self.max_message = max_message
        self.deflate = deflate
        self.close_sent = False
        self.close_received = False

        self._server = role == 'server'
        self._buf = bytearray()
        self._pos = 0
        self._error: WebSocketError | None = None

        # The data message being received, if its first frame had FIN clear or it is compressed
        self._opcode = -1          # OP_TEXT or OP_BINARY while a fragmented message is in progress
        self._compressed = False
        self._parts: list = []
        self._wire_size = 0        # payload bytes received for the message so far
        # Deflate may make an incompressible message slightly longer than itself (zlib's deflateBound):
        # the compressed form of a message within the cap is allowed that much on the wire
        self._wire_cap = max_message + (max_message >> 10) + 64
        self._size = 0             # its bytes once inflated
        self._text: codecs.IncrementalDecoder | None = None

        # A text frame read piece by piece: the payload bytes still to come, its masking key turned to
        # where the next piece starts (b'' when unmasked) and its FIN bit
        self._left = 0
        self._key = b''
        self._fin = 0

        # Each side compresses with its own parameters and inflates with the peer's
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        if deflate is not None:
            own, peer = ('server', 'client') if self._server else ('client', 'server')
            # zlib cannot compress raw deflate with a 256-byte window, so 8 becomes 9; inflating with 9
            # too accepts what a zlib-based peer sends when 8 was agreed (its deflate does the same)
            self._compress_bits = -max(9, getattr(deflate, f'{own}_max_window_bits'))
            self._decompress_bits = -max(9, getattr(deflate, f'{peer}_max_window_bits'))
            self._compress_reset = getattr(deflate, f'{own}_no_context_takeover')
            self._decompress_reset = getattr(deflate, f'{peer}_no_context_takeover')

    # ------------------------------------------------------------------------------------------
    # Receiving

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Adds received bytes; call next_event until it returns None."""
        if self._error is None and not self.close_received:
            self._buf += data

    def _fail(self, code: int, reason: str) -> WebSocketError:
        self._error = WebSocketError(code, reason)
        self._buf = bytearray()
        self._pos = 0
        self._parts = []
        self._left = 0
        return self._error

    def next_event(self) -> Message | Ping | Pong | Close | None:
        """The next complete message or control frame, or None if more bytes are needed.

        Raises WebSocketError on a protocol violation, and again on every later call.
        """
        if self._error is not None:
            raise self._error
        if self._left:
            event = self._rest_of_frame()
            if event is not None or self._left:
                return event
        buf = self._buf
        while not self.close_received:
            pos = self._pos
            available = len(buf) - pos
            if available < 2:
                return None
            first, second = buf[pos], buf[pos + 1]
            fin = first & 0x80
            opcode = first & 0x0F
            size = second & 0x7F
            head = 2
            if size == 126:
                head = 4
                if available < 4:
                    return None
                size = buf[pos + 2] << 8 | buf[pos + 3]
            elif size == 127:
                head = 10
                if available < 10:
                    return None
                size = int.from_bytes(buf[pos + 2:pos + 10], 'big')
                if size >> 63:
                    raise self._fail(CLOSE_PROTOCOL_ERROR, 'the most significant bit of a 64-bit length is set')
            masked = second & 0x80
            if masked:
                head += 4

            # Everything about the frame is checked before its payload is waited for
            if bool(masked) != self._server:
                raise self._fail(CLOSE_PROTOCOL_ERROR, 'an unmasked frame from a client' if self._server
                                 else 'a masked frame from a server')
            if first == 0x81 or first == 0x82:
                # A whole uncompressed text or binary message in one frame: the common case, checked in line
                if self._opcode >= 0:
                    raise self._fail(CLOSE_PROTOCOL_ERROR, 'a new message before the previous one was finished')
                if size > self.max_message:
                    raise self._too_big()
            else:
                self._check_header(first, size)

            end = pos + head + size
            if len(buf) < end:
                # Text is checked as it comes: what is there of the frame is read now, the rest later
                if len(buf) > pos + head and (opcode == OP_TEXT or opcode == OP_CONT and self._text is not None):
                    self._first_piece(pos, head, size, fin, masked)
                return None
            if masked:
                payload = _mask(buf[pos + head:end], buf[pos + head - 4:pos + head])
            else:
                payload = bytes(buf[pos + head:end])
            if end == len(buf):
                buf.clear()
                self._pos = 0
            elif end >= _TRIM_AT:
                del buf[:end]
                self._pos = 0
            else:
                self._pos = end

            if first == 0x81:
                try:
                    return Message(OP_TEXT, payload.decode('utf-8'))
                except UnicodeDecodeError:
                    raise self._fail(CLOSE_INVALID_DATA, 'a text message that is not UTF-8')
            if first == 0x82:
                return Message(OP_BINARY, payload)
            if opcode & 8:
                return self._control(opcode, payload)
            event = self._data(opcode, payload, fin, first & 0x40)
            if event is not None:
                return event
        return None

    def _first_piece(self, pos: int, head: int, size: int, fin: int, masked: int) -> None:
        """Reads all there is of a text frame whose header is checked but whose payload is not all there."""
        buf = self._buf
        start = pos + head
        take = len(buf) - start
        if masked:
            key = bytes(buf[start - 4:start])
            payload = _mask(buf[start:], key)
            self._key = _turn(key, take)
        else:
            self._key = b''
            payload = bytes(buf[start:])
        self._left = size - take
        self._fin = fin
        opcode = buf[pos] & 0x0F
        rsv1 = buf[pos] & 0x40
        buf.clear()
        self._pos = 0
        # Never a whole message, the frame being incomplete: this only checks the piece and keeps it
        self._data(opcode, payload, 0, rsv1)

    def _rest_of_frame(self) -> Message | None:
        """Reads what has arrived of the rest of a text frame; its message once the frame ends one."""
        buf = self._buf
        pos = self._pos
        take = min(len(buf) - pos, self._left)
        if not take:
            return None
        end = pos + take
        key = self._key
        if key:
            payload = _mask(buf[pos:end], key)
            self._key = _turn(key, take)
        else:
            payload = bytes(buf[pos:end])
        if end == len(buf):
            buf.clear()
            self._pos = 0
        else:
            # The frame ends here and the next one follows: next_event trims the buffer as it reads on
            self._pos = end
        self._left -= take
        return self._data(OP_CONT, payload, 0 if self._left else self._fin, 0)

    def _too_big(self) -> WebSocketError:
        return self._fail(CLOSE_TOO_BIG, f'a message longer than {self.max_message} bytes')

    def _check_header(self, first: int, size: int) -> None:
        """Checks a frame header other than that of a whole uncompressed message; raises WebSocketError."""
        opcode = first & 0x0F
        if first & 0x30:
            raise self._fail(CLOSE_PROTOCOL_ERROR, 'RSV2 or RSV3 is set')
        if opcode & 8:
            if opcode > OP_PONG:
                raise self._fail(CLOSE_PROTOCOL_ERROR, f'reserved opcode {opcode}')
            if not first & 0x80:
                raise self._fail(CLOSE_PROTOCOL_ERROR, 'a fragmented control frame')
            if size > MAX_CONTROL_PAYLOAD:
                raise self._fail(CLOSE_PROTOCOL_ERROR, 'a control frame longer than 125 bytes')
            if first & 0x40:
                raise self._fail(CLOSE_PROTOCOL_ERROR, 'RSV1 set on a control frame')
            return
        if opcode > OP_BINARY:
            raise self._fail(CLOSE_PROTOCOL_ERROR, f'reserved opcode {opcode}')
        if opcode == OP_CONT:
            if self._opcode < 0:
                raise self._fail(CLOSE_PROTOCOL_ERROR, 'a continuation frame without a message in progress')
            if first & 0x40:
                raise self._fail(CLOSE_PROTOCOL_ERROR, 'RSV1 set on a continuation frame')
            # The cap is on the whole message, so the fragments received so far count
            if self._wire_size + size > (self._wire_cap if self._compressed else self.max_message):
                raise self._too_big()
            return
        if self._opcode >= 0:
            raise self._fail(CLOSE_PROTOCOL_ERROR, 'a new message before the previous one was finished')
        if first & 0x40 and self.deflate is None:
            raise self._fail(CLOSE_PROTOCOL_ERROR, 'RSV1 set without permessage-deflate')
        if size > (self._wire_cap if first & 0x40 else self.max_message):
            raise self._too_big()

    def _control(self, opcode: int, payload: bytes) -> Ping | Pong | Close:
        if opcode == OP_PING:
            return Ping(payload)
        if opcode == OP_PONG:
            return Pong(payload)
        self.close_received = True
        # Nothing after a close frame is read (RFC 6455 section 5.5.1)
        self._buf.clear()
        self._pos = 0
        if not payload:
            return Close(None, '')
        if len(payload) == 1:
            raise self._fail(CLOSE_PROTOCOL_ERROR, 'a close frame with a 1-byte payload')
        code = int.from_bytes(payload[:2], 'big')
        if not _close_code_is_valid(code):
            raise self._fail(CLOSE_PROTOCOL_ERROR, f'close code {code} is not valid on the wire')
        try:
            reason = payload[2:].decode('utf-8')
        except UnicodeDecodeError:
            raise self._fail(CLOSE_INVALID_DATA, 'the close reason is not UTF-8')
        return Close(code, reason)

    def _data(self, opcode: int, payload: bytes, fin: int, rsv1: int) -> Message | None:
        max_message = self.max_message
        if opcode != OP_CONT:
            # The first frame of a fragmented or compressed message (next_event reads whole plain ones itself)
            self._opcode = opcode
            self._compressed = bool(rsv1)
            self._wire_size = self._size = 0
            self._parts = []
            self._text = _UTF8_DECODER() if opcode == OP_TEXT else None
            if rsv1 and self._decompressor is None:
                self._decompressor = zlib.decompressobj(self._decompress_bits)
        self._wire_size += len(payload)

        if self._compressed:
            decompressor = self._decompressor
            assert decompressor is not None
            if decompressor.eof and payload:
                raise self._fail(CLOSE_INVALID_DATA, 'compressed data after the end of the deflate stream')
            payload = self._inflate(payload, max_message - self._size)
            if decompressor.eof and decompressor.unused_data:
                raise self._fail(CLOSE_INVALID_DATA, 'compressed data after the end of the deflate stream')
            if fin:
                payload += self._inflate(_DEFLATE_TAIL, max_message - self._size - len(payload))
                # A message may end its deflate stream with a final block (RFC 7692 section 7.2.3.3):
                # the next one then starts a new stream
                if self._decompress_reset or decompressor.eof:
                    self._decompressor = None
        self._size += len(payload)
        if self._size > max_message:
            raise self._fail(CLOSE_TOO_BIG, f'a message longer than {max_message} bytes')

        text = self._text
        if text is not None:
            try:
                self._parts.append(text.decode(payload, final=bool(fin)))
            except UnicodeDecodeError:
                raise self._fail(CLOSE_INVALID_DATA, 'a text message that is not UTF-8')
        else:
            self._parts.append(payload)
        if not fin:
            return None

        parts, self._parts, self._opcode, self._text = self._parts, [], -1, None
        if text is not None:
            return Message(OP_TEXT, parts[0] if len(parts) == 1 else ''.join(parts))
        return Message(OP_BINARY, parts[0] if len(parts) == 1 else b''.join(parts))

    def _inflate(self, data: bytes, room: int) -> bytes:
        """Inflates ``data``, never to more than ``room`` + 1 bytes, so that a bomb is caught before it grows."""
        assert self._decompressor is not None
        try:
            # max_length 0 would mean "no limit", hence at least 1
            return self._decompressor.decompress(data, max(room, 0) + 1)
        except zlib.error as e:
            raise self._fail(CLOSE_INVALID_DATA, f'compressed data that cannot be inflated ({e})')

    # ------------------------------------------------------------------------------------------
    # Sending

    # Once a close frame is sent nothing may follow it (RFC 6455 section 5.5.1). Every send method then
    # returns b'' instead of raising: a greenlet that sends while another one closes has nothing to check.

    def _frame(self, opcode: int, payload: bytes | bytearray | memoryview, rsv1: bool = False) -> bytes:
        return encode_frame(opcode, payload, rsv1=rsv1, mask=None if self._server else os.urandom(4))

    def send(self, data: str | bytes | bytearray | memoryview) -> bytes:
        """The bytes of one message: text for a str, binary otherwise; compressed if permessage-deflate was agreed."""
        if self.close_sent:
            return b''
        payload: bytes | bytearray | memoryview
        if isinstance(data, str):
            opcode, payload = OP_TEXT, data.encode('utf-8')
        else:
            opcode, payload = OP_BINARY, data
        if self.deflate is None:
            return self._frame(opcode, payload)
        compressor = self._compressor
        if compressor is None:
            # memLevel 5 instead of 8: 144 KiB per compressor instead of 256, for a little less compression
            compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, self._compress_bits, 5)
            if not self._compress_reset:
                self._compressor = compressor
        compressed = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        # A sync flush always ends with the empty stored block that the receiver adds back
        if compressed.endswith(_DEFLATE_TAIL):
            compressed = compressed[:-4]
        return self._frame(opcode, compressed, rsv1=True)

    def send_ping(self, data: bytes = b'') -> bytes:
        """The bytes of a ping carrying at most 125 bytes of ``data`` (more is a ValueError)."""
        return b'' if self.close_sent else self._frame(OP_PING, data)

    def send_pong(self, data: bytes) -> bytes:
        """The bytes of a pong, usually echoing the data of a ping."""
        return b'' if self.close_sent else self._frame(OP_PONG, data)

    def send_close(self, code: int = CLOSE_NORMAL, reason: str = '') -> bytes:
        """The bytes of a close frame, after which nothing more is sent; sets ``close_sent``.

        ``code`` must be valid on the wire (never 1005, 1006 or 1015: ValueError). The reason is cut to the
        123 bytes of UTF-8 that fit in a control frame, at a character boundary.
        """
        if not _close_code_is_valid(code):
            raise ValueError(f'close code {code} may not be sent')
        if self.close_sent:
            return b''
        encoded = reason.encode('utf-8')
        if len(encoded) > MAX_CONTROL_PAYLOAD - 2:
            encoded = encoded[:MAX_CONTROL_PAYLOAD - 2].decode('utf-8', 'ignore').encode('utf-8')
        frame = self._frame(OP_CLOSE, code.to_bytes(2, 'big') + encoded)
        self.close_sent = True
        return frame
