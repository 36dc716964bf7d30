"""What the web-admin runs from: one environment's settings, secrets, ODB and admin API client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zato.admin_client import AdminClient
from zato.errors import ConfigError
from zato.odb.engine import make_engine, make_session_factory, make_url
from zato.odb.models import Cluster
from zato.security.secrets_file import Crypto, read_secrets
from zato.config import settings
from zato.sso.config import load as load_sso_config
from zato_web_admin.sso import SSOAdmin, context as sso_context


@dataclass
class WebAdminConfig:
    env_dir: str
    cluster_id: int
    cluster_name: str
    crypto: Crypto
    session_factory: sessionmaker[Session]
    admin: AdminClient
    host: str
    port: int
    require_totp: bool
    idle_seconds: int
    max_seconds: int
    lockout_attempts: int
    lockout_seconds: int
    secure_cookies: str  # auto | true | false
    # The SSO pages' core: None while server.conf's [component_enabled] sso is false, or sso.conf is
    # broken (then `sso_error` says why, and the pages show it)
    sso: SSOAdmin | None = None
    sso_error: str = ''

    @classmethod
    def load(cls, env_dir: str) -> WebAdminConfig:
        config = settings.load(env_dir)
        secrets = read_secrets(config.env_dir)
        crypto = Crypto(secrets['secret_key'])
        odb: dict[str, Any] = config.section('odb')
        if secrets.get('odb_password'):
            odb['password'] = crypto.decrypt(secrets['odb_password'])
        engine = make_engine(make_url(odb, config.env_dir), config.get('odb', 'pool_size'),
                             config.get('odb', 'pool_timeout'))
        factory = make_session_factory(engine)
        name = config.get('main', 'cluster_name')
        with factory() as session:
            cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == name))
        if cluster_id is None:
            raise ConfigError(f'the ODB has no cluster named `{name}`')
        web = config.section('web_admin')
        admin = AdminClient.for_env(config.env_dir)
        admin.timeout = 30
        sso, sso_error = None, ''
        if config.get('component_enabled', 'sso'):
            try:
                sso = SSOAdmin(sso_context(factory, cluster_id, load_sso_config(config.env_dir), crypto,
                                           secrets['secret_key']))
            except ConfigError as e:
                sso_error = str(e)
        return cls(env_dir=config.env_dir, cluster_id=cluster_id, cluster_name=name, crypto=crypto,
                   session_factory=factory, admin=admin,
                   host=web['host'], port=web['port'], require_totp=web['require_totp'],
                   idle_seconds=web['session_idle_minutes'] * 60, max_seconds=web['session_max_hours'] * 3600,
                   lockout_attempts=web['lockout_attempts'], lockout_seconds=web['lockout_minutes'] * 60,
                   secure_cookies=web['secure_cookies'], sso=sso, sso_error=sso_error)
