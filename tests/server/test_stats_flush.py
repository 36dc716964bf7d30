"""Service statistics and heartbeats on their way to a real ODB (SQLite and PostgreSQL) and back:
the flusher writes, zato.odb.stats_query reads."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from time import perf_counter

import gevent
import pytest
from sqlalchemy import func, select

from tests import pg
from zato.odb import stats_query
from zato.odb.engine import make_engine, make_session_factory
from zato.odb.migrate import upgrade
from zato.odb.models import Cluster, Server, ServiceStat, WorkerHeartbeat
from zato.server.stats import ServiceStats
from zato.server.stats_flush import StatsFlusher


class ODB:
    def __init__(self, url: str, path: str = '') -> None:
        self.engine = make_engine(url)
        upgrade(self.engine)
        self.Session = make_session_factory(self.engine)
        self.path = path
        with self.Session() as session:
            cluster = Cluster(name='stats-test')
            session.add(cluster)
            session.flush()
            self.cluster_id = cluster.id
            session.add_all([Server(cluster_id=cluster.id, name=name, host='127.0.0.1', port=port)
                             for name, port in (('server1', 17010), ('server2', 17011))])
            session.commit()

    def flusher(self, stats: ServiceStats, server: str = 'server1', pid: int = 101,
                interval: float = 10.0) -> StatsFlusher:
        flusher = StatsFlusher(stats, self.engine, self.cluster_id, server, interval, 24)
        flusher.pid = pid
        return flusher


@pytest.fixture(params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def odb(request, tmp_path):
    if request.param == 'sqlite':
        path = str(tmp_path / 'odb.sqlite3')
        db = ODB(f'sqlite:///{path}', path)
        yield db
        db.engine.dispose()
        return
    with pg.scratch_database('zato_stats_') as name:
        db = ODB(pg.dsn(name).replace('postgresql://', 'postgresql+psycopg2://'))
        yield db
        db.engine.dispose()


def record(stats: ServiceStats, name: str, seconds: float, status=200, times: int = 1) -> None:
    for _ in range(times):
        ended = perf_counter()
        stats.record(name, ended - seconds, ended, status)


def summary(odb: ODB, **kwargs) -> dict[str, dict]:
    with odb.Session() as session:
        return {row['name']: row for row in stats_query.services_summary(session, odb.cluster_id, **kwargs)}


def test_a_flush_writes_what_the_summary_reads_back(odb):
    stats = ServiceStats()
    record(stats, 'crm.get', 0.002, times=8)
    record(stats, 'crm.get', 0.040, 500, times=2)
    record(stats, 'crm.set', 0.0005)
    odb.flusher(stats).flush()

    got = summary(odb)
    assert sorted(got) == ['crm.get', 'crm.set']
    crm = got['crm.get']
    assert (crm['count'], crm['errors'], crm['error_rate']) == (10, 2, 0.2)
    assert crm['mean_ms'] == pytest.approx((8 * 2 + 2 * 40) / 10, rel=0.01)
    assert crm['max_ms'] == pytest.approx(40, rel=0.01)
    # Within the sample's bucket (a half-octave), and never past the max
    assert 2 / 1.415 < crm['p50_ms'] < 2 * 1.415
    assert 40 / 1.415 < crm['p99_ms'] <= 40.01
    assert abs(crm['last_call'] - datetime.now(UTC)) < timedelta(seconds=30)


def test_flushing_again_replaces_a_workers_minute_rather_than_adding_to_it(odb):
    stats = ServiceStats()
    flusher = odb.flusher(stats)
    record(stats, 'crm.get', 0.001, times=3)
    flusher.flush()
    flusher.flush()
    assert summary(odb)['crm.get']['count'] == 3
    record(stats, 'crm.get', 0.001, times=2)
    flusher.flush()
    assert summary(odb)['crm.get']['count'] == 5
    with odb.Session() as session:
        assert session.scalar(select(func.count()).select_from(ServiceStat)) == 1


def test_the_rows_of_every_worker_of_every_server_are_added_up(odb):
    workers = [(ServiceStats(), 'server1', 101), (ServiceStats(), 'server1', 102), (ServiceStats(), 'server2', 101)]
    for i, (stats, server, pid) in enumerate(workers):
        record(stats, 'crm.get', 0.001, times=10)
        record(stats, 'crm.get', 0.5, 503, times=i)  # 0 + 1 + 2 slow failures
        odb.flusher(stats, server, pid).flush()
    crm = summary(odb)['crm.get']
    assert (crm['count'], crm['errors']) == (33, 3)
    assert crm['p50_ms'] < 1.5
    assert 350 < crm['p99_ms'] <= 500.01


def test_a_series_has_a_point_for_every_minute_of_the_window_with_the_calls_in_their_minute(odb):
    before = stats_query.minute_of(datetime.now(UTC))
    stats = ServiceStats()
    record(stats, 'crm.get', 0.003, times=4)
    record(stats, 'crm.get', 0.003, 500)
    record(stats, 'other', 0.003, times=7)
    odb.flusher(stats).flush()
    with odb.Session() as session:
        one = stats_query.series(session, odb.cluster_id, 'crm.get', minutes=15)
        every = stats_query.series(session, odb.cluster_id, None, minutes=15)
    after = stats_query.minute_of(datetime.now(UTC))
    assert len(one) == len(every) == 15
    assert [p['minute'] for p in one] == [one[0]['minute'] + timedelta(minutes=i) for i in range(15)]
    assert before <= one[-1]['minute'] <= after
    assert sum(p['count'] for p in one) == 5 and sum(p['errors'] for p in one) == 1
    assert sum(p['count'] for p in every) == 12
    busy = [p for p in one if p['count']]
    assert busy[-1]['error_rate'] == 0.2 and busy[-1]['p99_ms'] >= busy[-1]['p50_ms'] > 0
    idle = [p for p in one if not p['count']]
    assert idle and all(p['p50_ms'] is None and p['error_rate'] == 0.0 for p in idle)


def test_the_summary_covers_the_window_and_still_lists_services_called_before_it(odb):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with odb.Session() as session:
        for minutes_ago, count in ((0, 1), (30, 2), (90, 4)):
            minute = now - timedelta(minutes=minutes_ago)
            session.add(ServiceStat(cluster_id=odb.cluster_id, minute=minute, service_name='crm.get',
                                    server_name='server1', worker_pid=1, count=count, errors=0, total_ms=count * 2.0,
                                    max_ms=2.0, histogram={'10': count}, last_call=minute + timedelta(seconds=5)))
        session.add(ServiceStat(cluster_id=odb.cluster_id, minute=now - timedelta(hours=3), service_name='old',
                                server_name='server1', worker_pid=1, count=1, errors=1, total_ms=1.0, max_ms=1.0,
                                histogram={'9': 1}, last_call=now - timedelta(hours=3)))
        session.commit()
    assert summary(odb, minutes=1, now=now)['crm.get']['count'] == 1
    assert summary(odb, minutes=60, now=now)['crm.get']['count'] == 3
    assert summary(odb, minutes=120, now=now)['crm.get']['count'] == 7
    old = summary(odb, minutes=60, now=now)['old']
    assert (old['count'], old['errors'], old['p99_ms'], old['mean_ms']) == (0, 0, None, None)
    assert old['last_call'] == now - timedelta(hours=3)


def test_rows_past_the_retention_are_deleted_by_the_flusher(odb):
    long_ago = datetime.now(UTC) - timedelta(hours=25)
    with odb.Session() as session:
        session.add(ServiceStat(cluster_id=odb.cluster_id, minute=long_ago.replace(second=0, microsecond=0),
                                service_name='old', server_name='server1', worker_pid=1, count=1, errors=0,
                                total_ms=1.0, max_ms=1.0, histogram={}, last_call=long_ago))
        session.add(WorkerHeartbeat(cluster_id=odb.cluster_id, server_name='server1', pid=1, started_at=long_ago,
                                    last_seen=long_ago, flush_interval=10.0))
        session.commit()
    stats = ServiceStats()
    record(stats, 'new', 0.001)
    odb.flusher(stats).flush()
    with odb.Session() as session:
        assert session.scalars(select(ServiceStat.service_name)).all() == ['new']
        assert session.scalars(select(WorkerHeartbeat.pid)).all() == [101]


def workers(odb: ODB, now: datetime | None = None) -> dict[str, dict]:
    with odb.Session() as session:
        return {server['name']: server for server in stats_query.workers(session, odb.cluster_id, now=now)}


def test_a_worker_is_up_after_its_flush_down_after_three_missed_and_stopped_after_its_stop(odb):
    stats = ServiceStats()
    flusher = odb.flusher(stats, interval=2.0)
    flusher.flush()
    servers = workers(odb)
    assert servers['server1']['is_up'] and not servers['server2']['is_up']
    assert servers['server2']['workers'] == []
    [worker] = servers['server1']['workers']
    assert (worker['pid'], worker['status'], worker['is_up']) == (101, 'up', True)

    later = datetime.now(UTC) + timedelta(seconds=6.5)
    [worker] = workers(odb, later)['server1']['workers']
    assert (worker['status'], worker['is_up']) == ('down', False)
    assert not workers(odb, later)['server1']['is_up']

    record(stats, 'crm.get', 0.001)  # called after the last periodic flush
    flusher.stop()
    [worker] = workers(odb)['server1']['workers']
    assert worker['status'] == 'stopped' and worker['stopped_at'] is not None
    assert summary(odb)['crm.get']['count'] == 1


def test_the_flusher_writes_every_interval_in_the_background(odb):
    stats = ServiceStats()
    flusher = odb.flusher(stats, interval=0.05)
    flusher.start()
    try:
        record(stats, 'crm.get', 0.001, times=3)
        deadline = time.monotonic() + 10
        while 'crm.get' not in summary(odb) and time.monotonic() < deadline:
            gevent.sleep(0.05)
        assert summary(odb)['crm.get']['count'] == 3
    finally:
        flusher.stop()


def hold_write_lock(path: str, seconds: float, locked: threading.Event) -> threading.Thread:
    """Another worker's long write: SQLite's write lock, held by a thread with a connection of its own."""
    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute('BEGIN IMMEDIATE')
        locked.set()
        time.sleep(seconds)
        conn.execute('COMMIT')
        conn.close()
    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_on_sqlite_a_flush_waits_out_another_workers_write_lock_without_stalling_the_worker(tmp_path):
    path = str(tmp_path / 'odb.sqlite3')
    odb = ODB(f'sqlite:///{path}', path)
    stats = ServiceStats()
    record(stats, 'crm.get', 0.001, times=2)
    ticks = []
    ticker = gevent.spawn(lambda: [(ticks.append(1), gevent.sleep(0.01)) for _ in range(1000)])
    locked = threading.Event()
    thread = hold_write_lock(path, 0.8, locked)
    locked.wait(5)
    started = time.monotonic()
    assert odb.flusher(stats).flush_logged()
    took = time.monotonic() - started
    thread.join()
    ticker.kill()
    assert took >= 0.5  # it did wait for the lock
    assert len(ticks) >= 3  # and other greenlets ran meanwhile, between the attempts
    assert summary(odb)['crm.get']['count'] == 2
    odb.engine.dispose()


def test_on_sqlite_rows_a_lock_kept_from_the_odb_are_written_by_a_later_flush(tmp_path):
    path = str(tmp_path / 'odb.sqlite3')
    odb = ODB(f'sqlite:///{path}', path)
    stats = ServiceStats()
    flusher = odb.flusher(stats)
    flusher.attempts = 2  # at most 2 x 200 ms of busy wait and one pause between
    record(stats, 'crm.get', 0.001, times=2)
    locked = threading.Event()
    thread = hold_write_lock(path, 2.0, locked)
    locked.wait(5)
    assert not flusher.flush_logged()  # gave up after its attempts; nothing lost
    thread.join()
    record(stats, 'crm.get', 0.001)
    assert flusher.flush_logged()
    assert summary(odb)['crm.get']['count'] == 3
    odb.engine.dispose()


def test_the_query_module_imports_no_server_code_and_no_gevent():
    code = ('import sys, zato.odb.stats_query; '
            'print(sorted(m for m in sys.modules if m.startswith("zato.server") or m.startswith("gevent")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'
