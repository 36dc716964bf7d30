"""The ODB connection settings of a server: the [odb] section of server.conf with its password from
secrets.conf. A module of its own, so that the gunicorn master can register its server without
importing the runtime (see zato.server.app)."""

from __future__ import annotations

from typing import Any

from zato.security.secrets_file import Crypto
from zato.config import settings


def odb_settings(config: settings.ServerConfig, secrets: dict[str, str], crypto: Crypto) -> dict[str, Any]:
    """The [odb] section of `config`, with the decrypted password if secrets.conf has one."""
    odb = config.section('odb')
    if secrets.get('odb_password'):
        odb['password'] = crypto.decrypt(secrets['odb_password'])
    return odb
