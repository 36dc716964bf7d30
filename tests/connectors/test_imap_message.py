"""A message as IMAP gives it, parsed into the shape Zato 3.1's `msg.data` had."""

from __future__ import annotations

from email.message import EmailMessage

from zato.connectors.imap_message import parse_message


def multipart() -> bytes:
    msg = EmailMessage()
    msg['From'] = 'Zażółć <sso@example.com>'
    msg['To'] = 'alice@example.com, Bob <bob@example.com>'
    msg['Cc'] = 'carol@example.com'
    msg['Subject'] = 'Gęślą jaźń'
    msg['Date'] = 'Mon, 07 Dec 2026 10:00:00 +0100'
    msg['Message-ID'] = '<1@example.com>'
    msg.set_content('Plain ąę')
    msg.add_alternative('<p>HTML ąę</p>', subtype='html')
    msg.add_attachment(b'\x00\x01\x02', maintype='application', subtype='octet-stream', filename='żółw.bin')
    return msg.as_bytes()


def test_a_multipart_message_has_its_texts_attachments_and_addresses_as_31_gave_them():
    data = parse_message(multipart(), ('\\Seen',))
    assert data.subject == 'Gęślą jaźń' and data.message_id == '<1@example.com>'
    assert data.sent_from == [{'name': 'Zażółć', 'email': 'sso@example.com'}]
    assert data.sent_to == [{'name': '', 'email': 'alice@example.com'}, {'name': 'Bob', 'email': 'bob@example.com'}]
    assert data.cc == [{'name': '', 'email': 'carol@example.com'}] and data.bcc == []
    assert data.body == {'plain': ['Plain ąę\n'], 'html': ['<p>HTML ąę</p>\n']}
    [attachment] = data.attachments
    assert (attachment['filename'], attachment['content-type'], attachment['size']) == \
        ('żółw.bin', 'application/octet-stream', 3)
    assert attachment['content'].read() == b'\x00\x01\x02'
    assert data.parsed_date is not None and data.parsed_date.utcoffset().total_seconds() == 3600
    assert data.flags == ('\\Seen',)
    assert {'Name': 'Subject', 'Value': 'Gęślą jaźń'} in data.headers
    assert data.message['Subject'] == 'Gęślą jaźń' and 'Plain' in data.raw_email


def test_a_malformed_message_is_parsed_as_far_as_it_goes_without_raising():
    raw = (b'From: not an address\r\nDate: yesterday\r\nContent-Type: text/plain; charset=no-such-charset\r\n'
           b'\r\n\xff\xfe text\r\n')
    data = parse_message(raw)
    assert data.parsed_date is None and data.date == 'yesterday' and data.subject == ''
    assert data.body['plain'] == ['\ufffd\ufffd text\r\n'] or data.body['plain'][0].endswith('text\r\n')
    assert data.attachments == []
