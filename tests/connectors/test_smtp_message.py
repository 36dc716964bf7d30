"""What ``conn.send(msg)`` puts on the wire: 3.1's SMTPMessage or a standard library message made into
a MIME message and an envelope, with every address and header checked first."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from zato.connectors.smtp_message import SMTPMessage, prepare
from zato.server.service import SMTPMessage as ServiceSMTPMessage


def sent(msg, from_=None):
    """The message as it goes out, parsed back, with its envelope."""
    message, sender, recipients = prepare(msg, from_)
    return message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default), sender, recipients


def test_services_import_smtp_message_where_they_import_service():
    assert ServiceSMTPMessage is SMTPMessage


def test_the_fields_keep_zato_31s_positional_order():
    msg = SMTPMessage('a@example.com', 'b@example.com', 'Subject', 'Body', None, 'c@example.com', 'd@example.com',
                      True, {'X-A': '1'}, 'utf8', False)
    assert (msg.from_, msg.to, msg.subject, msg.body, msg.attachments, msg.cc, msg.bcc, msg.is_html, msg.headers,
            msg.charset, msg.is_rfc2231) == ('a@example.com', 'b@example.com', 'Subject', 'Body', [], 'c@example.com',
                                             'd@example.com', True, {'X-A': '1'}, 'utf8', False)


def test_to_cc_and_bcc_are_all_recipients_but_bcc_is_never_in_the_message():
    message, sender, recipients = sent(SMTPMessage('Zato <sso@example.com>', ['alice@example.com', 'Bob <bob@example.com>'],
                                                   'Hi', 'Body', cc='carol@example.com, dan@example.com',
                                                   bcc=['eve@example.com']))
    assert sender == 'sso@example.com'
    assert recipients == ['alice@example.com', 'bob@example.com', 'carol@example.com', 'dan@example.com',
                          'eve@example.com']
    assert message['To'] == 'alice@example.com, Bob <bob@example.com>'
    assert message['Cc'] == 'carol@example.com, dan@example.com'
    assert 'Bcc' not in message and b'eve@' not in message.as_bytes()


def test_a_message_id_and_a_date_are_added_in_the_senders_domain():
    message, _, _ = sent(SMTPMessage('sso@example.com', 'alice@example.com', 'Hi', 'Body'))
    assert message['Message-ID'].endswith('@example.com>') and message['Date'].datetime is not None


def test_a_non_ascii_subject_and_body_go_out_as_seven_bit_and_come_back_the_same():
    message, _, _ = sent(SMTPMessage('sso@example.com', 'alice@example.com', 'Zażółć gęślą', 'Jaźń\nżółw'))
    raw = message.as_bytes()
    assert raw.isascii()
    assert str(message['Subject']) == 'Zażółć gęślą' and message.get_content() == 'Jaźń\nżółw\n'


def test_is_html_sends_the_body_as_html():
    message, _, _ = sent(SMTPMessage('sso@example.com', 'alice@example.com', 'Hi', '<p>Hi</p>', is_html=True))
    assert message.get_content_type() == 'text/html' and message.get_content().rstrip() == '<p>Hi</p>'


def test_attachments_keep_their_names_contents_and_types():
    msg = SMTPMessage('sso@example.com', 'alice@example.com', 'Hi', 'Body')
    msg.attach('report.csv', 'a,b\n1,2\n')
    msg.attach('logo.png', b'\x89PNG\r\n')
    msg.attach('data', b'\x00\x01', content_type='application/x-zato')
    message, _, _ = sent(msg)
    parts = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in message.iter_attachments()]
    assert parts == [('report.csv', 'text/csv', b'a,b\n1,2\n'), ('logo.png', 'image/png', b'\x89PNG\r\n'),
                     ('data', 'application/x-zato', b'\x00\x01')]


@pytest.mark.parametrize('rfc2231, form', [(True, "filename*=utf-8''"), (False, 'filename="=?utf-8?')])
def test_a_non_ascii_attachment_name_is_rfc_2231_or_rfc_2047_as_is_rfc2231_says(rfc2231, form):
    msg = SMTPMessage('sso@example.com', 'alice@example.com', 'Hi', 'Body', is_rfc2231=rfc2231)
    msg.attach('żółw.txt', 'x')
    message, _, _ = sent(msg)
    assert form in message.as_string()
    assert next(message.iter_attachments()).get_filename() == 'żółw.txt'  # a reader decodes either


def test_headers_are_added_and_win_over_the_fields():
    message, sender, _ = sent(SMTPMessage('sso@example.com', 'alice@example.com', 'Hi', 'Body',
                                          headers={'From': 'Support <support@example.com>', 'X-Ticket': '42'}))
    assert message['From'] == 'Support <support@example.com>' and message['X-Ticket'] == '42'
    assert sender == 'support@example.com'


def test_from_overrides_the_envelope_sender_only():
    message, sender, _ = sent(SMTPMessage('sso@example.com', 'alice@example.com', 'Hi', 'Body'), 'bounces@example.com')
    assert sender == 'bounces@example.com' and message['From'] == 'sso@example.com'


def test_a_standard_library_message_is_sent_as_it_is_with_its_recipients_and_bcc_left_out():
    msg = EmailMessage()
    msg['From'] = 'sso@example.com'
    msg['To'] = 'alice@example.com'
    msg['Bcc'] = 'audit@example.com'
    msg['Subject'] = 'Hi'
    msg.set_content('Body')
    message, sender, recipients = prepare(msg)
    assert message is msg and 'Message-ID' in msg  # added to the caller's message, which can read it
    assert (sender, recipients) == ('sso@example.com', ['alice@example.com', 'audit@example.com'])


@pytest.mark.parametrize('msg, error', [
    (SMTPMessage(None, 'alice@example.com'), 'no sender'),
    (SMTPMessage('sso@example.com'), 'no recipients'),
    (SMTPMessage('sso@example.com', 'alice'), "to: not an e-mail address: 'alice'"),
    (SMTPMessage('sso@example.com', 'alice@example.com\r\nRCPT TO:<eve@example.com>'), 'linefeed or carriage return'),
    (SMTPMessage('sso@example.com', 'alice@example.com', bcc='eve@example.com\r\nRCPT TO:<x@example.com>'),
     'bcc: a line break'),
    (SMTPMessage('sso@example.com', 'alice@example.com>, <eve'), 'not an e-mail address'),
    (SMTPMessage('a@example.com, b@example.com', 'alice@example.com'), 'one sender address, not 2'),
    (SMTPMessage('sso@example.com', 'alice@example.com', 'Hi\r\nBcc: eve@example.com'), 'linefeed or carriage return'),
    (SMTPMessage('sso@example.com', 'alice@example.com', charset='no-such-charset'), 'unknown charset'),
])
def test_a_message_that_cannot_be_sent_is_refused_before_anything_is_sent(msg, error):
    with pytest.raises(ValueError, match=error):
        prepare(msg)


def test_something_that_is_no_message_is_a_type_error():
    with pytest.raises(TypeError, match='not dict'):
        prepare({'to': 'alice@example.com'})  # type: ignore[arg-type]
