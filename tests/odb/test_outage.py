"""zato.odb.outage: an error of the ODB's own engine that means the ODB could not be used is answered 503
`odb_unavailable` with a Retry-After; anything else the ODB reports stays our bug (500)."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests import pg
from tests.e2e.harness import free_port_block
from zato.errors import OURS, REMOTE, failure_of, log_failure
from zato.odb.engine import make_engine


def failure_from(engine, sql: str, params: dict | None = None):
    with pytest.raises(DBAPIError) as info, engine.connect() as conn:
        conn.execute(text(sql), params or {})
    return info.value, failure_of(info.value, 'cid1')


def assert_unavailable(f) -> None:
    assert (f.status, f.code, f.cause, f.headers) == (503, 'odb_unavailable', REMOTE, {'Retry-After': '5'})
    assert f.details == ('Service Unavailable: the ODB could not be reached; the server log has the details '
                         'under cid cid1')


# ################################################################################################ SQLite

def test_a_sqlite_odb_that_cannot_be_opened_is_unavailable(tmp_path):
    engine = make_engine(f'sqlite:///{tmp_path / "no-such-dir" / "odb.sqlite3"}')
    e, f = failure_from(engine, 'SELECT 1')
    assert_unavailable(f)
    assert f.reason == 'the ODB could not be used: unable to open database file'


def test_a_sqlite_odb_locked_by_another_writer_past_the_busy_timeout_is_unavailable(tmp_path):
    path = tmp_path / 'odb.sqlite3'
    engine = make_engine(f'sqlite:///{path}')
    with engine.begin() as conn:
        conn.execute(text('CREATE TABLE t (x integer)'))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute('BEGIN IMMEDIATE')
    try:
        with pytest.raises(DBAPIError) as info, engine.connect() as conn:
            conn.execute(text('PRAGMA busy_timeout=50'))
            conn.execute(text('INSERT INTO t VALUES (1)'))
        assert_unavailable(failure_of(info.value, 'cid1'))
    finally:
        other.close()
        engine.dispose()


@pytest.mark.parametrize('db', ['sqlite', 'postgresql'])
def test_every_odb_connection_in_use_past_the_pool_timeout_is_unavailable(tmp_path, db):
    # One connection and as many more under load: a third checkout waits pool_timeout, then 503
    engine = make_engine(f'sqlite:///{tmp_path / "odb.sqlite3"}' if db == 'sqlite' else
                         pg.dsn('postgres').replace('postgresql://', 'postgresql+psycopg2://'),
                         pool_size=1, pool_timeout=0.2)
    held = [engine.connect(), engine.connect()]
    try:
        with pytest.raises(Exception) as info:
            engine.connect()
        f = failure_of(info.value, 'cid1')
        assert_unavailable(f)
        assert f.reason.startswith('the ODB could not be used: QueuePool limit of size 1 overflow 1 reached')
    finally:
        for conn in held:
            conn.close()
        engine.dispose()
    # A connection given back is there for the next request
    with engine.connect() as conn:
        assert conn.execute(text('SELECT 1')).scalar() == 1


def test_a_pool_timeout_of_another_engine_is_not_the_odb(tmp_path):
    from sqlalchemy.pool import QueuePool
    engine = create_engine(f'sqlite:///{tmp_path / "other.sqlite3"}', poolclass=QueuePool, pool_size=1,
                           max_overflow=0, pool_timeout=0.1)
    held = engine.connect()
    try:
        with pytest.raises(Exception) as info:
            engine.connect()
        assert failure_of(info.value, 'cid1').status == 500
    finally:
        held.close()


@pytest.mark.parametrize('sql', ['SELEC 1', 'SELECT * FROM no_such_table', 'SELECT no_such_column FROM t'])
def test_a_statement_sqlite_refuses_is_our_bug(tmp_path, sql):
    engine = make_engine(f'sqlite:///{tmp_path / "odb.sqlite3"}')
    with engine.begin() as conn:
        conn.execute(text('CREATE TABLE t (x integer)'))
    _, f = failure_from(engine, sql)
    assert (f.status, f.code, f.cause) == (500, 'internal_error', OURS)


# ################################################################################################ PostgreSQL

postgresql = pytest.mark.postgresql  # needs PostgreSQL's server binaries, not the shared server


@pytest.fixture(scope='module')
def server():  # the next port stays free too: nothing listens there
    with pg.private_server(free_port_block(2)) as server:
        yield server


def url(server) -> str:
    return server.dsn().replace('postgresql://', 'postgresql+psycopg2://')


@postgresql
def test_a_postgresql_odb_stopped_under_an_open_connection_then_refusing_new_ones_is_unavailable_until_back(
        server, caplog):
    engine = make_engine(url(server))
    held = engine.connect()
    held.execute(text('SELECT 1'))
    server.stop('immediate')
    try:
        # The connection in hand is cut ...
        with pytest.raises(DBAPIError) as info:
            held.execute(text('SELECT 1'))
        assert_unavailable(failure_of(info.value, 'cid1'))
        held.close()
        # ... and a new one is refused
        e, f = failure_from(engine, 'SELECT 1')
        assert_unavailable(f)
        assert f.reason.startswith('the ODB could not be used: connection to server at "127.0.0.1", port ')
        assert '\n' not in f.reason
        caplog.set_level(logging.DEBUG, 'test.outage')
        log_failure(logging.getLogger('test.outage'), f, e, 'GET /x', 'cid1')
        [record] = caplog.records
        assert record.levelname == 'WARNING' and record.exc_info is None
        assert record.getMessage() == f'GET /x failed, cid `cid1`: {f.reason} (OperationalError)'
    finally:
        server.start()
    # Once it is back, the same engine works again (the pool reconnects)
    with engine.connect() as conn:
        assert conn.execute(text('SELECT 1')).scalar() == 1
    engine.dispose()


@postgresql
def test_a_statement_postgresql_refuses_is_our_bug(server):
    engine = make_engine(url(server))
    with engine.begin() as conn:
        conn.execute(text('CREATE TABLE IF NOT EXISTS u (x integer PRIMARY KEY)'))
        conn.execute(text('DELETE FROM u'))
        conn.execute(text('INSERT INTO u VALUES (1)'))
    for sql, params in (('SELEC 1', {}), ('SELECT * FROM no_such_table', {}),
                        ('INSERT INTO u VALUES (:x)', {'x': 1}), ('SELECT 1/0', {})):
        _, f = failure_from(engine, sql, params)
        assert (f.status, f.code, f.cause) == (500, 'internal_error', OURS), sql
    engine.dispose()


@postgresql
def test_a_database_that_is_not_the_odb_being_down_is_not_called_the_odb(server):
    # An engine made without zato.odb.engine (as a service's own database would be) is not watched
    other = create_engine(f'postgresql+psycopg2://postgres@127.0.0.1:{server.port + 1}/postgres')
    _, f = failure_from(other, 'SELECT 1')
    assert f.code != 'odb_unavailable'


@postgresql
def test_a_pooled_postgresql_connection_is_checked_only_after_being_idle_and_a_dead_one_is_replaced(server,
                                                                                                    monkeypatch):
    import time
    from zato.odb import engine as odb_engine
    monkeypatch.setattr(odb_engine, 'PING_AFTER_IDLE', 0.3)
    engine = make_engine(url(server))
    try:
        with engine.connect() as conn:
            pid = conn.execute(text('SELECT pg_backend_pid()')).scalar()
        for _ in range(5):  # used again at once: no check
            with engine.connect() as conn:
                assert conn.execute(text('SELECT pg_backend_pid()')).scalar() == pid
        # Killed while idle past the threshold: the check finds it gone and the pool takes a new one
        with make_engine(url(server)).connect() as admin:
            admin.execute(text('SELECT pg_terminate_backend(:pid)'), {'pid': pid})
        time.sleep(0.5)
        with engine.connect() as conn:
            assert conn.execute(text('SELECT pg_backend_pid()')).scalar() != pid
    finally:
        engine.dispose()


def test_what_a_starting_worker_waits_out_is_the_odb_being_unavailable_only():
    import psycopg2
    from zato.odb.outage import odb_unavailable
    port = free_port_block(1)
    with pytest.raises(psycopg2.OperationalError) as refused:  # the cluster bus's own connection, say
        psycopg2.connect(host='127.0.0.1', port=port, user='x', dbname='x', connect_timeout=2)
    assert odb_unavailable(refused.value)
    try:
        try:
            raise refused.value
        except psycopg2.OperationalError as e:
            raise RuntimeError('while starting') from e
    except RuntimeError as wrapped:
        assert odb_unavailable(wrapped)
    assert not odb_unavailable(ValueError('a bug of ours'))
    assert not odb_unavailable(psycopg2.ProgrammingError('syntax error'))
