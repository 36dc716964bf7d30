"""SSO linked credentials ("multi-credential accounts"): a Basic Auth or JWT security definition
linked to an SSO user (zato.sso.linked). One user per definition (the unique sec_def_id); a link
goes with its user or its definition (ON DELETE CASCADE).

The DDL is this migration's own copy, as the table stood at this revision.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'zato_sso_linked_auth',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('zato_sso_user.id', ondelete='CASCADE'), nullable=False),
        sa.Column('sec_def_id', sa.Integer(), sa.ForeignKey('sec_def.id', ondelete='CASCADE'), nullable=False,
                  unique=True),
        sa.Column('auth_type', sa.String(40), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('creation_time', sa.Float(), nullable=False),
        sa.Column('created_by', sa.String(200), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_zato_sso_linked_auth_user_id', 'zato_sso_linked_auth', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_zato_sso_linked_auth_user_id', 'zato_sso_linked_auth')
    op.drop_table('zato_sso_linked_auth')
