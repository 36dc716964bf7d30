"""Fixtures: both twins of the approximate counters, an injected clock, and the exact-mode stores.

The twins are imported by name, not through zato.accel, so ZATO_PURE_PYTHON (which only steers
zato.accel.load) does not change what these tests cover: a built twin is always checked.
"""

from __future__ import annotations

import secrets

import psycopg2
import pytest

from tests import pg
from tests.twins import twin_fixtures

PURE = 'zato.security.ratelimit.counters'
COMPILED = 'zato.cy.ratelimit'

# A Tuesday, 2023-11-14T22:13:20Z: far from 0 so float rounding is what production sees
EPOCH = 1_700_000_000.0


# `counters_module` is one of the twins (every test taking it runs once per twin); `twins` is the pair
counters_module, twins = twin_fixtures(PURE, COMPILED, 'counters_module')


class FakeClock:
    """A clock the test moves by hand; never sleeps."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ################################################################################################
# Exact-mode stores


@pytest.fixture(scope='session')
def pg_database() -> str:
    """A throwaway database with the rate-limit schema; dropped at the end of the session."""
    from zato.security.ratelimit.exact import DDL

    name = f'zato_rl_{secrets.token_hex(4)}'
    admin = psycopg2.connect(**pg.connect_kwargs())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE {name}')
    try:
        conn = psycopg2.connect(**pg.connect_kwargs(name))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(DDL)
        conn.close()
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_exact(pg_database: str):
    from zato.security.ratelimit.exact import PostgresExact

    backend = PostgresExact(pg.dsn(pg_database))
    backend.clear()
    yield backend
    backend.close()


def redis_client_or_skip():
    try:
        import redis
    except ImportError:
        pytest.skip('redis-py is not installed (Redis is optional: pip install redis)')
    client = redis.Redis(host='127.0.0.1', port=6379, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.skip(f'Redis is not reachable at 127.0.0.1:6379 ({e}); Redis is optional')
    return client


@pytest.fixture
def redis_exact():
    from zato.security.ratelimit.exact import RedisExact

    client = redis_client_or_skip()
    # A prefix of our own, so a shared Redis is not touched beyond it
    backend = RedisExact(client, prefix=f'zato-test:rl:{secrets.token_hex(4)}:')
    yield backend
    backend.clear()
    backend.close()


@pytest.fixture(params=['postgresql', 'redis'])
def exact_backend(request: pytest.FixtureRequest):
    """Each exact store in turn; the Redis one is skipped when Redis is not there."""
    if request.param == 'postgresql':
        request.applymarker(pytest.mark.postgresql)
        return request.getfixturevalue('pg_exact')
    return request.getfixturevalue('redis_exact')
