"""Built-in caches (zato.cache, zato.server.caches), and the `default` cache of every cluster there is.

The DDL is this migration's own copy, as the table stood at this revision.

Revision ID: 0014
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cache_builtin',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('max_size', sa.Integer(), nullable=False),
        sa.Column('max_item_size', sa.Integer(), nullable=False),
        sa.Column('extend_expiry_on_get', sa.Boolean(), nullable=False),
        sa.Column('extend_expiry_on_set', sa.Boolean(), nullable=False),
        sa.Column('sync_method', sa.String(40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
        sqlite_autoincrement=True,
    )
    # Clusters created before this revision get the default cache that new ones are created with
    op.execute("INSERT INTO cache_builtin (cluster_id, name, is_active, is_default, max_size, max_item_size, "
               "extend_expiry_on_get, extend_expiry_on_set, sync_method, version, opaque) "
               "SELECT id, 'default', true, true, 10000, 10000, true, true, 'in-background', 1, '{}' FROM cluster")


def downgrade() -> None:
    op.drop_table('cache_builtin')
