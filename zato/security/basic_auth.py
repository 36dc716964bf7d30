"""HTTP Basic Auth (RFC 7617): strict parsing and a per-worker cache of verified credentials."""

from __future__ import annotations

import binascii
import hashlib
import hmac
from base64 import b64decode

from zato.bounded_cache import BoundedCache
from zato.security.passwords import verify_password


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an Authorization header, or None if it is absent or malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(' ')
    if scheme.lower() != 'basic' or not token:
        return None
    try:
        decoded = b64decode(token.strip(), validate=True).decode('utf-8')
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(':')
    if not sep:
        return None
    return user, password


class CredentialCache:
    """Remembers credentials that passed argon2 verification, so a hash is not recomputed on
    every request. Keyed by a SHA-256 of the password plus the definition's version, so a
    changed secret drops the entry. Comparisons are constant-time."""

    def __init__(self, max_size: int = 10_000) -> None:
        self._ok: BoundedCache[tuple[int, int, str], bytes] = BoundedCache(max_size)

    def check(self, def_id: int, version: int, username: str, password: str,
              expected_username: str, password_hash: str) -> bool:
        digest = hashlib.sha256(password.encode('utf-8')).digest()
        key = (def_id, version, username)
        cached = self._ok.get(key)
        user_ok = hmac.compare_digest(username.encode('utf-8'), expected_username.encode('utf-8'))
        if cached is not None:
            return hmac.compare_digest(cached, digest) and user_ok
        ok = verify_password(password_hash, password) and user_ok
        if ok:
            self._ok.remember(key, digest)
        return ok

    def forget(self, def_id: int) -> None:
        """Drops every credential verified for a definition that changed or was deleted."""
        self._ok.forget_where(lambda key: key[0] == def_id)
