"""Where the tests find PostgreSQL: scripts/peers.sh starts it and sets ZATO_TEST_PG_*."""

from __future__ import annotations

import os

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
