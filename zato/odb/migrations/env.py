"""Alembic environment: the URL comes from zato.odb.migrate, never from an ini file."""

from __future__ import annotations

from alembic import context

from zato.odb.models import Base

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes['connection']
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == 'sqlite')
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
