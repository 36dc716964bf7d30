"""Publications committed together (PubSubStore.publish_batch, the module's "Batches" rule) on real
SQLite and PostgreSQL: each is still all or none and answered on its own, the order given is the
delivery order, and on PostgreSQL a topic's batch is one statement."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.pubsub.fixtures import endpoint, gd_depth, message_count, msg, one_sub, pubsub_store, subscribe, topic
from zato.errors import NotFound
from zato.pubsub.errors import MaxDepthReached, TopicInactive
from zato.pubsub.store import Publication, Published



def test_a_batch_is_queued_in_the_order_given_with_each_publication_answered(store):
    topic_id = topic(store, '/orders')
    subs = [subscribe(store, topic_id, endpoint(store, f'ep{i}')) for i in range(2)]
    pubs = [Publication('/orders', [msg(f'm{i}-{j}') for j in range(i % 3 + 1)]) for i in range(40)]
    answers = store.publish_batch(pubs)
    assert all(isinstance(a, Published) for a in answers)
    assert [a.msg_ids for a in answers] == [p.msg_ids for p in pubs]
    assert [a.queued for a in answers] == [2 * len(p.msgs) for p in pubs]
    sent = [f'm{i}-{j}' for i in range(40) for j in range(i % 3 + 1)]
    for sub_id in subs:
        got = store.pull(sub_id, 1000, 30)
        assert [m['data'] for m in got] == sent
        assert len({m['pub_time_iso'] for m in got}) == 1  # one publication time: one commit
    assert gd_depth(store, topic_id) == len(sent)


def test_each_topic_of_a_batch_gets_its_own_answer(store):
    _, sub_id = one_sub(store, '/ok')
    topic(store, '/off', is_active=False)
    topic(store, '/nobody', on_no_subs_pub='drop')
    pubs = [Publication('/ok', [msg('a')]), Publication('/missing', [msg('b')]), Publication('/off', [msg('c')]),
            Publication('/nobody', [msg('d')]), Publication('/ok', [msg('e'), msg('f')])]
    ok1, missing, off, nobody, ok2 = store.publish_batch(pubs)
    assert isinstance(missing, NotFound) and isinstance(off, TopicInactive)
    assert isinstance(nobody, Published) and nobody.dropped and nobody.queued == 0
    assert (ok1.queued, ok2.queued) == (1, 2)
    assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['a', 'e', 'f']
    assert message_count(store) == 3


def test_publications_that_would_exceed_max_depth_are_refused_one_by_one_the_rest_stored(store):
    topic_id, sub_id = one_sub(store, max_depth_gd=5)
    pubs = [Publication('/orders', [msg('a1'), msg('a2'), msg('a3')]), Publication('/orders', [msg('b1'), msg('b2')]),
            Publication('/orders', [msg('c1'), msg('c2')]), Publication('/orders', [msg('d1')])]
    a, b, c, d = store.publish_batch(pubs)
    assert (a.queued, b.queued) == (3, 2)
    assert isinstance(c, MaxDepthReached) and isinstance(d, MaxDepthReached)
    assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['a1', 'a2', 'a3', 'b1', 'b2']
    assert gd_depth(store, topic_id) == 5


def test_a_failure_of_the_odb_is_each_publications_answer_and_stores_nothing(store):
    topic_id, sub_id = one_sub(store)
    pubs = [Publication('/orders', [msg('a')]), Publication('/orders', [msg('b')])]
    pubs[1].msg_ids = list(pubs[0].msg_ids)  # a duplicate msg_id: the unique constraint fails the statement
    answers = store.publish_batch(pubs)
    assert all(isinstance(a, Exception) and 'unique' in str(a).lower() for a in answers), answers
    assert (message_count(store), gd_depth(store, topic_id), store.pull(sub_id, 10, 30)) == (0, 0, [])


@pytest.mark.postgresql
def test_on_postgresql_a_topics_batch_is_one_statement(tmp_path):
    with pubsub_store('postgresql', tmp_path) as store:
        one_sub(store)
        statements: list[str] = []
        event.listen(store.engine, 'before_cursor_execute', lambda *args: statements.append(args[2]))
        store.publish_batch([Publication('/orders', [msg(f'm{i}')]) for i in range(100)])
        written = [s for s in statements if 'pubsub' in s]
        assert [s.split()[0] for s in written] == ['PREPARE', 'EXECUTE'], statements


@pytest.mark.postgresql
def test_on_postgresql_the_batch_statement_is_prepared_once_per_connection_and_again_if_it_is_gone(tmp_path):
    with pubsub_store('postgresql', tmp_path) as store:
        _, sub_id = one_sub(store)
        statements: list[str] = []
        event.listen(store.engine, 'before_cursor_execute', lambda *args: statements.append(args[2].lstrip()[:8]))
        with store.engine.connect().execution_options(isolation_level='AUTOCOMMIT') as conn:
            for i in range(3):
                store.publish_batch([Publication('/orders', [msg(f'm{i}')])], conn)
            conn.exec_driver_sql('DEALLOCATE ALL')  # what a pooler's DISCARD ALL does to it
            store.publish_batch([Publication('/orders', [msg('m3')])], conn)
        assert [s for s in statements if s in ('PREPARE ', 'EXECUTE ')] == \
            ['PREPARE ', 'EXECUTE ', 'EXECUTE ', 'EXECUTE ', 'EXECUTE ', 'PREPARE ', 'EXECUTE ']
        assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['m0', 'm1', 'm2', 'm3']
