"""SSO attributes of users and sessions (zato.sso.attr).

The DDL is this migration's own copy, as the table stood at this revision.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'zato_sso_attr',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('zato_sso_user.id', ondelete='CASCADE'), nullable=False),
        sa.Column('session_id', sa.Integer(), sa.ForeignKey('zato_sso_session.id', ondelete='CASCADE'),
                  nullable=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('is_encrypted', sa.Boolean(), nullable=False),
        sa.Column('creation_time', sa.Float(), nullable=False),
        sa.Column('last_modified', sa.Float(), nullable=False),
        sa.Column('expiration_time', sa.Float(), nullable=True),
        sa.UniqueConstraint('session_id', 'name'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_zato_sso_attr_user_id', 'zato_sso_attr', ['user_id'])
    op.create_index('ix_zato_sso_attr_expiration_time', 'zato_sso_attr', ['expiration_time'])
    # A user's own attributes (no session) are unique by name: NULLs are distinct in the constraint above
    op.create_index('uq_zato_sso_attr_user_name', 'zato_sso_attr', ['user_id', 'name'], unique=True,
                    sqlite_where=sa.text('session_id IS NULL'), postgresql_where=sa.text('session_id IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_zato_sso_attr_user_name', 'zato_sso_attr')
    op.drop_index('ix_zato_sso_attr_expiration_time', 'zato_sso_attr')
    op.drop_index('ix_zato_sso_attr_user_id', 'zato_sso_attr')
    op.drop_table('zato_sso_attr')
