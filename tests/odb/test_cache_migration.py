"""Migration 0014 gives every cluster that existed before it the `default` cache a new cluster is
created with (zato.odb.models.default_builtin_cache), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from tests import pg
from zato.odb.engine import make_engine, make_session_factory
from zato.odb.migrate import upgrade
from zato.odb.models import CacheBuiltin


def check_default_cache_added(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine, '0011')
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO cluster (name, created_at, config_version) VALUES "
                              "('old-1', CURRENT_TIMESTAMP, 0), ('old-2', CURRENT_TIMESTAMP, 0)"))
        upgrade(engine)
        with make_session_factory(engine)() as session:
            rows = session.scalars(select(CacheBuiltin).order_by(CacheBuiltin.cluster_id)).all()
            assert [(r.name, r.is_default, r.max_size, r.sync_method) for r in rows] == \
                [('default', True, 10000, 'in-background')] * 2
            assert rows[0].cluster_id != rows[1].cluster_id
    finally:
        engine.dispose()


def test_clusters_from_before_get_a_default_cache_on_sqlite(tmp_path):
    check_default_cache_added(f'sqlite:///{tmp_path / "odb.sqlite3"}')


@pytest.mark.postgresql
def test_clusters_from_before_get_a_default_cache_on_postgresql():
    with pg.scratch_database('zato_cache_mig_') as db:
        check_default_cache_added(pg.dsn(db).replace('postgresql://', 'postgresql+psycopg2://'))
