"""Where the tests find PostgreSQL: scripts/peers.sh starts it and sets ZATO_TEST_PG_*."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

HOST = os.environ.get('ZATO_TEST_PG_HOST', '127.0.0.1')
PORT = int(os.environ.get('ZATO_TEST_PG_PORT', '5432'))
USER = os.environ.get('ZATO_TEST_PG_USER', 'postgres')
PASSWORD = os.environ.get('ZATO_TEST_PG_PASSWORD', '')


def connect_kwargs(dbname: str = 'postgres') -> dict:
    kwargs = {'host': HOST, 'port': PORT, 'user': USER, 'dbname': dbname, 'connect_timeout': 3}
    if PASSWORD:
        kwargs['password'] = PASSWORD
    return kwargs


def dsn(dbname: str) -> str:
    auth = f'{USER}:{PASSWORD}' if PASSWORD else USER
    return f'postgresql://{auth}@{HOST}:{PORT}/{dbname}'


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new, empty database named `prefix` plus random hex, dropped (connections and all) afterwards.
    PostgreSQL out of reach fails the test with the reason: scripts/test.sh starts it."""
    import psycopg2
    import pytest
    try:
        admin = psycopg2.connect(**connect_kwargs())
    except psycopg2.OperationalError as e:
        pytest.fail(f'PostgreSQL is not reachable at {HOST}:{PORT} ({e}); scripts/test.sh starts it')
    admin.autocommit = True
    name = f'{prefix}{secrets.token_hex(4)}'
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE {name}')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')
        admin.close()
