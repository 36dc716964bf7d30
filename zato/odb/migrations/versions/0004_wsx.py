"""WebSocket channels and outgoing connections.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'channel_wsx',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('url_path', sa.String(2000), nullable=False),
        sa.Column('service_name', sa.String(400), nullable=False),
        sa.Column('data_format', sa.String(20), nullable=False),
        sa.Column('security_id', sa.Integer(), sa.ForeignKey('sec_def.id', ondelete='SET NULL'), nullable=True),
        sa.Column('max_message_size', sa.Integer(), nullable=False),
        sa.Column('ping_interval', sa.Integer(), nullable=False),
        sa.Column('pings_missed_threshold', sa.Integer(), nullable=False),
        sa.Column('new_token_wait_time', sa.Integer(), nullable=False),
        sa.Column('token_ttl', sa.Integer(), nullable=False),
        sa.Column('send_queue_max', sa.Integer(), nullable=False),
        sa.Column('origins', sa.JSON(), nullable=False),
        sa.Column('services_allowed', sa.JSON(), nullable=False),
        sa.Column('subprotocols', sa.JSON(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
        sa.UniqueConstraint('cluster_id', 'url_path'),
    )
    op.create_table(
        'out_conn',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('kind', sa.String(40), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('config', sa.JSON(), nullable=False),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'kind', 'name'),
    )


def downgrade() -> None:
    op.drop_table('out_conn')
    op.drop_table('channel_wsx')
