"""Exact rate-limit counters: one shared count per key for the whole cluster, checked atomically.

Each check is one round trip that either charges every item or none: a request refused at one level
is charged to no level, and two servers racing on one key can never both take its last slot.

* PostgreSQL (required): one statement, ``SELECT * FROM zato_rate_limit_check(...)``. The function
  (in ``DDL``) locks the rows of every key in key order (so overlapping checks cannot deadlock),
  computes every level's verdict from the locked rows and updates them only if all pass. A single
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` cannot do this for more than one key: each row
  would decide alone, so one level could be charged while another refuses.
* Redis (optional): one Lua script, run with EVALSHA. Redis runs a script alone, so it is atomic.

The algorithms, the 1 us slack and the clamping after a clock step are those of counters.py. ``now``
None means the server's clock (PostgreSQL's ``clock_timestamp()``, Redis's ``TIME``), so servers whose
clocks disagree still share one timeline; tests pass ``now`` explicitly.

Keys must be distinct within one check (the limiter charges each definition once per request).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from zato.security.ratelimit.rules import Rule

__all__ = ['DDL', 'ExactBackend', 'ExactResult', 'PostgresExact', 'RedisExact']

TABLE = 'rate_limit_state'

# The migration puts this in the ODB. fillfactor leaves room on each page so the updates of a hot
# row stay HOT (no index write); no index besides the key, for the same reason - purge() scans.
DDL = """
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

_CHECK = ('SELECT ok, wait, refused FROM zato_rate_limit_check('
          '%s::text[], %s::int[], %s::float8[], %s::float8[], %s::bigint[], %s::bigint[], %s::float8, %s)')

# KEYS: the state keys. ARGV: now ('' for the server's clock), charge ('1' or '0'), then five values
# per key: kind, interval, tolerance, limit, period. Returns {ok, wait as text, refused index}:
# Redis turns Lua numbers into integers, so the wait travels as text.
_LUA = """
local t
if ARGV[1] == '' then
    local now = redis.call('TIME')
    t = tonumber(now[1]) + tonumber(now[2]) / 1000000
else
    t = tonumber(ARGV[1])
end
local charge = ARGV[2] == '1'
local ok, wait, refused = 1, 0, -1
local new, fix = {}, {}
for i, key in ipairs(KEYS) do
    local base = 2 + (i - 1) * 5
    local kind = tonumber(ARGV[base + 1])
    local interval = tonumber(ARGV[base + 2])
    local tolerance = tonumber(ARGV[base + 3])
    local limit = tonumber(ARGV[base + 4])
    local period = tonumber(ARGV[base + 5])
    local state = redis.call('HMGET', key, 'tat', 'win', 'count')
    local tat = tonumber(state[1]) or 0
    local win = tonumber(state[2]) or 0
    local count = tonumber(state[3]) or 0
    if kind == 1 then
        local eff = math.min(math.max(tat, t), t + tolerance + interval)
        if eff < tat then fix[key] = eff end
        local over = eff - t - tolerance
        if over > 1e-6 then
            ok = 0
            if over > wait then wait = over; refused = i - 1 end
        end
        new[i] = {eff + interval, win, count, eff + interval}
    else
        local cur = math.floor(t)
        cur = cur - cur % period
        if cur > win then win = cur; count = 0 end
        if count >= limit then
            ok = 0
            local over = win + period - t
            if over > wait then wait = over; refused = i - 1 end
        end
        new[i] = {tat, win, count + 1, win + period}
    end
end
if ok == 1 and charge then
    for i, key in ipairs(KEYS) do
        local v = new[i]
        redis.call('HSET', key, 'tat', string.format('%.17g', v[1]), 'win', string.format('%d', v[2]),
                   'count', string.format('%d', v[3]))
        -- Idle states are indistinguishable from no state, so Redis may drop them when they go idle
        redis.call('PEXPIRE', key, math.max(1, math.ceil((v[4] - t) * 1000)) + 1000)
    end
elseif charge then
    -- The clock stepped back: keep the clamped tat, as counters.py does, but charge nothing
    for key, eff in pairs(fix) do
        redis.call('HSET', key, 'tat', string.format('%.17g', eff))
    end
end
return {ok, string.format('%.17g', wait), refused}
"""


class ExactResult(tuple):
    """``(ok, wait)``, as a 2-tuple; ``refused`` is the index of the item that asked for the longest
    wait (-1 when ok), so the limiter can name the level that refused."""

    refused: int

    def __new__(cls, ok: bool, wait: float, refused: int = -1) -> ExactResult:
        self = super().__new__(cls, (ok, wait))
        self.refused = refused
        return self

    @property
    def ok(self) -> bool:
        return self[0]

    @property
    def wait(self) -> float:
        return self[1]


class ExactBackend(Protocol):
    """What the limiter needs from a shared store of counters."""

    def probe_and_charge_all(self, items: Sequence[tuple[str, Rule]], now: float | None = None,
                             charge: bool = True) -> ExactResult: ...

    def clear(self, prefix: str = '') -> None: ...


def _arguments(items: Sequence[tuple[str, Rule]]) -> tuple[list, list, list, list, list, list]:
    keys, kinds, intervals, tolerances, limits, periods = [], [], [], [], [], []
    for key, rule in items:
        keys.append(key)
        kinds.append(rule.kind)
        intervals.append(rule.interval)
        tolerances.append(rule.tolerance)
        limits.append(rule.limit)
        periods.append(rule.period or 1)
    if len(set(keys)) != len(keys):
        raise ValueError('keys must be distinct within one check')
    return keys, kinds, intervals, tolerances, limits, periods


def _gevent_patched() -> bool:
    monkey = sys.modules.get('gevent.monkey')
    return monkey is not None and monkey.is_module_patched('socket')


class _Pool:
    """A few connections, taken LIFO. The semaphore is threading's, which is gevent's own when the
    process is patched, so a greenlet that finds the pool empty waits without blocking the others.
    It is made on first use, not here, in case the pool is built before gevent patches threading."""

    def __init__(self, connect: Callable[[], Any], size: int, timeout: float) -> None:
        self._connect = connect
        self._idle: list[Any] = []
        self._size = size
        self._slots: Any = None
        self._timeout = timeout

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if self._slots is None:
            self._slots = threading.BoundedSemaphore(self._size)
        if not self._slots.acquire(timeout=self._timeout):
            raise TimeoutError(f'no rate-limit database connection free after {self._timeout} s')
        conn = None
        try:
            conn = self._idle.pop() if self._idle else self._connect()
            yield conn
        except BaseException:
            # The connection may be broken or mid-transaction: never hand it out again
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail too
                    pass
                conn = None
            raise
        finally:
            if conn is not None:
                self._idle.append(conn)
            self._slots.release()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class PostgresExact:
    """Exact counters in PostgreSQL's ``rate_limit_state`` table (see ``DDL``), one statement a check.

    ``dsn`` is anything psycopg2.connect takes. Connections are opened on demand, at most
    ``pool_size`` at once, in autocommit mode with ``synchronous_commit = off``: a counter lost
    in a crash is harmless, and it takes the WAL flush out of every check.
    """

    def __init__(self, dsn: str, pool_size: int = 4, timeout: float = 5.0) -> None:
        import psycopg2

        self._psycopg2 = psycopg2
        self._dsn = dsn
        self._pool = _Pool(self._connect, pool_size, timeout)

    def _connect(self) -> Any:
        # Checked at each connect, not at construction, which may come before gevent patches the process
        if _gevent_patched():
            from zato.odb.gevent_psycopg import install
            install()
        conn = self._psycopg2.connect(self._dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('SET synchronous_commit = off')
        return conn

    def create_schema(self) -> None:
        """Runs ``DDL``: for tests and development; deployments get it from the ODB migrations."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(DDL)

    def probe_and_charge_all(self, items: Sequence[tuple[str, Rule]], now: float | None = None,
                             charge: bool = True) -> ExactResult:
        """Checks every (key, rule) and charges them all only if all pass, atomically.

        Returns ``(ok, wait)``: wait is 0.0 when ok, else the longest wait among the refusing items.
        With ``charge=False`` nothing is written (used to learn the wait of a refused request).
        """
        if not items:
            return ExactResult(True, 0.0)
        args = (*_arguments(items), now, charge)
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(_CHECK, args)
            ok, wait, refused = cur.fetchone()
        return ExactResult(bool(ok), float(wait), int(refused))

    def clear(self, prefix: str = '') -> None:
        """Forgets the counters whose key starts with ``prefix`` (all of them by default)."""
        pattern = prefix.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_') + '%'
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(f'DELETE FROM {TABLE} WHERE key LIKE %s', (pattern,))  # noqa: S608 - a constant

    def purge(self, now: float | None = None) -> int:
        """Deletes idle states (their limits would treat them as absent); returns how many."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(f'DELETE FROM {TABLE} WHERE expires_at <= coalesce(%s::float8, '  # noqa: S608
                        'extract(epoch FROM clock_timestamp()))', (now,))
            return cur.rowcount

    def close(self) -> None:
        self._pool.close()


class RedisExact:
    """Exact counters in Redis, one Lua script a check (EVALSHA, loaded again if Redis lost it).

    ``client`` is a redis-py client; without one, ``url`` is used (redis-py is imported only then,
    since Redis is optional). Keys are stored as hashes under ``prefix`` and expire when idle.
    All keys of one check must live on one node (plain Redis, or one hash slot in a cluster).
    """

    def __init__(self, client: Any = None, url: str = 'redis://127.0.0.1:6379/0', prefix: str = 'zato:rl:') -> None:
        if client is None:
            import redis
            client = redis.Redis.from_url(url)
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_LUA)

    def probe_and_charge_all(self, items: Sequence[tuple[str, Rule]], now: float | None = None,
                             charge: bool = True) -> ExactResult:
        """Checks every (key, rule) and charges them all only if all pass, atomically (see PostgresExact)."""
        if not items:
            return ExactResult(True, 0.0)
        keys, kinds, intervals, tolerances, limits, periods = _arguments(items)
        argv: list[str] = ['' if now is None else repr(float(now)), '1' if charge else '0']
        for values in zip(kinds, intervals, tolerances, limits, periods, strict=True):
            argv.extend(repr(value) for value in values)
        ok, wait, refused = self._script(keys=[self._prefix + key for key in keys], args=argv)
        return ExactResult(bool(ok), float(wait), int(refused))

    def clear(self, prefix: str = '') -> None:
        """Forgets the counters whose key starts with ``prefix`` (all of them by default)."""
        pattern = self._prefix + prefix.replace('\\', '\\\\').replace('*', '\\*').replace('?', '\\?') \
            .replace('[', '\\[') + '*'
        batch = []
        for key in self._client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                self._client.delete(*batch)
                batch.clear()
        if batch:
            self._client.delete(*batch)

    def close(self) -> None:
        self._client.close()
