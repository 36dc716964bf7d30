"""The ODB's engine the gunicorn master prepares before forking (zato.server.preload.prepare_odb):
warmed by a worker's start-up statements, every connection closed before the fork, and taken by one
runtime with a pool of its own; the router's compiled code kept by source; and the record of the
modules a worker imported beyond the master's, read without walking all of sys.modules."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from zato.cli.quickstart import create
from zato.config import settings
from zato.odb.engine import make_url
from zato.security.secrets_file import Crypto, read_secrets
from zato.server import preload
from zato.server.odb_settings import odb_settings
from zato.server.router import Router


@pytest.fixture
def env(tmp_path) -> Iterator[str]:
    path = str(tmp_path / 'env')
    create(path)
    yield path
    for engine in preload._ENGINES.values():
        engine.dispose()
    preload._ENGINES.clear()


def engine_args(env_dir: str) -> tuple:
    config = settings.load(env_dir)
    secrets = read_secrets(env_dir)
    url = make_url(odb_settings(config, secrets, Crypto(secrets['secret_key'])), env_dir)
    return url, config.get('odb', 'pool_size'), config.get('odb', 'pool_timeout')


def open_files() -> list[str]:
    found = []
    for fd in os.listdir('/proc/self/fd'):
        try:
            found.append(os.readlink(f'/proc/self/fd/{fd}'))
        except OSError:
            pass
    return found


def test_the_prepared_engine_is_warm_holds_no_connection_and_is_taken_once(env):
    preload.prepare_odb(env)
    assert len(preload._ENGINES) == 1
    engine = next(iter(preload._ENGINES.values()))
    # Nothing open crosses the fork: no pooled connection, no descriptor of the ODB's file
    assert engine.pool.checkedin() == 0 and engine.pool.checkedout() == 0
    assert not [f for f in open_files() if 'odb.sqlite3' in f]
    # What a worker would compile again is compiled: the start-up statements are in the engine's cache
    assert len(engine._compiled_cache) >= 20

    url, pool_size, pool_timeout = engine_args(env)
    old_pool = engine.pool
    taken = preload.odb_engine(url, pool_size, pool_timeout)
    assert taken is engine and taken.pool is not old_pool  # a pool of the worker's own
    with taken.connect() as conn:
        assert conn.execute(text('SELECT count(*) FROM cluster')).scalar() == 1
    # A second runtime in the same process (or other settings) gets an engine of its own
    other = preload.odb_engine(url, pool_size, pool_timeout)
    assert other is not engine
    other.dispose()
    taken.dispose()


def test_a_failure_to_prepare_is_logged_and_the_workers_make_their_own(env, caplog):
    os.remove(os.path.join(env, 'data', 'odb.sqlite3'))  # no ODB (SQLite would make an empty file)
    with caplog.at_level(logging.WARNING, logger='zato.server.preload'):
        preload.prepare_odb(env)
    assert preload._ENGINES == {}
    assert 'Could not prepare the ODB engine' in caplog.text


def test_routers_of_the_same_routes_share_their_compiled_code():
    routes = [('/a/{x}', 'GET', 1), ('/a/{x}/b', 'POST', 2), ('/c', 'GET', 3)]
    first, second = Router(routes), Router(list(routes))
    assert first._by_method['GET'].__code__ is second._by_method['GET'].__code__
    assert second.route('GET', '/a/7') == (1, {'x': '7'})
    other = Router([('/a/{x}/d', 'GET', 1)])
    assert other._by_method['GET'].__code__ is not first._by_method['GET'].__code__
    assert other.route('GET', '/a/7') is None


def test_the_modules_since_the_masters_are_found_from_the_end_of_sys_modules(monkeypatch):
    monkeypatch.setattr(preload, 'MASTER_MODULES', set(sys.modules))
    assert preload.modules_since_master() == []
    monkeypatch.setitem(sys.modules, 'zato_test_imported_late', type(sys)('zato_test_imported_late'))
    assert preload.modules_since_master() == ['zato_test_imported_late']

