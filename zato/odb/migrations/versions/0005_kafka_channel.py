"""Inbound Kafka channels.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'channel_kafka',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('out_conn_id', sa.Integer(), sa.ForeignKey('out_conn.id', ondelete='SET NULL'), nullable=True),
        sa.Column('topics', sa.JSON(), nullable=False),
        sa.Column('group_id', sa.String(255), nullable=False),
        sa.Column('service_name', sa.String(400), nullable=False),
        sa.Column('data_format', sa.String(20), nullable=False),
        sa.Column('start_from', sa.String(20), nullable=False),
        sa.Column('on_error', sa.String(20), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('dead_letter_topic', sa.String(249), nullable=False),
        sa.Column('retry_min', sa.Float(), nullable=False),
        sa.Column('retry_max', sa.Float(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
    )


def downgrade() -> None:
    op.drop_table('channel_kafka')
