"""self.crypto: Fernet with the environment's key, argon2id hashes checked in constant time, random secrets."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet

from zato.security.secrets_file import Crypto
from zato.service.base import Service
from zato.service.crypto import DecryptionError, ServiceCrypto


@pytest.fixture
def crypto() -> ServiceCrypto:
    return ServiceCrypto(Fernet(Fernet.generate_key()))


def test_what_is_encrypted_decrypts_to_the_same_text_and_the_token_is_text(crypto):
    token = crypto.encrypt('zażółć 123')
    assert isinstance(token, str) and 'zażółć' not in token
    assert crypto.decrypt(token) == 'zażółć 123'
    assert crypto.decrypt(token.encode()) == 'zażółć 123'
    assert crypto.decrypt(crypto.encrypt(b'raw bytes')) == 'raw bytes'
    # A fresh IV each time: the same text never gives the same token
    assert crypto.encrypt('x') != crypto.encrypt('x')


@pytest.mark.parametrize('bad', ['', 'not a token', 'gAAAAA' + 'A' * 80])
def test_what_is_not_a_token_of_this_key_raises_decryption_error_naming_nothing_internal(crypto, bad):
    with pytest.raises(DecryptionError) as info:
        crypto.decrypt(bad)
    assert str(info.value) == "Could not decrypt: not a token encrypted with this environment's key"


def test_a_token_of_another_key_or_tampered_with_does_not_decrypt(crypto):
    other = ServiceCrypto(Fernet(Fernet.generate_key()))
    token = other.encrypt('secret')
    with pytest.raises(DecryptionError):
        crypto.decrypt(token)
    raw = bytearray(base64.urlsafe_b64decode(crypto.encrypt('secret')))
    raw[-40] ^= 1
    with pytest.raises(DecryptionError):
        crypto.decrypt(base64.urlsafe_b64encode(bytes(raw)).decode())


def test_a_hashed_secret_is_argon2id_salted_and_verifies_only_the_same_secret(crypto):
    hashed = crypto.hash_secret('correct horse')
    assert hashed.startswith('$argon2id$v=19$m=19456,t=2,p=1$')
    assert crypto.hash_secret('correct horse') != hashed
    assert crypto.verify_hash('correct horse', hashed) is True
    assert crypto.verify_hash(b'correct horse', hashed) is True
    assert crypto.verify_hash('correct horsE', hashed) is False
    assert crypto.verify_hash('', hashed) is False
    # A 3.1 name is accepted, and hashes the same way
    assert crypto.verify_hash('x', crypto.hash_secret('x', name='zato.default'), name='zato.default')


@pytest.mark.parametrize('expected', ['', 'plain text', '$pbkdf2-sha512$100000$c2FsdA$aGFzaA', None])
def test_a_malformed_or_foreign_hash_verifies_nothing_and_raises_nothing(crypto, expected):
    assert crypto.verify_hash('secret', expected) is False


def test_generated_secrets_and_passwords_carry_the_bits_asked_for_as_url_safe_text(crypto):
    secret = crypto.generate_secret()
    assert len(base64.urlsafe_b64decode(secret + '=' * (-len(secret) % 4))) == 32
    assert len(base64.urlsafe_b64decode(crypto.generate_secret(bits=512) + '==')) == 64
    password = crypto.generate_password()
    assert isinstance(password, str) and len(base64.urlsafe_b64decode(password)) == 24
    assert len(base64.urlsafe_b64decode(crypto.generate_password(bits=128) + '==')) == 16
    assert len({crypto.generate_secret() for _ in range(100)}) == 100


@pytest.mark.parametrize('bits', [0, 64, 120, 130, -256, 256.0, True])
def test_too_few_bits_or_not_whole_bytes_are_refused(crypto, bits):
    with pytest.raises(ValueError, match='bits must be'):
        crypto.generate_secret(bits)
    with pytest.raises(ValueError, match='bits must be'):
        crypto.generate_password(bits)


def test_a_services_crypto_uses_the_environments_key():
    key = Crypto.new_key()

    class Host:
        crypto = Crypto(key)

    service = Service()
    service.server = Host()  # type: ignore[assignment]
    token = service.crypto.encrypt('shared')
    # What another worker (the same environment's key) encrypted, this one decrypts, and the other way round
    assert ServiceCrypto(Fernet(key.encode())).decrypt(token) == 'shared'
    assert Crypto(key).decrypt(token) == 'shared'
