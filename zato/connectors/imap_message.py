"""What ``conn.get()`` returns: an `IMAPMessage` per message, with `mark_seen()` and `delete()`, and its
`data` parsed into the shape Zato 3.1 gave (imbox's): `subject`, `sent_from`, `body['plain']`,
`attachments` ..., plus `message`, the standard library's EmailMessage, for anything else."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zato.connectors.imap import IMAPConnector

__all__ = ['IMAPMessage', 'IMAPMessageData', 'parse_message']


@dataclass(frozen=True, slots=True)
class IMAPMessageData:
    """One message, parsed.

    - `subject`, `date` (the header as it is), `parsed_date` (a datetime, None if the date is not one),
      `message_id`: decoded header values, '' when absent.
    - `sent_from`, `sent_to`, `cc`, `bcc`: lists of ``{'name': ..., 'email': ...}``.
    - `body`: ``{'plain': [...], 'html': [...]}``, the text of the inline text parts, decoded.
    - `attachments`: a list of ``{'filename', 'content-type', 'size', 'content' (a BytesIO), 'content-id'}``.
    - `headers`: every header as ``{'Name': ..., 'Value': ...}``, in order.
    - `flags`: the message's IMAP flags when it was fetched, e.g. ``('\\Seen',)``.
    - `raw_email`: the whole message as text; `message`: it as a standard library EmailMessage.
    """

    subject: str
    sent_from: list[dict[str, str]]
    sent_to: list[dict[str, str]]
    cc: list[dict[str, str]]
    bcc: list[dict[str, str]]
    date: str
    parsed_date: datetime | None
    message_id: str
    headers: list[dict[str, str]]
    body: dict[str, list[str]]
    attachments: list[dict[str, Any]]
    flags: tuple[str, ...]
    raw_email: str
    message: EmailMessage


class IMAPMessage:
    """A message ``conn.get()`` found: `uid` (a string), `folder`, `data` (an IMAPMessageData), and, as
    in 3.1, `mark_seen()` and `delete()`, each over a session of the connection's pool."""

    __slots__ = ('uid', 'folder', 'conn', 'data')

    def __init__(self, uid: str, folder: str, conn: IMAPConnector, data: IMAPMessageData) -> None:
        self.uid = uid
        self.folder = folder
        self.conn = conn
        self.data = data

    def mark_seen(self) -> None:
        """Sets the message's \\Seen flag."""
        self.conn.mark_seen(self.uid, folder=self.folder)

    def delete(self) -> None:
        """Deletes the message from its folder (flags it \\Deleted and expunges it)."""
        self.conn.delete(self.uid, folder=self.folder)

    def __repr__(self) -> str:
        return f'<IMAPMessage uid {self.uid} in {self.folder!r} of `{self.conn.name}`: {self.data.subject!r}>'


def _addresses(message: EmailMessage, name: str) -> list[dict[str, str]]:
    values = [str(value) for value in message.get_all(name, [])]
    return [{'name': display, 'email': address} for display, address in getaddresses(values) if address or display]


def _text(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError, AssertionError):
        # An unknown or wrong charset: the bytes as UTF-8, with what is not replaced
        payload = part.get_payload(decode=True)
        return payload.decode('utf-8', 'replace') if isinstance(payload, bytes) else str(payload or '')


def parse_message(raw: bytes, flags: tuple[str, ...] = ()) -> IMAPMessageData:
    """A message as IMAP gave it (RFC 5322 bytes), parsed. Never raises for a malformed message: what
    cannot be read is left out (the standard library records it in `message.defects`)."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # noqa: S101 - policy.default makes EmailMessages
    body: dict[str, list[str]] = {'plain': [], 'html': []}
    attachments: list[dict[str, Any]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        if disposition != 'attachment' and content_type in ('text/plain', 'text/html') and not part.get_filename():
            body['plain' if content_type == 'text/plain' else 'html'].append(_text(part))
        elif disposition is not None or part.get_filename():
            data = part.get_payload(decode=True)
            content = data if isinstance(data, bytes) else b''
            attachments.append({'filename': part.get_filename() or '', 'content-type': content_type,
                                'size': len(content), 'content': io.BytesIO(content),
                                'content-id': str(part.get('Content-ID') or '')})
    date = str(message.get('Date') or '')
    try:
        parsed_date = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        parsed_date = None
    return IMAPMessageData(
        subject=str(message.get('Subject') or ''), sent_from=_addresses(message, 'From'),
        sent_to=_addresses(message, 'To'), cc=_addresses(message, 'Cc'), bcc=_addresses(message, 'Bcc'),
        date=date, parsed_date=parsed_date, message_id=str(message.get('Message-ID') or ''),
        headers=[{'Name': name, 'Value': str(value)} for name, value in message.items()],
        body=body, attachments=attachments, flags=flags, raw_email=raw.decode('utf-8', 'replace'),
        message=message)
