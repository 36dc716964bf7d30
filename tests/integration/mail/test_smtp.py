"""Outgoing SMTP connections against aiosmtpd (tests/integration/mail/smtpd.py), with real TLS from a
CA made for the test: what is sent is read back from the server's side, and every way the server can
refuse or fail comes out as the error the docs promise."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from email import message_from_string, policy
from email.message import EmailMessage
from typing import Any

import pytest

from tests.integration.peers_mail import SMTPPeer
from zato.connectors.base import ConnectorAuthError, ConnectorUnavailable
from zato.connectors.smtp import SMTPConnector, SMTPSendError
from zato.server.service import SMTPMessage


@pytest.fixture
def make(smtp_peer: SMTPPeer, started) -> Callable[..., SMTPConnector]:
    """A started connection to smtp_peer (STARTTLS, logged in, its CA trusted), fields overridden by keywords."""
    def make(peer: SMTPPeer | None = None, password: str | None = None, **fields: Any) -> SMTPConnector:
        peer = peer or smtp_peer
        data = {'host': '127.0.0.1', 'port': peer.port, 'mode': 'starttls', 'username': peer.user,
                'tls_ca_file': peer.ca_file, 'timeout': 5.0, **fields}
        return started(SMTPConnector, 'test smtp', data, peer.password if password is None else password)
    return make


def last(peer: SMTPPeer, before: int) -> dict[str, Any]:
    messages = peer.wait_for(before + 1)
    assert len(messages) == before + 1, messages
    return messages[-1]


def parsed(record: dict[str, Any]) -> EmailMessage:
    msg = message_from_string(record['data'], policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_a_message_goes_out_over_starttls_logged_in_with_its_recipients_and_attachments(make, smtp_peer):
    conn = make()
    before = len(smtp_peer.messages())
    msg = SMTPMessage('Zato <sso@example.org>', 'carol@example.net', 'Confirm your address', 'Your code: 1234',
                      cc=['Dan <dan@example.net>'], bcc='audit@example.net')
    msg.attach('terms.txt', 'Be nice.')
    result = conn.send(msg)

    record = last(smtp_peer, before)
    assert record['tls'] is True and record['login'] == smtp_peer.user
    assert record['mail_from'] == 'sso@example.org'
    assert record['rcpt_tos'] == ['carol@example.net', 'dan@example.net', 'audit@example.net']
    received = parsed(record)
    assert received['Message-ID'] == result.message_id and result.refused == {}
    assert received['Subject'] == 'Confirm your address' and 'Bcc' not in received and 'audit@' not in record['data']
    body = received.get_body(('plain',))
    assert body is not None and body.get_content().strip() == 'Your code: 1234'
    [attachment] = received.iter_attachments()
    assert attachment.get_filename() == 'terms.txt' and attachment.get_content() == 'Be nice.'


def test_tls_from_the_first_byte_on_the_smtps_port(make, smtp_peer):
    conn = make(mode='ssl', port=smtp_peer.ssl_port)
    before = len(smtp_peer.messages())
    conn.send(SMTPMessage('sso@example.org', 'carol@example.net', 'Over SMTPS', 'x'))
    record = last(smtp_peer, before)
    assert record['tls'] is True and record['login'] == smtp_peer.user


def test_a_standard_library_message_is_sent_as_it_is(make, smtp_peer):
    conn = make()
    before = len(smtp_peer.messages())
    msg = EmailMessage()
    msg['From'] = 'sso@example.org'
    msg['To'] = 'carol@example.net'
    msg['Subject'] = 'From the standard library'
    msg.set_content('Hello')
    msg.add_alternative('<p>Hello</p>', subtype='html')
    result = conn.send(msg)
    received = parsed(last(smtp_peer, before))
    assert received['Message-ID'] == result.message_id == msg['Message-ID']
    assert received.get_body(('html',)).get_content().strip() == '<p>Hello</p>'


def test_a_certificate_no_trusted_ca_signed_is_refused_and_nothing_is_sent(make, smtp_peer):
    before = len(smtp_peer.messages())
    conn = make(tls_ca_file='')  # the system's CAs, which never signed the test CA
    assert not conn.is_built
    with pytest.raises(ConnectorUnavailable, match="the server's certificate was not accepted .unable to get local "
                                                   'issuer certificate.; see tls_ca_file'):
        conn.ping()
    with pytest.raises(ConnectorUnavailable, match='not connected yet'):
        conn.send(SMTPMessage('sso@example.org', 'carol@example.net', 'x', 'x'))
    assert len(smtp_peer.messages()) == before


def test_tls_verify_off_takes_any_certificate(make, smtp_peer):
    conn = make(tls_ca_file='', tls_verify=False)
    assert conn.ping() > 0


def test_a_wrong_password_is_an_auth_error_that_is_not_tried_again_at_once(make, smtp_peer):
    conn = make(password='wrong')
    with pytest.raises(ConnectorAuthError) as info:
        conn.ping()
    assert 'refused the login of `zato@example.org`: 535' in str(info.value)
    assert 'wrong' not in str(info.value) and conn.last_error.startswith('ConnectorAuthError')
    with pytest.raises(ConnectorAuthError, match='not tried again for 300s'):
        conn.connect()  # what the background greenlet would do next: nothing is sent to the server


def test_a_login_in_plain_mode_where_the_server_offers_auth_only_over_tls_is_an_auth_error(make):
    conn = make(mode='plain')
    with pytest.raises(ConnectorAuthError, match=r'offers no login \(AUTH\) in mode plain, and username is set'):
        conn.ping()


def test_starttls_mode_never_goes_on_in_the_clear_with_a_server_that_offers_no_starttls(make):
    with SMTPPeer(users={}, starttls=False) as peer:
        conn = make(peer, username='')
        with pytest.raises(ConnectorUnavailable, match='does not offer STARTTLS .mode is starttls, so nothing is sent '
                                                       'in the clear.'):
            conn.ping()
        assert make(peer, username='', mode='plain').ping() > 0  # plain was asked for: plain it is


def test_a_send_without_the_login_the_server_requires_is_a_send_error(make):
    conn = make(username='')
    with pytest.raises(SMTPSendError) as info:
        conn.send(SMTPMessage('sso@example.org', 'carol@example.net', 'x', 'x'))
    assert info.value.smtp_code == 530 and 'refused the sender sso@example.org: 530' in str(info.value)


def test_every_recipient_refused_is_a_send_error_and_the_session_stays_usable(make, smtp_peer):
    conn = make()
    with pytest.raises(SMTPSendError) as info:
        conn.send(SMTPMessage('sso@example.org', ['x@refused.invalid', 'y@refused.invalid'], 'x', 'x'))
    e = info.value
    assert e.kind == 'smtp' and e.name == 'test smtp' and e.smtp_code == 550 and not e.is_temporary
    assert set(e.recipients) == {'x@refused.invalid', 'y@refused.invalid'}
    assert 'refused every recipient (x@refused.invalid: 550 5.1.1' in str(e)

    before = len(smtp_peer.messages())
    conn.send(SMTPMessage('sso@example.org', 'carol@example.net', 'After a refusal', 'x'))
    assert last(smtp_peer, before)['rcpt_tos'] == ['carol@example.net']


def test_recipients_refused_among_others_are_reported_and_the_others_get_the_message(make, smtp_peer):
    conn = make()
    before = len(smtp_peer.messages())
    result = conn.send(SMTPMessage('sso@example.org', ['carol@example.net', 'x@refused.invalid'], 'x', 'x'))
    assert list(result.refused) == ['x@refused.invalid'] and result.refused['x@refused.invalid'][0] == 550
    assert last(smtp_peer, before)['rcpt_tos'] == ['carol@example.net']


def test_ping_with_a_ping_address_sends_a_test_message_there(make, smtp_peer):
    conn = make(ping_address='ping@example.net')
    before = len(smtp_peer.messages())
    assert conn.ping() > 0
    record = last(smtp_peer, before)
    assert record['rcpt_tos'] == ['ping@example.net'] and 'ping of outgoing SMTP connection' in record['data']


def test_the_debug_log_has_the_conversation_and_never_the_password(make, smtp_peer, caplog):
    with caplog.at_level(logging.INFO, 'zato.connectors.smtp'):
        conn = make(is_debug=True)
        conn.send(SMTPMessage('sso@example.org', 'carol@example.net', 'Debugged', 'x'))
    text = caplog.text
    assert 'STARTTLS' in text and 'rcpt TO:<carol@example.net>' in text and '235' in text
    plain = base64.b64encode(f'\0{smtp_peer.user}\0{smtp_peer.password}'.encode()).decode()
    assert smtp_peer.password not in text and plain not in text
    assert base64.b64encode(smtp_peer.password.encode()).decode() not in text  # AUTH LOGIN's form
