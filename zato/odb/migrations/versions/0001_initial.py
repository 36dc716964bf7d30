"""The initial ODB: cluster, servers, deployed code, services, security definitions, REST channels.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cluster',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(200), nullable=False, unique=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('config_version', sa.Integer(), nullable=False),
    )
    op.create_table(
        'server',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('host', sa.String(200), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('last_join', sa.DateTime(timezone=True), nullable=True),
        sa.Column('up_status', sa.String(20), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
    )
    op.create_table(
        'deployed_code',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('file_name', sa.String(400), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('source_hash', sa.String(64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deployed_by', sa.String(200), nullable=False),
        sa.UniqueConstraint('cluster_id', 'file_name'),
    )
    op.create_table(
        'service',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(400), nullable=False),
        sa.Column('impl_name', sa.String(400), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('is_internal', sa.Boolean(), nullable=False),
        sa.Column('slow_threshold', sa.Integer(), nullable=False),
        sa.Column('code_id', sa.Integer(), sa.ForeignKey('deployed_code.id', ondelete='SET NULL'), nullable=True),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
    )
    op.create_table(
        'sec_def',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('kind', sa.String(40), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('is_internal', sa.Boolean(), nullable=False),
        sa.Column('username', sa.String(200), nullable=False),
        sa.Column('password_hash', sa.String(400), nullable=False),
        sa.Column('realm', sa.String(200), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
    )
    op.create_table(
        'channel_rest',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('is_internal', sa.Boolean(), nullable=False),
        sa.Column('url_path', sa.String(2000), nullable=False),
        sa.Column('method', sa.String(20), nullable=False),
        sa.Column('data_format', sa.String(20), nullable=False),
        sa.Column('service_name', sa.String(400), nullable=False),
        sa.Column('security_id', sa.Integer(), sa.ForeignKey('sec_def.id', ondelete='SET NULL'), nullable=True),
        sa.Column('merge_url_params_req', sa.Boolean(), nullable=False),
        sa.Column('url_params_pri', sa.String(20), nullable=False),
        sa.Column('params_pri', sa.String(40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
    )


def downgrade() -> None:
    for table in ('channel_rest', 'sec_def', 'service', 'deployed_code', 'server', 'cluster'):
        op.drop_table(table)
