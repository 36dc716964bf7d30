"""The `postgresql` bus against a real PostgreSQL, with members in separate processes."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Iterator

import gevent
import pytest

psycopg2 = pytest.importorskip('psycopg2')

from psycopg2 import extensions  # noqa: E402

from zato.bus.base import RECONNECTED  # noqa: E402
from zato.bus.factory import make_bus  # noqa: E402
from zato.bus.postgresql import MAX_NOTIFY, PostgreSQLBus  # noqa: E402
from zato.odb import gevent_psycopg  # noqa: E402


@pytest.fixture
def dsn(pg_dsn: str) -> Iterator[str]:
    """The test database, with no bus rows left over from an earlier test."""
    yield pg_dsn
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('zato_bus_any') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute('TRUNCATE zato_bus_any, zato_bus_payload')
    conn.close()


def sql(dsn: str, query: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on a connection of its own, outside any bus."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@pytest.fixture(scope='class')
def trio(spawn_shared_members, pg_dsn):
    """Three member processes, each with its own bus, shared by the tests of one class."""
    return spawn_shared_members(3, {'backend': 'postgresql', 'dsn': pg_dsn}, ['config', 'invoke', 'big'])


class TestThreeMemberProcesses:
    """Each test uses a subject of its own, as the members outlive a test."""

    def test_publish_reaches_every_member_of_three_processes_within_a_second(self, wait_until, trio):
        sent_at = trio[0].command('publish', 'config', {'kind': 'channel', 'id': 5, 'version': 7})

        assert wait_until(lambda: all(m.messages('config') for m in trio), 5)
        for member in trio:
            assert member.messages('config') == [{'kind': 'channel', 'id': 5, 'version': 7}]
            assert member.arrivals('config')[0] - sent_at < 1.0

    def test_send_any_delivers_each_of_50_messages_to_exactly_one_of_three_processes(
            self, wait_until, trio, dsn, stop_later):
        sender = stop_later(PostgreSQLBus(dsn))  # never started, so it claims nothing itself

        for n in range(50):
            sender.send_any('invoke', {'n': n})

        def received() -> list[int]:
            return [msg['n'] for m in trio for msg in m.messages('invoke')]

        assert wait_until(lambda: len(received()) >= 50, 5)
        gevent.sleep(0.3)  # room for a duplicate to show up
        assert sorted(received()) == list(range(50))
        assert sql(dsn, 'SELECT count(*) FROM zato_bus_any') == [(0,)]

    def test_a_200_kb_payload_arrives_intact_through_publish_and_send_any(
            self, wait_until, trio, dsn, stop_later):
        blob = secrets.token_hex(100_000)  # 200 KB, far above what NOTIFY carries
        expected = {'blob_len': len(blob), 'blob_sha256': hashlib.sha256(blob.encode()).hexdigest()}

        publisher = stop_later(PostgreSQLBus(dsn))
        publisher.publish('big', {'blob': blob, 'via': 'publish'})
        publisher.send_any('big', {'blob': blob, 'via': 'send_any'})

        def received(via: str) -> list[dict]:
            return [msg for m in trio for msg in m.messages('big') if msg['via'] == via]

        assert wait_until(lambda: len(received('publish')) == 3 and len(received('send_any')) == 1, 5)
        for msg in received('publish') + received('send_any'):
            assert {k: msg[k] for k in expected} == expected
        assert sql(dsn, 'SELECT count(*) FROM zato_bus_payload') == [(1,)]


def test_a_message_just_under_and_just_over_the_notify_limit_both_arrive(wait_until, dsn, stop_later):
    bus = stop_later(PostgreSQLBus(dsn))
    received: list[int] = []
    bus.subscribe('edge', lambda msg: received.append(len(msg['text'])))
    bus.start()

    overhead = len(b'{"s":"edge","m":{"text":""}}')
    for size in (MAX_NOTIFY - overhead - 1, MAX_NOTIFY - overhead, 7999, 8000):
        bus.publish('edge', {'text': 'x' * size})

    assert wait_until(lambda: len(received) == 4, 2)
    assert received == [MAX_NOTIFY - overhead - 1, MAX_NOTIFY - overhead, 7999, 8000]


def test_publish_and_send_any_are_delivered_within_a_second(wait_until, dsn, stop_later):
    receiver = stop_later(PostgreSQLBus(dsn))
    arrivals: dict[str, float] = {}
    receiver.subscribe('config', lambda msg: arrivals.setdefault('publish', time.monotonic()))
    receiver.subscribe('invoke', lambda msg: arrivals.setdefault('send_any', time.monotonic()))
    receiver.start()
    sender = stop_later(PostgreSQLBus(dsn))

    started = time.monotonic()
    sender.publish('config', {'version': 1})
    sender.send_any('invoke', {})

    assert wait_until(lambda: len(arrivals) == 2, 2)
    assert arrivals['publish'] - started < 1.0
    assert arrivals['send_any'] - started < 1.0


def test_a_callback_that_raises_does_not_stop_later_deliveries(wait_until, dsn, stop_later, caplog):
    bus = stop_later(PostgreSQLBus(dsn))
    delivered: list[int] = []

    def callback(msg: dict) -> None:
        if msg['n'] == 0:
            raise RuntimeError('a failing callback, on purpose')
        delivered.append(msg['n'])

    bus.subscribe('config', callback)
    bus.subscribe('invoke', callback)
    bus.start()

    with caplog.at_level(logging.ERROR, logger='zato.bus'):
        bus.publish('config', {'n': 0})
        bus.publish('config', {'n': 1})
        bus.send_any('invoke', {'n': 0})
        bus.send_any('invoke', {'n': 2})
        assert wait_until(lambda: sorted(delivered) == [1, 2], 2)

    failures = [r for r in caplog.records if r.exc_text and 'a failing callback, on purpose' in r.exc_text]
    assert len(failures) == 2


def test_the_listener_reconnects_after_its_backend_is_terminated_and_tells_bus_reconnected(wait_until, dsn, stop_later):
    bus = stop_later(PostgreSQLBus(dsn))
    reconnected: list[dict] = []
    received: list[int] = []
    bus.subscribe(RECONNECTED, reconnected.append)
    bus.subscribe('config', lambda msg: received.append(msg['version']))
    bus.subscribe('invoke', lambda msg: received.append(msg['version']))
    bus.start()
    old_pid = bus.listener_pid

    assert sql(dsn, 'SELECT pg_terminate_backend(%s)', (old_pid,)) == [(True,)]

    # Sent while the listener may still be down: the catch-up claim after reconnecting finds it.
    sender = stop_later(PostgreSQLBus(dsn))
    sender.send_any('invoke', {'version': 1})

    assert wait_until(lambda: reconnected == [{}], 5)
    assert bus.listener_pid not in (None, old_pid)

    sender.publish('config', {'version': 2})
    assert wait_until(lambda: sorted(received) == [1, 2], 2)


def test_send_any_rows_queued_while_no_instance_runs_are_delivered_on_start(wait_until, dsn, stop_later):
    sender = stop_later(PostgreSQLBus(dsn))
    sender.send_any('invoke', {'n': 1})  # creates the tables, too

    bus = stop_later(PostgreSQLBus(dsn))
    received: list[dict] = []
    bus.subscribe('invoke', received.append)
    bus.start()

    assert wait_until(lambda: received == [{'n': 1}], 2)


def test_payload_rows_older_than_an_hour_are_deleted_by_the_next_publish(dsn, stop_later):
    bus = stop_later(PostgreSQLBus(dsn))
    bus.start()
    sql(dsn, "INSERT INTO zato_bus_payload (payload, created_at) "
             "VALUES ('{}', now() - interval '2 hours'), ('{}', now())")

    bus.publish('config', {'version': 1})

    assert sql(dsn, "SELECT count(*) FROM zato_bus_payload WHERE created_at < now() - interval '1 hour'") == [(0,)]
    assert sql(dsn, 'SELECT count(*) FROM zato_bus_payload') == [(1,)]


def test_start_fails_loudly_when_the_database_is_unreachable():
    bus = PostgreSQLBus('host=127.0.0.1 port=1 dbname=nothing user=nobody')
    with pytest.raises(psycopg2.OperationalError):
        bus.start()
    bus.stop()


def test_make_bus_builds_a_postgresql_bus(dsn):
    bus = make_bus({'backend': 'postgresql', 'dsn': dsn})
    assert isinstance(bus, PostgreSQLBus)
    assert bus.dsn == dsn


def test_the_gevent_wait_callback_lets_queries_of_two_greenlets_overlap(dsn):
    previous = extensions.get_wait_callback()
    try:
        gevent_psycopg.install()
        gevent_psycopg.install()  # idempotent
        assert extensions.get_wait_callback() is gevent_psycopg.wait
        assert gevent_psycopg.is_installed()

        def sleep_in_postgresql() -> None:
            conn = psycopg2.connect(dsn)
            try:
                with conn.cursor() as cur:
                    cur.execute('SELECT pg_sleep(0.5)')
            finally:
                conn.close()

        started = time.monotonic()
        gevent.joinall([gevent.spawn(sleep_in_postgresql) for _ in range(2)], raise_error=True)
        elapsed = time.monotonic() - started

        # Blocking libpq would take 1 s for the two; cooperating, they overlap.
        assert elapsed < 0.9
    finally:
        extensions.set_wait_callback(previous)
