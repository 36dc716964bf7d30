"""Password hashes: argon2id (t=2, m=19 MiB, p=1 per OWASP), and random secrets."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)


def hash_password(password: str | bytes) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str | bytes) -> bool:
    """Constant-time verification; False for a wrong password or a malformed hash."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password(nbytes: int = 24) -> str:
    """A random URL-safe password (192 bits by default)."""
    return secrets.token_urlsafe(nbytes)
