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


class PrivateServer:
    """A PostgreSQL server of a test's own (initdb into a temporary directory, trust authentication,
    127.0.0.1 only), which the test may stop and start again without touching the machine's shared one.
    Run as root, its files belong to the `postgres` user and its commands run as that user."""

    def __init__(self, port: int) -> None:
        import shutil
        import tempfile
        self.port = port
        self.dir = tempfile.mkdtemp(prefix='zato-pg-')
        self.data = os.path.join(self.dir, 'data')
        self.bin = _pg_bin()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, 'postgres')
        self._run('initdb', '-D', self.data, '-A', 'trust', '-U', 'postgres', '--no-sync')

    def _run(self, tool: str, *args: str) -> None:
        import subprocess
        cmd = [os.path.join(self.bin, tool), *args]
        if self._as_postgres:
            cmd = ['runuser', '-u', 'postgres', '--', *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        opts = f'-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=60'
        self._run('pg_ctl', '-D', self.data, '-l', os.path.join(self.dir, 'log'), '-o', opts, '-w', 'start')

    def stop(self, mode: str = 'immediate') -> None:
        """Stops the server; `immediate` is as abrupt as a crash (connections are cut, nothing is flushed)."""
        self._run('pg_ctl', '-D', self.data, '-m', mode, '-w', 'stop')

    def dsn(self, dbname: str = 'postgres') -> str:
        return f'postgresql://postgres@127.0.0.1:{self.port}/{dbname}'

    def remove(self) -> None:
        import shutil
        with contextlib.suppress(Exception):
            self.stop('immediate')
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bin() -> str:
    import glob
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/pg_ctl'), key=lambda p: int(p.split('/')[4]))
    if not found:
        import pytest
        pytest.fail('PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed; scripts/peers.sh '
                    'installs them')
    return os.path.dirname(found[-1])


@contextlib.contextmanager
def private_server(port: int) -> Iterator[PrivateServer]:
    """A started PrivateServer on `port`, removed (stopped, its files deleted) afterwards."""
    server = PrivateServer(port)
    try:
        server.start()
        yield server
    finally:
        server.remove()
