"""Engines and sessions for the ODB: SQLite (embedded default) or PostgreSQL (cluster)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, URL
from sqlalchemy.exc import DisconnectionError
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


# A pooled PostgreSQL connection idle longer than this (seconds) is checked with a round trip before it is
# used again; one in use moments ago is not (SQLAlchemy's pool_pre_ping checks every checkout, which cost a
# round trip per transaction: a fifth of a pub/sub publication's). A connection that died within that time
# fails its first statement instead: 503 odb_unavailable (zato.odb.outage), and SQLAlchemy invalidates the
# pool's other connections with it.
PING_AFTER_IDLE = 1.0
_IDLE_SINCE = 'zato_idle_since'


def _on_connect(_dbapi_conn: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
    if record is not None:
        record.info[_IDLE_SINCE] = time.monotonic()


def ping(dbapi_conn: Any) -> None:
    """One round trip on a PostgreSQL driver connection, which raises the driver's error if it is gone. It
    opens no transaction the connection would then be in, and leaves its autocommit as it was."""
    was = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute('SELECT 1')
    finally:
        cursor.close()
        dbapi_conn.autocommit = was


def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get(_IDLE_SINCE, 0.0) <= PING_AFTER_IDLE:
        return
    try:
        ping(dbapi_conn)
    except Exception as e:
        # The pool drops this connection and takes another (a new one if need be)
        raise DisconnectionError(f'A pooled ODB connection is gone: {e}') from e


@contextmanager
def autocommit(engine: Engine) -> Iterator[Connection]:
    """A pooled connection whose statements each commit on their own (PostgreSQL). Set on the driver's
    connection and put back before the pool takes it again: SQLAlchemy's isolation_level='AUTOCOMMIT' is
    undone on check-in with a `SET default_transaction_isolation` sent to the server, a round trip per
    use."""
    with engine.connect() as conn:
        dbapi_conn: Any = conn.connection.dbapi_connection
        dbapi_conn.autocommit = True
        try:
            yield conn
        finally:
            if not conn.invalidated and not dbapi_conn.closed:
                dbapi_conn.autocommit = False


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
        engine = create_engine(url_str, **pooling)
        event.listen(engine.pool, 'connect', _on_connect)
        event.listen(engine.pool, 'checkin', _on_checkin)
        event.listen(engine.pool, 'checkout', _on_checkout)
    return watch(engine)  # an ODB out of reach is answered 503 odb_unavailable (zato.odb.outage)


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)
