"""Outgoing Telegram connections: ``self.im.telegram['name'].conn.client.invoke(method, data)``
calls one Bot API method and returns its `result`.

A thin client over one `requests.Session` per connection and worker, as in Zato 3.1: the address is
a template (``https://api.telegram.org/bot{token}/{method}``), the token its secret. The client is
built in the background and proves itself there with `getMe`, so a connection that is built has
reached Telegram with a token it accepts. A call goes out once, never repeated (a `sendMessage`
whose connection broke may have been delivered).

Every failure is a ConnectorError naming the connection: no answer → ConnectorUnavailable or
ConnectorTimeout; ``ok: false`` with 401 → ConnectorAuthError; any other ``ok: false`` →
`TelegramError`, with Telegram's `error_code`, `description` and, for 429, `retry_after`.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field)
from zato.connectors.checks import http_url, positive, proxy_url

if TYPE_CHECKING:
    import requests

__all__ = ['TELEGRAM_FIELDS', 'TelegramClient', 'TelegramConnector', 'TelegramError']

DEFAULT_ADDRESS = 'https://api.telegram.org/bot{token}/{method}'
PLACEHOLDERS = frozenset(('token', 'method'))


class TelegramError(ConnectorError):
    """Telegram answered ``ok: false`` for a reason other than the token (a chat not found, too many
    requests ...): `error_code` (the HTTP status), `description`, and `retry_after` (seconds, for 429)."""

    def __init__(self, message: str, *, kind: str = '', name: str = '', error_code: int = 0,
                 description: str = '', retry_after: int | None = None) -> None:
        super().__init__(message, kind=kind, name=name)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after


# ################################################################################################ fields

def check_address(value: str) -> str | None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as e:
        return f'not a valid template ({e})'
    unknown = sorted(names - PLACEHOLDERS)
    if unknown:
        return f'unknown placeholder `{{{unknown[0]}}}`; expected {{token}} and {{method}}'
    if 'method' not in names:
        return 'expected a {method} placeholder, e.g. https://api.telegram.org/bot{token}/{method}'
    return http_url(value.replace('{token}', 'TOKEN').replace('{method}', 'METHOD'))


TELEGRAM_FIELDS: tuple[Field, ...] = (
    Field('address', str, DEFAULT_ADDRESS, check_address,
          'URL template of a method call, with {token} and {method}'),
    Field('connect_timeout', float, 5.0, positive, 'Seconds to connect'),
    Field('invoke_timeout', float, 10.0, positive, 'Seconds to wait for the response to start arriving'),
    Field('http_proxy', str, '', proxy_url, 'Proxy URL for http:// addresses'),
    Field('https_proxy', str, '', proxy_url, 'Proxy URL for https:// addresses'),
    Field('token', str, '', None, 'The bot token from @BotFather; encrypted, also accepted as `secret`', secret=True),
)


# ################################################################################################ the client

class TelegramClient:
    """``conn.client``: calls Bot API methods. `me` is what `getMe` said when the client was built."""

    def __init__(self, connector: TelegramConnector, session: requests.Session) -> None:
        self._connector = connector
        self.session = session
        self.me: dict[str, Any] = {}

    def invoke(self, method: str, data: dict[str, Any] | None = None) -> Any:
        """Calls `method` with `data` (its parameters, sent as JSON) and returns Telegram's `result`
        (a dict, a list or a scalar, as the method documents). Raises a ConnectorError otherwise."""
        import requests

        c = self._connector
        if not method or not method.isidentifier():
            raise ValueError(f'Outgoing telegram connection `{c.name}`: `{method}` is not a Bot API method name')
        url = c.address.format(token=c.secret, method=method)
        try:
            response = self.session.post(url, json=data or {}, timeout=(c.connect_timeout, c.invoke_timeout),
                                         allow_redirects=False)
            body = response.json()
        except requests.exceptions.JSONDecodeError:
            raise c.error(ConnectorUnavailable,
                          f'{c.host}: HTTP {response.status_code} to `{method}` is not a Bot API response') from None
        except requests.RequestException as e:
            raise c.map_error(e) from None  # from None: the exception's URL holds the token
        if not isinstance(body, dict) or 'ok' not in body:
            raise c.error(ConnectorUnavailable, f'{c.host}: the answer to `{method}` is not a Bot API response')
        if body['ok'] is True:
            return body.get('result')
        raise c.api_error(method, body, response.status_code)

    def close(self) -> None:
        self.session.close()


# ################################################################################################ the connector

class TelegramConnector(Connector):
    """An outgoing Telegram connection; `conn` is the connector itself, with `client` (a
    `TelegramClient`: ``client.invoke(method, data)``) and `ping()`."""

    kind: ClassVar[str] = 'telegram'
    fields: ClassVar[tuple[Field, ...]] = TELEGRAM_FIELDS

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self.address = str(config.get('address') or DEFAULT_ADDRESS)
        self.connect_timeout = float(config.get('connect_timeout', 5.0))
        self.invoke_timeout = float(config.get('invoke_timeout', 10.0))
        parts = urlsplit(self.address.replace('{token}', 'TOKEN').replace('{method}', 'METHOD'))
        # For messages: the address without the token
        self.host = f'{parts.scheme}://{parts.netloc}'
        self.proxies = {scheme: str(config[f'{scheme}_proxy']) for scheme in ('http', 'https')
                        if config.get(f'{scheme}_proxy')}

    # ------------------------------------------------------------------ the Connector contract

    def connect(self) -> TelegramClient:
        import requests
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        adapter = HTTPAdapter(max_retries=0)
        session.mount('http://', adapter)
        session.mount('https://', adapter)
        session.proxies.update(self.proxies)
        client = TelegramClient(self, session)
        try:
            client.me = client.invoke('getMe')
        except ConnectorError as e:
            session.close()
            # last_error is prefixed with the connection's name already, so the message need not be
            e.args = (str(e).removeprefix(f'Outgoing {self.kind} connection `{self.name}`: '),)
            raise
        return client

    def ping_client(self, client: TelegramClient) -> None:
        client.invoke('getMe')

    def close_client(self, client: TelegramClient) -> None:
        client.close()

    def map_error(self, e: BaseException) -> ConnectorError:
        import requests

        if isinstance(e, requests.Timeout):  # ConnectTimeout and ReadTimeout
            return self.error(ConnectorTimeout, f'no response from {self.host} within '
                                                f'{self.connect_timeout}s/{self.invoke_timeout}s ({type(e).__name__})')
        if isinstance(e, requests.RequestException):
            # Not describe(e): requests puts the URL, and so the token, into its messages
            return self.error(ConnectorUnavailable, f'{self.host}: {type(e).__name__}: {_reason(e)}')
        return super().map_error(e)

    def api_error(self, method: str, body: dict[str, Any], status: int) -> ConnectorError:
        """The error for an ``ok: false`` answer."""
        error_code = body.get('error_code')
        code = error_code if isinstance(error_code, int) else status
        description = str(body.get('description') or 'no description')
        detail = f'`{method}` failed: {code} {description}'
        if code == 401:
            return self.error(ConnectorAuthError, f'{self.host}: {detail}')
        parameters = body.get('parameters')
        retry_after = parameters.get('retry_after') if isinstance(parameters, dict) else None
        return TelegramError(f'Outgoing {self.kind} connection `{self.name}`: {detail}', kind=self.kind,
                             name=self.name, error_code=code, description=description,
                             retry_after=retry_after if isinstance(retry_after, int) else None)


def _reason(e: BaseException) -> str:
    """Why a request failed, without the URL requests and urllib3 wrap around it."""
    while True:
        inner = e.args[0] if e.args and isinstance(e.args[0], BaseException) else None
        inner = inner or getattr(e, 'reason', None)
        if not isinstance(inner, BaseException):
            break
        e = inner
    text = ' '.join(str(e).split())
    # urllib3's NewConnectionError reads '<connection object at 0x...>: Failed to establish ...'
    if ': ' in text and text.startswith('<'):
        text = text.split(': ', 1)[1]
    return text or type(e).__name__
