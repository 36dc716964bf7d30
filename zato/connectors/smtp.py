"""Outgoing SMTP connections: ``self.email.smtp['name'].conn.send(msg)`` sends an e-mail, as in Zato
3.1 (``self.out.smtp['name']`` is the same connection).

Built on the standard library's smtplib, whose sockets are gevent's in a worker, so a send waits
without blocking the worker. Each worker keeps up to `pool_size` sessions open between sends (EHLO,
STARTTLS and AUTH done once per session, not per message; see zato.connectors.session_pool). The
client is built in the background by opening the first session, so a connection that is built has
reached its server and logged in. A message is sent once, never again behind the caller's back: a
session that broke mid-send may have delivered it.

Failures come out as ConnectorErrors naming the connection: the server unreachable, or TLS that
cannot be set up or verified → ConnectorUnavailable; no answer within `timeout` → ConnectorTimeout;
credentials refused → ConnectorAuthError; the server refusing the message, its sender or all its
recipients → `SMTPSendError`, with the server's code and text (the session stays usable).
"""

from __future__ import annotations

import functools
import logging
import smtplib
import socket
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, ClassVar

from zato.connectors.base import ConnectorAuthError, ConnectorError, ConnectorUnavailable, Field, describe
from zato.connectors.mail_server import MailServerConnector, WireLog, server_fields
from zato.connectors.smtp_message import SMTPMessage, prepare

__all__ = ['SMTP_FIELDS', 'SMTPConnector', 'SMTPMessage', 'SMTPSendError', 'SendResult']

logger = logging.getLogger('zato.connectors.smtp')

PORTS = {'plain': 25, 'ssl': 465, 'starttls': 587}


def _check_address(value: str) -> str | None:
    if not value:
        return None
    try:
        prepare(SMTPMessage(value, value))
    except ValueError as e:
        return str(e).removeprefix('from: ')
    return None


SMTP_FIELDS: tuple[Field, ...] = (
    *server_fields('SMTP', 'starttls', PORTS),
    Field('ping_address', str, '', _check_address, 'If set, ping also sends a short test message to this address'),
    Field('is_debug', bool, False, None, 'Log each session\'s SMTP conversation (what is sent while logging in is '
                                         'left out)'),
)


# ################################################################################################ results and errors

@dataclass(frozen=True, slots=True)
class SendResult:
    """What ``send()`` did: the message's Message-ID, and the recipients the server refused while
    taking the message for the others (address → (SMTP code, the server's text))."""

    message_id: str
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)


class SMTPSendError(ConnectorError):
    """The server refused the message, its sender or every recipient: nothing was sent.

    `smtp_code` and `smtp_error` are the server's answer; `recipients` maps each refused recipient
    to its (code, text) when it was the recipients; `is_temporary` is True for a 4xx answer, which a
    later try may get past."""

    def __init__(self, message: str, *, kind: str = '', name: str = '', smtp_code: int = 0, smtp_error: str = '',
                 recipients: dict[str, tuple[int, str]] | None = None) -> None:
        super().__init__(message, kind=kind, name=name)
        self.smtp_code = smtp_code
        self.smtp_error = smtp_error
        self.recipients = recipients or {}

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.smtp_code < 500


def _text(value: Any) -> str:
    text = value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)
    return ' '.join(text.split())


def _answer(e: BaseException) -> bool:
    """Whether an exception is the server's answer to a message, after which the session is still usable."""
    if isinstance(e, smtplib.SMTPRecipientsRefused | smtplib.SMTPNotSupportedError):
        return True
    return isinstance(e, smtplib.SMTPSenderRefused | smtplib.SMTPDataError) and e.smtp_code != 421


# ################################################################################################ the connector

class SMTPConnector(MailServerConnector):
    """An outgoing SMTP connection; `conn` is the connector itself, with `send(msg)` and `ping()`."""

    kind: ClassVar[str] = 'smtp'
    fields: ClassVar[tuple[Field, ...]] = SMTP_FIELDS
    ports: ClassVar[dict[str, int]] = PORTS
    default_mode: ClassVar[str] = 'starttls'
    max_idle: ClassVar[float] = 30.0  # servers close idle sessions after a few minutes (Postfix after 300 s)

    # ------------------------------------------------------------------ for services

    def send(self, msg: SMTPMessage | Message, from_: str | None = None) -> SendResult:
        """Sends `msg`, an SMTPMessage or a standard library e-mail message, to every To, Cc and Bcc
        recipient; `from_` overrides the envelope sender. Returns a SendResult.

        ValueError for a message that cannot be sent (no sender or recipients, a malformed address);
        SMTPSendError if the server refused it; ConnectorUnavailable, ConnectorTimeout or
        ConnectorAuthError if the server could not be used."""
        message, sender, recipients = prepare(msg, from_)
        with self.session(keep=_answer) as session:
            refused = session.send_message(message, sender, recipients)
        result = SendResult(str(message['Message-ID']), {address: (code, _text(text))
                                                        for address, (code, text) in refused.items()})
        logger.info('%r: sent %s from %s to %d recipient(s)%s', self, result.message_id, sender, len(recipients),
                    f', {len(result.refused)} refused' if result.refused else '')
        return result

    # ------------------------------------------------------------------ the Connector contract

    def ping_client(self, client: Any) -> None:
        """A new session (connect, EHLO, STARTTLS, AUTH) and NOOP; with `ping_address`, a test message too."""
        session = self.open_session()
        try:
            code, text = session.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, text)
            address = self.config.get('ping_address')
            if address:
                message, sender, recipients = prepare(SMTPMessage(
                    address, address, f'Zato ping of `{self.name}`',
                    f'A test message from the ping of outgoing SMTP connection `{self.name}`.'))
                session.send_message(message, sender, recipients)
        finally:
            self.close_session(session, polite=True)

    def map_error(self, e: BaseException) -> ConnectorError:
        where = self.address
        if isinstance(e, smtplib.SMTPAuthenticationError):
            return self.error(ConnectorAuthError, f'{where} refused the login of `{self.username}`: '
                                                  f'{e.smtp_code} {_text(e.smtp_error)}')
        if isinstance(e, smtplib.SMTPRecipientsRefused):
            recipients = {address: (code, _text(text)) for address, (code, text) in e.recipients.items()}
            listed = '; '.join(f'{address}: {code} {text}' for address, (code, text) in recipients.items())
            code, text = next(iter(recipients.values()), (0, ''))
            return self._send_error(f'{where} refused every recipient ({listed})', code, text, recipients)
        if isinstance(e, smtplib.SMTPSenderRefused):
            return self._send_error(f'{where} refused the sender {e.sender}: {e.smtp_code} {_text(e.smtp_error)}',
                                    e.smtp_code, _text(e.smtp_error))
        if isinstance(e, smtplib.SMTPDataError):
            return self._send_error(f'{where} refused the message: {e.smtp_code} {_text(e.smtp_error)}',
                                    e.smtp_code, _text(e.smtp_error))
        if isinstance(e, smtplib.SMTPNotSupportedError):
            return self._send_error(f'{where} cannot take this message: {e}', 0, str(e))
        if isinstance(e, smtplib.SMTPServerDisconnected):
            if isinstance(e.__context__, TimeoutError):  # smtplib makes a read that timed out a disconnection
                return self.timed_out()
            return self.error(ConnectorUnavailable, f'{where} closed the connection ({describe(e)})')
        if isinstance(e, smtplib.SMTPResponseException):
            return self.error(ConnectorUnavailable, f'{where} answered {e.smtp_code} {_text(e.smtp_error)}')
        if isinstance(e, smtplib.SMTPException):
            return self.error(ConnectorUnavailable, f'{where}: {describe(e)}')
        return super().map_error(e)  # the network, TLS, time

    # ------------------------------------------------------------------ sessions

    def open_session(self) -> smtplib.SMTP:
        """A session ready to send: connected, greeted, secured as the mode says, and logged in."""
        session: smtplib.SMTP
        if self.mode == 'ssl':
            session = smtplib.SMTP_SSL(local_hostname=local_hostname(), timeout=self.timeout, context=self.tls)
        else:
            session = smtplib.SMTP(local_hostname=local_hostname(), timeout=self.timeout)
        # The name TLS checks the certificate against; smtplib sets it only when its constructor connects,
        # which would be before the wire log is set up
        session._host = self.host  # type: ignore[attr-defined]
        wire = WireLog(logger, repr(self)) if self.config.get('is_debug') else None
        if wire is not None:
            session.set_debuglevel(1)
            session._print_debug = wire.smtplib  # type: ignore[attr-defined]  # to the log, not stderr
        try:
            code, text = session.connect(self.host, self.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, text)
            session.ehlo()
            if self.mode == 'starttls':
                if not session.has_extn('starttls'):
                    raise ConnectorUnavailable(f'{self.address} does not offer STARTTLS (mode is starttls, so nothing '
                                               'is sent in the clear)')
                session.starttls(context=self.tls)
                session.ehlo()
            if self.username:
                self._login(session, wire)
        except BaseException:
            session.close()
            raise
        return session

    @staticmethod
    def close_session(session: smtplib.SMTP, polite: bool) -> None:
        if polite:
            try:
                session.quit()
                return
            except (OSError, smtplib.SMTPException):
                pass
        session.close()

    def _login(self, session: smtplib.SMTP, wire: WireLog | None) -> None:
        if not session.has_extn('auth'):
            raise ConnectorAuthError(f'{self.address} offers no login (AUTH) in mode {self.mode}, and username '
                                     f'is set')
        try:
            self.login(wire, lambda: session.login(self.username, self.secret))
        except (smtplib.SMTPResponseException, smtplib.SMTPServerDisconnected):
            raise  # a refusal (SMTPAuthenticationError) or a failure, mapped as any other
        except smtplib.SMTPException as e:
            raise ConnectorAuthError(f'{self.address}: {describe(e)}') from e  # no mechanism in common

    def _send_error(self, detail: str, code: int, text: str,
                    recipients: dict[str, tuple[int, str]] | None = None) -> SMTPSendError:
        return SMTPSendError(f'Outgoing {self.kind} connection `{self.name}`: {detail}', kind=self.kind,
                             name=self.name, smtp_code=code, smtp_error=text, recipients=recipients)


@functools.cache
def local_hostname() -> str:
    """The name this host says in EHLO: its fully qualified name, or its address as a literal, as smtplib
    works it out; once per process, not per session, as it may ask DNS."""
    fqdn = socket.getfqdn()
    if '.' in fqdn:
        return fqdn
    try:
        return f'[{socket.gethostbyname(socket.gethostname())}]'
    except OSError:
        return '[127.0.0.1]'
