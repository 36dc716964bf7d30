"""Single Sign-On: users (with their TOTP and brute-force state) and sessions (zato.sso).

The DDL is this migration's own copy, as the tables stood at this revision (zato.odb.models
describes the current ones). Ids are AUTOINCREMENT on SQLite, for the reason 0008 gives.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'zato_sso_user',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('user_id', sa.String(64), nullable=False, unique=True),
        sa.Column('username', sa.String(200), nullable=False),
        sa.Column('username_key', sa.String(200), nullable=False),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('password_expiry', sa.Float(), nullable=False),
        sa.Column('password_last_set', sa.Float(), nullable=False),
        sa.Column('password_must_change', sa.Boolean(), nullable=False),
        sa.Column('email', sa.Text(), nullable=False),
        sa.Column('email_key', sa.String(64), nullable=False),
        sa.Column('display_name', sa.String(200), nullable=False),
        sa.Column('first_name', sa.String(200), nullable=False),
        sa.Column('middle_name', sa.String(200), nullable=False),
        sa.Column('last_name', sa.String(200), nullable=False),
        sa.Column('display_name_upper', sa.String(200), nullable=False),
        sa.Column('first_name_upper', sa.String(200), nullable=False),
        sa.Column('middle_name_upper', sa.String(200), nullable=False),
        sa.Column('last_name_upper', sa.String(200), nullable=False),
        sa.Column('is_super_user', sa.Boolean(), nullable=False),
        sa.Column('is_locked', sa.Boolean(), nullable=False),
        sa.Column('locked_time', sa.Float(), nullable=True),
        sa.Column('locked_by', sa.String(200), nullable=False),
        sa.Column('approval_status', sa.String(40), nullable=False),
        sa.Column('approval_status_time', sa.Float(), nullable=False),
        sa.Column('approval_status_mod_by', sa.String(200), nullable=False),
        sa.Column('sign_up_status', sa.String(40), nullable=False),
        sa.Column('sign_up_time', sa.Float(), nullable=False),
        sa.Column('creation_time', sa.Float(), nullable=False),
        sa.Column('is_totp_enabled', sa.Boolean(), nullable=False),
        sa.Column('totp_key', sa.Text(), nullable=False),
        sa.Column('totp_label', sa.String(200), nullable=False),
        sa.Column('totp_last_step', sa.BigInteger(), nullable=False),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('last_failure_time', sa.Float(), nullable=False),
        sa.Column('lockout_count', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.Float(), nullable=False),
        sa.Column('last_login_time', sa.Float(), nullable=True),
        sa.Column('is_rate_limit_active', sa.Boolean(), nullable=False),
        sa.Column('rate_limit_def', sa.Text(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'username_key'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_zato_sso_user_email_key', 'zato_sso_user', ['email_key'])
    op.create_table(
        'zato_sso_session',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('ust_hash', sa.String(64), nullable=False, unique=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('zato_sso_user.id', ondelete='CASCADE'), nullable=False),
        sa.Column('current_app', sa.String(200), nullable=False),
        sa.Column('creation_time', sa.Float(), nullable=False),
        sa.Column('expiration_time', sa.Float(), nullable=False),
        sa.Column('max_expiration_time', sa.Float(), nullable=False),
        sa.Column('remote_addr', sa.String(100), nullable=False),
        sa.Column('user_agent', sa.String(400), nullable=False),
        sa.Column('auth_type', sa.String(40), nullable=False),
        sa.Column('auth_principal', sa.String(200), nullable=False),
        sa.Column('ext_session_id', sa.String(200), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_zato_sso_session_user_id', 'zato_sso_session', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_zato_sso_session_user_id', 'zato_sso_session')
    op.drop_table('zato_sso_session')
    op.drop_index('ix_zato_sso_user_email_key', 'zato_sso_user')
    op.drop_table('zato_sso_user')
