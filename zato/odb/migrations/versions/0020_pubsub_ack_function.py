"""PostgreSQL: a subscription's acknowledgement as one function call, zato_pubsub_ack(sub_id, msg_ids),
instead of a transaction of four round trips (BEGIN, lock, delete, COMMIT). The function runs the
same two steps as zato.pubsub.store did: it locks the messages the subscription holds among msg_ids
(in id order), then - in a statement of its own, whose snapshot (a VOLATILE function's statements
each take a new one) sees every acknowledgement committed before the locks were had - deletes the
subscription's entries, the messages no other queue holds, and lowers their topics' depth. It returns
how many entries of the subscription it deleted. SQLite has no functions: its store runs the steps.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION zato_pubsub_ack(p_sub_id integer, p_msg_ids varchar[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_ids bigint[];
    v_deleted bigint;
BEGIN
    -- Not waiting for the WAL to reach the disk: an acknowledgement lost in a crash of PostgreSQL gives
    -- the message again (at least once still holds); it is never a message lost
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT array_agg(id ORDER BY id) INTO v_ids FROM (
        SELECT m.id FROM pubsub_message m
         WHERE m.id IN (SELECT q.message_id FROM pubsub_queue q JOIN pubsub_message mm ON mm.id = q.message_id
                         WHERE q.sub_id = p_sub_id AND mm.msg_id = ANY(p_msg_ids))
         ORDER BY m.id
           FOR UPDATE OF m) AS locked;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    WITH d AS (
      DELETE FROM pubsub_queue q WHERE q.sub_id = p_sub_id AND q.message_id = ANY(v_ids) RETURNING q.message_id
    ), o AS (
      DELETE FROM pubsub_message m
       WHERE m.id = ANY(v_ids)
         AND NOT EXISTS (SELECT 1 FROM pubsub_queue q WHERE q.message_id = m.id AND q.sub_id <> p_sub_id)
      RETURNING m.topic_id
    ), lowered AS (
      UPDATE pubsub_topic t SET gd_depth = t.gd_depth - c.n
        FROM (SELECT topic_id, count(*) AS n FROM o GROUP BY topic_id) c
       WHERE t.id = c.topic_id
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM d) + 0 * (SELECT count(*) FROM lowered) INTO v_deleted;
    RETURN v_deleted;
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS zato_pubsub_ack(integer, varchar[])')
