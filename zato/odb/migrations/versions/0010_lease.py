"""Cluster-wide leases: the one primitive behind self.lock() and, later, the scheduler and pub/sub's
delivery tasks (zato.odb.lease).

One row per lease name of a cluster, never deleted, so that its fencing token only grows. Times are
seconds since the epoch by the ODB's clock. The key is the natural one, (cluster_id, name), which is
also what an acquisition's INSERT ... ON CONFLICT names; there is no surrogate id to keep unique.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lease',
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(400), nullable=False),
        sa.Column('holder', sa.String(200), nullable=False),
        sa.Column('token', sa.BigInteger(), nullable=False),
        sa.Column('acquired_at', sa.Float(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('cluster_id', 'name'),
    )


def downgrade() -> None:
    op.drop_table('lease')
