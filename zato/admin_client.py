"""The admin-API client the CLI and the web-admin share (standard library only, so the CLI starts fast)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from zato.errors import ZatoError
from zato.security.secrets_file import Crypto, read_secrets
from zato.config import settings


class AdminCallError(ZatoError):
    def __init__(self, status: int, details: Any) -> None:
        self.status = status
        self.details = details
        super().__init__(f'HTTP {status}: {details if isinstance(details, str) else json.dumps(details)}')


class AdminClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip('/')
        token = base64.b64encode(f'{username}:{password}'.encode()).decode()
        self.headers = {'Authorization': f'Basic {token}', 'Content-Type': 'application/json'}
        self.timeout = timeout

    @classmethod
    def for_env(cls, env_dir: str, server: int = 1) -> AdminClient:
        config = settings.load(env_dir)
        secrets = read_secrets(config.env_dir)
        password = Crypto(secrets['secret_key']).decrypt(secrets['admin_password'])
        host = config.get('main', 'host')
        if host in ('0.0.0.0', '', '::'):  # noqa: S104 - a listen-all address; connect locally
            host = '127.0.0.1'
        port = config.get('main', 'base_port') + server - 1
        return cls(f'http://{host}:{port}', secrets.get('admin_username', 'admin.invoke'), password)

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,  # noqa: S310 - http:// only
                                     headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - our own server
                body = resp.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                details = json.loads(body).get('details', body.decode())
            except (ValueError, AttributeError):
                details = body.decode('utf-8', 'replace')
            raise AdminCallError(e.code, details) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, 'reason', e)
            raise ZatoError(f'cannot reach the server at {self.base_url}: {reason} (is it running? try `zato start`)') \
                from None
        return json.loads(body) if body else None
