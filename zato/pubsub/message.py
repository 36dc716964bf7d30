"""A message to publish, checked once for every way in (REST, the Python API): 3.1's fields, with
`expiration` in milliseconds everywhere (3.1's docs said seconds while its code took milliseconds).

The rules, each a 400 naming the field unless said otherwise:

* `data` is required: a string is kept as it is (`data_format` text), any other JSON value is kept
  JSON-encoded (`data_format` json) and handed back as the same value; more than `max_size` bytes
  of UTF-8 (or of JSON) is a 413;
* `priority` is an integer from 1 to 9, 9 the highest; 5 when not given;
* `expiration` is an integer of milliseconds from 0 (already expired when read) to MAX_EXPIRATION;
  MAX_EXPIRATION when not given (3.1's default, about 68 years);
* `mime_type`, `correl_id`, `in_reply_to`, `ext_client_id` and `group_id` are strings of at most
  MAX_TEXT characters; `ext_pub_time` is a number of seconds since the epoch;
* `has_gd` is true or false; this version keeps every message in the ODB (GD) either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from zato.errors import BadRequest
from zato.pubsub.errors import DataTooLarge

MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 1, 9, 5
MAX_EXPIRATION = 2_147_483_647_000  # milliseconds: 2**31 - 1 seconds, 3.1's default
MAX_TEXT = 200
DEFAULT_MIME_TYPE = 'text/plain'

_TEXT_FIELDS = ('correl_id', 'in_reply_to', 'ext_client_id', 'group_id')
INPUTS = frozenset(('data', 'priority', 'expiration', 'mime_type', 'has_gd', 'ext_pub_time', *_TEXT_FIELDS))


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as checked, before the ODB gives it its publication time."""

    data: str
    data_format: str
    size: int
    priority: int = DEFAULT_PRIORITY
    expiration: int = MAX_EXPIRATION
    mime_type: str = DEFAULT_MIME_TYPE
    correl_id: str = ''
    in_reply_to: str = ''
    ext_client_id: str = ''
    group_id: str = ''
    ext_pub_time: float | None = None
    has_gd: bool = True


def _int(data: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)  # from a query string or a form
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f'Invalid input `{name}`: expected an integer from {low} to {high}')
    return value


def _text(data: dict[str, Any], name: str, default: str = '') -> str:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadRequest(f'Invalid input `{name}`: expected a string of at most {MAX_TEXT} characters')
    return value


def new_message(data: dict[str, Any], max_size: int, mime_type: str = '') -> NewMessage:
    """The message `data` (a publication's input) describes, checked by the module's rules.
    `mime_type`: what the request's Content-Type said, used when the input names none."""
    if data.get('data') is None:
        raise BadRequest('No data sent on input')
    payload = data['data']
    if isinstance(payload, str):
        text, data_format = payload, 'text'
        size = len(text.encode('utf-8'))
    else:
        raw = orjson.dumps(payload)
        text, data_format, size = raw.decode('utf-8'), 'json', len(raw)
    if size > max_size:
        raise DataTooLarge(f'Invalid input `data`: {size} bytes, expected at most {max_size}')
    has_gd = data.get('has_gd', True)
    if has_gd is None:
        has_gd = True
    if not isinstance(has_gd, bool):
        raise BadRequest('Invalid input `has_gd`: expected true or false')
    ext_pub_time = data.get('ext_pub_time')
    if ext_pub_time is not None and (not isinstance(ext_pub_time, int | float) or isinstance(ext_pub_time, bool)
                                     or not 0 <= ext_pub_time < 2 ** 40):
        raise BadRequest('Invalid input `ext_pub_time`: expected seconds since the epoch')
    return NewMessage(
        data=text, data_format=data_format, size=size,
        priority=_int(data, 'priority', MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY),
        expiration=_int(data, 'expiration', 0, MAX_EXPIRATION, MAX_EXPIRATION),
        mime_type=_text(data, 'mime_type', mime_type or DEFAULT_MIME_TYPE) or DEFAULT_MIME_TYPE,
        correl_id=_text(data, 'correl_id'), in_reply_to=_text(data, 'in_reply_to'),
        ext_client_id=_text(data, 'ext_client_id'), group_id=_text(data, 'group_id'),
        ext_pub_time=None if ext_pub_time is None else float(ext_pub_time), has_gd=has_gd)
