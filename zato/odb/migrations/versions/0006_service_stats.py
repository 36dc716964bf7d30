"""Per-service usage statistics, per minute.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'service_stats',
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('minute', sa.DateTime(timezone=True), nullable=False),
        sa.Column('service_name', sa.String(400), nullable=False),
        sa.Column('server_name', sa.String(200), nullable=False),
        sa.Column('worker_pid', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('errors', sa.Integer(), nullable=False),
        sa.Column('total_ms', sa.Float(), nullable=False),
        sa.Column('max_ms', sa.Float(), nullable=False),
        sa.Column('histogram', sa.JSON(), nullable=False),
        sa.Column('last_call', sa.DateTime(timezone=True), nullable=False),
        # Time first: every query reads a window of minutes of one cluster
        sa.PrimaryKeyConstraint('cluster_id', 'minute', 'service_name', 'server_name', 'worker_pid'),
    )
    op.create_table(
        'worker_heartbeat',
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('server_name', sa.String(200), nullable=False),
        sa.Column('pid', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('flush_interval', sa.Float(), nullable=False),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('cluster_id', 'server_name', 'pid'),
    )


def downgrade() -> None:
    op.drop_table('worker_heartbeat')
    op.drop_table('service_stats')
