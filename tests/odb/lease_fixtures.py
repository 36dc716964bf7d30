"""A LeaseStore over a fresh, migrated ODB: SQLite in a temporary file, or a scratch PostgreSQL database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests import pg
from zato.odb.engine import make_engine
from zato.odb.lease import LeaseStore
from zato.odb.migrate import upgrade


@contextlib.contextmanager
def migrated_odb(kind: str, tmp_path, prefix: str) -> Iterator[tuple[Engine, int]]:
    """An engine of a fresh, migrated ODB (`kind` sqlite: a file in `tmp_path`; postgresql: a scratch
    database named from `prefix`) and the id of the one cluster it holds; disposed of afterwards."""
    if kind == 'sqlite':
        with _migrated(f'sqlite:///{tmp_path / "odb.sqlite3"}') as out:
            yield out
    else:
        with pg.scratch_database(prefix) as db, \
                _migrated(pg.dsn(db).replace('postgresql://', 'postgresql+psycopg2://')) as out:
            yield out


@contextlib.contextmanager
def _migrated(url: str) -> Iterator[tuple[Engine, int]]:
    engine = make_engine(url, pool_size=20)
    upgrade(engine)
    with engine.begin() as conn:
        cluster_id = conn.execute(text("INSERT INTO cluster (name, created_at, config_version) "
                                       "VALUES ('c1', CURRENT_TIMESTAMP, 0) RETURNING id")).scalar()
    try:
        yield engine, cluster_id
    finally:
        engine.dispose()


@contextlib.contextmanager
def lease_store(kind: str, tmp_path) -> Iterator[LeaseStore]:
    with migrated_odb(kind, tmp_path, 'zato_lease_') as (engine, cluster_id):
        yield LeaseStore(engine, cluster_id)
