"""A web-admin with no server and no WSGI server: the real app object over a temporary SQLite ODB
(migrated as `zato quickstart` does), its admin API client aimed at a port nothing listens on, and
requests built by hand, so that a view is called as the router calls it and its answer read."""

from __future__ import annotations

import io
import socket
from urllib.parse import urlencode

from sqlalchemy.engine import Engine

from zato.admin_client import AdminClient
from zato.odb.engine import make_engine, make_session_factory
from zato.odb.migrate import upgrade
from zato.odb.models import Cluster
from zato.security.secrets_file import Crypto
from zato.sso.config import defaults as sso_defaults
from zato_web_admin import sessions, users
from zato_web_admin.app import WebAdmin
from zato_web_admin.config import WebAdminConfig
from zato_web_admin.http import Request, Response
from zato_web_admin.sessions import Current
from zato_web_admin.sso import SSOAdmin, context as sso_context

CLUSTER = 'views-test'
PASSWORD = 'a long enough password 1'  # noqa: S105 - a test user's
REMOTE_ADDR = '192.0.2.7'


def closed_port() -> int:
    """A local port nothing listens on (one the system just handed out, then closed)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def web_admin(db_path: str, sso: bool = False, url: str = '') -> tuple[WebAdmin, Engine]:
    """The app over a new ODB at `db_path` (or at `url`, a PostgreSQL database), and the ODB's engine
    (to dispose of); with `sso`, SSO on as [component_enabled] sso = true turns it on, with sso.conf's
    defaults."""
    engine = make_engine(url or f'sqlite:///{db_path}')
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as db:
        cluster = Cluster(name=CLUSTER, config_version=0)
        db.add(cluster)
        db.commit()
        cluster_id = cluster.id
    admin = AdminClient(f'http://127.0.0.1:{closed_port()}', 'admin.invoke', 'unused', timeout=2)
    key = Crypto.new_key()
    crypto = Crypto(key)
    sso_admin = SSOAdmin(sso_context(factory, cluster_id, sso_defaults(), crypto, key)) if sso else None
    config = WebAdminConfig(env_dir='', cluster_id=cluster_id, cluster_name=CLUSTER, crypto=crypto,
                            session_factory=factory, admin=admin, host='127.0.0.1', port=0, require_totp=False,
                            idle_seconds=1800, max_seconds=43200, lockout_attempts=5, lockout_seconds=900,
                            secure_cookies='auto', sso=sso_admin)
    return WebAdmin(config), engine


def request(method: str = 'GET', path: str = '/', form: dict[str, str] | None = None, query: str = '',
            current: Current | None = None, files: dict[str, tuple[str, bytes]] | None = None) -> Request:
    """A request as the WSGI server hands it over, `current` as the app sets it from the session cookie;
    with `files` ({field: (file name, content)}), a multipart form as a browser's upload sends it."""
    if files is None:
        body, content_type = urlencode(form or {}).encode(), 'application/x-www-form-urlencoded'
    else:
        body, content_type = multipart(form or {}, files)
    out = Request({'REQUEST_METHOD': method, 'PATH_INFO': path, 'QUERY_STRING': query,
                   'CONTENT_TYPE': content_type, 'CONTENT_LENGTH': str(len(body)),
                   'wsgi.input': io.BytesIO(body), 'REMOTE_ADDR': REMOTE_ADDR})
    out.current = current
    return out


def multipart(form: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = 'zato-views-test-boundary'
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in form.items()]
    parts.extend(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
                 f'Content-Type: application/octet-stream\r\n\r\n'.encode() + data + b'\r\n'
                 for name, (file_name, data) in files.items())
    return b''.join(parts) + f'--{boundary}--\r\n'.encode(), f'multipart/form-data; boundary={boundary}'


def signed_in(app: WebAdmin, username: str = 'jane') -> Current:
    """A new user with a session, as the app finds it for a request carrying its cookie."""
    with app.db() as db:
        user = users.create(db, username, PASSWORD)
        db.commit()
        token = sessions.start(db, user)
        current = sessions.load(db, token, app.config.idle_seconds, app.config.max_seconds)
    assert current is not None
    return current


def text(response: Response) -> str:
    return response.body.decode('utf-8')


def header(response: Response, name: str) -> list[str]:
    return [value for key, value in response.headers if key == name]
