"""Scheduler jobs and the record of their firings (zato.server.scheduler).

The DDL is this migration's own copy, as the tables stood at this revision.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scheduler_job',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('job_type', sa.String(20), nullable=False),
        sa.Column('service_name', sa.String(400), nullable=False),
        sa.Column('start_date', sa.Float(), nullable=False),
        sa.Column('weeks', sa.Integer(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('hours', sa.Integer(), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('seconds', sa.Integer(), nullable=False),
        sa.Column('repeats', sa.Integer(), nullable=True),
        sa.Column('cron_definition', sa.String(400), nullable=False),
        sa.Column('timezone', sa.String(100), nullable=False),
        sa.Column('extra', sa.Text(), nullable=False),
        sa.Column('misfire', sa.String(20), nullable=False),
        sa.Column('allow_overlap', sa.Boolean(), nullable=False),
        sa.Column('next_run', sa.Float(), nullable=True),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('last_run_start', sa.Float(), nullable=True),
        sa.Column('last_run_end', sa.Float(), nullable=True),
        sa.Column('last_result', sa.String(20), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'scheduler_firing',
        sa.Column('job_id', sa.Integer(), sa.ForeignKey('scheduler_job.id', ondelete='CASCADE'), nullable=False),
        sa.Column('due_at', sa.Float(), nullable=False),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('kind', sa.String(20), nullable=False),
        sa.Column('token', sa.BigInteger(), nullable=False),
        sa.Column('cid', sa.String(64), nullable=False),
        sa.Column('fired_at', sa.Float(), nullable=False),
        sa.Column('sends', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.Float(), nullable=True),
        sa.Column('worker', sa.String(200), nullable=False),
        sa.Column('ended_at', sa.Float(), nullable=True),
        sa.Column('result', sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint('job_id', 'due_at'),
    )
    op.create_index('ix_scheduler_firing_cluster_id', 'scheduler_firing', ['cluster_id'])
    op.create_index('ix_scheduler_firing_fired_at', 'scheduler_firing', ['fired_at'])


def downgrade() -> None:
    op.drop_index('ix_scheduler_firing_fired_at', 'scheduler_firing')
    op.drop_index('ix_scheduler_firing_cluster_id', 'scheduler_firing')
    op.drop_table('scheduler_firing')
    op.drop_table('scheduler_job')
