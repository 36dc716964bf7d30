"""Outgoing Slack connections: ``self.im.slack['name'].conn.client`` is a slack_sdk `WebClient`.

The client is built in the background and proves itself there with `auth.test`, so a connection
that is built has reached Slack with a token Slack accepts. slack_sdk opens a new HTTP connection
per call (urllib, cooperative under gevent in a worker), so a call after Slack came back simply
works. Its retry handlers are switched off: a `chat.postMessage` whose connection broke may have
been posted already, and sending it again behind the caller's back would post it twice.

Calls through `client` raise slack_sdk's own exceptions, as the library documents them;
`conn.mapped_errors()` turns those about the connection (Slack unreachable, too slow, a token
refused) into the ConnectorError hierarchy and lets the rest (`channel_not_found` ...) through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field, describe)
from zato.connectors.checks import http_url, positive, proxy_url

if TYPE_CHECKING:
    from slack_sdk import WebClient

__all__ = ['SLACK_FIELDS', 'SlackConnector']

DEFAULT_ADDRESS = 'https://slack.com/api/'

# Slack's `error` values that mean the token is wrong, missing or no longer valid
AUTH_ERRORS = frozenset(('invalid_auth', 'not_authed', 'account_inactive', 'token_revoked', 'token_expired',
                         'not_allowed_token_type', 'no_permission', 'team_access_not_granted'))


# ################################################################################################ fields

def check_address(value: str) -> str | None:
    error = http_url(value)
    if error is None and urlsplit(value).username is not None:
        return 'the token goes into `token`, not the URL'
    return error


SLACK_FIELDS: tuple[Field, ...] = (
    Field('address', str, DEFAULT_ADDRESS, check_address,
          'The Web API base URL the method names are appended to; Slack itself unless testing'),
    Field('timeout', float, 10.0, positive, 'Seconds to connect, and again to wait for each read'),
    Field('http_proxy', str, '', proxy_url, 'Proxy URL used when address is http://'),
    Field('https_proxy', str, '', proxy_url, 'Proxy URL used when address is https://'),
    Field('token', str, '', None, 'The bot or user token (xoxb-..., xoxp-...); encrypted, also accepted as `secret`',
          secret=True),
)


# ################################################################################################ errors

def slack_error(e: BaseException) -> str:
    """Slack's `error` code in a SlackApiError, or ''."""
    response = getattr(e, 'response', None)
    try:
        return str(response.get('error') or '') if response is not None else ''
    except Exception:  # noqa: BLE001 - a response that is not a dict has no code
        return ''


def error_class(e: BaseException) -> type[ConnectorError] | None:
    """The ConnectorError class for a slack_sdk (or urllib) exception about the connection, or None
    for one about the call itself (a channel that does not exist ...)."""
    from urllib.error import URLError

    from slack_sdk.errors import SlackApiError, SlackClientError

    if isinstance(e, SlackApiError):
        if slack_error(e) in AUTH_ERRORS:
            return ConnectorAuthError
        status = getattr(e.response, 'status_code', 200)
        return ConnectorUnavailable if status >= 500 else None
    if isinstance(e, URLError):
        return ConnectorTimeout if isinstance(e.reason, TimeoutError) else ConnectorUnavailable
    if isinstance(e, TimeoutError):
        return ConnectorTimeout
    if isinstance(e, OSError | SlackClientError):
        return ConnectorUnavailable
    from http.client import HTTPException
    if isinstance(e, HTTPException):  # IncompleteRead and such: the connection broke mid-response
        return ConnectorUnavailable
    return None


def explain(e: BaseException) -> str:
    """A slack_sdk exception on one line: Slack's error code rather than the whole response."""
    from urllib.error import URLError

    from slack_sdk.errors import SlackApiError

    if isinstance(e, SlackApiError):
        code = slack_error(e) or 'no error code'
        status = getattr(e.response, 'status_code', None)
        return f'SlackApiError: {code}' + (f' (HTTP {status})' if status and status != 200 else '')
    if isinstance(e, URLError) and isinstance(e.reason, BaseException):
        return describe(e.reason)
    return describe(e)


# ################################################################################################ the connector

class SlackConnector(Connector):
    """An outgoing Slack connection; `conn` is the connector itself, with `client` (a slack_sdk
    `WebClient`), `ping()` and `mapped_errors()`."""

    kind: ClassVar[str] = 'slack'
    fields: ClassVar[tuple[Field, ...]] = SLACK_FIELDS

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self.address = str(config.get('address') or DEFAULT_ADDRESS)
        self.timeout = float(config.get('timeout', 10.0))
        scheme = urlsplit(self.address).scheme
        self.proxy = str(config.get('https_proxy' if scheme == 'https' else 'http_proxy') or '') or None

        # Who Slack says the token belongs to (auth.test), once the client is built
        self.identity: dict[str, Any] = {}

    # ------------------------------------------------------------------ for services

    @contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Re-raises slack_sdk's connection errors as ConnectorUnavailable, ConnectorAuthError or
        ConnectorTimeout naming this connection; other SlackApiErrors pass through::

            with conn.mapped_errors():
                conn.client.chat_postMessage(channel='#general', text='Hello')
        """
        try:
            yield
        except Exception as e:
            if error_class(e) is None:
                raise
            raise self.map_error(e) from e

    # ------------------------------------------------------------------ the Connector contract

    def connect(self) -> WebClient:
        from slack_sdk import WebClient

        # retry_handlers=[]: slack_sdk would otherwise send a call again after a connection error
        client = WebClient(token=self.secret or None, base_url=self.address, timeout=self.timeout,  # type: ignore[arg-type]
                           proxy=self.proxy, retry_handlers=[])
        try:
            self.identity = dict(client.auth_test().data)  # type: ignore[arg-type]
        except Exception as e:
            mapped = self.map_error(e)
            # Not the mapped error itself: last_error is prefixed with the connection's name already
            raise type(mapped)(f'{self.address}: {explain(e)}', kind=self.kind, name=self.name) from e
        return client

    def ping_client(self, client: WebClient) -> None:
        """`api.test` proves Slack answers, `auth.test` that it still takes the token."""
        client.api_test()
        client.auth_test()

    def close_client(self, client: WebClient) -> None:
        """Nothing to close: slack_sdk keeps no connection open between calls."""

    def map_error(self, e: BaseException) -> ConnectorError:
        if isinstance(e, ConnectorError):
            return e
        cls = error_class(e)
        if cls is None:
            return super().map_error(e)
        if cls is ConnectorTimeout:
            return self.error(cls, f'no response from {self.address} within {self.timeout}s ({explain(e)})')
        return self.error(cls, f'{self.address}: {explain(e)}')
