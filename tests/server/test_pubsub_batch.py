"""A worker's group commit of publications (zato.server.pubsub_batch) on real SQLite and PostgreSQL:
publications made together are committed in few batches, each answered on its own, in the order made;
a batch interrupted answers its publications 503 and the next ones are still committed."""

from __future__ import annotations

import gevent
import pytest

from tests.pubsub.fixtures import msg, one_sub, pubsub_store
from zato.errors import NotFound
from zato.pubsub.errors import PublishInterrupted
from zato.pubsub.store import Publication
from zato.server.pubsub_batch import Batcher

KINDS = ['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)]


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    with pubsub_store(request.param, tmp_path) as s:
        yield s


@pytest.fixture
def batcher(store):
    b = Batcher(store)
    yield b
    b.close()


def test_publications_made_together_share_batches_and_each_gets_its_own_answer(store, batcher):
    _, sub_id = one_sub(store)
    pubs = [Publication('/orders' if i != 7 else '/missing', [msg(f'm{i}')]) for i in range(60)]
    jobs = [gevent.spawn(batcher.publish, pub) for pub in pubs]
    gevent.joinall(jobs)
    assert isinstance(jobs[7].exception, NotFound)
    assert [job.value.msg_ids for i, job in enumerate(jobs) if i != 7] == [p.msg_ids for i, p in enumerate(pubs) if i != 7]
    assert batcher.publications == 60 and batcher.batches < 10, (batcher.batches, batcher.publications)
    assert [m['data'] for m in store.pull(sub_id, 100, 30)] == [f'm{i}' for i in range(60) if i != 7]


def test_one_publisher_alone_is_answered_at_once_and_in_order(store, batcher):
    _, sub_id = one_sub(store)
    for i in range(5):
        assert batcher.publish(Publication('/orders', [msg(f'm{i}')])).queued == 1
    assert batcher.batches == 5
    assert [m['data'] for m in store.pull(sub_id, 10, 30)] == [f'm{i}' for i in range(5)]


def test_a_batch_killed_midway_answers_503_and_the_publications_after_it_are_committed(store, batcher):
    _, sub_id = one_sub(store)
    real = store.publish_batch
    calls = []

    def slow_first(pubs, conn=None):
        calls.append(len(pubs))
        if len(calls) == 1:
            gevent.sleep(0.3)  # the flusher is killed here, before anything is written
        return real(pubs, conn)

    store.publish_batch = slow_first
    first = gevent.spawn(batcher.publish, Publication('/orders', [msg('first')]))
    gevent.sleep(0.05)
    later = [gevent.spawn(batcher.publish, Publication('/orders', [msg(f'later{i}')])) for i in range(3)]
    gevent.sleep(0.05)
    batcher._flusher.kill()
    gevent.joinall([first, *later], timeout=10)
    assert isinstance(first.exception, PublishInterrupted) and first.exception.status == 503
    assert all(job.successful() for job in later), [job.exception for job in later]
    assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['later0', 'later1', 'later2']


def test_a_connection_that_cannot_be_had_is_each_publications_own_error_not_an_interruption(store, batcher):
    one_sub(store)

    def unavailable():
        raise ConnectionRefusedError('the ODB is down')
    batcher._connection = unavailable
    jobs = [gevent.spawn(batcher.publish, Publication('/orders', [msg(f'm{i}')])) for i in range(3)]
    gevent.joinall(jobs, timeout=10)
    assert [type(job.exception) for job in jobs] == [ConnectionRefusedError] * 3
    del batcher._connection
    assert batcher.publish(Publication('/orders', [msg('after')])).queued == 1  # the next batch works


@pytest.mark.postgresql
def test_the_kept_connection_found_gone_after_being_idle_is_replaced_before_a_batch(tmp_path):
    from sqlalchemy import text
    with pubsub_store('postgresql', tmp_path) as store:
        _, sub_id = one_sub(store)
        batcher = Batcher(store)
        batcher.publish(Publication('/orders', [msg('before')]))
        pid = batcher._conn.exec_driver_sql('SELECT pg_backend_pid()').scalar()
        with store.engine.connect() as admin:
            admin.execute(text('SELECT pg_terminate_backend(:pid)'), {'pid': pid})
            admin.commit()
        batcher._last_used -= 5  # idle past PING_AFTER_IDLE
        assert batcher.publish(Publication('/orders', [msg('after')])).queued == 1
        assert batcher._conn.exec_driver_sql('SELECT pg_backend_pid()').scalar() != pid
        assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['before', 'after']
        batcher.close()
