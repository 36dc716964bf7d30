"""The environment's secrets file (config/repo/secrets.conf, mode 0600): the Fernet key that
encrypts secrets at rest, kept outside the ODB, and the admin credential the CLI uses."""

from __future__ import annotations

import configparser
import os

from cryptography.fernet import Fernet, InvalidToken

from zato.errors import ConfigError


def secrets_path(env_dir: str) -> str:
    return os.path.join(env_dir, 'config', 'repo', 'secrets.conf')


def write_secrets(env_dir: str, values: dict[str, str]) -> None:
    path = secrets_path(env_dir)
    parser = configparser.ConfigParser(interpolation=None)
    parser['secrets'] = values
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        parser.write(f)


def read_secrets(env_dir: str) -> dict[str, str]:
    path = secrets_path(env_dir)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
        return dict(parser['secrets'])
    except FileNotFoundError:
        raise ConfigError(f'{path} not found') from None
    except (configparser.Error, KeyError) as e:
        raise ConfigError(f'{path}: cannot parse: {str(e).splitlines()[0]}') from None


class Crypto:
    """Encrypts and decrypts secrets with the environment's Fernet key."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise ConfigError('secret_key in secrets.conf is not a valid Fernet key') from None

    @property
    def fernet(self) -> Fernet:
        """The key itself, for what encrypts more than secrets.conf's strings (self.crypto of services)."""
        return self._fernet

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigError('a secret could not be decrypted with this environment\'s key') from None
