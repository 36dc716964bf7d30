"""`zato quickstart create`: a ready environment in one directory."""

from __future__ import annotations

import configparser
import os
from typing import Any

from sqlalchemy import select

from zato.errors import ConfigError
from zato.odb.engine import make_engine, make_session_factory, make_url
from zato.odb.migrate import upgrade
from zato.odb.models import Cluster, SecurityDef, default_builtin_cache
from zato.security.passwords import hash_password, new_password
from zato_web_admin.users import create as create_web_admin_user
from zato.security.secrets_file import Crypto, write_secrets
from zato.server.runtime import ADMIN_SEC_NAME
from zato.config.settings import SETTINGS, conf_path
from zato.sso.config import conf_path as sso_conf_path, render_template as sso_template

DIRS = ('config/repo/schema/json', 'config/repo/user-conf', 'pickup/incoming/services', 'pickup/incoming/user-conf',
        'logs', 'run', 'data', 'work')

STARTUP_TEMPLATE = """# Startup services (docs/user-config.md), each `service.name = payload`, invoked in this order:
# the first list once per server start on one worker, the second on each of the server's other workers.
[startup_services_first_worker]

[startup_services_any_worker]
"""


def create(path: str, *, odb: str = 'sqlite', odb_host: str = '127.0.0.1', odb_port: int = 5432,
           odb_user: str = '', odb_password: str = '', odb_db_name: str = 'zato', bus: str | None = None,
           servers: int = 1, workers: int = 2, cluster_name: str = 'quickstart', host: str = '127.0.0.1',
           base_port: int = 17010, web_admin_port: int = 8183) -> dict[str, Any]:
    """Creates the environment and its ODB; returns what to tell the user (the admin password once)."""
    path = os.path.abspath(path)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ConfigError(f'{path} exists and is not an empty directory')
    if servers < 1 or workers < 1:
        raise ConfigError('--servers and --workers must be at least 1')
    if not 1 <= base_port <= 65535 - servers:
        raise ConfigError('--base-port must leave room for every server below 65536')
    bus = bus or ('postgresql' if odb == 'postgresql' else 'local')
    if bus == 'postgresql' and odb != 'postgresql':
        raise ConfigError('the postgresql bus needs a PostgreSQL ODB (--odb postgresql)')

    for d in DIRS:
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, 'config', 'repo'), 0o700)

    values: dict[str, dict[str, str]] = {s.section: {} for s in SETTINGS}
    for s in SETTINGS:
        values[s.section][s.key] = s.default
    values['main'].update(cluster_name=cluster_name, host=host, base_port=str(base_port), servers=str(servers),
                          workers=str(workers))
    values['odb'].update(engine=odb)
    values['web_admin'].update(host=host, port=str(web_admin_port))
    if odb == 'postgresql':
        values['odb'].update(host=odb_host, port=str(odb_port), username=odb_user, db_name=odb_db_name)
    values['bus']['backend'] = bus
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(values)
    with open(conf_path(path), 'w', encoding='utf-8') as f:
        f.write('# Zato server configuration; docs/settings.md describes every key.\n')
        parser.write(f)
        f.write(STARTUP_TEMPLATE)
    with open(sso_conf_path(path), 'w', encoding='utf-8') as f:
        f.write(sso_template())

    key = Crypto.new_key()
    crypto = Crypto(key)
    admin_password = new_password()
    secrets = {'secret_key': key, 'admin_username': ADMIN_SEC_NAME, 'admin_password': crypto.encrypt(admin_password)}
    if odb_password:
        secrets['odb_password'] = crypto.encrypt(odb_password)
    write_secrets(path, secrets)

    odb_conf = {'engine': odb, 'db_path': 'data/odb.sqlite3', 'host': odb_host, 'port': odb_port,
                'username': odb_user, 'password': odb_password, 'db_name': odb_db_name}
    engine = make_engine(make_url(odb_conf, path))
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            cluster = session.scalars(select(Cluster).where(Cluster.name == cluster_name)).one_or_none()
            if cluster is not None:
                raise ConfigError(f'the ODB already has a cluster named `{cluster_name}`; '
                                  'choose another --cluster-name or another database')
            cluster = Cluster(name=cluster_name, config_version=0)
            session.add(cluster)
            session.flush()
            session.add(SecurityDef(cluster_id=cluster.id, name=ADMIN_SEC_NAME, kind='basic_auth',
                                    is_internal=True, username=ADMIN_SEC_NAME,
                                    password_hash=hash_password(admin_password), realm='Zato admin',
                                    opaque={}))
            session.add(default_builtin_cache(cluster.id))
            web_admin_password = new_password()
            create_web_admin_user(session, 'admin', web_admin_password, by='quickstart')
            session.commit()
    finally:
        engine.dispose()
    return {'path': path, 'admin_username': ADMIN_SEC_NAME, 'admin_password': admin_password,
            'web_admin_url': f'http://{host}:{web_admin_port}', 'web_admin_username': 'admin',
            'web_admin_password': web_admin_password,
            'ports': [base_port + i for i in range(servers)], 'host': host}
