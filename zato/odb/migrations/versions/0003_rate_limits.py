"""Rate-limit and IP allow-list definitions, attached to security definitions, channels and
services; on PostgreSQL also the shared state of exact mode.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OWNERS = ('sec_def', 'channel_rest', 'service')


def upgrade() -> None:
    op.create_table(
        'rate_limit_def',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('rules', sa.Text(), nullable=False),
        sa.Column('mode', sa.String(20), nullable=False),
        sa.Column('parent_id', sa.Integer(), sa.ForeignKey('rate_limit_def.id', ondelete='RESTRICT'), nullable=True),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
    )
    for table in OWNERS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('rate_limit_id', sa.Integer(), nullable=True))
            batch.create_foreign_key(f'fk_{table}_rate_limit_id', 'rate_limit_def', ['rate_limit_id'], ['id'],
                                     ondelete='RESTRICT')
    if op.get_bind().dialect.name == 'postgresql':
        from zato.security.ratelimit.exact import DDL
        op.execute(DDL)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TABLE IF EXISTS rate_limit_state')
    for table in OWNERS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f'fk_{table}_rate_limit_id', type_='foreignkey')
            batch.drop_column('rate_limit_id')
    op.drop_table('rate_limit_def')
