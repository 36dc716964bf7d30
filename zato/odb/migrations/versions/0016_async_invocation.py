"""invoke_async kept in the ODB until it ran (at least once), and the state of fan-out and parallel
calls in flight (zato.server.async_queue).

The DDL is this migration's own copy, as the tables stood at this revision.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'async_invocation',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('cid', sa.String(64), nullable=False),
        sa.Column('service', sa.String(400), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('channel', sa.String(40), nullable=False),
        sa.Column('data_format', sa.String(20), nullable=False),
        sa.Column('transport', sa.String(20), nullable=False),
        sa.Column('callback', sa.String(400), nullable=False),
        sa.Column('zato_ctx', sa.JSON(), nullable=False),
        sa.Column('environ', sa.JSON(), nullable=False),
        sa.Column('group_cid', sa.String(64), nullable=True),
        sa.Column('group_index', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('claimed_by', sa.String(200), nullable=False),
        sa.Column('claimed_until', sa.Float(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_async_invocation_claimed_until', 'async_invocation', ['claimed_until'])
    op.create_table(
        'invocation_group',
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('cid', sa.String(64), nullable=False),
        sa.Column('kind', sa.String(20), nullable=False),
        sa.Column('source', sa.String(400), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('on_target', sa.JSON(), nullable=False),
        sa.Column('on_final', sa.JSON(), nullable=False),
        sa.Column('req_ts_utc', sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint('cluster_id', 'cid'),
    )
    op.create_table(
        'invocation_group_response',
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('group_cid', sa.String(64), nullable=False),
        sa.Column('idx', sa.Integer(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('cluster_id', 'group_cid', 'idx'),
    )


def downgrade() -> None:
    op.drop_table('invocation_group_response')
    op.drop_table('invocation_group')
    op.drop_index('ix_async_invocation_claimed_until', 'async_invocation')
    op.drop_table('async_invocation')
