"""A security definition as the checks need it: the hash of its secret, never the secret."""

from __future__ import annotations

from typing import Any


class SecurityConfig:
    """One security definition as the request path needs it (the hash, never a clear secret)."""

    __slots__ = ('id', 'name', 'kind', 'is_active', 'username', 'password_hash', 'realm', 'version', 'ttl',
                 'audience', 'rate_limit_id')

    def __init__(self, *, id: int, name: str, kind: str, username: str, password_hash: str, realm: str = 'Zato',
                 is_active: bool = True, version: int = 1, ttl: int = 3600, audience: str = '',
                 rate_limit_id: int | None = None) -> None:
        self.id = id
        self.name = name
        self.kind = kind
        self.is_active = is_active
        self.username = username
        self.password_hash = password_hash
        self.realm = realm
        self.version = version
        self.ttl = ttl
        self.audience = audience
        self.rate_limit_id = rate_limit_id

    @classmethod
    def from_model(cls, row: Any) -> SecurityConfig:
        opaque = row.opaque or {}
        return cls(id=row.id, name=row.name, kind=row.kind, username=row.username, password_hash=row.password_hash,
                   realm=row.realm, is_active=row.is_active, version=row.version,
                   ttl=int(opaque.get('ttl', 3600)), audience=str(opaque.get('audience', '')),
                   rate_limit_id=row.rate_limit_id)
