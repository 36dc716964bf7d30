"""Writes one worker's service statistics and heartbeat to the ODB, every few seconds and once more
when the worker stops, and deletes rows older than the retention.

Each worker upserts only its own rows (keyed by server name and pid), always with the whole of a
minute so far: a write repeated after an unknown outcome changes nothing, and workers never
contend for a row. On SQLite the flusher has a connection of its own with a short busy timeout, so
a write lock held by another worker costs this worker's requests at most that long; the write is
then retried from a fresh transaction after a pause that lets requests run.
"""

from __future__ import annotations

import logging
import os
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import gevent
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from zato.odb.histogram import to_sparse
from zato.odb.models import ServiceStat, WorkerHeartbeat
from zato.server.flushing import PeriodicWriter, writer_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from zato.server.stats import MinuteRow, ServiceStats

logger = logging.getLogger('zato.stats')

# SQLite: how often to try a write another worker's lock kept waiting past the busy timeout
# (zato.server.flushing.SQLITE_BUSY_MS)
ATTEMPTS = 6
BACKOFF = 0.05

_STAT_KEYS = ('cluster_id', 'minute', 'service_name', 'server_name', 'worker_pid')
_HEARTBEAT_KEYS = ('cluster_id', 'server_name', 'pid')


def is_locked(e: OperationalError) -> bool:
    """SQLite's answer when another connection holds the write lock past the busy timeout."""
    return 'locked' in str(e.orig).lower()


def upsert(conn: Connection, table: Any, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE every other column, on SQLite or PostgreSQL."""
    insert = sqlite_insert if conn.dialect.name == 'sqlite' else pg_insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={name: stmt.excluded[name] for name in rows[0] if name not in keys})
    conn.execute(stmt, rows)


class StatsFlusher(PeriodicWriter):
    """Started by the runtime after the fork; `stop` writes what is left and says the worker stopped."""

    failed = 'Could not write service statistics to the ODB, will retry: %s'
    recovered = 'Service statistics are written to the ODB again'

    def __init__(self, stats: ServiceStats, engine: Engine, cluster_id: int, server_name: str,
                 interval: float, retention_hours: int) -> None:
        super().__init__(logger, interval)
        self.stats = stats
        self.cluster_id = cluster_id
        self.server_name = server_name
        self.retention = timedelta(hours=retention_hours)
        self.pid = os.getpid()
        self.started_at = datetime.now(UTC)
        self.engine, self._owns_engine = writer_engine(engine)
        self.attempts = ATTEMPTS
        self._purged_minute = -1

    def start(self) -> None:
        self.start_writing()

    def stop(self) -> None:
        self.stop_writing()
        self.flush_logged(True)
        if self._owns_engine:
            self.engine.dispose()

    def flush(self, stopping: bool = False) -> None:
        """Writes every row changed since the last flush and the heartbeat; once a minute, purges."""
        taken = self.stats.take()
        now = datetime.now(UTC)
        rows = [self._stat_row(row) for row in taken]
        heartbeat = {'cluster_id': self.cluster_id, 'server_name': self.server_name, 'pid': self.pid,
                     'started_at': self.started_at, 'last_seen': now, 'flush_interval': self.interval,
                     'stopped_at': now if stopping else None}
        self._in_transaction(self._write, rows, heartbeat)
        self.stats.mark_sent(taken)
        minute = int(now.timestamp() // 60)
        if minute != self._purged_minute and not stopping:
            self._in_transaction(self._purge, now - self.retention)
            self._purged_minute = minute

    def _stat_row(self, row: MinuteRow) -> dict[str, Any]:
        return {'cluster_id': self.cluster_id, 'minute': datetime.fromtimestamp(row.minute * 60, UTC),
                'service_name': row.name, 'server_name': self.server_name, 'worker_pid': self.pid,
                'count': row.count, 'errors': row.errors, 'total_ms': row.total * 1000, 'max_ms': row.max * 1000,
                'histogram': to_sparse(row.histogram), 'last_call': datetime.fromtimestamp(row.last_call, UTC)}

    def _write(self, conn: Connection, rows: list[dict[str, Any]], heartbeat: dict[str, Any]) -> None:
        if rows:
            upsert(conn, ServiceStat.__table__, _STAT_KEYS, rows)
        upsert(conn, WorkerHeartbeat.__table__, _HEARTBEAT_KEYS, [heartbeat])

    def _purge(self, conn: Connection, cutoff: datetime) -> None:
        conn.execute(delete(ServiceStat).where(ServiceStat.cluster_id == self.cluster_id,
                                               ServiceStat.minute < cutoff))
        conn.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.cluster_id == self.cluster_id,
                                                   WorkerHeartbeat.last_seen < cutoff))

    def _in_transaction(self, work: Any, *args: Any) -> None:
        """Runs work(conn, *args) in one short transaction, again from the start while SQLite says locked."""
        for attempt in range(self.attempts):
            try:
                with self.engine.begin() as conn:
                    work(conn, *args)
                return
            except OperationalError as e:
                if not is_locked(e) or attempt == self.attempts - 1:
                    raise
                gevent.sleep(BACKOFF * 2 ** attempt * (0.5 + random.random()))
