"""Rate-limit and IP allow-list definitions, attached to security definitions, channels and
services; on PostgreSQL also the shared state of exact mode.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OWNERS = ('sec_def', 'channel_rest', 'service')


def upgrade() -> None:
    op.create_table(
        'rate_limit_def',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('rules', sa.Text(), nullable=False),
        sa.Column('mode', sa.String(20), nullable=False),
        sa.Column('parent_id', sa.Integer(), sa.ForeignKey('rate_limit_def.id', ondelete='RESTRICT'), nullable=True),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
    )
    for table in OWNERS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('rate_limit_id', sa.Integer(), nullable=True))
            batch.create_foreign_key(f'fk_{table}_rate_limit_id', 'rate_limit_def', ['rate_limit_id'], ['id'],
                                     ondelete='RESTRICT')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(EXACT_STATE_DDL)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TABLE IF EXISTS rate_limit_state')
    for table in OWNERS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f'fk_{table}_rate_limit_id', type_='foreignkey')
            batch.drop_column('rate_limit_id')
    op.drop_table('rate_limit_def')


# Exact mode's shared counters and the function that checks and charges them in one statement, as
# they were at this revision (zato.security.ratelimit.exact documents them). A migration keeps its own
# copy: what the application says later must not change what an old migration did.
EXACT_STATE_DDL = """
CREATE TABLE IF NOT EXISTS rate_limit_state (
    key text PRIMARY KEY,
    tat double precision NOT NULL DEFAULT 0,
    window_start bigint NOT NULL DEFAULT 0,
    count bigint NOT NULL DEFAULT 0,
    expires_at double precision NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);

CREATE OR REPLACE FUNCTION zato_rate_limit_check(
    p_keys text[], p_kinds int[], p_intervals float8[], p_tolerances float8[],
    p_limits bigint[], p_periods bigint[], p_now float8, p_charge boolean,
    OUT ok boolean, OUT wait float8, OUT refused int)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    t float8 := coalesce(p_now, extract(epoch FROM clock_timestamp()));
    n int := coalesce(array_length(p_keys, 1), 0);
    i int;
    cur_tat float8;
    cur_win bigint;
    cur_count bigint;
    win bigint;
    eff float8;
    over float8;
    new_tat float8[] := array_fill(0::float8, ARRAY[n]);
    new_win bigint[] := array_fill(0::bigint, ARRAY[n]);
    new_count bigint[] := array_fill(0::bigint, ARRAY[n]);
    new_expires float8[] := array_fill(0::float8, ARRAY[n]);
    fix_keys text[] := '{}';
    fix_tat float8[] := '{}';
    lock_order int[] := ARRAY[1];
BEGIN
    ok := true;
    wait := 0;
    refused := -1;
    IF n = 0 THEN
        RETURN;
    END IF;
    -- Locked in key order, so two checks over overlapping keys cannot deadlock (one key: no sort)
    IF n > 1 THEN
        SELECT array_agg(u.ord::int ORDER BY u.k COLLATE "C") INTO lock_order
          FROM unnest(p_keys) WITH ORDINALITY AS u(k, ord);
    END IF;
    FOREACH i IN ARRAY lock_order LOOP
        SELECT r.tat, r.window_start, r.count INTO cur_tat, cur_win, cur_count
          FROM rate_limit_state r WHERE r.key = p_keys[i] FOR UPDATE;
        IF NOT FOUND AND p_charge THEN
            -- A concurrent insert of the same key makes this wait for it, then the SELECT sees its row
            INSERT INTO rate_limit_state (key) VALUES (p_keys[i]) ON CONFLICT (key) DO NOTHING;
            SELECT r.tat, r.window_start, r.count INTO cur_tat, cur_win, cur_count
              FROM rate_limit_state r WHERE r.key = p_keys[i] FOR UPDATE;
        ELSIF NOT FOUND THEN
            cur_tat := 0; cur_win := 0; cur_count := 0;
        END IF;

        IF p_kinds[i] = 1 THEN
            -- GCRA: max(tat, t), clamped in case a clock stepped back
            eff := least(greatest(cur_tat, t), t + p_tolerances[i] + p_intervals[i]);
            IF eff < cur_tat THEN
                fix_keys := fix_keys || p_keys[i];
                fix_tat := fix_tat || eff;
            END IF;
            over := eff - t - p_tolerances[i];
            IF over > 1e-6 THEN
                ok := false;
                IF over > wait THEN wait := over; refused := i - 1; END IF;
            END IF;
            new_tat[i] := eff + p_intervals[i];
            new_win[i] := cur_win;
            new_count[i] := cur_count;
            new_expires[i] := eff + p_intervals[i];
        ELSE
            -- Calendar window in UTC, in whole seconds: the window of t is the window of floor(t)
            win := floor(t)::bigint;
            win := win - (((win % p_periods[i]) + p_periods[i]) % p_periods[i]);
            IF win > cur_win THEN cur_win := win; cur_count := 0; END IF;
            IF cur_count >= p_limits[i] THEN
                ok := false;
                over := cur_win + p_periods[i] - t;
                IF over > wait THEN wait := over; refused := i - 1; END IF;
            END IF;
            new_tat[i] := cur_tat;
            new_win[i] := cur_win;
            new_count[i] := cur_count + 1;
            new_expires[i] := cur_win + p_periods[i];
        END IF;
    END LOOP;

    IF ok AND p_charge AND n = 1 THEN
        UPDATE rate_limit_state
           SET tat = new_tat[1], window_start = new_win[1], count = new_count[1], expires_at = new_expires[1],
               updated_at = now()
         WHERE key = p_keys[1];
    ELSIF ok AND p_charge AND n > 1 THEN
        UPDATE rate_limit_state r
           SET tat = u.tat, window_start = u.win, count = u.cnt, expires_at = u.expires, updated_at = now()
          FROM unnest(p_keys, new_tat, new_win, new_count, new_expires) AS u(key, tat, win, cnt, expires)
         WHERE r.key = u.key;
    ELSIF p_charge AND cardinality(fix_keys) > 0 THEN
        -- The clock stepped back: keep the clamped tat, as counters.py does, but charge nothing
        UPDATE rate_limit_state r SET tat = u.tat, expires_at = u.tat
          FROM unnest(fix_keys, fix_tat) AS u(key, tat)
         WHERE r.key = u.key;
    END IF;
END
$fn$;
"""
