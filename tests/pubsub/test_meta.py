"""Endpoints' last publication and delivery times (zato.server.pubsub_meta) on real SQLite and
PostgreSQL: each rule of its docstring."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from tests.pubsub.fixtures import endpoint, pubsub_store
from zato.odb.models import PubSubEndpoint
from zato.server.pubsub_meta import EndpointMeta



def times(store, endpoint_id: int) -> tuple[float | None, float | None]:
    with store.engine.connect() as conn:
        row = conn.execute(text('SELECT last_pub_time, last_delivery_time FROM pubsub_endpoint WHERE id = :id'),
                           {'id': endpoint_id}).one()
    return row[0], row[1]


def meta_of(store) -> EndpointMeta:
    meta = EndpointMeta()
    meta.engine = store.engine  # flushed by hand, without the greenlet of start()
    return meta


class NoEngine:
    """An engine any use of which fails the test: recording must not touch the ODB."""

    def __getattr__(self, name):
        raise AssertionError(f'the ODB was used ({name}) while recording')


def test_recording_a_publication_or_a_delivery_writes_nothing_to_the_odb():
    meta = EndpointMeta()
    meta.engine = NoEngine()  # type: ignore[assignment]
    for i in range(1000):
        meta.published(i % 7, 1000.0 + i)
        meta.delivered(i % 5, 2000.0 + i)
        meta.published(None, 3000.0)  # a service's publication: no endpoint, nothing recorded
    assert meta.times['last_pub_time'] == {i % 7: 1000.0 + i for i in range(1000)}
    assert len(meta.times['last_delivery_time']) == 5


def test_a_flush_writes_the_newest_time_of_each_endpoint_and_forgets_it(store):
    a, b = endpoint(store, 'meta-a'), endpoint(store, 'meta-b')
    meta = meta_of(store)
    meta.published(a, 100.0)
    meta.published(a, 90.0)  # older: ignored
    meta.delivered(b, 200.0)
    assert times(store, a) == (None, None)  # nothing until the flush
    assert meta.flush() == 2
    assert times(store, a) == (100.0, None) and times(store, b) == (None, 200.0)
    assert meta.flush() == 0  # nothing new


def test_a_flush_never_moves_a_stored_time_back(store):
    a = endpoint(store, 'meta-a')
    first, second = meta_of(store), meta_of(store)  # two workers
    first.published(a, 500.0)
    first.delivered(a, 600.0)
    second.published(a, 400.0)
    second.delivered(a, 700.0)
    first.flush()
    second.flush()  # the later flush holds an older publication time
    assert times(store, a) == (500.0, 700.0)


def test_a_failed_flush_keeps_its_times_for_the_next_one_the_newer_winning(store):
    a = endpoint(store, 'meta-a')
    meta = meta_of(store)
    meta.published(a, 100.0)
    meta.delivered(a, 100.0)
    engine = store.engine
    meta.engine = NoEngine()  # type: ignore[assignment]
    with pytest.raises(AssertionError):
        meta.flush()
    assert not meta.flush_logged()
    meta.published(a, 50.0)  # older than what failed: the failed one's time stays
    meta.delivered(a, 150.0)  # newer: wins
    meta.engine = engine
    assert meta.flush_logged()
    assert times(store, a) == (100.0, 150.0)


def test_a_deleted_endpoints_times_are_dropped(store):
    a, b = endpoint(store, 'meta-a'), endpoint(store, 'meta-b')
    meta = meta_of(store)
    meta.published(a, 100.0)
    meta.published(b, 100.0)
    with Session(store.engine) as session:
        session.execute(delete(PubSubEndpoint).where(PubSubEndpoint.id == a))
        session.commit()
    meta.flush()
    assert times(store, b) == (100.0, None) and meta.times['last_pub_time'] == {}


def test_stop_writes_what_is_left(store):
    a = endpoint(store, 'meta-a')
    meta = EndpointMeta()
    meta.start(store.engine, 3600.0)
    meta.delivered(a, 123.0)
    meta.stop()
    assert times(store, a) == (None, 123.0)


def test_on_sqlite_another_writers_lock_costs_a_flush_a_short_wait_and_nothing_is_lost(tmp_path):
    import sqlite3
    import time
    with pubsub_store('sqlite', tmp_path) as store:
        a = endpoint(store, 'meta-a')
        meta = EndpointMeta()
        meta.start(store.engine, 3600.0)
        meta.published(a, 100.0)
        locker = sqlite3.connect(store.engine.url.database, isolation_level=None)
        locker.execute('BEGIN IMMEDIATE')  # another writer holds the write lock
        try:
            started = time.monotonic()
            assert not meta.flush_logged()
            assert time.monotonic() - started < 2  # not the ODB engine's 10 s busy timeout
        finally:
            locker.execute('ROLLBACK')
            locker.close()
        meta.stop()  # the last flush writes what the locked one could not
        assert times(store, a) == (100.0, None)
