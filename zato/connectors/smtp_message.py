"""What ``conn.send(msg)`` takes: Zato 3.1's `SMTPMessage`, or a standard library e-mail message, and
how either becomes what goes out — a MIME message with its Message-ID and Date, and the envelope (the
sender, and every To, Cc and Bcc recipient).

Every address is parsed as RFC 5322 says before anything is sent, so a line break or a second
address smuggled into one is refused with ValueError; header values are checked by the standard
library the same way. Bcc recipients are in the envelope only, never in the message.
"""

from __future__ import annotations

import codecs
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any

__all__ = ['POLICY', 'SMTPMessage', 'prepare']

# Non-ASCII bodies and attachments as quoted-printable or base64, so that no server without 8BITMIME
# gets 8-bit data; non-ASCII headers as RFC 2047 encoded words. refold_source 'none' keeps a header
# stored raw as it is (an RFC 2047 attachment name, which the parsing headers would make RFC 2231 again)
POLICY = policy.default.clone(cte_type='7bit', refold_source='none')

Addresses = str | Iterable[str] | None


@dataclass(eq=False)
class SMTPMessage:
    """An e-mail to send, with Zato 3.1's fields and their order::

        msg = SMTPMessage('sso@example.com', 'alice@example.com', 'Confirm your address', body)
        msg.cc = ['audit@example.com']
        msg.attach('terms.txt', terms)
        conn.send(msg)

    `to`, `cc` and `bcc` are a string (one address, or several separated by commas) or a list of
    them; an address may carry a name (``Alice <alice@example.com>``). `body` is plain text, or HTML
    with `is_html`. `headers` are added as given and win over the fields (a `From` header wins over
    `from_`). `attachments` are `{'name': ..., 'contents': str or bytes}` dicts, as `attach()` adds
    them, with an optional `content_type` (else guessed from the name). `is_rfc2231` False encodes
    non-ASCII attachment names as RFC 2047 words, which some old clients need.
    """

    from_: str | None = None
    to: Addresses = None
    subject: str = ''
    body: str = ''
    attachments: list[dict[str, Any]] | None = field(default_factory=list)
    cc: Addresses = None
    bcc: Addresses = None
    is_html: bool = False
    headers: dict[str, str] | None = field(default_factory=dict)
    charset: str = 'utf8'
    is_rfc2231: bool = True

    def __post_init__(self) -> None:
        self.attachments = self.attachments if self.attachments is not None else []
        self.headers = self.headers if self.headers is not None else {}

    def attach(self, name: str, contents: str | bytes, content_type: str = '') -> None:
        """Adds an attachment: `contents` as bytes, or str sent as UTF-8."""
        attachment: dict[str, Any] = {'name': name, 'contents': contents}
        if content_type:
            attachment['content_type'] = content_type
        assert self.attachments is not None  # noqa: S101 - __post_init__ made it a list
        self.attachments.append(attachment)

    def as_email_message(self) -> EmailMessage:
        """The MIME message this describes (without Bcc, which goes into the envelope only)."""
        charset = _charset(self.charset)
        msg = EmailMessage(policy=POLICY)
        headers = dict(self.headers or {})
        given = {name.lower() for name in headers}
        for name, value in (('From', self.from_ or ''), ('To', _joined(self.to)), ('Cc', _joined(self.cc)),
                            ('Subject', self.subject)):
            if value and name.lower() not in given:
                msg[name] = value
        for name, value in headers.items():
            msg[name] = value
        msg.set_content(self.body or '', subtype='html' if self.is_html else 'plain', charset=charset)
        for attachment in self.attachments or ():
            _attach(msg, attachment, self.is_rfc2231)
        return msg


def prepare(msg: SMTPMessage | Message, from_: str | None = None) -> tuple[Message, str, list[str]]:
    """The message as it goes out, its envelope sender and its recipients; ValueError for a message
    that cannot be sent (no sender, no recipients, an address that is not one).

    A Message-ID and a Date are added when the message has none (to `msg` itself when it is a
    standard library message). `from_` overrides the envelope sender, as in 3.1's ``send(msg, from_)``.
    """
    if isinstance(msg, SMTPMessage):
        message: Message = msg.as_email_message()
        recipients = [*_addresses(msg.to, 'to'), *_addresses(msg.cc, 'cc'), *_addresses(msg.bcc, 'bcc')]
        header_from = message.get('From') or msg.from_
    elif isinstance(msg, Message):
        message = msg
        recipients = []
        for name in ('To', 'Cc', 'Bcc'):
            recipients += _addresses(message.get_all(name, []), name.lower())
        header_from = message.get('Sender') or message.get('From')
    else:
        raise TypeError(f'expected an SMTPMessage or an email.message.EmailMessage, not {type(msg).__name__}')

    sender_text = from_ or header_from
    if not sender_text:
        raise ValueError('the message has no sender: set from_ (or a From header)')
    senders = _addresses(str(sender_text), 'from')
    if len(senders) != 1:
        raise ValueError(f'expected one sender address, not {len(senders)}: {sender_text!r}')
    sender = senders[0]
    if not recipients:
        raise ValueError('the message has no recipients: set to, cc or bcc')

    if 'Message-ID' not in message:
        message['Message-ID'] = make_msgid(domain=sender.rpartition('@')[2] or 'localhost')
    if 'Date' not in message:
        message['Date'] = format_datetime(datetime.now(UTC))
    return message, sender, list(dict.fromkeys(recipients))


# ################################################################################################ parts

def _charset(name: str) -> str:
    try:
        return codecs.lookup(name or 'utf8').name.replace('_', '-')
    except LookupError:
        raise ValueError(f'unknown charset: {name!r}') from None


def _items(value: Addresses) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _joined(value: Addresses) -> str:
    return ', '.join(item for item in _items(value) if item.strip())


def _addresses(value: Addresses, what: str) -> list[str]:
    """The bare addresses (addr-specs) in `value`; ValueError naming an entry that holds something else."""
    found = []
    for item in _items(value):
        if any(c in item for c in '\r\n\0'):
            raise ValueError(f'{what}: a line break or NUL in an address: {item!r}')
        for name, address in getaddresses([item]):
            if not address and not name:
                continue
            try:
                parsed = Address(addr_spec=address)
            except (HeaderParseError, ValueError, IndexError) as e:
                raise ValueError(f'{what}: not an e-mail address: {item!r} ({e})') from None
            if not parsed.username or not parsed.domain:
                raise ValueError(f'{what}: not an e-mail address: {item!r} (expected user@domain)')
            found.append(parsed.addr_spec)
    return found


def _attach(msg: EmailMessage, attachment: dict[str, Any], rfc2231: bool) -> None:
    name = str(attachment.get('name') or 'attachment')
    contents = attachment.get('contents', b'')
    data = contents.encode('utf-8') if isinstance(contents, str) else bytes(contents)
    content_type = attachment.get('content_type') or mimetypes.guess_type(name)[0] or 'application/octet-stream'
    maintype, _, subtype = content_type.partition('/')
    if not subtype:
        raise ValueError(f'attachment {name!r}: expected a content type as type/subtype, not {content_type!r}')
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    if not rfc2231 and not name.isascii():
        part = list(msg.iter_attachments())[-1]
        del part['Content-Disposition']
        part.set_raw('Content-Disposition', f'attachment; filename="{Header(name, "utf-8").encode()}"')
