"""Outgoing IMAP connections: ``self.email.imap['name'].conn.get()`` reads a mailbox, as in Zato 3.1
(``self.out.imap['name']`` is the same connection)::

    for uid, msg in self.email.imap['Support inbox'].conn.get():   # the UNSEEN messages of INBOX
        self.logger.info('%s from %s', msg.data.subject, msg.data.sent_from[0]['email'])
        msg.mark_seen()

Built on the standard library's imaplib, whose sockets are gevent's in a worker. Each worker keeps
up to `pool_size` logged-in sessions open between calls (zato.connectors.session_pool); the client is
built in the background by opening the first, so a connection that is built has reached its server
and logged in. Messages are fetched with BODY.PEEK[], which leaves their \\Seen flag alone.

Failures come out as ConnectorErrors naming the connection: the server unreachable or TLS that
cannot be set up or verified → ConnectorUnavailable; no answer within `timeout` → ConnectorTimeout;
the login refused → ConnectorAuthError; the server answering NO or BAD (a folder that does not
exist, criteria it cannot parse) → `IMAPError`, with its answer (the session stays usable).
"""

from __future__ import annotations

import imaplib
import logging
from typing import Any, ClassVar

from zato.connectors.base import ConnectorAuthError, ConnectorError, ConnectorUnavailable, Field
from zato.connectors.imap_message import IMAPMessage, IMAPMessageData, parse_message
from zato.connectors.imap_proto import check_criteria, parse_fetch, parse_search, quote_mailbox, uid_set
from zato.connectors.mail_server import MailServerConnector, WireLog, server_fields

__all__ = ['IMAP_FIELDS', 'IMAPConnector', 'IMAPError', 'IMAPMessage', 'IMAPMessageData']

logger = logging.getLogger('zato.connectors.imap')

PORTS = {'plain': 143, 'ssl': 993, 'starttls': 143}


def _debug_level(value: int) -> str | None:
    return None if 0 <= value <= 5 else 'expected 0 (off) to 5'


IMAP_FIELDS: tuple[Field, ...] = (
    *server_fields('IMAP', 'ssl', PORTS, username_required=True),
    Field('get_criteria', str, 'UNSEEN', check_criteria,
          'What get() looks for unless told otherwise: RFC 3501 SEARCH criteria, e.g. UNSEEN or SINCE 1-Jan-2026'),
    Field('debug_level', int, 0, _debug_level, "imaplib's debug level: above 0 logs each session's IMAP "
                                               '(what is sent while logging in is left out)'),
)


class IMAPError(ConnectorError):
    """The server answered NO or BAD: a folder that does not exist, criteria it cannot parse ...
    `response` is its answer."""

    def __init__(self, message: str, *, kind: str = '', name: str = '', response: str = '') -> None:
        super().__init__(message, kind=kind, name=name)
        self.response = response


def _answer(e: BaseException) -> bool:
    """Whether an exception is the server's NO or BAD, after which the session is still usable."""
    return isinstance(e, imaplib.IMAP4.error) and not isinstance(e, imaplib.IMAP4.abort)


def _reason(e: BaseException) -> str:
    """imaplib's message, with the server's bytes as text: "SELECT command error: BAD [b'...']" → its text."""
    text = str(e.args[0]) if e.args else type(e).__name__
    if isinstance(e.args[0] if e.args else None, bytes):
        text = e.args[0].decode('utf-8', 'replace')
    return ' '.join(text.replace("[b'", '').replace("']", '').replace('b\'', '').split())


class _Session:
    """An imaplib session whose debug lines, at `level`, go to a wire log instead of stderr, from the
    greeting on (imaplib reads it in its constructor)."""

    def __init__(self, *args: Any, wire: WireLog | None, level: int, **kwargs: Any) -> None:
        self._zato_wire = wire
        self._zato_level = level
        super().__init__(*args, **kwargs)

    def _connect(self) -> Any:
        if self._zato_wire is not None:
            self.debug = self._zato_level
            self._mesg = self._zato_wire.imaplib
        return super()._connect()  # type: ignore[misc]


class _IMAP4(_Session, imaplib.IMAP4):
    pass


class _IMAP4_SSL(_Session, imaplib.IMAP4_SSL):  # noqa: N801 - imaplib's name
    pass


# ################################################################################################ the connector

class IMAPConnector(MailServerConnector):
    """An outgoing IMAP connection; `conn` is the connector itself, with `get()`, `mark_seen()`,
    `delete()` and `ping()`."""

    kind: ClassVar[str] = 'imap'
    fields: ClassVar[tuple[Field, ...]] = IMAP_FIELDS
    ports: ClassVar[dict[str, int]] = PORTS
    default_mode: ClassVar[str] = 'ssl'
    max_idle: ClassVar[float] = 60.0  # RFC 3501 lets a server log an idle session out after 30 minutes; some do sooner

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self.criteria = ' '.join(str(config.get('get_criteria') or 'UNSEEN').split())

    # ------------------------------------------------------------------ for services

    def get(self, folder: str = 'INBOX', criteria: str | None = None,
            limit: int | None = None) -> list[tuple[str, IMAPMessage]]:
        """(uid, IMAPMessage) of each message in `folder` that `criteria` (RFC 3501 SEARCH, the
        connection's `get_criteria` if None) finds, oldest first; the first `limit` only, if given.
        The messages are fetched without being marked seen."""
        if criteria is not None:
            error = check_criteria(criteria)
            if error:
                raise ValueError(f'criteria {criteria!r}: {error}')
            criteria = ' '.join(criteria.split())
        if limit is not None and limit < 1:
            raise ValueError('limit: expected 1 or more')
        mailbox = quote_mailbox(folder)
        with self.session(keep=_answer) as session:
            self._ok(session.select(mailbox, readonly=True), f'SELECT {folder!r}')
            uids = parse_search(self._ok(session.uid('SEARCH', criteria or self.criteria), 'SEARCH'))
            uids = uids[:limit] if limit else uids
            fetched = parse_fetch(self._ok(session.uid('FETCH', uid_set(tuple(uids)), '(UID FLAGS BODY.PEEK[])'),
                                           'FETCH')) if uids else []
        order = {uid: index for index, uid in enumerate(uids)}
        fetched.sort(key=lambda item: order.get(item[0], len(order)))
        return [(uid, IMAPMessage(uid, folder, self, parse_message(raw, flags))) for uid, flags, raw in fetched]

    def mark_seen(self, *uids: str | int, folder: str = 'INBOX') -> None:
        """Sets the \\Seen flag of the messages of `folder` with these UIDs."""
        self._store(uid_set(uids), folder, '\\Seen')

    def delete(self, *uids: str | int, folder: str = 'INBOX') -> None:
        """Deletes the messages of `folder` with these UIDs: flags them \\Deleted and expunges them (only
        them where the server has UIDPLUS, RFC 4315; else every message flagged \\Deleted in the folder)."""
        uid_list = uid_set(uids)
        with self.session(keep=_answer) as session:
            self._ok(session.select(quote_mailbox(folder)), f'SELECT {folder!r}')
            self._ok(session.uid('STORE', uid_list, '+FLAGS.SILENT', '(\\Deleted)'), 'STORE')
            capabilities = self._ok(session.capability(), 'CAPABILITY')
            if b'UIDPLUS' in b' '.join(c for c in capabilities if c).upper().split():
                self._ok(session.uid('EXPUNGE', uid_list), 'UID EXPUNGE')
            else:
                self._ok(session.expunge(), 'EXPUNGE')

    # ------------------------------------------------------------------ the Connector contract

    def ping_client(self, client: Any) -> None:
        """NOOP on a session of the pool (opened for it if none is idle)."""
        with client.session(keep=_answer) as session:
            self._ok(session.noop(), 'NOOP')

    def map_error(self, e: BaseException) -> ConnectorError:
        where = self.address
        if isinstance(e, imaplib.IMAP4.abort):
            return self.error(ConnectorUnavailable, f'{where}: {_reason(e)}')
        if isinstance(e, imaplib.IMAP4.error):
            reason = _reason(e)
            return IMAPError(f'Outgoing {self.kind} connection `{self.name}`: {where} answered: {reason}',
                             kind=self.kind, name=self.name, response=reason)
        return super().map_error(e)  # the network, TLS, time

    # ------------------------------------------------------------------ sessions

    def open_session(self) -> imaplib.IMAP4:
        """A session ready for commands: connected, secured as the mode says, and logged in."""
        level = int(self.config.get('debug_level') or 0)
        wire = WireLog(logger, repr(self)) if level else None
        session: imaplib.IMAP4
        if self.mode == 'ssl':
            session = _IMAP4_SSL(self.host, self.port, ssl_context=self.tls, timeout=self.timeout, wire=wire,
                                 level=level)
        else:
            session = _IMAP4(self.host, self.port, timeout=self.timeout, wire=wire, level=level)
        try:
            if self.mode == 'starttls':
                if 'STARTTLS' not in session.capabilities:
                    raise ConnectorUnavailable(f'{self.address} does not offer STARTTLS (mode is starttls, so '
                                               'nothing is sent in the clear)')
                session.starttls(ssl_context=self.tls)
            try:
                self.login(wire, lambda: session.login(self.username, self.secret))
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as e:
                raise ConnectorAuthError(f'{self.address} refused the login of `{self.username}`: {_reason(e)}') from e
        except BaseException:
            self.close_session(session, polite=False)
            raise
        return session

    @staticmethod
    def close_session(session: imaplib.IMAP4, polite: bool) -> None:
        if polite:
            try:
                session.logout()
                return
            except (OSError, imaplib.IMAP4.error):
                pass
        try:
            session.shutdown()
        except OSError:
            pass

    def _store(self, uids: str, folder: str, flag: str) -> None:
        with self.session(keep=_answer) as session:
            self._ok(session.select(quote_mailbox(folder)), f'SELECT {folder!r}')
            self._ok(session.uid('STORE', uids, '+FLAGS.SILENT', f'({flag})'), 'STORE')

    @staticmethod
    def _ok(answer: tuple[str, list[Any]], command: str) -> list[Any]:
        """The data of an OK answer; imaplib.IMAP4.error for a NO (which some commands return rather than raise)."""
        status, data = answer
        if status != 'OK':
            text = b' '.join(d for d in data if isinstance(d, bytes)).decode('utf-8', 'replace')
            raise imaplib.IMAP4.error(f'{command}: {status} {text}'.strip())
        return data
