"""``self.crypto``: encryption with the environment's key, one-way hashes of secrets, and random secrets.

Zato 3.1's names and arguments (CryptoManager), with three fixes a user of this version can rely on:
every value given back is a ``str`` (3.1 gave bytes from ``encrypt`` and ``generate_secret``), hashes
are argon2id (3.1: PBKDF2-SHA512), and a token that does not decrypt raises
zato.errors.DecryptionError, which names no key and no internals.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from cryptography.fernet import InvalidToken

from zato.errors import ZatoError
from zato.security.passwords import hash_password, verify_password

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

# Fewer random bits than this make a guessable secret: refused rather than handed out
MIN_BITS = 128


class DecryptionError(ZatoError, ValueError):
    """``self.crypto.decrypt`` was given something that is not a token this environment's key made
    (tampered with, truncated, made with another key). Let out of a service, it is a 500: catch it and
    raise BadRequest if the token came from the caller."""

    def __init__(self) -> None:
        super().__init__('Could not decrypt: not a token encrypted with this environment\'s key')


def _as_bytes(data: str | bytes, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode('utf-8')
    raise TypeError(f'{what} must be str or bytes, not {type(data).__name__}')


def _random_bytes(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits % 8 or bits < MIN_BITS:
        raise ValueError(f'bits must be a whole number of bytes (a multiple of 8), at least {MIN_BITS}; got {bits!r}')
    return bits // 8


class ServiceCrypto:
    """What ``self.crypto`` is: built around the environment's Fernet key (secrets.conf's secret_key,
    kept outside the ODB), the same key that encrypts the secrets of definitions at rest."""

    __slots__ = ('_fernet',)

    def __init__(self, fernet: Fernet) -> None:
        self._fernet = fernet

    # Reversible: the same environment (every server of the cluster) decrypts what it encrypted

    def encrypt(self, data: str | bytes) -> str:
        """A Fernet token (URL-safe text, authenticated and timestamped) of `data` (str as UTF-8)."""
        return self._fernet.encrypt(_as_bytes(data, 'data')).decode('ascii')

    def decrypt(self, encrypted: str | bytes) -> str:
        """The text `encrypt` was given; DecryptionError if `encrypted` is not such a token."""
        try:
            return self._fernet.decrypt(_as_bytes(encrypted, 'encrypted')).decode('utf-8')
        except (InvalidToken, UnicodeDecodeError):
            raise DecryptionError() from None

    # One-way: to store a secret that only needs checking later

    def hash_secret(self, data: str | bytes, name: str = 'zato.default') -> str:
        """An argon2id hash of `data` (a fresh salt each time). `name` chose a hashing scheme in 3.1; it
        is accepted for 3.1 code, and every name uses argon2id."""
        return hash_password(_as_bytes(data, 'data'))

    def verify_hash(self, given: str | bytes, expected: str, name: str = 'zato.default') -> bool:
        """Whether `given` is the secret `expected` (a hash_secret value) was made from: argon2's
        constant-time check; False for a wrong secret or a malformed or foreign hash."""
        if not isinstance(expected, str):
            return False
        return verify_password(expected, _as_bytes(given, 'given'))

    # Random, from the operating system's CSPRNG (the secrets module)

    @staticmethod
    def generate_secret(bits: int = 256) -> str:
        """`bits` random bits (256 by default, at least 128) as URL-safe base64 text."""
        return secrets.token_urlsafe(_random_bytes(bits))

    @staticmethod
    def generate_password(bits: int = 192, to_str: bool = True) -> str:
        """A password of `bits` random bits (192 by default, as in 3.1; at least 128) as URL-safe text.
        `to_str` is accepted for 3.1 code; the value is always a str."""
        return secrets.token_urlsafe(_random_bytes(bits))
