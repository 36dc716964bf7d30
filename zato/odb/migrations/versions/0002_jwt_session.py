"""JWT sessions: sliding expiry and log-out across the cluster.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'jwt_session',
        sa.Column('jti', sa.String(64), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('sec_def_id', sa.Integer(), sa.ForeignKey('sec_def.id', ondelete='CASCADE'), nullable=False),
        sa.Column('username', sa.String(200), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('jwt_session')
