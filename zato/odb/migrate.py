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
    with engine.begin() as conn:
        cfg.attributes['connection'] = conn
        command.upgrade(cfg, revision)
