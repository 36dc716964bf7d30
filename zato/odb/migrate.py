"""Brings an ODB to the newest schema with Alembic, programmatically."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = os.path.dirname(os.path.abspath(__file__))


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option('script_location', os.path.join(HERE, 'migrations'))
    return cfg


def upgrade(engine: Engine, revision: str = 'head') -> None:
    cfg = alembic_config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == 'sqlite'
        if sqlite:
            # A migration that rebuilds a table (SQLite's only way to change one) drops the old copy;
            # with foreign keys on, that drop would null or delete every row referring to it. The pragma
            # is a no-op inside a transaction, so it is set before the migrations' transaction begins.
            conn.exec_driver_sql('PRAGMA foreign_keys=OFF')
            conn.commit()
        with conn.begin():
            cfg.attributes['connection'] = conn
            command.upgrade(cfg, revision)
            if sqlite:
                broken = conn.exec_driver_sql('PRAGMA foreign_key_check').fetchall()
                if broken:
                    raise RuntimeError(f'ODB migration left rows referring to missing rows: {broken[:10]}')
        if sqlite:
            conn.exec_driver_sql('PRAGMA foreign_keys=ON')
            conn.commit()
