"""What outgoing SMTP and IMAP connections share: where the server is and how a session with it is
secured and logged in, declared once as fields; the TLS context built from them; the log of a
session's conversation, which never shows a password; the hold on a password the server refused;
and `MailServerConnector`, which keeps a pool of sessions with the server and maps what fails
underneath the protocol (the network, TLS, time) the same way for both.

A mode says how a session is secured: `plain` (no TLS), `ssl` (TLS from the first byte: SMTPS on
465, IMAPS on 993) or `starttls` (a plain connection upgraded before logging in; never continued in
the clear if the server does not offer it). Certificates are verified by default, against the
system's CAs or `tls_ca_file`, and must name the host.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field, describe)
from zato.connectors.checks import existing_file, host, one_of, positive
from zato.connectors.session_pool import SessionPool

__all__ = ['MODES', 'AuthHold', 'MailServerConnector', 'WireLog', 'server_fields', 'tls_context']

MODES = ('plain', 'ssl', 'starttls')

# After the server refused our credentials, how long before the background greenlet logs in again: a
# login every few seconds with a wrong password would lock the account out where a lockout policy is on
# (Microsoft 365, fail2ban ...). An edit or a change of password rebuilds the connection and logs in at once.
AUTH_RETRY_AFTER = 300.0


def _port_or_zero(value: int) -> str | None:
    return None if 0 <= value < 65536 else "expected 1 to 65535, or 0 for the mode's standard port"


def _pool_size(value: int) -> str | None:
    return None if 0 < value <= 100 else 'expected 1 to 100'


def server_fields(protocol: str, default_mode: str, ports: dict[str, int],
                  username_required: bool = False) -> tuple[Field, ...]:
    """The fields of a mail server connection, in the order the docs list them; `ports` maps each
    mode to its standard port, which a port of 0 stands for."""
    standard = ', '.join(f'{port} {mode}' for mode, port in ports.items())
    return (
        Field('host', str, None, host, f'The {protocol} server'),
        Field('port', int, 0, _port_or_zero, f"The server's port; 0 for the mode's standard port ({standard})"),
        Field('mode', str, default_mode, one_of(MODES),
              "'plain' (no TLS), 'ssl' (TLS from the first byte) or 'starttls' (TLS before logging in)"),
        Field('timeout', float, 10.0, positive, 'Seconds to connect, and again to wait for each answer'),
        Field('username', str, None if username_required else '', None,
              'The user to log in as' + ('' if username_required else '; empty: no login')),
        Field('password', str, '', None, 'The password of username; encrypted, also accepted as `secret`',
              secret=True),
        Field('tls_verify', bool, True, None, "Verify the server's certificate and that it names host (ssl, starttls)"),
        Field('tls_ca_file', str, '', existing_file, "CA bundle (PEM) to verify the server with instead of the "
                                                     "system's CAs"),
        Field('pool_size', int, 3, _pool_size, 'Sessions per worker kept open between calls; also how many calls '
                                               'at a time'),
    )


def tls_context(config: dict[str, Any], mode: str) -> ssl.SSLContext | None:
    """The TLS context of a connection, None in plain mode. Verification is on unless `tls_verify` is false."""
    if mode == 'plain':
        return None
    context = ssl.create_default_context(cafile=config.get('tls_ca_file') or None)
    if not config.get('tls_verify', True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# ################################################################################################ the wire log

class WireLog:
    """What a session says and hears, for connections whose debugging is on: each line to the kind's
    logger at INFO, prefixed with the connection's name. While `hidden` (logging in) what the client
    sends is left out, as the password, plain or base64-encoded, is in it."""

    def __init__(self, logger: logging.Logger, label: str) -> None:
        self.logger = logger
        self.label = label
        self.hidden = False

    def line(self, text: str, sent: bool) -> None:
        if sent and self.hidden:
            text = '(sent while logging in: not logged)'
        self.logger.info('%s: %s', self.label, text)

    def smtplib(self, *args: Any) -> None:
        """smtplib's _print_debug: ('send:', data), ('reply:', ...) ..."""
        self.line(' '.join(str(a) for a in args), sent=bool(args) and args[0] == 'send:')

    def imaplib(self, text: str, secs: Any = None) -> None:
        """imaplib's _mesg: '> data' for what is sent, '< data' for what is read."""
        self.line(text, sent=text.startswith('> '))


# ################################################################################################ refused credentials

class AuthHold:
    """Remembers that the server refused our credentials, so that the connection does not try them
    again for AUTH_RETRY_AFTER seconds; `check()` raises the refusal again until then."""

    def __init__(self) -> None:
        self.refused_at: float | None = None
        self.reason = ''

    def check(self, kind: str, name: str) -> None:
        if self.refused_at is not None and time.monotonic() - self.refused_at < AUTH_RETRY_AFTER:
            raise ConnectorAuthError(f'{self.reason} (not tried again for {AUTH_RETRY_AFTER:.0f}s after a refusal, '
                                     'unless the connection is edited)', kind=kind, name=name)

    def refused(self, reason: str) -> None:
        self.refused_at, self.reason = time.monotonic(), reason

    def accepted(self) -> None:
        self.refused_at, self.reason = None, ''


# ################################################################################################ the connector

class MailServerConnector(Connector):
    """An SMTP or IMAP connection: the client is a SessionPool of sessions with the server, the first
    opened by connect() to prove the server answers and takes the credentials.

    A kind sets `ports` (mode → standard port), `default_mode` and `max_idle`, and implements
    `open_session()`, `close_session(session, polite)` and, for what its library raises, `map_error`
    (calling this one for the rest)."""

    ports: ClassVar[dict[str, int]] = {}
    default_mode: ClassVar[str] = 'ssl'
    max_idle: ClassVar[float] = 30.0  # seconds a session may sit idle and still be reused

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self.host = str(config['host'])
        self.mode = str(config.get('mode') or self.default_mode)
        self.port = int(config.get('port') or 0) or self.ports[self.mode]
        self.timeout = float(config.get('timeout', 10.0))
        self.username = str(config.get('username') or '')
        self.tls = tls_context(config, self.mode)
        self.address = f'{self.host}:{self.port}'
        self._hold = AuthHold()

    # ------------------------------------------------------------------ what a kind implements

    def open_session(self) -> Any:
        """A session ready for commands: connected, secured as the mode says, logged in."""
        raise NotImplementedError

    @staticmethod
    def close_session(session: Any, polite: bool) -> None:
        """Lets a session go, saying goodbye first when `polite`; never raises."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the Connector contract

    def connect(self) -> SessionPool[Any]:
        """The pool, with a first session open: the server answered and took the credentials. A refused
        login is not tried again for AUTH_RETRY_AFTER seconds."""
        self._hold.check(self.kind, self.name)
        pool: SessionPool[Any] = SessionPool(self.open_session, self.close_session,
                                             lambda session: getattr(session, 'sock', None),
                                             int(self.config.get('pool_size', 3)), self.timeout, self.max_idle)
        try:
            pool.prime()
        except Exception as e:
            pool.close()
            mapped = self.map_error(e)
            if isinstance(mapped, ConnectorAuthError):
                self._hold.refused(self.describe(mapped).removeprefix('ConnectorAuthError: '))
            raise mapped from e
        self._hold.accepted()
        return pool

    def close_client(self, client: SessionPool[Any]) -> None:
        client.close()

    def map_error(self, e: BaseException) -> ConnectorError:
        """What fails underneath the protocol: the network, TLS, time. A ConnectorError raised without a
        name (by the pool, or a session) is given this connection's."""
        if isinstance(e, ConnectorError):
            return e if e.name else self.error(type(e), str(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            return self.error(ConnectorUnavailable, f"{self.address}: the server's certificate was not accepted "
                                                    f'({e.verify_message}); see tls_ca_file and tls_verify')
        if isinstance(e, TimeoutError):
            return self.timed_out()
        if isinstance(e, OSError):
            return self.error(ConnectorUnavailable, f'{self.address}: {describe(e)}')
        return super().map_error(e)

    # ------------------------------------------------------------------ for the kinds

    def timed_out(self) -> ConnectorError:
        return self.error(ConnectorTimeout, f'no answer from {self.address} within {self.timeout}s')

    @contextmanager
    def session(self, keep: Callable[[BaseException], bool] | None = None) -> Iterator[Any]:
        """A session of the pool for one call, with what the call raises mapped; `keep` says which
        exceptions are the server's answers, after which the session is still usable."""
        try:
            with self.client.session(keep=keep) as session:
                yield session
        except Exception as e:
            mapped = self.map_error(e)
            if mapped is e:
                raise
            raise mapped from e

    def login(self, wire: WireLog | None, log_in: Callable[[], Any]) -> None:
        """Runs `log_in` with what the session sends kept out of the wire log."""
        if wire is not None:
            wire.hidden = True
        try:
            log_in()
        finally:
            if wire is not None:
                wire.hidden = False
