"""Web-admin users, sessions and the audit log.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_admin_user',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('username', sa.String(200), nullable=False, unique=True),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('totp_key', sa.Text(), nullable=False),
        sa.Column('totp_pending_key', sa.Text(), nullable=False),
        sa.Column('totp_label', sa.String(200), nullable=False),
        sa.Column('totp_last_step', sa.Integer(), nullable=False),
        sa.Column('failed_attempts', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        'web_admin_session',
        sa.Column('token_hash', sa.String(64), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('web_admin_user.id', ondelete='CASCADE'), nullable=False),
        sa.Column('csrf_token', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'web_admin_audit',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('username', sa.String(200), nullable=False),
        sa.Column('action', sa.String(100), nullable=False),
        sa.Column('object_kind', sa.String(100), nullable=False),
        sa.Column('object_name', sa.String(400), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('remote_addr', sa.String(100), nullable=False),
    )
    op.create_index('ix_web_admin_audit_at', 'web_admin_audit', ['at'])


def downgrade() -> None:
    op.drop_index('ix_web_admin_audit_at', 'web_admin_audit')
    op.drop_table('web_admin_audit')
    op.drop_table('web_admin_session')
    op.drop_table('web_admin_user')
