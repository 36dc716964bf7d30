"""The pieces of IMAP (RFC 3501) that imaplib leaves to its caller, as functions of strings and bytes:
a mailbox name as a quoted string in modified UTF-7, search criteria and UID sets checked before they
go on the wire, and the answers to UID SEARCH and UID FETCH taken apart.

imaplib puts command arguments on the wire as they are, so a line break in a folder name or in
criteria would end the command and start another one: each is refused here instead.
"""

from __future__ import annotations

import base64
import re

__all__ = ['check_criteria', 'parse_fetch', 'parse_search', 'quote_mailbox', 'uid_set']

_UID = re.compile(r'^[1-9][0-9]{0,9}$')
_FETCH_UID = re.compile(rb'\bUID (\d+)')
_FETCH_FLAGS = re.compile(rb'\bFLAGS \(([^)]*)\)')


def _utf7(text: str) -> str:
    """`text` in IMAP's modified UTF-7 (RFC 3501 5.1.3): printable ASCII as it is, `&` as `&-`, the
    rest as base64 of UTF-16BE with `,` for `/`, between `&` and `-`."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode(''.join(pending).encode('utf-16-be')).decode('ascii')
            out.append('&' + encoded.rstrip('=').replace('/', ',') + '-')
            pending.clear()

    for char in text:
        if 0x20 <= ord(char) <= 0x7e:
            flush()
            out.append('&-' if char == '&' else char)
        else:
            pending.append(char)
    flush()
    return ''.join(out)


def quote_mailbox(name: str) -> str:
    """A mailbox (folder) name as a quoted IMAP string; ValueError for an empty one or one with a control
    character."""
    if not name or any(ord(c) < 0x20 or ord(c) == 0x7f for c in name):
        raise ValueError(f'not a folder name: {name!r}')
    encoded = _utf7(name)
    return '"' + encoded.replace('\\', '\\\\').replace('"', '\\"') + '"'


def check_criteria(value: str) -> str | None:
    """Why `value` cannot be sent as UID SEARCH criteria, or None. Lines are joined with spaces first,
    as 3.1 did with the criteria of its form."""
    criteria = ' '.join(value.split())
    if not criteria:
        return 'expected search criteria, e.g. UNSEEN or ALL'
    if not criteria.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7f for c in criteria):
        return 'expected printable ASCII criteria (RFC 3501 SEARCH)'
    if criteria.count('"') % 2:
        return 'a quoted string in the criteria is not closed'
    return None


def uid_set(uids: tuple[str | int | bytes, ...]) -> str:
    """UIDs as IMAP's comma-separated set; ValueError for anything that is not a UID."""
    found = []
    for uid in uids:
        text = uid.decode('ascii', 'replace') if isinstance(uid, bytes) else str(uid)
        if not _UID.match(text):
            raise ValueError(f'not a message UID: {uid!r}')
        found.append(text)
    if not found:
        raise ValueError('expected at least one message UID')
    return ','.join(found)


def parse_search(data: list[bytes | None]) -> list[str]:
    """The UIDs a UID SEARCH answered with, in the server's order."""
    uids: list[str] = []
    for line in data:
        if line:
            uids += [uid.decode('ascii') for uid in line.split()]
    return uids


def parse_fetch(data: list[bytes | tuple[bytes, bytes] | None]) -> list[tuple[str, tuple[str, ...], bytes]]:
    """(UID, flags, the message) of each message in imaplib's answer to ``UID FETCH ... (UID FLAGS BODY.PEEK[])``.

    imaplib gives a message as a tuple (the response up to the literal, the literal), followed by the
    bytes that close it; a server may send UID and FLAGS before the literal or after it, so both parts
    are read."""
    messages: list[tuple[str, tuple[str, ...], bytes]] = []
    items = list(data)
    for index, item in enumerate(items):
        if not isinstance(item, tuple):
            continue
        head, body = item
        after = items[index + 1] if index + 1 < len(items) else b''
        meta = head + b' ' + (after if isinstance(after, bytes) else b'')
        uid = _FETCH_UID.search(meta)
        if uid is None:
            continue
        flags = _FETCH_FLAGS.search(meta)
        names = tuple(flag.decode('ascii', 'replace') for flag in flags.group(1).split()) if flags else ()
        messages.append((uid.group(1).decode('ascii'), names, body))
    return messages
