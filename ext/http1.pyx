# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of zato.proto.http1: the same public API and the same rules, with the hot loops in C.

zato/proto/http1.py is the specification; read it first. What differs here is only how:

* lines are found with memchr and checked byte by byte against 256-entry lookup tables, instead of
  with regular expressions over decoded text;
* the request line, header names and values are decoded once, straight from the buffer;
* NEED_DATA, CONTINUE, ProtocolError and Limits are the twin's own objects, so ``except ProtocolError``
  works whichever module zato.accel picked; the cold paths that word an error message are the twin's too,
  so both modules give the same reasons.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_SetDefault, PyDict_Size
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.unicode cimport PyUnicode_AsUTF8, PyUnicode_DecodeLatin1
from libc.string cimport memchr, memcmp, memcpy

from zato.proto.http1 import CONTINUE, NEED_DATA, Limits, ProtocolError
from zato.proto.http1 import _STATUS_LINES, _absolute_form, _header_error, _imitation_error, _request_line_error

__all__ = ['CONTINUE', 'NEED_DATA', 'Limits', 'ProtocolError', 'Request', 'RequestParser', 'serialize_response']

# Lookup tables, one byte per possible input byte; filled in once by _init_tables below
cdef unsigned char TCHAR[256]     # token characters
cdef unsigned char TARGET[256]    # request-target: visible ASCII
cdef unsigned char FVALUE[256]    # field value: HTAB, SP, visible ASCII, obs-text (also a quoted-pair's second byte)
cdef unsigned char QDTEXT[256]    # quoted-string text: field value characters but DQUOTE and backslash
cdef unsigned char SEPARATOR[256] # '-' and '_', which a header name imitating a framing one differs by
cdef unsigned char HOSTCHAR[256]  # RFC 3986 authority without userinfo
cdef unsigned char LOWER[256]
cdef signed char HEXVAL[256]      # -1 when not a hex digit


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        # Letters and digits here; the other characters of each set below
        TCHAR[c] = (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)
        TARGET[c] = 0x21 <= c <= 0x7e
        FVALUE[c] = c == 9 or (0x20 <= c <= 0x7e) or c >= 0x80
        QDTEXT[c] = FVALUE[c] and c != 34 and c != 92
        SEPARATOR[c] = c == 45 or c == 95
        HOSTCHAR[c] = TCHAR[c]
        LOWER[c] = c + 32 if 65 <= c <= 90 else c
        HEXVAL[c] = c - 48 if 48 <= c <= 57 else (c - 55 if 65 <= c <= 70 else (c - 87 if 97 <= c <= 102 else -1))
    for c in b"!#$%&'*+-.^_`|~":
        TCHAR[c] = 1
    for c in b"-._~!$&'()*+,;=:[]%":
        HOSTCHAR[c] = 1


_init_tables()

cdef Py_ssize_t MAX_CL_DIGITS = 19
cdef Py_ssize_t MAX_EMPTY_LINES = 4
cdef Py_ssize_t MAX_CHUNK_LINE = 4096
# Limits.max_body is clamped to this (64 PiB) so that chunk-size arithmetic cannot overflow 64 bits
cdef Py_ssize_t BODY_CAP = 1 << 56

# Parser states, as in the twin
cdef enum:
    S_HEAD = 0
    S_BODY = 1
    S_CHUNK_SIZE = 2
    S_CHUNK_DATA = 3
    S_TRAILERS = 4
    S_DONE = 5


cdef class Request:
    """One complete request: its head, its de-chunked body and what to do with the connection after it."""

    cdef public object method, target, path, query, version, headers, body, keep_alive, expect_continue

    def __init__(self, method='GET', target='/', version='1.1', headers=None, body=b'', keep_alive=True,
                 expect_continue=False):
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition('?')
        self.version = version
        self.headers = {} if headers is None else headers
        self.body = body
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue

    def _fields(self):
        return (self.method, self.target, self.path, self.query, self.version, self.headers, self.body,
                self.keep_alive, self.expect_continue)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == (<Request>other)._fields()

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def __repr__(self):
        return (f'<Request {self.method} {self.target} HTTP/{self.version} headers={self.headers!r} '
                f'body={len(self.body)} bytes keep_alive={self.keep_alive}>')


cdef inline str _latin1(const char* p, Py_ssize_t n):
    return PyUnicode_DecodeLatin1(p, n, NULL)


cdef str _method(const char* p, Py_ssize_t n):
    # The usual methods come back as the same str objects instead of new ones
    if n == 3 and memcmp(p, b'GET', 3) == 0:
        return 'GET'
    if n == 4 and memcmp(p, b'POST', 4) == 0:
        return 'POST'
    if n == 3 and memcmp(p, b'PUT', 3) == 0:
        return 'PUT'
    return _latin1(p, n)


cdef list _comma_list(str value):
    return [item.strip(' \t').lower() for item in value.split(',')]


# The header names most requests carry come back as these constants: no new str, its hash cached,
# and the framing ones recognised by identity. The names are lower-case already.
cdef str HOST = 'host', CONNECTION = 'connection', EXPECT = 'expect', CONTENT_LENGTH = 'content-length'
cdef str TRANSFER_ENCODING = 'transfer-encoding'
cdef tuple KNOWN_NAMES = (
    HOST, CONNECTION, EXPECT, CONTENT_LENGTH, TRANSFER_ENCODING, 'accept', 'accept-encoding', 'accept-language',
    'authorization', 'cache-control', 'content-type', 'cookie', 'origin', 'referer', 'user-agent',
    'x-forwarded-for', 'x-request-id',
)
cdef enum:
    KNOWN_COUNT = 17
# The same names as C data, compared by length first: most candidates are ruled out by one int compare
cdef const char* KNOWN_DATA[KNOWN_COUNT]
cdef Py_ssize_t KNOWN_LENGTH[KNOWN_COUNT]


cdef void _init_known_names():
    cdef Py_ssize_t i
    assert len(KNOWN_NAMES) == KNOWN_COUNT
    for i in range(KNOWN_COUNT):
        # ASCII str objects keep their UTF-8 form inline and KNOWN_NAMES keeps them alive
        KNOWN_DATA[i] = PyUnicode_AsUTF8(KNOWN_NAMES[i])
        KNOWN_LENGTH[i] = len(KNOWN_NAMES[i])


_init_known_names()


cdef inline object _known_name(const char* lowered, Py_ssize_t n):
    cdef Py_ssize_t i
    for i in range(KNOWN_COUNT):
        if KNOWN_LENGTH[i] == n and memcmp(KNOWN_DATA[i], lowered, n) == 0:
            return <object>PyTuple_GET_ITEM(KNOWN_NAMES, i)
    return None


cdef inline bint _imitates_a_framing_name(const char* normalized, Py_ssize_t n) noexcept:
    """Whether a header name lower-cased without '-' and '_' is Content-Length's, Transfer-Encoding's
    or Host's; only asked of names that are not those headers' own, so a match is an imitation."""
    if n == 4:
        return memcmp(normalized, b'host', 4) == 0
    if n == 13:
        return memcmp(normalized, b'contentlength', 13) == 0
    if n == 16:
        return memcmp(normalized, b'transferencoding', 16) == 0
    return False


cdef inline Py_ssize_t _skip_bws(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and (p[i] == 32 or p[i] == 9):
        i += 1
    return i


cdef bint _valid_chunk_extensions(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Whether p[i:n], which starts with ';', is ``1*( BWS ";" BWS name [ BWS "=" BWS value ] )``
    (RFC 9112 7.1.1): the name a token, the value a token or a quoted-string."""
    cdef Py_ssize_t start
    while i < n:
        i = _skip_bws(p, i, n)
        if i == n or p[i] != 59:  # ';'
            return False
        i = _skip_bws(p, i + 1, n)
        start = i
        while i < n and TCHAR[p[i]]:
            i += 1
        if i == start:
            return False
        start = _skip_bws(p, i, n)
        if start == n or p[start] != 61:  # '=': none, so what follows must be the next ';'
            continue
        i = _skip_bws(p, start + 1, n)
        if i < n and p[i] == 34:  # '"'
            i += 1
            while True:
                if i == n:
                    return False
                if p[i] == 34:
                    i += 1
                    break
                if p[i] == 92:  # a backslash quotes the next character
                    if i + 1 == n or not FVALUE[p[i + 1]]:
                        return False
                    i += 2
                elif QDTEXT[p[i]]:
                    i += 1
                else:
                    return False
        else:
            start = i
            while i < n and TCHAR[p[i]]:
                i += 1
            if i == start:
                return False
    return True


cdef enum:
    OPT_CLOSE = 1
    OPT_KEEP_ALIVE = 2
    OPT_CONTINUE = 4


cdef int _options(const unsigned char* p, Py_ssize_t n) noexcept:
    """OPT_* bits for the comma-separated, case-insensitive items of a Connection or Expect value."""
    cdef Py_ssize_t start = 0, end, stop, k
    cdef int found = 0
    cdef char item[16]
    while start <= n:
        stop = start
        while stop < n and p[stop] != 44:  # ','
            stop += 1
        end = stop
        while start < end and (p[start] == 32 or p[start] == 9):
            start += 1
        while end > start and (p[end - 1] == 32 or p[end - 1] == 9):
            end -= 1
        if end - start <= 16:
            for k in range(end - start):
                item[k] = LOWER[p[start + k]]
            if end - start == 5 and memcmp(item, b'close', 5) == 0:
                found |= OPT_CLOSE
            elif end - start == 10 and memcmp(item, b'keep-alive', 10) == 0:
                found |= OPT_KEEP_ALIVE
            elif end - start == 12 and memcmp(item, b'100-continue', 12) == 0:
                found |= OPT_CONTINUE
        start = stop + 1
    return found


cdef class RequestParser:
    """Turns bytes from one connection into Request events, strictly and in order.

    Call ``feed(data)`` with what was received (``b''`` on EOF), then ``next_event()`` until it returns
    NEED_DATA. It returns CONTINUE once when the client waits for ``100 Continue`` before sending its body.
    """

    cdef Py_ssize_t max_request_line, max_header_count, max_header_bytes, max_body, max_chunk_size_digits
    cdef bytearray _buf
    cdef Py_ssize_t _pos, _scan
    cdef bint _eof
    cdef int _state
    cdef object _error
    # The message being parsed
    cdef Request _request
    cdef dict _headers
    cdef Py_ssize_t _host_count, _header_count, _header_bytes, _empty_lines, _remaining, _body_len
    cdef object _authority         # of an absolute-form target, to replace Host with
    cdef bint _host_invalid, _continue_sent
    # Framing facts gathered while the header lines are scanned, so that _end_of_head needs no lookups
    cdef int _options              # OPT_* bits from Connection and Expect
    cdef bint _has_length
    cdef int _encodings            # Transfer-Encoding lines
    cdef bint _just_chunked        # the one Transfer-Encoding line is exactly "chunked", any case
    cdef bytearray _body

    def __init__(self, limits=None):
        if limits is None:
            limits = Limits()
        self.max_request_line = limits.max_request_line
        self.max_header_count = limits.max_header_count
        self.max_header_bytes = limits.max_header_bytes
        self.max_body = min(limits.max_body, BODY_CAP)
        self.max_chunk_size_digits = limits.max_chunk_size_digits
        self._buf = bytearray()
        self._pos = self._scan = 0
        self._eof = False
        self._state = S_HEAD
        self._error = None
        self._new_message()

    cdef void _new_message(self) noexcept:
        self._request = None
        self._authority = None
        self._headers = {}
        self._host_count = self._header_count = self._header_bytes = self._empty_lines = 0
        self._remaining = self._body_len = 0
        self._host_invalid = self._continue_sent = False
        self._options = 0
        self._has_length = self._just_chunked = False
        self._encodings = 0
        self._body = None

    def feed(self, data):
        """Appends received bytes; ``b''`` means the peer closed its side."""
        if not data:
            self._eof = True
        elif self._state != S_DONE and not self._eof:
            self._buf += data

    @property
    def has_pending(self):
        """True while a request is partly received (for the header-read timeout and graceful stop)."""
        return self._pending()

    def take_buffered(self):
        """Hands over the bytes received after the last request and retires the parser: what a
        connection that switches protocols (a WebSocket upgrade) reads next is no longer HTTP."""
        rest = bytes(self._buf[self._pos:])
        self._buf = bytearray()
        self._pos = 0
        self._scan = 0
        self._state = S_DONE
        return rest

    cdef bint _pending(self) noexcept:
        if self._state == S_DONE:
            return False
        return self._state != S_HEAD or self._request is not None or PyByteArray_GET_SIZE(self._buf) > self._pos

    def next_event(self):
        """Returns the next Request, NEED_DATA or CONTINUE; raises ProtocolError, then again on every call."""
        if self._error is not None:
            raise self._error
        try:
            event = self._advance()
            if event is NEED_DATA and self._eof and self._pending():
                raise ProtocolError(400, 'Incomplete request')
        except ProtocolError as e:
            self._error = e
            self._state = S_DONE
            self._buf = bytearray()
            raise
        return event

    # ############################################################################################

    cdef Py_ssize_t _find_lf(self) except -2:
        """Index of the next LF after the current line start, or -1; checks that a CR precedes it."""
        cdef char* base = PyByteArray_AS_STRING(self._buf)
        cdef Py_ssize_t n = PyByteArray_GET_SIZE(self._buf)
        cdef const char* found = <const char*>memchr(base + self._scan, 10, n - self._scan)
        if found == NULL:
            self._scan = n
            return -1
        cdef Py_ssize_t lf = found - base
        if lf == self._pos or base[lf - 1] != 13:
            raise ProtocolError(400, 'Bare LF')
        return lf

    cdef object _advance(self):
        cdef int state = self._state
        cdef Py_ssize_t n
        cdef object body
        if state == S_HEAD:
            if not self._read_head():
                return NEED_DATA
            state = self._state
        if state == S_BODY:
            n = PyByteArray_GET_SIZE(self._buf)
            if n - self._pos < self._remaining:
                return self._body_incomplete()
            body = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(self._buf) + self._pos, self._remaining)
            self._pos = self._scan = self._pos + self._remaining
            return self._complete(body)
        if state != S_DONE:
            if not self._read_chunked():
                return self._body_incomplete()
            return self._complete(PyBytes_FromStringAndSize(PyByteArray_AS_STRING(self._body), self._body_len))
        return NEED_DATA

    cdef object _body_incomplete(self):
        if self._request.expect_continue and not self._continue_sent and not self._eof:
            self._continue_sent = True
            return CONTINUE
        return NEED_DATA

    cdef bint _read_head(self) except -1:
        cdef Py_ssize_t lf, start, partial
        cdef char* base
        while True:
            lf = self._find_lf()
            if lf < 0:
                partial = PyByteArray_GET_SIZE(self._buf) - self._pos
                if self._request is None:
                    if partial > self.max_request_line + 1:  # +1: the CR may already be here
                        raise ProtocolError(414, 'Request line too long')
                elif self._header_bytes + partial > self.max_header_bytes:
                    raise ProtocolError(431, 'Request header fields too large')
                return False
            start = self._pos
            self._pos = self._scan = lf + 1
            base = PyByteArray_AS_STRING(self._buf)
            if self._request is None:
                if lf - 1 == start:
                    self._empty_lines += 1
                    if self._empty_lines > MAX_EMPTY_LINES:
                        raise ProtocolError(400, 'Too many empty lines before the request line')
                    continue
                self._request_line(<const unsigned char*>base + start, lf - 1 - start)
            elif lf - 1 > start:
                self._header_line(<const unsigned char*>base + start, lf - 1 - start, self._headers, False)
            else:
                self._end_of_head()
                return True

    cdef int _request_line(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t i = 0, method_end, target_start, target_end, query
        if n > self.max_request_line:
            raise ProtocolError(414, 'Request line too long')
        while i < n and TCHAR[p[i]]:
            i += 1
        if i == 0 or i >= n or p[i] != 32:
            raise _request_line_error(_latin1(<const char*>p, n))
        method_end = i
        i += 1
        target_start = i
        while i < n and TARGET[p[i]]:
            i += 1
        if i == target_start or i >= n or p[i] != 32:
            raise _request_line_error(_latin1(<const char*>p, n))
        target_end = i
        i += 1
        if n - i != 8 or memcmp(p + i, b'HTTP/1.', 7) != 0 or (p[i + 7] != 48 and p[i + 7] != 49):
            raise _request_line_error(_latin1(<const char*>p, n))

        cdef Request request = Request.__new__(Request)
        request.method = _method(<const char*>p, method_end)
        request.target = _latin1(<const char*>p + target_start, target_end - target_start)
        query = target_start
        while query < target_end and p[query] != 63:  # '?'
            query += 1
        # Not the origin-form (no '/'), or CONNECT: both are the cold path's
        if p[target_start] != 47 or (method_end == 7 and memcmp(p, b'CONNECT', 7) == 0):
            request.path, request.query, self._authority = _absolute_form(request.method, request.target)
        elif query == target_end:
            request.path = request.target
            request.query = ''
        else:
            request.path = _latin1(<const char*>p + target_start, query - target_start)
            request.query = _latin1(<const char*>p + query + 1, target_end - query - 1)
        request.version = '1.1' if p[i + 7] == 49 else '1.0'
        request.body = b''
        request.keep_alive = True
        request.expect_continue = False
        self._request = request
        return 0

    cdef int _header_line(self, const unsigned char* p, Py_ssize_t n, dict headers, bint trailer) except -1:
        cdef Py_ssize_t i = 0, k, name_len, value_start, value_end, size, letters = 0
        cdef char lowered[64]
        cdef char normalized[64]   # lowered without '-' and '_'
        self._header_count += 1
        self._header_bytes += n + 2
        if self._header_count > self.max_header_count or self._header_bytes > self.max_header_bytes:
            raise ProtocolError(431, 'Request header fields too large')

        while i < n and TCHAR[p[i]]:
            i += 1
        if i == 0 or i == n or p[i] != 58:  # ':'
            raise _header_error(_latin1(<const char*>p, n))
        name_len = i
        i += 1
        while i < n and (p[i] == 32 or p[i] == 9):
            i += 1
        value_start = i
        while i < n and FVALUE[p[i]]:
            i += 1
        if i != n:
            raise _header_error(_latin1(<const char*>p, n))
        value_end = n
        while value_end > value_start and (p[value_end - 1] == 32 or p[value_end - 1] == 9):
            value_end -= 1

        if name_len <= 64:
            for k in range(name_len):
                lowered[k] = normalized[letters] = LOWER[p[k]]
                letters += not SEPARATOR[p[k]]
            name = _known_name(lowered, name_len)
            if name is None:
                if _imitates_a_framing_name(normalized, letters):
                    raise _imitation_error(_latin1(lowered, name_len))
                name = _latin1(lowered, name_len)
            elif not trailer:
                self._framing_header(name, p + value_start, value_end - value_start)
            elif name is CONTENT_LENGTH or name is TRANSFER_ENCODING:
                raise ProtocolError(400, 'Content-Length or Transfer-Encoding in trailers')
        else:
            name = _latin1(<const char*>p, name_len).lower()
            error = _imitation_error(name)
            if error is not None:
                raise error
        value = _latin1(<const char*>p + value_start, value_end - value_start)

        # One lookup when the name is new, which it nearly always is. Whether it was new is told by the
        # size, not by identity: '' and one-character values are shared str objects.
        size = PyDict_Size(headers)
        existing = <object>PyDict_SetDefault(headers, name, value)
        if PyDict_Size(headers) == size:
            headers[name] = existing + ', ' + value
        return 0

    cdef int _framing_header(self, str name, const unsigned char* value, Py_ssize_t n) except -1:
        # Identity checks are enough: _known_name returns these very constants
        cdef Py_ssize_t k
        cdef char lowered[7]
        if name is HOST:
            self._host_count += 1
            for k in range(n):
                if not HOSTCHAR[value[k]]:
                    self._host_invalid = True
        elif name is CONNECTION:
            self._options |= _options(value, n) & (OPT_CLOSE | OPT_KEEP_ALIVE)
        elif name is EXPECT:
            self._options |= _options(value, n) & OPT_CONTINUE
        elif name is CONTENT_LENGTH:
            self._has_length = True
        elif name is TRANSFER_ENCODING:
            self._encodings += 1
            self._just_chunked = False
            if n == 7:
                for k in range(7):
                    lowered[k] = LOWER[value[k]]
                self._just_chunked = memcmp(lowered, b'chunked', 7) == 0
        return 0

    cdef int _end_of_head(self) except -1:
        cdef Request request = self._request
        cdef dict headers = self._headers
        cdef str version = request.version
        cdef unsigned long long length = 0
        request.headers = headers

        if self._host_count > 1:
            raise ProtocolError(400, 'Duplicate Host header')
        if self._host_count == 0:
            if version == '1.1':
                raise ProtocolError(400, 'Missing Host header')
        elif self._host_invalid:
            raise ProtocolError(400, 'Invalid Host header')
        if self._authority is not None:
            # RFC 9112 3.2.2: the authority of an absolute-form target is the host, whatever Host said
            headers[HOST] = self._authority

        content_length = None
        if self._has_length:
            content_length = headers['content-length']
            length = self._content_length(content_length)

        if version == '1.1':
            request.keep_alive = not (self._options & OPT_CLOSE)
            # RFC 9110 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored
            request.expect_continue = (self._options & OPT_CONTINUE) != 0
        else:
            request.keep_alive = (self._options & (OPT_KEEP_ALIVE | OPT_CLOSE)) == OPT_KEEP_ALIVE

        if self._encodings:
            # The usual case is settled here; the rest, valid or not, goes through the general rules
            if not (self._encodings == 1 and self._just_chunked and version == '1.1'):
                _check_transfer_encoding(headers['transfer-encoding'], version)
            if content_length is not None:
                # Someone may be trying to smuggle: chunked wins, and the connection ends with this request
                del headers['content-length']
                request.keep_alive = False
            self._body = bytearray()
            self._state = S_CHUNK_SIZE
        elif length > <unsigned long long>self.max_body:
            raise ProtocolError(413, 'Request body too large')
        else:
            self._remaining = <Py_ssize_t>length
            self._state = S_BODY
        return 0

    cdef unsigned long long _content_length(self, str text) except? 0xffffffffffffffff:
        """Digits only, at most 19 of them, and one value: no list, no repeated field."""
        cdef Py_UCS4 ch
        cdef Py_ssize_t i
        cdef unsigned long long result = 0
        # A repeated field was joined with ', ', so one comma test finds lists and repeats alike
        if ',' in text:
            raise ProtocolError(400, 'Content-Length with more than one value')
        if len(text) == 0 or len(text) > MAX_CL_DIGITS:
            raise ProtocolError(400, 'Invalid Content-Length')
        for i in range(len(text)):
            ch = text[i]
            if ch < 48 or ch > 57:
                raise ProtocolError(400, 'Invalid Content-Length')
            # 19 digits always fit: 10**19 - 1 < 2**64
            result = result * 10 + (<unsigned long long>ch - 48)
        return result

    cdef bint _read_chunked(self) except -1:
        cdef Py_ssize_t lf, start, end, partial, n, size
        cdef char* base
        cdef int state
        while True:
            state = self._state
            if state == S_CHUNK_DATA:
                # The data plus its CRLF; nothing is scanned until all of it is here
                end = self._pos + self._remaining
                n = PyByteArray_GET_SIZE(self._buf)
                if n < end + 2:
                    return False
                base = PyByteArray_AS_STRING(self._buf)
                if base[end] != 13 or base[end + 1] != 10:
                    raise ProtocolError(400, 'Chunk data not followed by CRLF')
                PyByteArray_Resize(self._body, self._body_len + self._remaining)
                memcpy(PyByteArray_AS_STRING(self._body) + self._body_len, base + self._pos, self._remaining)
                self._body_len += self._remaining
                self._pos = self._scan = end + 2
                self._state = S_CHUNK_SIZE
                continue

            lf = self._find_lf()
            if lf < 0:
                partial = PyByteArray_GET_SIZE(self._buf) - self._pos
                if state == S_CHUNK_SIZE and partial > MAX_CHUNK_LINE + 1:
                    raise ProtocolError(400, 'Chunk size line too long')
                if state == S_TRAILERS and self._header_bytes + partial > self.max_header_bytes:
                    raise ProtocolError(431, 'Request header fields too large')
                return False
            start = self._pos
            self._pos = self._scan = lf + 1
            base = PyByteArray_AS_STRING(self._buf)

            if state == S_TRAILERS:
                if lf - 1 == start:
                    return True
                # Parsed by the header rules and counted against the header limits, then discarded
                self._header_line(<const unsigned char*>base + start, lf - 1 - start, {}, True)
                continue

            if lf - 1 - start > MAX_CHUNK_LINE:
                raise ProtocolError(400, 'Chunk size line too long')
            size = self._chunk_size(<const unsigned char*>base + start, lf - 1 - start)
            if size == 0:
                self._state = S_TRAILERS
            else:
                self._remaining = size
                self._state = S_CHUNK_DATA

    cdef Py_ssize_t _chunk_size(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t i = 0
        cdef unsigned long long size = 0
        while i < n and HEXVAL[p[i]] >= 0:
            # Saturates above max_body, so any number of digits is safe to accumulate
            if size <= <unsigned long long>self.max_body:
                size = size * 16 + <unsigned long long>HEXVAL[p[i]]
            i += 1
        if i == 0:
            raise ProtocolError(400, 'Invalid chunk size')
        if i < n:
            # Extensions are ignored, but only well-formed ones: no two parsers disagree about those
            if p[i] != 59:  # ';'
                raise ProtocolError(400, 'Invalid chunk size')
            if not _valid_chunk_extensions(p, i, n):
                raise ProtocolError(400, 'Invalid chunk extension')
        if i > self.max_chunk_size_digits:
            raise ProtocolError(400, 'Chunk size has too many digits')
        if size > <unsigned long long>(self.max_body - self._body_len):
            raise ProtocolError(413, 'Request body too large')
        return <Py_ssize_t>size

    cdef object _complete(self, object body):
        cdef Request request = self._request
        request.body = body
        self._new_message()
        if request.keep_alive:
            self._state = S_HEAD
            # Deleting from the front of a bytearray is cheap in CPython, so compact at every boundary
            if self._pos == PyByteArray_GET_SIZE(self._buf):
                PyByteArray_Resize(self._buf, 0)
            else:
                del self._buf[:self._pos]
            self._pos = self._scan = 0
        else:
            # RFC 9112 9.6: nothing after a request that closes the connection is read
            self._state = S_DONE
            self._buf = bytearray()
            self._pos = self._scan = 0
        return request


cdef int _check_transfer_encoding(str value, str version) except -1:
    if version == '1.0':
        raise ProtocolError(400, 'Transfer-Encoding in HTTP/1.0')
    codings = _comma_list(value)
    if codings[len(codings) - 1] != 'chunked':  # no negative index: wraparound is off
        raise ProtocolError(400, 'Transfer-Encoding does not end with chunked')
    if codings.count('chunked') > 1:
        raise ProtocolError(400, 'Transfer-Encoding chunked more than once')
    if len(codings) > 1:
        if '' in codings:
            raise ProtocolError(400, 'Invalid Transfer-Encoding')
        raise ProtocolError(501, 'Unsupported Transfer-Encoding')
    return 0


def serialize_response(int status, headers, body, bint keep_alive, bint head=False):
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
    parts = [status_line]
    for name, value in headers:
        parts.append(f'{name}: {value}\r\n')
    if status < 200 or status == 204 or status == 304:
        body = b''
    else:
        parts.append(f'Content-Length: {len(body)}\r\n')
    if not keep_alive:
        parts.append('Connection: close\r\n')
    parts.append('\r\n')
    cdef str text = ''.join(parts)
    # Every part holds exactly one CR and one LF; anything more was smuggled in through a header
    if text.count('\n') != len(parts) or text.count('\r') != len(parts):
        raise ValueError('CR or LF in a response header')
    out = text.encode('latin-1')
    return out if head else out + body
