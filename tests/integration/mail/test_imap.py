"""Outgoing IMAP connections against Dovecot, with real TLS from a CA made for the test: messages
delivered over LMTP (or sent through the smtp kind and relayed by the SMTP peer) are read back,
marked seen and deleted as in Zato 3.1, and failures come out as the errors the docs promise."""

from __future__ import annotations

import imaplib
import logging
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from tests.integration.peers_mail import DovecotPeer, SMTPPeer
from zato.connectors.base import ConnectorAuthError, ConnectorUnavailable, validate
from zato.connectors.imap import IMAPConnector, IMAPError
from zato.connectors.smtp import SMTPConnector
from zato.server.service import SMTPMessage


@pytest.fixture
def make(dovecot_peer: DovecotPeer, started) -> Callable[..., IMAPConnector]:
    """A started connection to dovecot_peer's first user over IMAPS, fields overridden by keywords."""
    def make(password: str | None = None, **fields: Any) -> IMAPConnector:
        data = {'host': '127.0.0.1', 'port': dovecot_peer.ssl_port, 'mode': 'ssl', 'username': dovecot_peer.user,
                'tls_ca_file': dovecot_peer.ca_file, 'timeout': 5.0, **fields}
        return started(IMAPConnector, 'test imap', data, dovecot_peer.password if password is None else password)
    return make


@pytest.fixture
def inbox(make) -> IMAPConnector:
    """A connection to an INBOX emptied for the test."""
    conn = make()
    uids = [uid for uid, _ in conn.get(criteria='ALL')]
    if uids:
        conn.delete(*uids)
    return conn


def message(subject: str, body: str = 'Hello', attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg['From'] = 'Carol <carol@example.net>'
    msg['To'] = 'alice@example.org'
    msg['Subject'] = subject
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype='application', subtype='pdf', filename='invoice.pdf')
    return msg.as_bytes()


def test_get_finds_unseen_messages_parsed_as_31_did_and_leaves_them_unseen(inbox, dovecot_peer):
    dovecot_peer.deliver(message('First', 'One'))
    dovecot_peer.deliver(message('Second ąę', 'Two', attachment=b'%PDF-1.4'))

    found = inbox.get()
    assert [msg.data.subject for _, msg in found] == ['First', 'Second ąę']
    uid, msg = found[1]
    assert uid == msg.uid and msg.folder == 'INBOX'
    assert msg.data.sent_from == [{'name': 'Carol', 'email': 'carol@example.net'}]
    assert msg.data.body['plain'] == ['Two\r\n']  # as on the wire
    [attachment] = msg.data.attachments
    assert (attachment['filename'], attachment['content'].read()) == ('invoice.pdf', b'%PDF-1.4')
    assert '\\Seen' not in msg.data.flags
    assert len(inbox.get()) == 2  # fetched with BODY.PEEK[]: still unseen


def test_mark_seen_and_delete_work_on_the_message_as_in_31(inbox, dovecot_peer):
    for n in range(3):
        dovecot_peer.deliver(message(f'Message {n}'))
    first, second, third = (msg for _, msg in inbox.get())
    first.mark_seen()
    second.delete()
    assert [msg.data.subject for _, msg in inbox.get()] == ['Message 2']
    assert [(msg.data.subject, '\\Seen' in msg.data.flags) for _, msg in inbox.get(criteria='ALL')] == \
        [('Message 0', True), ('Message 2', False)]
    inbox.mark_seen(third.uid)
    assert inbox.get() == []


def test_criteria_and_limit_narrow_what_get_returns(inbox, dovecot_peer):
    token = uuid.uuid4().hex
    for n in range(4):
        dovecot_peer.deliver(message(f'{token} {n}' if n % 2 else f'other {n}'))
    assert [msg.data.subject for _, msg in inbox.get(criteria=f'SUBJECT "{token}"')] == [f'{token} 1', f'{token} 3']
    assert [msg.data.subject for _, msg in inbox.get(limit=3)] == ['other 0', f'{token} 1', 'other 2']


@pytest.mark.parametrize('mode', ['plain', 'starttls', 'ssl'])
def test_each_mode_reaches_the_mailbox(make, dovecot_peer, mode):
    port = dovecot_peer.ssl_port if mode == 'ssl' else dovecot_peer.port
    conn = make(mode=mode, port=port)
    assert conn.ping() > 0 and isinstance(conn.get(criteria='ALL'), list)


def test_a_certificate_no_trusted_ca_signed_is_refused(make):
    conn = make(tls_ca_file='')
    with pytest.raises(ConnectorUnavailable, match="the server's certificate was not accepted"):
        conn.ping()


def test_a_wrong_password_is_an_auth_error(make, dovecot_peer):
    conn = make(password='wrong')
    with pytest.raises(ConnectorAuthError, match=r'refused the login of `alice@example.org`: .*AUTHENTICATIONFAILED'):
        conn.ping()
    assert 'wrong' not in conn.last_error


def test_a_folder_that_does_not_exist_is_an_imap_error_and_the_session_stays_usable(inbox):
    with pytest.raises(IMAPError, match="answered: SELECT 'No such folder': NO Mailbox doesn't exist") as info:
        inbox.get('No such folder')
    assert info.value.kind == 'imap' and "Mailbox doesn't exist" in info.value.response
    with pytest.raises(IMAPError, match='BAD'):
        inbox.get(criteria='NOSUCHKEY 1')
    assert inbox.get() == []


def test_a_folder_with_spaces_quotes_and_non_ascii_letters_is_reached(inbox, dovecot_peer):
    name = 'Entwürfe "2026" & more'
    session = imaplib.IMAP4_SSL('127.0.0.1', dovecot_peer.ssl_port, ssl_context=dovecot_peer.tls())
    session.login(dovecot_peer.user, dovecot_peer.password)
    assert session.create('"Entw&APw-rfe \\"2026\\" &- more"')[0] == 'OK'
    session.logout()
    assert inbox.get(name, 'ALL') == []


def test_what_the_smtp_kind_sends_the_imap_kind_reads_back(inbox, smtp_peer: SMTPPeer):
    config, _ = validate(SMTPConnector.fields, {'host': '127.0.0.1', 'port': smtp_peer.port, 'username': smtp_peer.user,
                                                'tls_ca_file': smtp_peer.ca_file})
    smtp = SMTPConnector('test smtp', config, smtp_peer.password)
    smtp.start()
    try:
        msg = SMTPMessage('sso@example.org', 'alice@example.org', 'Round trip ąę', 'Sent by smtp, read by imap')
        msg.attach('notes.txt', 'żółw')
        sent = smtp.send(msg)
    finally:
        smtp.stop()
    [(uid, received)] = inbox.get()
    assert received.data.message_id == sent.message_id and received.data.subject == 'Round trip ąę'
    assert received.data.body['plain'] == ['Sent by smtp, read by imap\r\n']  # as on the wire
    assert received.data.attachments[0]['content'].read() == 'żółw'.encode()


def test_the_debug_log_has_the_conversation_and_never_the_password(make, dovecot_peer, caplog):
    with caplog.at_level(logging.INFO, 'zato.connectors.imap'):
        conn = make(debug_level=4)
        conn.get(criteria='ALL')
    assert 'UID SEARCH ALL' in caplog.text and 'sent while logging in: not logged' in caplog.text
    assert dovecot_peer.password not in caplog.text
