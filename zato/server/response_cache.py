"""Response caching of REST channels: a channel names a built-in cache and an expiry (`cache`,
`cache_expiry`), and its answers are kept there and served from there.

What is cached: the status, headers and body of a **200 answer to a GET**; nothing else (a POST
changes things, an error must be seen again). An answer that sets a cookie or says
`Cache-Control: no-store` or `private` is not cached either.

The key: `http-channel-<channel id>-<sha256 of method, path, query string, the channel's version,
who called, and the service's request hash>`. Who called is the security definition and user the
guards authenticated, so that one caller's answer never reaches another; the channel's version, so
that an edited channel never answers with what its previous service said; the request hash is
what the service's `get_request_hash(self)` returns, when it has one (it sees `self.request`,
`self.channel` and `self.cid`, as `handle` would, before SimpleIO parses the input).

An answer expires `cache_expiry` seconds after it was made, however often it is read: the cache's
`extend_expiry_on_get` does not apply to them (a popular answer would otherwise never be made again).

Where: the dispatcher looks the key up after the channel's guards and before the service, so a
cached answer is given only to a caller who passed authentication, the allow-list and the rate
limits, and is charged to the limits like any other.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from zato.cache.store import CacheError

if TYPE_CHECKING:
    from zato.config.channel import ChannelInfo
    from zato.server.caches import Caches
    from zato.server.channels import ChannelConfig
    from zato.service.base import Service
    from zato.service.reqresp import Request

logger = logging.getLogger('zato.cache')

# Response headers that make an answer one not to keep
_PRIVATE = ('no-store', 'private')

_sha256 = hashlib.sha256


def response_key(chan: ChannelConfig, method: str, path: str, query: str, channel_info: ChannelInfo,
                 request_hash: str) -> str:
    sec = channel_info.security
    caller = f'{sec.id}\x00{sec.type}\x00{sec.username}' if sec is not None else ''
    digest = _sha256(f'{method}\x00{path}\x00{query}\x00{chan.version}\x00{caller}\x00{request_hash}'
                     .encode('utf-8', 'surrogatepass')).hexdigest()
    return f'http-channel-{chan.id}-{digest}'


def request_hash(cls: type[Service], cid: str, channel_info: ChannelInfo, request: Request, host: Any) -> str:
    """What the service's `get_request_hash` says of this request, '' when it has none."""
    if getattr(cls, 'get_request_hash', None) is None:
        return ''
    svc = cls()
    svc.cid = cid
    svc.channel = channel_info
    svc.request = request
    svc.server = host
    svc.environ = {}
    return str(svc.get_request_hash())  # type: ignore[attr-defined]


def cached(caches: Caches, cache_id: int, key: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """(status, headers, body) kept under `key`, or None."""
    cache = caches.by_id.get(cache_id)
    if cache is None:
        return None
    entry = cache.store.get(key, extend=False)  # an answer is as old as when it was made, however often read
    if entry is None:
        return None
    status, headers, body, is_base64 = entry.value
    return status, headers, base64.b64decode(body) if is_base64 else body.encode('utf-8')


def keep(caches: Caches, chan: ChannelConfig, key: str, status: int, headers: list[tuple[str, str]],
         body: bytes) -> None:
    """Keeps a 200 answer in the channel's cache (for its `cache_expiry`), unless it says it is private."""
    if status != 200:
        return
    cache = caches.by_id.get(chan.cache_id) if chan.cache_id is not None else None
    if cache is None:
        return
    for name, value in headers:
        lower = name.lower()
        if lower == 'set-cookie' or (lower == 'cache-control' and any(word in value.lower() for word in _PRIVATE)):
            return
    try:
        text, is_base64 = body.decode('utf-8'), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode('ascii'), True
    try:
        cache.set(key, [status, headers, text, is_base64], chan.cache_expiry)
    except CacheError as e:
        logger.debug('Response of channel `%s` not cached: %s', chan.name, e)
