"""When a pub/sub endpoint last had a message delivered (3.1 kept it in Redis), next to its
last_pub_time: both written by each worker every [pubsub] meta_flush_interval seconds from what it
recorded in memory (zato.server.pubsub_meta), never by the publication itself.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pubsub_endpoint') as batch:
        batch.add_column(sa.Column('last_delivery_time', sa.Float(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table: the copy keeps ids never reused (0008)
    with op.batch_alter_table('pubsub_endpoint', table_kwargs={'sqlite_autoincrement': True}) as batch:
        batch.drop_column('last_delivery_time')
