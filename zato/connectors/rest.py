"""Outgoing REST (plain HTTP) connections: ``self.out.rest['name'].conn``, also reached as
``self.out.plain_http`` as in Zato 3.1.

One `requests.Session` per connection and worker, with a keep-alive pool of `pool_size`
connections (gevent makes its sockets cooperative in a worker). A call goes out once: requests
does not retry, and neither do we, so a POST is never sent twice. Connection failures come out as
`ConnectorUnavailable`, timeouts as `ConnectorTimeout`; an HTTP error status is an answer like any
other and is returned.
"""

from __future__ import annotations

import os
import re
import string
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from zato.connectors.base import (
    Connector, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field, FieldError, describe)
from zato.connectors.checks import one_of, positive

AUTH_TYPES = ('', 'basic_auth', 'apikey')
DATA_FORMATS = ('', 'json')
CID_HEADER = 'X-Zato-CID'

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")   # an HTTP header name (RFC 9110 token)
_BAD_VALUE = re.compile(r'[\x00-\x08\x0a-\x1f\x7f]')     # control characters other than tab


# ################################################################################################ checks

def check_host(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as e:
        return f'not a valid URL ({e})'
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        return 'expected http://host[:port] or https://host[:port]'
    if parts.username is not None:
        return 'credentials go into username and secret, not the URL'
    if parts.query or parts.fragment or '?' in value or '#' in value:
        return 'the query string goes into params, and a URL sent has no fragment'
    return None


def parse_path(path: str) -> list[tuple[str, str | None]]:
    """`path` as (literal text, placeholder name or None) pairs; ValueError if it is malformed."""
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in string.Formatter().parse(path):
        if name is not None and (not name.isidentifier() or spec or conversion):
            raise ValueError(f'`{{{name}}}` is not a placeholder; expected {{name}}')
        parts.append((literal, name))
    return parts


def check_path(value: str) -> str | None:
    if not value.startswith('/'):
        return 'expected a path starting with /'
    if '?' in value or '#' in value or any(c.isspace() for c in value):
        return 'expected a path without spaces, query string or fragment (params fill the query string)'
    try:
        parse_path(value)
    except ValueError as e:
        return str(e)
    return None


def check_headers(value: dict[str, str]) -> str | None:
    for name, header in value.items():
        if not _TOKEN.match(name):
            return f'`{name}` is not a valid header name'
        if _BAD_VALUE.search(header):
            return f'the value of `{name}` has control characters'
    return None


def check_ca_file(value: str) -> str | None:
    if value and not os.path.isfile(value):
        return f'no such file: {value}'
    return None


def _pool_size(value: int) -> str | None:
    return None if 0 < value <= 1000 else 'expected 1 to 1000'


REST_FIELDS: tuple[Field, ...] = (
    Field('address_host', str, None, check_host, 'http(s)://host[:port], e.g. https://api.example.com'),
    Field('address_url_path', str, '/', check_path, 'The path; {placeholders} filled from params'),
    Field('data_format', str, 'json', one_of(DATA_FORMATS), "'json' (data sent and parsed as JSON) or ''"),
    Field('timeout', float, 10.0, positive, 'Seconds to connect, and again to wait for a response to start arriving'),
    Field('pool_size', int, 20, _pool_size, 'Keep-alive connections per worker'),
    Field('auth_type', str, '', one_of(AUTH_TYPES), "'' (none), 'basic_auth' or 'apikey'"),
    Field('username', str, '', None, 'The Basic Auth user name, or the header an API key is sent in'),
    Field('secret', str, '', None, 'Basic Auth password or API key; encrypted', secret=True),
    Field('tls_verify', bool, True, None, 'Verify an https:// server certificate'),
    Field('tls_ca_file', str, '', check_ca_file, 'CA bundle to verify the server with'),
    Field('headers', dict, {}, check_headers, 'Headers sent with every request'),
)


# ################################################################################################ the response

class RESTResponse:
    """A response, as in Zato 3.1: `status_code`, `headers`, `text`, `content`, and `data`, the
    parsed JSON body for a connection whose data_format is json (None if the body is empty or not
    JSON). `response` is the underlying `requests.Response`."""

    __slots__ = ('response', 'data')

    def __init__(self, response: requests.Response, data: Any) -> None:
        self.response = response
        self.data = data

    @property
    def status_code(self) -> int:
        return int(self.response.status_code)

    @property
    def headers(self) -> Any:
        return self.response.headers

    @property
    def text(self) -> str:
        return str(self.response.text)

    @property
    def content(self) -> bytes:
        return bytes(self.response.content)

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def __repr__(self) -> str:
        return f'<RESTResponse {self.status_code}>'


# ################################################################################################ the connector

class RESTConnector(Connector):
    """An outgoing REST connection; `conn` is the connector itself, with get/post/put/patch/delete/head."""

    kind: ClassVar[str] = 'rest'
    aliases: ClassVar[tuple[str, ...]] = ('plain_http',)
    fields: ClassVar[tuple[Field, ...]] = REST_FIELDS

    # Building a Session does no I/O, so the client is there as soon as start() returns
    connect_in_background: ClassVar[bool] = False

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self.host = str(config['address_host']).rstrip('/')
        self.path = str(config.get('address_url_path') or '/')
        self._path_parts = parse_path(self.path)
        self.is_json = config.get('data_format', 'json') == 'json'
        self.timeout = float(config.get('timeout', 10.0))

        # Passed with each request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment
        self.verify: bool | str = False
        if config.get('tls_verify', True):
            self.verify = str(config.get('tls_ca_file') or '') or True

    # ------------------------------------------------------------------ calls

    def get(self, cid: str, data: Any = None, params: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> RESTResponse:
        """GET the path, placeholders filled from `params`, the rest of `params` as the query string."""
        return self.request('GET', cid, data, params, headers)

    def post(self, cid: str, data: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> RESTResponse:
        """POST `data`: JSON-encoded for a json connection unless it is bytes or str already."""
        return self.request('POST', cid, data, params, headers)

    send = post  # the Zato 3.1 name

    def put(self, cid: str, data: Any = None, params: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> RESTResponse:
        return self.request('PUT', cid, data, params, headers)

    def patch(self, cid: str, data: Any = None, params: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> RESTResponse:
        return self.request('PATCH', cid, data, params, headers)

    def delete(self, cid: str, data: Any = None, params: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None) -> RESTResponse:
        return self.request('DELETE', cid, data, params, headers)

    def head(self, cid: str, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> RESTResponse:
        return self.request('HEAD', cid, None, params, headers)

    def options(self, cid: str, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> RESTResponse:
        return self.request('OPTIONS', cid, None, params, headers)

    def request(self, method: str, cid: str, data: Any = None, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> RESTResponse:
        """Sends one request and returns its response, whatever its status. ValueError if `params`
        lack a placeholder of the path; ConnectorUnavailable or ConnectorTimeout if no response came."""
        session = self.client
        path, query = self.fill_path(params or {})
        body, content_type = self._body(data)
        sent_headers = {CID_HEADER: str(cid)}
        if content_type:
            sent_headers['Content-Type'] = content_type
        if headers:
            sent_headers.update(headers)
        try:
            response = session.request(method, self.host + path, params=query, data=body, headers=sent_headers,
                                       timeout=self.timeout, verify=self.verify, allow_redirects=False)
        except requests.RequestException as e:
            raise self.map_error(e) from e
        return RESTResponse(response, self._parse(response) if self.is_json and method != 'HEAD' else None)

    def fill_path(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The path with its placeholders filled (URL-quoted) and the params left for the query string."""
        query = dict(params)
        out = []
        for literal, name in self._path_parts:
            out.append(literal)
            if name is None:
                continue
            if name not in query:
                raise ValueError(f'Outgoing rest connection `{self.name}`: no value in params for '
                                 f'placeholder `{name}` of {self.path}')
            out.append(quote(str(query.pop(name)), safe=''))
        return ''.join(out), query

    # ------------------------------------------------------------------ the Connector contract

    def connect(self) -> requests.Session:
        config = self.config
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=int(config.get('pool_size', 20)), max_retries=0)
        session.mount('http://', adapter)
        session.mount('https://', adapter)
        session.headers.update(config.get('headers') or {})
        auth_type, username = config.get('auth_type', ''), config.get('username', '')
        if auth_type == 'basic_auth':
            session.auth = (username, self.secret)
        elif auth_type == 'apikey':
            session.headers[username] = self.secret
        return session

    def close_client(self, client: requests.Session) -> None:
        client.close()

    def ping_client(self, client: requests.Session) -> None:
        """A HEAD request to the host and path as configured (placeholders not filled): any status
        is an answer, only no response at all is an error."""
        client.head(self.host + self.path, timeout=self.timeout, verify=self.verify, allow_redirects=False,
                    headers={CID_HEADER: 'zato.ping'}).close()

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        auth_type, username = config.get('auth_type', ''), config.get('username', '')
        if auth_type and not username:
            raise FieldError('username', f'required with auth_type {auth_type!r}')
        if auth_type == 'apikey' and not _TOKEN.match(username):
            raise FieldError('username', 'the header to send the API key in must be a valid header name')

    def map_error(self, e: BaseException) -> ConnectorError:
        if isinstance(e, requests.Timeout):  # ConnectTimeout and ReadTimeout
            return self.error(ConnectorTimeout, f'no response from {self.host} within {self.timeout}s ({describe(e)})')
        if isinstance(e, requests.RequestException):
            return self.error(ConnectorUnavailable, f'{self.host}: {describe(e)}')
        return super().map_error(e)

    # ------------------------------------------------------------------ encoding

    def _body(self, data: Any) -> tuple[bytes | str | None, str]:
        if data is None:
            return None, ''
        if isinstance(data, bytes | str):
            return data, 'application/json' if self.is_json else ''
        if not self.is_json:
            raise TypeError(f'Outgoing rest connection `{self.name}`: data_format is not json, so data must be '
                            f'bytes or str, not {type(data).__name__}')
        return orjson.dumps(data), 'application/json'

    @staticmethod
    def _parse(response: requests.Response) -> Any:
        content = response.content
        if not content:
            return None
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            return None
