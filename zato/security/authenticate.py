"""Checks a request's credentials against a channel's security definition, per worker.

Every failure looks the same to the caller (401, the definition's challenge, "Invalid
credentials"): a wrong user name costs the same argon2 verification as a wrong password, so
neither the answer nor its timing tells whether a user exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zato.bounded_cache import BoundedCache
from zato.errors import Unauthorized
from zato.security.basic_auth import CredentialCache, parse_basic_auth
from zato.config.channel import SecurityInfo

if TYPE_CHECKING:
    from zato.config.security import SecurityConfig

KINDS = ('basic_auth', 'apikey', 'jwt')
INVALID = 'Invalid credentials'


def challenge(sec: SecurityConfig) -> dict[str, str]:
    if sec.kind == 'apikey':
        return {'WWW-Authenticate': f'zato-apikey header="{sec.username}"'}
    if sec.kind == 'jwt':
        return {'WWW-Authenticate': f'Bearer realm="{sec.realm}"'}
    return {'WWW-Authenticate': f'Basic realm="{sec.realm}"'}


class Authenticator:
    """One per worker; its cache spares argon2 on repeated good credentials."""

    def __init__(self, cache: CredentialCache | None = None, jwt: object | None = None,
                 max_verified: int = 10_000) -> None:
        self.cache = cache or CredentialCache()
        self.jwt = jwt
        # (definition id, its version, the exact header value - or, for JWT, the user name) -> who that
        # is, for credentials already verified: a repeated good credential costs one dict lookup, no
        # base64 and no hashing. The version in the key retires every entry of a definition whose
        # secret changes. The header values stay in this process's memory, which holds the
        # environment's secret key anyway.
        self.verified: BoundedCache[tuple[int, int, str], SecurityInfo] = BoundedCache(max_verified)
        self._remember = self.verified.remember

    def authenticate(self, sec: SecurityConfig | None, headers: dict[str, str]) -> SecurityInfo:
        if sec is None or not sec.is_active:
            # A channel whose definition is gone or switched off lets nobody in
            raise Unauthorized(INVALID, {'WWW-Authenticate': 'Basic realm="Zato"'})
        kind = sec.kind
        if kind == 'basic_auth':
            header = headers.get('authorization')
            if header is not None:
                known = self.verified.get((sec.id, sec.version, header))
                if known is not None:
                    return known
            creds = parse_basic_auth(header)
            if header is None or creds is None:
                raise Unauthorized(INVALID, challenge(sec))
            username, password = creds
            if not self.cache.check(sec.id, sec.version, username, password, sec.username, sec.password_hash):
                raise Unauthorized(INVALID, challenge(sec))
            return self._remember((sec.id, sec.version, header), SecurityInfo(sec.id, sec.name, kind, username))
        if kind == 'apikey':
            value = headers.get(sec.username.lower())
            if value is not None:
                known = self.verified.get((sec.id, sec.version, value))
                if known is not None:
                    return known
            if value is None or not self.cache.check(sec.id, sec.version, '', value, '', sec.password_hash):
                raise Unauthorized(INVALID, challenge(sec))
            return self._remember((sec.id, sec.version, value), SecurityInfo(sec.id, sec.name, kind, sec.username))
        if kind == 'jwt' and self.jwt is not None:
            username = self.jwt.verify_request(sec, headers.get('authorization'))  # type: ignore[attr-defined]
            if username is None:
                raise Unauthorized(INVALID, challenge(sec))
            # Every token of one user is the same caller: one SecurityInfo for them all, so that what the
            # request path keeps per caller (keyed by this object) is found again, not built per token
            key = (sec.id, sec.version, username)
            known = self.verified.get(key)
            if known is not None:
                return known
            return self._remember(key, SecurityInfo(sec.id, sec.name, kind, username))
        raise Unauthorized(INVALID, challenge(sec))

    def forget(self, def_id: int) -> None:
        """Drops whatever was verified against a definition that changed or was deleted. Ids are never
        reused (zato.odb.models.NEVER_REUSED_IDS) and the version is in every key, so a new definition
        cannot match these entries anyway; forgetting them frees the memory, and stays a second guard
        should an id ever come back (an ODB restored from an old backup, a sequence reset by hand)."""
        self.verified.forget_where(lambda key: key[0] == def_id)
        self.cache.forget(def_id)
