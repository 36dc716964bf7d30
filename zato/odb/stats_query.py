"""Reading service statistics and worker heartbeats back from the ODB: pure functions over a
SQLAlchemy session, for the admin API (zato.server.admin.stats) and the web-admin alike.

Each worker writes its own rows per service and minute (zato.server.stats_flush); these functions
add up every worker's, merge the latency histograms (zato.odb.histogram) and read percentiles from
the merged counts. Durations are in milliseconds, times are aware UTC datetimes. A window of N
minutes is the current minute (still filling) and the N - 1 before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zato.odb.histogram import empty, merge, percentile
from zato.odb.models import Server, ServiceStat, WorkerHeartbeat

# A worker whose heartbeat is older than this many of its flush intervals is down
MISSED_HEARTBEATS = 3


def utc(value: datetime) -> datetime:
    """An aware UTC datetime (SQLite gives back naive ones, which the flushers wrote in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def minute_of(value: datetime) -> datetime:
    return utc(value).replace(second=0, microsecond=0)


def window_start(now: datetime, minutes: int) -> datetime:
    """The first minute of a window of `minutes` minutes that ends with the one `now` falls in."""
    if minutes < 1:
        raise ValueError(f'expected a window of at least one minute, got {minutes}')
    return minute_of(now) - timedelta(minutes=minutes - 1)


class Usage:
    """Calls, errors and durations of any set of rows, added up."""

    __slots__ = ('count', 'errors', 'total_ms', 'max_ms', 'counts', 'last_call')

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total_ms = 0.0
        self.max_ms = 0.0
        self.counts = empty()
        self.last_call: datetime | None = None

    def add(self, count: int, errors: int, total_ms: float, max_ms: float, histogram: dict[str, int] | None,
            last_call: datetime | None) -> None:
        self.count += count
        self.errors += errors
        self.total_ms += total_ms
        self.max_ms = max(self.max_ms, max_ms)
        merge(self.counts, histogram)
        if last_call is not None:
            last_call = utc(last_call)
            if self.last_call is None or last_call > self.last_call:
                self.last_call = last_call

    def percentile_ms(self, q: float) -> float | None:
        value = percentile(self.counts, q, self.max_ms / 1000)
        return None if value is None else round(value * 1000, 3)

    def to_dict(self) -> dict[str, Any]:
        count = self.count
        return {'count': count, 'errors': self.errors,
                'error_rate': round(self.errors / count, 4) if count else 0.0,
                'mean_ms': round(self.total_ms / count, 3) if count else None,
                'p50_ms': self.percentile_ms(0.5), 'p99_ms': self.percentile_ms(0.99),
                'max_ms': round(self.max_ms, 3) if count else None}


_COLUMNS = (ServiceStat.service_name, ServiceStat.minute, ServiceStat.count, ServiceStat.errors,
            ServiceStat.total_ms, ServiceStat.max_ms, ServiceStat.histogram, ServiceStat.last_call)


def _rows(session: Session, cluster_id: int, start: datetime, service_name: str | None = None) -> Iterable[Any]:
    query = select(*_COLUMNS).where(ServiceStat.cluster_id == cluster_id, ServiceStat.minute >= start)
    if service_name is not None:
        query = query.where(ServiceStat.service_name == service_name)
    return session.execute(query)


def services_summary(session: Session, cluster_id: int, minutes: int = 60,
                     now: datetime | None = None) -> list[dict[str, Any]]:
    """Per service, by name: calls, errors, error rate, mean, p50, p99 and max in the window, and
    the last call within the retention (so a service not called in the window is listed too, at 0)."""
    now = utc(now or datetime.now(UTC))
    usage: dict[str, Usage] = {}
    for name, _minute, count, errors, total_ms, max_ms, histogram, last_call in _rows(
            session, cluster_id, window_start(now, minutes)):
        acc = usage.get(name)
        if acc is None:
            acc = usage[name] = Usage()
        acc.add(count, errors, total_ms, max_ms, histogram, last_call)
    last_calls = session.execute(select(ServiceStat.service_name, func.max(ServiceStat.last_call))
                                 .where(ServiceStat.cluster_id == cluster_id)
                                 .group_by(ServiceStat.service_name))
    out = []
    for name, last_call in sorted(last_calls):
        acc = usage.get(name) or Usage()
        out.append({'name': name, **acc.to_dict(), 'last_call': utc(last_call) if last_call else None})
    return out


def series(session: Session, cluster_id: int, service_name: str | None = None, minutes: int = 60,
           now: datetime | None = None) -> list[dict[str, Any]]:
    """One point per minute of the window, oldest first, minutes without calls included: requests in
    the minute, errors, error rate, mean, p50, p99 and max. For one service, or all of them."""
    now = utc(now or datetime.now(UTC))
    start = window_start(now, minutes)
    points = [Usage() for _ in range(minutes)]
    for _name, minute, count, errors, total_ms, max_ms, histogram, last_call in _rows(
            session, cluster_id, start, service_name):
        index = int((minute_of(minute) - start).total_seconds() // 60)
        if 0 <= index < minutes:
            points[index].add(count, errors, total_ms, max_ms, histogram, last_call)
    return [{'minute': start + timedelta(minutes=i), **point.to_dict()} for i, point in enumerate(points)]


def has_stats(session: Session, cluster_id: int, service_name: str) -> bool:
    """Whether any statistics of the service are kept (it may have been undeployed since)."""
    return session.scalars(select(ServiceStat.count).where(ServiceStat.cluster_id == cluster_id,
                                                           ServiceStat.service_name == service_name)
                           .limit(1)).first() is not None


def worker_status(row: WorkerHeartbeat, now: datetime) -> str:
    """up, stopped (it said so on its way out), or down (no heartbeat for three flush intervals)."""
    if row.stopped_at is not None:
        return 'stopped'
    late = timedelta(seconds=row.flush_interval * MISSED_HEARTBEATS)
    return 'up' if now - utc(row.last_seen) <= late else 'down'


def workers(session: Session, cluster_id: int, minutes: int = 60, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every server of the cluster, by name, with its workers: those up, and those gone within the
    last `minutes`. A server is up while any of its workers is."""
    now = utc(now or datetime.now(UTC))
    since = now - timedelta(minutes=minutes)
    servers: dict[str, list[dict[str, Any]]] = {
        name: [] for name in session.scalars(select(Server.name).where(Server.cluster_id == cluster_id))}
    heartbeats = session.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.cluster_id == cluster_id)
                                 .order_by(WorkerHeartbeat.started_at, WorkerHeartbeat.pid))
    for row in heartbeats:
        status = worker_status(row, now)
        if status != 'up' and utc(row.last_seen) < since:
            continue
        servers.setdefault(row.server_name, []).append({
            'pid': row.pid, 'status': status, 'is_up': status == 'up', 'started_at': utc(row.started_at),
            'last_seen': utc(row.last_seen), 'stopped_at': utc(row.stopped_at) if row.stopped_at else None})
    return [{'name': name, 'is_up': any(w['is_up'] for w in found), 'workers': found}
            for name, found in sorted(servers.items())]
