"""A LeaseStore over a fresh, migrated ODB: SQLite in a temporary file, or a scratch PostgreSQL database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import text

from tests import pg
from zato.odb.engine import make_engine
from zato.odb.lease import LeaseStore
from zato.odb.migrate import upgrade


@contextlib.contextmanager
def lease_store(kind: str, tmp_path) -> Iterator[LeaseStore]:
    if kind == 'sqlite':
        with _store(f'sqlite:///{tmp_path / "odb.sqlite3"}') as store:
            yield store
    else:
        with pg.scratch_database('zato_lease_') as db, \
                _store(pg.dsn(db).replace('postgresql://', 'postgresql+psycopg2://')) as store:
            yield store


@contextlib.contextmanager
def _store(url: str) -> Iterator[LeaseStore]:
    engine = make_engine(url, pool_size=20)
    upgrade(engine)
    with engine.begin() as conn:
        cluster_id = conn.execute(text("INSERT INTO cluster (name, created_at, config_version) "
                                       "VALUES ('c1', CURRENT_TIMESTAMP, 0) RETURNING id")).scalar()
    try:
        yield LeaseStore(engine, cluster_id)
    finally:
        engine.dispose()
