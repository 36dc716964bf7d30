"""What a service sees: ``self.request`` and ``self.response``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from zato.service.bunch import Bunch


class HTTPInfo:
    """``self.request.http``: the HTTP side of a request, parsed lazily (most services never look)."""

    __slots__ = ('method', 'path', 'params', 'headers', 'peer', '_query', '_get', '_post', '_body', '_content_type')

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], params: dict[str, str],
                 body: bytes = b'', peer: str = '') -> None:
        self.method = method
        self.peer = peer              # the TCP peer's address (a load balancer's, behind one)
        self.path = path
        self.params = params          # path parameters of the channel's URL pattern
        self.headers = headers        # lower-cased names
        self._query = query
        self._get: dict[str, str] | None = None
        self._post: dict[str, str] | None = None
        self._body = body

    @property
    def GET(self) -> dict[str, str]:  # noqa: N802 - Zato 3.1's name
        """The query string as a dict (the last value wins for repeated keys)."""
        if self._get is None:
            self._get = dict(parse_qsl(self._query, keep_blank_values=True)) if self._query else {}
        return self._get

    @property
    def POST(self) -> dict[str, str]:  # noqa: N802 - Zato 3.1's name
        """A form-encoded body as a dict; empty for other content types."""
        if self._post is None:
            ctype = self.headers.get('content-type', '')
            if ctype.startswith('application/x-www-form-urlencoded') and self._body:
                self._post = dict(parse_qsl(self._body.decode('utf-8', 'replace'), keep_blank_values=True))
            else:
                self._post = {}
        return self._post


class Request:
    """``self.request``: ``payload`` (decoded body), ``input`` (SimpleIO or channel params),
    ``raw_request`` (bytes as received), ``http`` (for HTTP channels) and ``channel_params``.

    ``msg_over_params`` is the channel's ``params_pri`` of ``msg-over-channel-params``: the body wins
    over the channel params when SimpleIO reads the input (see CompiledSIO.parse_input)."""

    __slots__ = ('payload', 'input', 'raw_request', 'http', 'channel_params', 'msg_over_params')

    def __init__(self, payload: Any = None, raw_request: bytes | str = b'', http: HTTPInfo | None = None,
                 channel_params: dict[str, Any] | None = None, msg_over_params: bool = False) -> None:
        self.payload = payload
        self.raw_request = raw_request
        self.http = http
        self.channel_params = channel_params or {}
        self.msg_over_params = msg_over_params
        self.input: Any = Bunch(self.channel_params)


class Response:
    """``self.response``: ``payload``, ``status_code`` (200), ``headers``, ``content_type``.

    With SimpleIO output declared, ``payload`` is a SimpleIO payload object that accepts
    attribute assignment, a dict, an object with attributes, or a list.
    """

    __slots__ = ('_payload', '_sio_payload', 'status_code', 'headers', 'content_type')

    def __init__(self, sio_payload: Any = None) -> None:
        self._sio_payload = sio_payload
        self._payload: Any = sio_payload if sio_payload is not None else ''
        self.status_code = 200
        self.headers: dict[str, str] = {}
        self.content_type: str | None = None

    @property
    def payload(self) -> Any:
        return self._payload

    @payload.setter
    def payload(self, value: Any) -> None:
        sio_payload = self._sio_payload
        if sio_payload is not None and value is not sio_payload:
            # Assigning a dict or list with SimpleIO declared fills the SimpleIO payload,
            # so output conversions and checks still apply
            if type(value) is dict or isinstance(value, dict):
                sio_payload._data.update(value)
                return
            if isinstance(value, (list, tuple)):
                sio_payload[:] = value
                return
        self._payload = value

    @property
    def has_sio_payload(self) -> bool:
        return self._sio_payload is not None and self._payload is self._sio_payload
