"""The WebSocket opening handshake (RFC 6455 section 4) and permessage-deflate negotiation (RFC 7692):
checking an upgrade request and answering it on the server, building a request and checking the
answer on the client. Sans-IO; zato.proto.websocket re-exports all of it with the frames."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

MAX_RESPONSE_HEAD = 16384


class HandshakeError(Exception):
    """The opening handshake failed; on the server, answer with ``status`` and ``headers``."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = [] if headers is None else headers

    def __str__(self) -> str:
        return f'{self.status} {self.reason}'


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value that answers the Sec-WebSocket-Key ``key``."""
    digest = hashlib.sha1((key + GUID).encode('ascii'), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode('ascii')


def new_key() -> str:
    """A fresh Sec-WebSocket-Key: 16 random bytes in base64."""
    return base64.b64encode(os.urandom(16)).decode('ascii')


def _tokens(value: str) -> list[str]:
    """The lower-cased items of a comma-separated header value."""
    return [item.strip().lower() for item in value.split(',') if item.strip()]


class DeflateParams:
    """The negotiated parameters of permessage-deflate (RFC 7692 section 7.1).

    ``server_*`` apply to what the server compresses and the client inflates, ``client_*`` the other way.
    """

    __slots__ = ('client_max_window_bits', 'client_no_context_takeover', 'server_max_window_bits',
                 'server_no_context_takeover')

    def __init__(self, server_no_context_takeover: bool = False, client_no_context_takeover: bool = False,
                 server_max_window_bits: int = 15, client_max_window_bits: int = 15) -> None:
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits

    def header_value(self) -> str:
        """The Sec-WebSocket-Extensions value of a server's response that accepts these parameters.

        client_max_window_bits is left out at 15: a client that did not offer it must not be sent it,
        and one that offered it without a value uses 15 when it is missing (RFC 7692 section 7.1.2.2).
        """
        parts = ['permessage-deflate']
        if self.server_no_context_takeover:
            parts.append('server_no_context_takeover')
        if self.client_no_context_takeover:
            parts.append('client_no_context_takeover')
        parts.append(f'server_max_window_bits={self.server_max_window_bits}')
        if self.client_max_window_bits != 15:
            parts.append(f'client_max_window_bits={self.client_max_window_bits}')
        return '; '.join(parts)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f'DeflateParams({self.header_value()!r})'


class ServerHandshake:
    """An upgrade request that passed check_request: its key and what was agreed."""

    __slots__ = ('deflate', 'key', 'subprotocol')

    def __init__(self, key: str, subprotocol: str | None = None, deflate: DeflateParams | None = None) -> None:
        self.key = key
        self.subprotocol = subprotocol
        self.deflate = deflate


class ClientHandshake:
    """A handshake response that passed check_response: what the server agreed to."""

    __slots__ = ('deflate', 'subprotocol')

    def __init__(self, subprotocol: str | None = None, deflate: DeflateParams | None = None) -> None:
        self.subprotocol = subprotocol
        self.deflate = deflate


# Sec-WebSocket-Extensions (RFC 6455 section 9.1): extension *( ";" param ), param = token [ "=" value ]
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TCHARS})\s*(?:=\s*({_TCHARS}|"(?:[^"\\]|\\.)*")\s*)?')
_WINDOW_BITS = re.compile(r'(?:8|9|1[0-5])')


def _parse_extensions(value: str) -> list[tuple[str, list[tuple[str, str | None]]]] | None:
    """The offers or answers in a Sec-WebSocket-Extensions value, or None if it is malformed."""
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    pos, end = 0, len(value)
    while True:
        # Empty list elements (", ,") are allowed by the list syntax
        while pos < end and value[pos] in ' \t,':
            pos += 1
        if pos == end:
            return result
        # One extension: its name and parameters, each item ending at ';', ',' or the end
        items: list[tuple[str, str | None]] = []
        while True:
            match = _PARAM.match(value, pos)
            if match is None:
                return None
            name, param = match.group(1), match.group(2)
            if param is not None and param.startswith('"'):
                param = re.sub(r'\\(.)', r'\1', param[1:-1])
            items.append((name.lower(), param))
            pos = match.end()
            if pos == end or value[pos] == ',':
                break
            if value[pos] != ';':
                return None
            pos += 1
        if items[0][1] is not None:
            return None
        result.append((items[0][0], items[1:]))


def _deflate_params(params: list[tuple[str, str | None]], server: bool) -> DeflateParams | None:
    """DeflateParams from the parameters of a permessage-deflate offer (``server``) or answer, or None if invalid."""
    seen: set[str] = set()
    result = DeflateParams()
    for name, value in params:
        if name in seen:
            return None
        seen.add(name)
        if name in ('server_no_context_takeover', 'client_no_context_takeover'):
            if value is not None:
                return None
            setattr(result, name, True)
        elif name in ('server_max_window_bits', 'client_max_window_bits'):
            if value is None:
                # Only an offer may name client_max_window_bits without a value: "I support it"
                if not (server and name == 'client_max_window_bits'):
                    return None
                continue
            if not _WINDOW_BITS.fullmatch(value):
                return None
            setattr(result, name, int(value))
        else:
            return None
    return result


def check_request(method: str, version: str, headers: dict[str, str], *, subprotocols: Sequence[str] = (),
                  allow_deflate: bool = True) -> ServerHandshake:
    """Checks an upgrade request; raises HandshakeError with the response to send if it is not one.

    ``headers`` has lower-cased names with repeated fields joined by ', ', as zato.proto.http1 gives them.
    The subprotocol is the first one the client offers that is among ``subprotocols``; permessage-deflate
    is the first offer of it whose parameters are valid (RFC 7692 section 5), unless not ``allow_deflate``.
    """
    if method != 'GET':
        raise HandshakeError(405, 'a WebSocket handshake is a GET request', [('Allow', 'GET')])
    if version != '1.1':
        raise HandshakeError(400, 'a WebSocket handshake needs HTTP/1.1')
    if 'websocket' not in _tokens(headers.get('upgrade', '')):
        raise HandshakeError(400, 'the Upgrade header does not name websocket')
    if 'upgrade' not in _tokens(headers.get('connection', '')):
        raise HandshakeError(400, 'the Connection header does not name upgrade')
    if headers.get('sec-websocket-version', '').strip() != '13':
        raise HandshakeError(426, 'only WebSocket version 13 is supported', [('Sec-WebSocket-Version', '13')])
    key = headers.get('sec-websocket-key', '').strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b''
    if len(raw) != 16:
        raise HandshakeError(400, 'Sec-WebSocket-Key is not 16 bytes in base64')

    subprotocol = None
    if subprotocols and (offered := headers.get('sec-websocket-protocol')):
        for name in offered.split(','):
            if (name := name.strip()) in subprotocols:
                subprotocol = name
                break

    deflate = None
    if allow_deflate and (offered := headers.get('sec-websocket-extensions')):
        for name, params in _parse_extensions(offered) or ():
            if name == 'permessage-deflate' and (deflate := _deflate_params(params, server=True)) is not None:
                break
    return ServerHandshake(key, subprotocol, deflate)


def _check_header_value(value: str) -> str:
    if '\r' in value or '\n' in value or '\0' in value:
        raise ValueError(f'a header value may not contain CR, LF or NUL: {value!r}')
    return value


def accept_response(hs: ServerHandshake, extra_headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """The 101 response that accepts the handshake ``hs``, with ``extra_headers`` after the WebSocket ones."""
    lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade',
             f'Sec-WebSocket-Accept: {accept_key(hs.key)}']
    if hs.subprotocol is not None:
        lines.append(f'Sec-WebSocket-Protocol: {hs.subprotocol}')
    if hs.deflate is not None:
        lines.append(f'Sec-WebSocket-Extensions: {hs.deflate.header_value()}')
    lines.extend(f'{name}: {_check_header_value(value)}' for name, value in extra_headers)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


def client_request(host: str, path: str, key: str, *, origin: str | None = None, subprotocols: Sequence[str] = (),
                   deflate: bool = True, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """The GET request that opens a WebSocket to ``host`` (with its port if not the default) at ``path``."""
    lines = [f'GET {_check_header_value(path)} HTTP/1.1', f'Host: {_check_header_value(host)}', 'Upgrade: websocket',
             'Connection: Upgrade', f'Sec-WebSocket-Key: {_check_header_value(key)}', 'Sec-WebSocket-Version: 13']
    if origin is not None:
        lines.append(f'Origin: {_check_header_value(origin)}')
    if subprotocols:
        lines.append(f'Sec-WebSocket-Protocol: {_check_header_value(", ".join(subprotocols))}')
    if deflate:
        # Without a value: we can compress with any window the server asks for
        lines.append('Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits')
    lines.extend(f'{name}: {_check_header_value(value)}' for name, value in headers)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


_STATUS_LINE = re.compile(r'HTTP/1\.[01] ([1-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?')
_HEADER_LINE = re.compile(rf'({_TCHARS}):[ \t]*((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*')


def parse_response(buf: bytes | bytearray) -> tuple[int, dict[str, str], bytes] | None:
    """Parses the head of a handshake response: (status, headers, the bytes after the head), or None if incomplete.

    Header names are lower-cased and repeated fields joined with ', '. A malformed head, or one longer than
    16 KiB, raises HandshakeError(502).
    """
    end = buf.find(b'\r\n\r\n', 0, MAX_RESPONSE_HEAD + 4)
    if end < 0:
        if len(buf) >= MAX_RESPONSE_HEAD + 4:
            raise HandshakeError(502, 'the handshake response head is longer than 16 KiB')
        return None
    lines = bytes(buf[:end]).decode('latin-1').split('\r\n')
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        raise HandshakeError(502, f'malformed status line in the handshake response: {lines[0][:100]!r}')
    headers: dict[str, str] = {}
    for line in lines[1:]:
        header = _HEADER_LINE.fullmatch(line)
        if header is None:
            raise HandshakeError(502, f'malformed header line in the handshake response: {line[:100]!r}')
        name, value = header.group(1).lower(), header.group(2)
        headers[name] = f'{headers[name]}, {value}' if name in headers else value
    return int(status_line.group(1)), headers, bytes(buf[end + 4:])


def check_response(status: int, headers: dict[str, str], key: str, *, offered_deflate: bool,
                   subprotocols: Sequence[str] = ()) -> ClientHandshake:
    """Checks the answer to client_request; raises HandshakeError(status, or 502 for a bad 101) if it refuses."""
    if status != 101:
        raise HandshakeError(status or 502, f'the server answered {status} instead of 101 Switching Protocols')
    if 'websocket' not in _tokens(headers.get('upgrade', '')):
        raise HandshakeError(502, 'the handshake response has no Upgrade: websocket')
    if 'upgrade' not in _tokens(headers.get('connection', '')):
        raise HandshakeError(502, 'the handshake response has no Connection: upgrade')
    if headers.get('sec-websocket-accept', '').strip() != accept_key(key):
        raise HandshakeError(502, 'the handshake response has a wrong Sec-WebSocket-Accept')

    subprotocol = None
    if (answered := headers.get('sec-websocket-protocol')) is not None:
        subprotocol = answered.strip()
        if subprotocol not in subprotocols:
            raise HandshakeError(502, f'the server chose a subprotocol that was not offered: {subprotocol[:100]!r}')

    deflate = None
    if (answered := headers.get('sec-websocket-extensions')) is not None:
        extensions = _parse_extensions(answered)
        if extensions is None:
            raise HandshakeError(502, 'malformed Sec-WebSocket-Extensions in the handshake response')
        for name, params in extensions:
            if name != 'permessage-deflate' or not offered_deflate:
                raise HandshakeError(502, f'the server accepted an extension that was not offered: {name[:100]!r}')
            if deflate is not None:
                raise HandshakeError(502, 'the server accepted permessage-deflate twice')
            deflate = _deflate_params(params, server=False)
            if deflate is None:
                raise HandshakeError(502, 'invalid permessage-deflate parameters in the handshake response')
    return ClientHandshake(subprotocol, deflate)


