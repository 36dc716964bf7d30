"""The Alembic migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets

import psycopg2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests import pg
from zato.odb.engine import make_engine
from zato.odb.migrate import upgrade
from zato.odb.models import Base


# Kept by their own modules' DDL, outside the models: exact-mode rate-limit state, the bus's tables
NOT_MODELLED = {'rate_limit_state', 'zato_bus_payload', 'zato_bus_any'}


def include(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == 'table' and name in NOT_MODELLED)


def assert_no_diff(engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={'include_object': include}), Base.metadata)
    assert diff == []


def test_migrations_match_the_models_on_sqlite(tmp_path):
    engine = make_engine(f'sqlite:///{tmp_path / "odb.sqlite3"}')
    upgrade(engine)
    assert_no_diff(engine)
    engine.dispose()


@pytest.mark.postgresql
def test_migrations_match_the_models_on_postgresql():
    db = f'zato_mig_{secrets.token_hex(4)}'
    admin = psycopg2.connect(**pg.connect_kwargs())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE {db}')
    try:
        engine = make_engine(pg.dsn(db).replace('postgresql://', 'postgresql+psycopg2://'))
        upgrade(engine)
        assert_no_diff(engine)
        engine.dispose()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS {db} WITH (FORCE)')
        admin.close()
