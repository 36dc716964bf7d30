"""Engines and sessions for the ODB: SQLite (embedded default) or PostgreSQL (cluster)."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, URL
from sqlalchemy.orm import sessionmaker

from zato.odb.outage import WatchedPool, watch

SUPPORTED = ('sqlite', 'postgresql')


def make_url(odb: dict[str, Any], env_dir: str) -> URL:
    """Builds the SQLAlchemy URL from the [odb] section of server.conf (password from secrets)."""
    engine = odb.get('engine', 'sqlite')
    if engine == 'sqlite':
        path = odb.get('db_path') or 'data/odb.sqlite3'
        if not os.path.isabs(path):
            path = os.path.join(env_dir, path)
        return URL.create('sqlite', database=path)
    if engine == 'postgresql':
        return URL.create('postgresql+psycopg2', username=odb.get('username') or None,
                          password=odb.get('password') or None, host=odb.get('host') or '127.0.0.1',
                          port=int(odb.get('port') or 5432), database=odb.get('db_name') or 'zato')
    raise ValueError(f'Unsupported ODB engine `{engine}`, expected one of: {", ".join(SUPPORTED)}')


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets workers read while one writes; busy_timeout turns lock contention into a short wait
    cur = dbapi_conn.cursor()
    cur.execute('PRAGMA journal_mode=WAL')
    cur.execute('PRAGMA busy_timeout=10000')
    cur.execute('PRAGMA foreign_keys=ON')
    cur.execute('PRAGMA synchronous=NORMAL')
    cur.close()


def make_engine(url: URL | str, pool_size: int = 5, pool_timeout: float = 10) -> Engine:
    """An engine of the ODB: its pool (WatchedPool) holds `pool_size` connections and as many more under
    load, and a request that finds them all in use past `pool_timeout` seconds is answered 503."""
    url_str = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    pooling = {'poolclass': WatchedPool, 'pool_size': pool_size, 'max_overflow': pool_size,
               'pool_timeout': pool_timeout}
    if url_str.startswith('sqlite'):
        engine = create_engine(url_str, connect_args={'check_same_thread': False, 'timeout': 10}, **pooling)
        event.listen(engine, 'connect', _sqlite_pragmas)
    else:
        engine = create_engine(url_str, pool_pre_ping=True, **pooling)
    return watch(engine)  # an ODB out of reach is answered 503 odb_unavailable (zato.odb.outage)


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)
