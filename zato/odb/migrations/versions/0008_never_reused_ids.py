"""Ids that are never handed out twice: SQLite's AUTOINCREMENT on every table with a surrogate id.

Without it SQLite gives a new row the largest id in use plus one, so deleting the newest object and
creating another hands the new one the old id, and whatever a worker cached under that id (verified
credentials, rate-limit counters, connections) would seem to belong to the new object. PostgreSQL's
sequences never go back, so there is nothing to do there.

SQLite cannot add AUTOINCREMENT to a table; each table is rebuilt (Alembic's batch mode copies it,
rows, ids and constraints included). zato.odb.migrate runs migrations with foreign keys off, so the
rebuild does not set references to NULL or cascade, and checks them all once it is done.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Parents before the tables that refer to them, as they stood at revision 0007
TABLES = ('cluster', 'server', 'deployed_code', 'rate_limit_def', 'service', 'sec_def', 'channel_rest',
          'channel_wsx', 'out_conn', 'channel_kafka', 'web_admin_user', 'web_admin_audit')


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate='always', table_kwargs={'sqlite_autoincrement': True}):
            pass


def downgrade() -> None:
    pass  # AUTOINCREMENT only ever prevents reuse; going back has no reason to undo it
