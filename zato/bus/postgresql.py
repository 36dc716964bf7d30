"""The `postgresql` cluster bus: servers on many hosts sharing one PostgreSQL database.

- `publish` is `pg_notify('zato_bus', <message>)`. NOTIFY payloads must stay under 8000 bytes,
  so a larger message goes into `zato_bus_payload` and the notification carries `{"ref": id}`.
  Such rows are deleted an hour later by whichever instance publishes next.
- `send_any` inserts into `zato_bus_any` and wakes everyone with `pg_notify('zato_bus_any', '')`.
  Each woken instance claims rows one at a time with `DELETE ... FOR UPDATE SKIP LOCKED ...
  RETURNING`; a row deleted is a row owned, which is what makes delivery at-most-once. A poll
  every `POLL_INTERVAL` seconds catches rows whose notification was missed.

Each instance keeps one LISTEN connection, read by a background greenlet, and a few connections
for publishing. They are opened with `async_=True` and driven by gevent, so this module does not
depend on `zato.odb.gevent_psycopg.install` having been called. If the LISTEN connection drops,
it is reopened with backoff and subscribers of `bus.reconnected` are told, since whatever was
published in between is lost to this instance.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any
from collections.abc import Callable, Iterator

import gevent
import gevent.lock
import gevent.select
import orjson
import psycopg2
from gevent.socket import wait_read
from psycopg2 import extensions

from zato.bus.base import RECONNECTED, Bus, encode_message
from zato.odb.gevent_psycopg import wait

logger = logging.getLogger('zato.bus')

CHANNEL = 'zato_bus'
ANY_CHANNEL = 'zato_bus_any'

MAX_NOTIFY = 7000  # bytes; PostgreSQL refuses NOTIFY payloads of 8000 and more
POLL_INTERVAL = 1.0  # seconds between safety-net claims of zato_bus_any
HOUSEKEEPING_INTERVAL = 60.0  # at most this often an instance deletes old zato_bus_payload rows
CONNECT_TIMEOUT = 10.0
QUERY_TIMEOUT = 30.0  # a query still running after this means a dead peer, not a slow one
POOL_SIZE = 4
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0

# libpq defaults keep a silently vanished server undetected for many minutes.
_CONNECT_DEFAULTS = {'keepalives': 1, 'keepalives_idle': 30, 'keepalives_interval': 10, 'keepalives_count': 3}

# Concurrent CREATE TABLE IF NOT EXISTS of one table can fail on a unique index of pg_type,
# so instances starting together take turns. The key is 'zatobus' in ASCII.
_SCHEMA_LOCK = 0x7A61746F627573

_SCHEMA_EXISTS = "SELECT to_regclass('zato_bus_payload') IS NOT NULL AND to_regclass('zato_bus_any') IS NOT NULL"

_SCHEMA = f"""
BEGIN;
SELECT pg_advisory_xact_lock({_SCHEMA_LOCK});
CREATE TABLE IF NOT EXISTS zato_bus_payload (
    id bigserial PRIMARY KEY,
    payload text,
    created_at timestamptz DEFAULT now()
);
CREATE TABLE IF NOT EXISTS zato_bus_any (
    id bigserial PRIMARY KEY,
    subject text,
    payload text,
    created_at timestamptz DEFAULT now()
);
COMMIT;
"""

_LISTEN = f'LISTEN {CHANNEL}; LISTEN {ANY_CHANNEL}'

_PUBLISH = f"SELECT pg_notify('{CHANNEL}', %s)"

_PUBLISH_REF = f"""
WITH stored AS (INSERT INTO zato_bus_payload (payload) VALUES (%s) RETURNING id)
SELECT pg_notify('{CHANNEL}', '{{"ref":' || id || '}}') FROM stored
"""

_FETCH_REF = 'SELECT payload FROM zato_bus_payload WHERE id = %s'

_HOUSEKEEPING = "DELETE FROM zato_bus_payload WHERE created_at < now() - interval '1 hour'"

_SEND_ANY = f"""
WITH stored AS (INSERT INTO zato_bus_any (subject, payload) VALUES (%s, %s) RETURNING id)
SELECT pg_notify('{ANY_CHANNEL}', '') FROM stored
"""

_CLAIM = """
DELETE FROM zato_bus_any
WHERE id = (SELECT id FROM zato_bus_any ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
RETURNING subject, payload
"""

# What a lost connection looks like, including our own timeouts (raised as OperationalError).
_CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError, OSError)


class PostgreSQLBus(Bus):
    """A cluster bus over PostgreSQL LISTEN/NOTIFY; `dsn` is a libpq DSN or postgresql:// URI.

    The bus creates its two tables, `zato_bus_payload` and `zato_bus_any`, if they are missing.
    Every started instance claims `send_any` messages, whether it subscribed to their subject or not.
    """

    def __init__(self, dsn: str, *, poll_interval: float = POLL_INTERVAL, pool_size: int = POOL_SIZE) -> None:
        super().__init__()
        self.dsn = dsn
        self.poll_interval = poll_interval
        self._dsn_params = extensions.parse_dsn(dsn)  # fails early on a malformed DSN
        self._pool = _Pool(lambda: self._connect('publish'), pool_size)
        self._listener: Any = None
        self._reader: gevent.Greenlet | None = None
        self._schema_ready = False
        self._last_claim = 0.0
        self._last_housekeeping = 0.0

    @property
    def listener_pid(self) -> int | None:
        """The PostgreSQL backend pid of the LISTEN connection, None while disconnected."""
        conn = self._listener
        return conn.get_backend_pid() if conn is not None and not conn.closed else None

    # ------------------------------------------------------------------ the interface

    def start(self) -> None:
        """Connect, create the tables if needed, LISTEN, and start the receive loop.

        Raises psycopg2.Error if the database cannot be reached: better a loud start than a
        worker that silently misses every config change.
        """
        if self._reader is not None:
            raise RuntimeError(f'Bus {self.member_id} is already started')
        self._pool.open()
        self._listener = self._open_listener()
        self._reader = gevent.spawn(self._run)

    def publish(self, subject: str, msg: dict) -> None:
        """NOTIFY every started instance of the cluster, this one included."""
        data = encode_message(subject, msg)
        large = len(data) >= MAX_NOTIFY
        sql = _PUBLISH_REF if large else _PUBLISH
        text = data.decode()

        # A broadcast may be repeated without harm (receivers reload by version), so a connection
        # that died while idle in the pool costs one retry rather than an error.
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    if large:
                        self._ensure_schema(conn)
                    self._execute(conn, sql, (text,))
            except _CONNECTION_ERRORS:
                if attempt == 2:
                    raise
                logger.info('Bus %s: publish connection lost, retrying once', self.member_id, exc_info=True)
            else:
                break

        self._housekeeping()

    def send_any(self, subject: str, msg: dict) -> None:
        """Queue `msg` for exactly one started instance of the cluster; never retried."""
        payload = orjson.dumps(msg).decode()
        with self._pool.connection() as conn:
            self._ensure_schema(conn)
            self._execute(conn, _SEND_ANY, (subject, payload))

    def stop(self) -> None:
        """Stop the receive loop and close every connection."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.kill()
        listener, self._listener = self._listener, None
        _close(listener)
        self._pool.close()

    # ------------------------------------------------------------------ receiving

    def _open_listener(self) -> Any:
        conn = self._connect('listen')
        try:
            self._ensure_schema(conn)
            self._execute(conn, _LISTEN)
        except BaseException:
            _close(conn)
            raise
        return conn

    def _run(self) -> None:
        """The receive loop: serve the LISTEN connection, reopening it when it drops."""
        delay = 0.0  # the first reconnect is immediate, most drops are one-offs
        while True:
            if self._listener is None:
                gevent.sleep(delay)
                try:
                    self._listener = self._open_listener()
                except _CONNECTION_ERRORS as e:
                    delay = min(max(delay * 2, BACKOFF_MIN), BACKOFF_MAX)
                    logger.warning('Bus %s: could not reconnect (%s), next attempt in %.1fs',
                        self.member_id, _oneline(e), delay)
                    continue
                delay = 0.0
                logger.info('Bus %s: reconnected', self.member_id)
                self._dispatch(RECONNECTED, {})

            try:
                self._serve(self._listener)
            except _CONNECTION_ERRORS as e:
                logger.warning('Bus %s: lost the LISTEN connection (%s), reconnecting', self.member_id, _oneline(e))
            except Exception:
                # Anything else, e.g. our tables dropped under us: start over, tables included,
                # rather than let the worker go deaf, but not in a tight loop.
                logger.exception('Bus %s: the receive loop failed, restarting it', self.member_id)
                self._schema_ready = False
                delay = BACKOFF_MAX
            _close(self._listener)
            self._listener = None

    def _serve(self, conn: Any) -> None:
        """Dispatch notifications until the connection fails."""
        # Catch up with send_any rows queued while we were not listening.
        self._claim_any(conn)

        while True:
            if not conn.notifies:
                try:
                    wait_read(conn.fileno(), timeout=self.poll_interval)
                except TimeoutError:
                    pass
                else:
                    conn.poll()
                    if conn.closed:
                        raise psycopg2.OperationalError('LISTEN connection closed')

            # Queries below may read further notifications into conn.notifies;
            # the next round takes them, in order.
            batch = conn.notifies[:]
            del conn.notifies[:]

            claim = False
            for notify in batch:
                if notify.channel == CHANNEL:
                    self._on_notify(conn, notify.payload)
                elif notify.channel == ANY_CHANNEL:
                    claim = True

            if claim or time.monotonic() - self._last_claim >= self.poll_interval:
                self._claim_any(conn)

    def _on_notify(self, conn: Any, payload: str) -> None:
        try:
            obj = orjson.loads(payload)
            ref = obj.get('ref')
        except (ValueError, AttributeError):
            logger.warning('Bus %s: ignored a malformed notification %r', self.member_id, payload[:200])
            return

        if ref is not None:
            rows = self._execute(conn, _FETCH_REF, (ref,))
            if not rows:
                logger.warning('Bus %s: payload %s was deleted before this instance could read it',
                    self.member_id, ref)
                return
            try:
                obj = orjson.loads(rows[0][0])
            except ValueError:
                logger.warning('Bus %s: ignored malformed payload %s', self.member_id, ref)
                return

        try:
            subject, msg = obj['s'], obj['m']
        except (KeyError, TypeError):
            logger.warning('Bus %s: ignored a notification that is not a bus message: %r',
                self.member_id, payload[:200])
            return
        self._dispatch(subject, msg)

    def _claim_any(self, conn: Any) -> None:
        """Take and dispatch send_any rows until none is left for us."""
        while rows := self._execute(conn, _CLAIM):
            subject, payload = rows[0]
            try:
                msg = orjson.loads(payload)
            except ValueError:
                logger.warning('Bus %s: dropped a malformed send_any message for %r', self.member_id, subject)
                continue
            self._dispatch(subject, msg)
        self._last_claim = time.monotonic()

    # ------------------------------------------------------------------ connections

    def _connect(self, role: str) -> Any:
        # The DSN's own settings win over our defaults.
        params = {**_CONNECT_DEFAULTS, 'application_name': f'zato.bus.{role}', **self._dsn_params}
        conn = psycopg2.connect(async_=True, **params)
        try:
            with gevent.Timeout(CONNECT_TIMEOUT, _timed_out('connection', CONNECT_TIMEOUT)):
                wait(conn)
        except BaseException:
            _close(conn)
            raise
        return conn

    def _execute(self, conn: Any, sql: str, params: tuple | None = None) -> list[tuple]:
        """Run one statement and return its rows (none for statements without a result)."""
        with conn.cursor() as cur:
            with gevent.Timeout(QUERY_TIMEOUT, _timed_out('query', QUERY_TIMEOUT)):
                cur.execute(sql, params)
                wait(conn)
            return cur.fetchall() if cur.description is not None else []

    def _ensure_schema(self, conn: Any) -> None:
        # Check before creating: CREATE ... IF NOT EXISTS needs the CREATE privilege even when
        # the tables exist, and a server's database user may lack it once migrations made them.
        if self._schema_ready:
            return
        if not self._execute(conn, _SCHEMA_EXISTS)[0][0]:
            self._execute(conn, _SCHEMA)
        self._schema_ready = True

    def _housekeeping(self) -> None:
        """Delete large payloads nobody can still need; cheap, and skipped most of the time."""
        now = time.monotonic()
        if not self._schema_ready or now - self._last_housekeeping < HOUSEKEEPING_INTERVAL:
            return
        self._last_housekeeping = now
        try:
            with self._pool.connection() as conn:
                self._execute(conn, _HOUSEKEEPING)
        except psycopg2.Error:
            logger.warning('Bus %s: could not delete old payloads', self.member_id, exc_info=True)


class _Pool:
    """A few connections for publishing, each used by one greenlet at a time."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        self._connect = connect
        self._slots = gevent.lock.BoundedSemaphore(size)
        self._idle: list[Any] = []
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._slots:
            conn = self._take()
            try:
                yield conn
            except BaseException:
                # Its state is unknown, e.g. a query cut short by a timeout.
                _close(conn)
                raise
            if self._closed:
                _close(conn)
            else:
                self._idle.append(conn)

    def open(self) -> None:
        """Keep connections for reuse again, after `close`."""
        self._closed = False

    def close(self) -> None:
        """Close the idle connections; those in use are closed when given back.
        Until `open`, each later use gets a connection of its own.
        """
        self._closed = True
        while self._idle:
            _close(self._idle.pop())

    def _take(self) -> Any:
        while self._idle:
            conn = self._idle.pop()
            if _is_healthy(conn):
                return conn
            _close(conn)
        return self._connect()


def _is_healthy(conn: Any) -> bool:
    """Tell whether an idle connection still looks usable, without a round trip."""
    if conn.closed:
        return False
    # An idle connection has nothing to read unless the server is going away:
    # a terminated backend sends its FATAL error and closes the socket.
    readable, _, _ = gevent.select.select([conn.fileno()], [], [], 0)
    return not readable


def _close(conn: Any) -> None:
    if conn is not None and not conn.closed:
        try:
            conn.close()
        except psycopg2.Error:
            pass


def _oneline(e: BaseException) -> str:
    # libpq's messages span several lines, which reads badly in a log.
    return ' '.join(str(e).split())


def _timed_out(what: str, seconds: float) -> psycopg2.OperationalError:
    # An OperationalError, so that a hung peer is handled like a dropped one.
    return psycopg2.OperationalError(f'Bus {what} timed out after {seconds}s')
