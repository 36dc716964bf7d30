"""SSO tokens sent by email: sign-up confirmations and password resets (zato.sso.tokens).

The DDL is this migration's own copy, as the table stood at this revision.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'zato_sso_token',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('token_hash', sa.String(64), nullable=False, unique=True),
        sa.Column('kind', sa.String(40), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('zato_sso_user.id', ondelete='CASCADE'), nullable=False),
        sa.Column('creation_time', sa.Float(), nullable=False),
        sa.Column('expiration_time', sa.Float(), nullable=False),
        sa.Column('used_time', sa.Float(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_zato_sso_token_user_id', 'zato_sso_token', ['user_id'])
    op.create_index('ix_zato_sso_token_expiration_time', 'zato_sso_token', ['expiration_time'])


def downgrade() -> None:
    op.drop_index('ix_zato_sso_token_expiration_time', 'zato_sso_token')
    op.drop_index('ix_zato_sso_token_user_id', 'zato_sso_token')
    op.drop_table('zato_sso_token')
