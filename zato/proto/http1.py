"""Sans-IO HTTP/1.1: a strict request parser and a response serializer.

This module is the specification; ``ext/http1.pyx`` (``zato.cy.http1``) is its compiled twin with the
same public API, and ``zato.accel.load('zato.proto.http1')`` picks one of the two.

The rules, in prose (RFC 9112 and the HTTP section of RELIABILITY.md; each one has a named test):

* Lines end in CRLF. A bare LF or a bare CR anywhere in the head is a 400 - lenient line endings are
  how request smuggling starts, because two parsers disagree about where a message ends.
* Request line: ``method SP request-target SP HTTP-version``, single spaces, method a token, the
  target visible ASCII, the version exactly ``HTTP/1.1`` or ``HTTP/1.0`` (any other ``HTTP/x.y`` is 505).
  A few empty lines before a request line are skipped (RFC 9112 section 2.2).
* Request-target (RFC 9112 section 3.2): the origin-form (``/path?query``) as it is. The absolute-form
  of an ``http`` or ``https`` URI (scheme in any case) gives the path (``/`` when it has none) and the
  query, and its authority replaces the Host header's value, which a server MUST ignore then
  (section 3.2.2); the Host header itself is still required and checked as below, since a client
  MUST send it anyway. An empty authority, userinfo or characters outside an authority are a 400,
  as is any other scheme. The asterisk-form (``OPTIONS *``) and CONNECT, whatever its target (its
  own is the authority-form, ``CONNECT host:443``), are a 400 too: this is an origin server, not a
  proxy; it routes paths only, and a 2xx to CONNECT would tell the client a tunnel is open. Any
  other target is a 400. All this costs an origin-form request one test of its target's first
  character and one of its method.
* Trailers of a chunked body are parsed by the header rules, counted against the header limits and
  discarded; a Content-Length or Transfer-Encoding among them is a 400 (RFC 9110 6.5.1).
* Header lines: ``name ":" OWS value OWS``; the name a token with no whitespace before the colon, no
  obs-fold, no control characters in the value except HTAB. Names are lower-cased, repeated fields
  are joined with ``", "``.
* A header name that differs from ``Content-Length``, ``Transfer-Encoding`` or ``Host`` only by
  dashes and underscores (the name lower-cased with every ``-`` and ``_`` removed is
  ``contentlength``, ``transferencoding`` or ``host``, but the name is not that header's own:
  ``Content_Length``, ``Transfer---Encoding``, ``ContentLength``, ``Ho_st``) is a 400, in trailers too.
  A proxy in front that normalises names (CGI and WSGI turn ``-`` into ``_``, some squeeze runs of
  ``-``) would see a framing header where we see an ordinary one, and frame the body differently.
  Host is included although it does not frame the message: a proxy that took ``Ho_st`` for Host
  would route or authorise on a Host we never saw, and refusing costs nothing. Connection and
  Expect are not: neither moves a message boundary, and a disagreement about them at worst closes a
  connection or skips a 100 Continue.
* Host: required in HTTP/1.1, never twice, and only characters of an RFC 3986 authority.
* Content-Length: digits only (never ``int()`` on unchecked text: it takes ``+``, ``-``, ``_``, spaces
  and ``0x``), at most 19 of them, and one value only: a list (``5,5``, ``5, 5``) or a repeated field
  is a 400 even when the values agree. RFC 9110 section 8.6 allows repairing it to one value, but a
  proxy in front may read it otherwise.
* Transfer-Encoding: never in HTTP/1.0, ``chunked`` exactly once and last; other codings are 501.
  With Content-Length as well, chunked wins, Content-Length is dropped and the connection closes
  after the response.
* Chunk-size lines: ``1*HEXDIG`` (a capped number of digits) directly followed by CRLF or by chunk
  extensions as RFC 9112 section 7.1.1 has them: ``*( BWS ";" BWS name [ BWS "=" BWS value ] )``,
  the name a token, the value a token or a quoted-string. They are ignored; anything else (``2;``,
  ``2;a=``, an unterminated quote) is a 400. Whitespace between the size and the first ``;`` stays
  a 400 (h11 refuses it too), and the whole line is capped at 4096 bytes.
* After a request that does not keep the connection alive, the parser reads nothing more
  (RFC 9112 section 9.6). After a ProtocolError it is dead: it never resynchronises.

Complexity: every byte is examined a constant number of times however the input is split, because
the search for the end of a line resumes where the previous search stopped (``_scan``).
"""

from __future__ import annotations

import re

from zato.proto.reasons import REASONS

__all__ = ['CONTINUE', 'NEED_DATA', 'Limits', 'ProtocolError', 'Request', 'RequestParser', 'serialize_response']


class _Sentinel:
    """A named singleton; compared by identity."""

    __slots__ = ('_name',)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        # Pickling or copying gives back the very same object, so identity checks keep working
        return self._name


NEED_DATA = _Sentinel('NEED_DATA')
CONTINUE = _Sentinel('CONTINUE')


class ProtocolError(Exception):
    """The request cannot be parsed; answer with ``status`` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return f'{self.status} {self.reason}'


class Limits:
    """Size limits of a request; exceeding one raises ProtocolError with the status in the comment."""

    __slots__ = ('max_body', 'max_chunk_size_digits', 'max_header_bytes', 'max_header_count', 'max_request_line')

    def __init__(
        self,
        max_request_line: int = 8192,         # 414
        max_header_count: int = 100,          # 431, trailers included
        max_header_bytes: int = 16384,        # 431, header lines with their CRLFs, trailers included
        max_body: int = 10 * 1024 * 1024,     # 413, Content-Length or the de-chunked total
        max_chunk_size_digits: int = 16,      # 400
    ) -> None:
        self.max_request_line = max_request_line
        self.max_header_count = max_header_count
        self.max_header_bytes = max_header_bytes
        self.max_body = max_body
        self.max_chunk_size_digits = max_chunk_size_digits

    def __repr__(self) -> str:
        fields = ', '.join(f'{name}={getattr(self, name)}' for name in self.__slots__)
        return f'Limits({fields})'


class Request:
    """One complete request: its head, its de-chunked body and what to do with the connection after it."""

    # ``target`` is the request-target as received; ``path`` and ``query`` are split from it here, and
    # by the parser from an absolute-form target too.
    __slots__ = ('body', 'expect_continue', 'headers', 'keep_alive', 'method', 'path', 'query', 'target', 'version')

    def __init__(
        self,
        method: str = 'GET',
        target: str = '/',
        version: str = '1.1',
        headers: dict[str, str] | None = None,
        body: bytes = b'',
        keep_alive: bool = True,
        expect_continue: bool = False,
    ) -> None:
        self.method = method
        self.target = target
        # The path stays percent-encoded: decoding is the router's business, and decoding here
        # would make '/a%2Fb' and '/a/b' indistinguishable.
        self.path, _, self.query = target.partition('?')
        self.version = version
        self.headers = {} if headers is None else headers
        self.body = body
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        return (f'<Request {self.method} {self.target} HTTP/{self.version} headers={self.headers!r} '
                f'body={len(self.body)} bytes keep_alive={self.keep_alive}>')


# ################################################################################################

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"

# Lines are decoded as latin-1 first, so these are str patterns over code points 0-255
_REQUEST_LINE = re.compile(rf'([{_TCHAR}]+) ([\x21-\x7e]+) HTTP/1\.([01])')
_ANY_VERSION = re.compile(rf'[{_TCHAR}]+ [\x21-\x7e]+ HTTP/[0-9]\.[0-9]')

# The value is matched loosely here and stripped in Python: a pattern that also excluded the
# trailing OWS would backtrack quadratically on a long run of spaces.
_HEADER_LINE = re.compile(rf'([{_TCHAR}]+):([\t\x20-\x7e\x80-\xff]*)')
_TOKEN = re.compile(rf'[{_TCHAR}]+')

# RFC 3986 authority characters: reg-name, IP-literal in brackets, port; no userinfo ('@')
_HOST = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]*")
_DIGITS = re.compile('[0-9]+')
# The chunk size, then whatever follows from a ';' on, checked by _CHUNK_EXTENSIONS ('.' also takes
# a bare CR or a NUL, so that they are reported as an invalid extension by both twins)
_CHUNK_SIZE_LINE = re.compile(r'([0-9A-Fa-f]+)(;.*)?', re.DOTALL)
# RFC 9112 7.1.1, with RFC 9110 5.6.4's quoted-string: qdtext is HTAB, SP, %x21, %x23-5B, %x5D-7E and
# obs-text; a quoted-pair is a backslash and HTAB, SP, VCHAR or obs-text. No two parts can match the
# same text, so the pattern never backtracks more than a run of whitespace.
_BWS = r'[\t ]*'
_CHUNK_EXT_VALUE = rf'(?:[{_TCHAR}]+|"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*")'
_CHUNK_EXTENSIONS = re.compile(rf'(?:{_BWS};{_BWS}[{_TCHAR}]+(?:{_BWS}={_BWS}{_CHUNK_EXT_VALUE})?)+')

# Header names a proxy might take for these, keyed by the name lower-cased without '-' and '_'
_IMITATED = {'contentlength': 'Content-Length', 'transferencoding': 'Transfer-Encoding', 'host': 'Host'}
# What such a name starts and ends with: two cheap tests that spare nearly every other name the full one
_IMITATION_FIRST = frozenset('cth-_')
_IMITATION_LAST = frozenset('hgt-_')

_MAX_CL_DIGITS = 19        # 10**19 - 1 still fits a signed 64-bit integer
_MAX_EMPTY_LINES = 4       # before a request line
_MAX_CHUNK_LINE = 4096     # chunk-size plus its ignored extensions

# Parser states
_HEAD = 0         # request line and header lines
_BODY = 1         # Content-Length body
_CHUNK_SIZE = 2   # a chunk-size line
_CHUNK_DATA = 3   # chunk data and its CRLF
_TRAILERS = 4     # trailer lines after the last chunk

TRAILER_FRAMING = 'Content-Length or Transfer-Encoding in trailers'
_DONE = 5         # no more requests on this connection (closing, or a ProtocolError)


def _request_line_error(line: str) -> ProtocolError:
    """Explains why a request line did not match _REQUEST_LINE (cold path)."""
    if '\r' in line:
        return ProtocolError(400, 'Bare CR in request line')
    if _ANY_VERSION.fullmatch(line):
        return ProtocolError(505, 'HTTP version not supported')
    return ProtocolError(400, 'Invalid request line')


def _header_error(line: str) -> ProtocolError:
    """Explains why a header line did not match _HEADER_LINE (cold path)."""
    if line[:1] in (' ', '\t'):
        return ProtocolError(400, 'Obsolete line folding')
    if '\r' in line:
        return ProtocolError(400, 'Bare CR in header')
    name, colon, _ = line.partition(':')
    if not colon:
        return ProtocolError(400, 'Header line without a colon')
    if name != name.rstrip(' \t'):
        return ProtocolError(400, 'Whitespace before colon')
    if not _TOKEN.fullmatch(name):
        return ProtocolError(400, 'Invalid header name')
    return ProtocolError(400, 'Invalid character in header value')


def _imitation_error(name: str) -> ProtocolError | None:
    """The error for a lower-cased header name that imitates Content-Length, Transfer-Encoding or Host."""
    imitated = _IMITATED.get(name.replace('-', '').replace('_', ''))
    if imitated is None or name == imitated.lower():
        return None
    return ProtocolError(400, f'Header name imitating {imitated}')


def _absolute_form(method: str, target: str) -> tuple[str, str, str]:
    """The path, query and authority of a request-target not in origin-form, or of CONNECT (cold path).

    Only the absolute-form of an http or https URI is served; every other form raises ProtocolError.
    """
    if method == 'CONNECT':
        # The authority-form belongs to CONNECT alone, and tunnels are a proxy's business
        raise ProtocolError(400, 'CONNECT is not supported')
    if target == '*':
        raise ProtocolError(400, 'Asterisk-form request target is not supported')
    scheme, slashes, rest = target.partition('://')
    if not slashes:
        raise ProtocolError(400, 'Invalid request target')
    if scheme.lower() not in ('http', 'https'):
        raise ProtocolError(400, 'Unsupported scheme in request target')
    # The authority runs up to the path or the query (RFC 3986 3.2); no '#' gets this far legitimately
    before_query, _, query = rest.partition('?')
    slash = before_query.find('/')
    if slash < 0:
        authority, path = before_query, '/'
    else:
        authority, path = before_query[:slash], before_query[slash:]
    if not authority:
        raise ProtocolError(400, 'Empty authority in request target')
    if not _HOST.fullmatch(authority):
        raise ProtocolError(400, 'Invalid authority in request target')
    return path, query, authority


def _comma_list(value: str) -> list[str]:
    return [item.strip(' \t').lower() for item in value.split(',')]


class RequestParser:
    """Turns bytes from one connection into Request events, strictly and in order.

    Call ``feed(data)`` with what was received (``b''`` on EOF), then ``next_event()`` until it returns
    NEED_DATA. It returns CONTINUE once when the client waits for ``100 Continue`` before sending its body.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self._limits = limits if limits is not None else Limits()
        self._buf = bytearray()
        self._pos = 0           # start of the bytes not consumed yet
        self._scan = 0          # where the search for the next LF resumes
        self._eof = False
        self._state = _HEAD
        self._error: ProtocolError | None = None
        self._new_message()

    def _new_message(self) -> None:
        self._request: Request | None = None     # set once the request line is parsed
        self._authority: str | None = None        # of an absolute-form target, to replace Host with
        self._headers: dict[str, str] = {}
        self._host_count = 0
        self._header_count = 0
        self._header_bytes = 0
        self._empty_lines = 0
        self._remaining = 0                       # body bytes still expected (Content-Length or chunk)
        self._body = bytearray()                  # de-chunked body so far
        self._continue_sent = False

    def feed(self, data: bytes) -> None:
        """Appends received bytes; ``b''`` means the peer closed its side."""
        if not data:
            self._eof = True
        elif self._state != _DONE and not self._eof:
            self._buf += data

    @property
    def has_pending(self) -> bool:
        """True while a request is partly received (for the header-read timeout and graceful stop)."""
        if self._state == _DONE:
            return False
        return self._state != _HEAD or self._request is not None or len(self._buf) > self._pos

    def take_buffered(self) -> bytes:
        """Hands over the bytes received after the last request and retires the parser: what a
        connection that switches protocols (a WebSocket upgrade) reads next is no longer HTTP."""
        rest = bytes(self._buf[self._pos:])
        self._buf = bytearray()
        self._pos = self._scan = 0
        self._state = _DONE
        return rest

    def next_event(self) -> Request | _Sentinel:
        """Returns the next Request, NEED_DATA or CONTINUE; raises ProtocolError, then again on every call."""
        if self._error is not None:
            raise self._error
        try:
            event = self._advance()
            if event is NEED_DATA and self._eof and self.has_pending:
                raise ProtocolError(400, 'Incomplete request')
        except ProtocolError as e:
            self._error = e
            self._state = _DONE
            self._buf = bytearray()
            raise
        return event

    # ############################################################################################

    def _take_line(self) -> str | None:
        """Consumes the next CRLF-terminated line and returns it without the CRLF, or None if it is not all here."""
        buf = self._buf
        lf = buf.find(b'\n', self._scan)
        if lf < 0:
            self._scan = len(buf)
            return None
        start = self._pos
        if lf == start or buf[lf - 1] != 13:
            raise ProtocolError(400, 'Bare LF')
        self._pos = self._scan = lf + 1
        return buf[start:lf - 1].decode('latin-1')

    def _advance(self) -> Request | _Sentinel:
        state = self._state
        if state == _HEAD:
            if not self._read_head():
                return NEED_DATA
            state = self._state
        if state == _BODY:
            if len(self._buf) - self._pos < self._remaining:
                return self._body_incomplete()
            end = self._pos + self._remaining
            body = bytes(self._buf[self._pos:end])
            self._pos = self._scan = end
            return self._complete(body)
        if state != _DONE:
            if not self._read_chunked():
                return self._body_incomplete()
            return self._complete(bytes(self._body))
        return NEED_DATA

    def _body_incomplete(self) -> _Sentinel:
        assert self._request is not None
        if self._request.expect_continue and not self._continue_sent and not self._eof:
            self._continue_sent = True
            return CONTINUE
        return NEED_DATA

    def _read_head(self) -> bool:
        """Consumes the request line and headers; True once the blank line after them is consumed."""
        limits = self._limits
        while True:
            line = self._take_line()
            if line is None:
                # Decided on partial data too, so a client cannot make us buffer forever
                partial = len(self._buf) - self._pos
                if self._request is None:
                    if partial > limits.max_request_line + 1:  # +1: the CR may already be here
                        raise ProtocolError(414, 'Request line too long')
                elif self._header_bytes + partial > limits.max_header_bytes:
                    raise ProtocolError(431, 'Request header fields too large')
                return False
            if self._request is None:
                if not line:
                    self._empty_lines += 1
                    if self._empty_lines > _MAX_EMPTY_LINES:
                        raise ProtocolError(400, 'Too many empty lines before the request line')
                    continue
                self._request_line(line)
            elif line:
                self._header_line(line, self._headers)
            else:
                self._end_of_head()
                return True

    def _request_line(self, line: str) -> None:
        if len(line) > self._limits.max_request_line:
            raise ProtocolError(414, 'Request line too long')
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            raise _request_line_error(line)
        method, target, minor = match.groups()
        request = Request(method, target, '1.' + minor)
        if target[0] != '/' or method == 'CONNECT':
            request.path, request.query, self._authority = _absolute_form(method, target)
        self._request = request

    def _header_line(self, line: str, headers: dict[str, str]) -> None:
        limits = self._limits
        self._header_count += 1
        self._header_bytes += len(line) + 2
        if self._header_count > limits.max_header_count or self._header_bytes > limits.max_header_bytes:
            raise ProtocolError(431, 'Request header fields too large')
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            raise _header_error(line)
        name = match.group(1).lower()
        if name[0] in _IMITATION_FIRST and name[-1] in _IMITATION_LAST:
            error = _imitation_error(name)
            if error is not None:
                raise error
        value = match.group(2).strip(' \t')
        if name == 'host':
            self._host_count += 1
        if name in headers:
            headers[name] += ', ' + value
        else:
            headers[name] = value

    def _end_of_head(self) -> None:
        """Applies the framing rules once all header fields are known."""
        request = self._request
        assert request is not None
        headers = self._headers
        version = request.version
        request.headers = headers

        if self._host_count > 1:
            raise ProtocolError(400, 'Duplicate Host header')
        if self._host_count == 0:
            if version == '1.1':
                raise ProtocolError(400, 'Missing Host header')
        elif not _HOST.fullmatch(headers['host']):
            raise ProtocolError(400, 'Invalid Host header')
        if self._authority is not None:
            # RFC 9112 3.2.2: the authority of an absolute-form target is the host, whatever Host said
            headers['host'] = self._authority

        length = 0
        content_length = headers.get('content-length')
        if content_length is not None:
            # A repeated field was joined with ', ' above, so one comma test finds lists and repeats alike
            if ',' in content_length:
                raise ProtocolError(400, 'Content-Length with more than one value')
            if not _DIGITS.fullmatch(content_length) or len(content_length) > _MAX_CL_DIGITS:
                raise ProtocolError(400, 'Invalid Content-Length')
            length = int(content_length)  # Safe: only ASCII digits got here

        connection = headers.get('connection')
        options = _comma_list(connection) if connection is not None else ()
        if version == '1.1':
            request.keep_alive = 'close' not in options
            expect = headers.get('expect')
            # RFC 9110 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored
            request.expect_continue = expect is not None and '100-continue' in _comma_list(expect)
        else:
            request.keep_alive = 'keep-alive' in options and 'close' not in options

        transfer_encoding = headers.get('transfer-encoding')
        if transfer_encoding is not None:
            self._check_transfer_encoding(transfer_encoding, version)
            if content_length is not None:
                # Someone may be trying to smuggle: chunked wins, and the connection ends with this request
                del headers['content-length']
                request.keep_alive = False
            self._state = _CHUNK_SIZE
        elif length > self._limits.max_body:
            raise ProtocolError(413, 'Request body too large')
        else:
            self._remaining = length
            self._state = _BODY

    @staticmethod
    def _check_transfer_encoding(value: str, version: str) -> None:
        if version == '1.0':
            raise ProtocolError(400, 'Transfer-Encoding in HTTP/1.0')
        codings = _comma_list(value)
        if codings[-1] != 'chunked':
            raise ProtocolError(400, 'Transfer-Encoding does not end with chunked')
        if codings.count('chunked') > 1:
            raise ProtocolError(400, 'Transfer-Encoding chunked more than once')
        if len(codings) > 1:
            if '' in codings:
                raise ProtocolError(400, 'Invalid Transfer-Encoding')
            raise ProtocolError(501, 'Unsupported Transfer-Encoding')

    def _read_chunked(self) -> bool:
        """Consumes chunks and trailers; True once the whole chunked body is consumed."""
        limits = self._limits
        buf = self._buf
        while True:
            state = self._state
            if state == _CHUNK_DATA:
                # The data plus its CRLF; nothing is scanned until all of it is here
                end = self._pos + self._remaining
                if len(buf) < end + 2:
                    return False
                if buf[end:end + 2] != b'\r\n':
                    raise ProtocolError(400, 'Chunk data not followed by CRLF')
                self._body += buf[self._pos:end]
                self._pos = self._scan = end + 2
                self._state = _CHUNK_SIZE
                continue

            line = self._take_line()
            if line is None:
                partial = len(buf) - self._pos
                if state == _CHUNK_SIZE and partial > _MAX_CHUNK_LINE + 1:
                    raise ProtocolError(400, 'Chunk size line too long')
                if state == _TRAILERS and self._header_bytes + partial > limits.max_header_bytes:
                    raise ProtocolError(431, 'Request header fields too large')
                return False

            if state == _TRAILERS:
                if not line:
                    return True
                # Parsed by the header rules and counted against the header limits, then discarded;
                # framing fields have no business there (RFC 9110 6.5.1) and a proxy might obey them
                trailer: dict[str, str] = {}
                self._header_line(line, trailer)
                if 'content-length' in trailer or 'transfer-encoding' in trailer:
                    raise ProtocolError(400, TRAILER_FRAMING)
                continue

            if len(line) > _MAX_CHUNK_LINE:
                raise ProtocolError(400, 'Chunk size line too long')
            match = _CHUNK_SIZE_LINE.fullmatch(line)
            if match is None:
                raise ProtocolError(400, 'Invalid chunk size')
            digits, extensions = match.groups()
            # Extensions are ignored, but only well-formed ones: no two parsers disagree about those
            if extensions is not None and not _CHUNK_EXTENSIONS.fullmatch(extensions):
                raise ProtocolError(400, 'Invalid chunk extension')
            if len(digits) > limits.max_chunk_size_digits:
                raise ProtocolError(400, 'Chunk size has too many digits')
            size = int(digits, 16)  # Safe: only hex digits got here
            if len(self._body) + size > limits.max_body:
                raise ProtocolError(413, 'Request body too large')
            if size == 0:
                self._state = _TRAILERS
            else:
                self._remaining = size
                self._state = _CHUNK_DATA

    def _complete(self, body: bytes) -> Request:
        request = self._request
        assert request is not None
        request.body = body
        self._new_message()
        if request.keep_alive:
            self._state = _HEAD
            # Deleting from the front of a bytearray is cheap in CPython, so compact at every boundary
            del self._buf[:self._pos]
            self._pos = self._scan = 0
        else:
            # RFC 9112 9.6: nothing after a request that closes the connection is read
            self._state = _DONE
            self._buf = bytearray()
            self._pos = self._scan = 0
        return request


# ################################################################################################

_REASONS = REASONS

# Built once; a status outside the table gets an empty reason phrase, which RFC 9112 allows
_STATUS_LINES = {status: f'HTTP/1.1 {status} {reason}\r\n' for status, reason in _REASONS.items()}


def serialize_response(
    status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool, head: bool = False,
) -> bytes:
    """Returns a complete response as one bytes object, so that it can be sent with one write.

    Content-Length and ``Connection: close`` are added here and must not be in ``headers``. A HEAD
    response carries the Content-Length of the body it omits. 1xx, 204 and 304 responses have
    neither a Content-Length nor a body. Raises ValueError for CR or LF in a header (response splitting).
    """
    status_line = _STATUS_LINES.get(status)
    if status_line is None:
        if not 100 <= status <= 999:
            raise ValueError(f'Invalid status {status!r}')
        status_line = f'HTTP/1.1 {status} \r\n'
    block = ''.join([f'{name}: {value}\r\n' for name, value in headers])
    # Each header contributes exactly one CR and one LF: any other means one was smuggled in
    if block.count('\n') != len(headers) or block.count('\r') != len(headers):
        raise ValueError('CR or LF in a response header')
    if status < 200 or status == 204 or status == 304:
        body = b''
    else:
        block += f'Content-Length: {len(body)}\r\n'
    if not keep_alive:
        block += 'Connection: close\r\n'
    # latin-1 is what HTTP headers are; anything outside it raises UnicodeEncodeError, a ValueError
    out = (status_line + block + '\r\n').encode('latin-1')
    return out if head else out + body
