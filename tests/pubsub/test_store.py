"""The GD store (zato.pubsub.store) on real SQLite and PostgreSQL: each rule of its docstring."""

from __future__ import annotations

import threading
import time

import pytest

from tests.pubsub.fixtures import endpoint, gd_depth, message_count, msg, one_sub, subscribe, topic
from zato.errors import NotFound
from zato.pubsub.errors import MaxDepthReached, TopicInactive



def test_a_publication_is_queued_for_every_active_subscription_of_the_topic(store):
    topic_id = topic(store, '/orders')
    subs = [subscribe(store, topic_id, endpoint(store, f'ep{i}')) for i in range(3)]
    published = store.publish('/orders', msg('hello'))
    assert published.msg_id.startswith('zpsm') and len(published.msg_id) == 36
    assert published.queued == 3
    for sub_id in subs:
        [got] = store.pull(sub_id, 10, 30)
        assert (got['msg_id'], got['data'], got['delivery_count'], got['topic_name']) == \
               (published.msg_id, 'hello', 1, '/orders')


def test_json_data_comes_back_as_the_same_value(store):
    _, sub_id = one_sub(store)
    store.publish('/orders', msg({'a': [1, 2]}))
    assert store.pull(sub_id, 1, 30)[0]['data'] == {'a': [1, 2]}


def test_messages_come_in_priority_order_then_publication_order(store):
    _, sub_id = one_sub(store)
    sent = [('p5-a', 5), ('p1', 1), ('p9-a', 9), ('p5-b', 5), ('p9-b', 9)]
    for data, priority in sent:
        store.publish('/orders', msg(data, priority=priority))
    got = [m['data'] for m in store.pull(sub_id, 10, 30)]
    assert got == ['p9-a', 'p9-b', 'p5-a', 'p5-b', 'p1']


def test_a_pulled_message_is_invisible_until_its_timeout_then_comes_back_with_a_higher_delivery_count(store):
    _, sub_id = one_sub(store)
    store.publish('/orders', msg('x'))
    assert [m['delivery_count'] for m in store.pull(sub_id, 10, 0.5)] == [1]
    assert store.pull(sub_id, 10, 0.5) == []
    time.sleep(0.7)
    again = store.pull(sub_id, 10, 30)
    assert [(m['data'], m['delivery_count']) for m in again] == [('x', 2)]


def test_an_acknowledged_message_is_gone_from_the_queue_and_from_the_odb(store):
    topic_id, sub_id = one_sub(store)
    msg_id = store.publish('/orders', msg('x')).msg_id
    store.pull(sub_id, 10, 0.1)
    assert store.ack(sub_id, [msg_id, 'zpsm-unknown']) == 1
    time.sleep(0.2)
    assert store.pull(sub_id, 10, 30) == []
    assert (message_count(store), gd_depth(store, topic_id)) == (0, 0)


def test_a_message_stays_until_every_subscription_acknowledged_it(store):
    topic_id = topic(store, '/orders')
    a, b = (subscribe(store, topic_id, endpoint(store, name)) for name in 'ab')
    msg_id = store.publish('/orders', msg('x')).msg_id
    store.ack(a, [msg_id])
    assert (message_count(store), gd_depth(store, topic_id)) == (1, 1)
    assert [m['msg_id'] for m in store.pull(b, 10, 30)] == [msg_id]
    store.ack(b, [msg_id])
    assert (message_count(store), gd_depth(store, topic_id)) == (0, 0)


def test_get_and_delete_returns_messages_once(store):
    _, sub_id = one_sub(store)
    store.publish('/orders', msg('x'))
    assert [m['data'] for m in store.get_and_delete(sub_id, 10)] == ['x']
    assert store.get_and_delete(sub_id, 10) == []
    assert message_count(store) == 0


def test_an_expired_message_is_never_returned_and_is_cleaned_up(store):
    topic_id, sub_id = one_sub(store)
    store.publish('/orders', msg('short', expiration=100))
    store.publish('/orders', msg('long'))
    time.sleep(0.2)
    assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['long']
    assert store.delete_expired() == 1
    assert gd_depth(store, topic_id) == 1


def test_max_depth_gd_refuses_the_publication_beyond_it_until_one_is_acknowledged(store):
    topic_id, sub_id = one_sub(store, max_depth_gd=2)
    first = store.publish('/orders', msg('1')).msg_id
    store.publish('/orders', msg('2'))
    with pytest.raises(MaxDepthReached) as e:
        store.publish('/orders', msg('3'))
    assert e.value.status == 503 and e.value.code == 'pubsub_max_depth_gd'
    store.ack(sub_id, [first])
    store.publish('/orders', msg('3'))
    assert gd_depth(store, topic_id) == 2


def test_an_inactive_or_unknown_topic_refuses_publications(store):
    topic(store, '/off', is_active=False)
    with pytest.raises(TopicInactive):
        store.publish('/off', msg('x'))
    with pytest.raises(NotFound):
        store.publish('/nothing', msg('x'))


def test_without_subscribers_accept_keeps_the_message_and_drop_does_not(store):
    accept = topic(store, '/accept')
    drop = topic(store, '/drop', on_no_subs_pub='drop')
    assert store.publish('/accept', msg('x')).queued == 0
    dropped = store.publish('/drop', msg('x'))
    assert dropped.dropped and dropped.msg_id.startswith('zpsm')
    assert (gd_depth(store, accept), gd_depth(store, drop), message_count(store)) == (1, 0, 1)


def test_deleting_a_queue_deletes_the_messages_only_it_held(store):
    topic_id = topic(store, '/orders')
    a, b = (subscribe(store, topic_id, endpoint(store, name)) for name in 'ab')
    store.publish('/orders', msg('both'))
    with store.transaction() as conn:
        store.delete_queue(conn, a)
    assert (message_count(store), gd_depth(store, topic_id)) == (1, 1)
    with store.transaction() as conn:
        store.delete_queue(conn, b)
    assert (message_count(store), gd_depth(store, topic_id)) == (0, 0)


def test_concurrent_pullers_never_get_the_same_message_while_it_is_invisible(store):
    _, sub_id = one_sub(store)
    total = 200
    for i in range(total):
        store.publish('/orders', msg(str(i)))
    got: list[list[str]] = [[] for _ in range(4)]
    errors = []

    def puller(index):
        try:
            while True:
                batch = store.pull(sub_id, 7, 60)
                if not batch:
                    return
                got[index].extend(m['msg_id'] for m in batch)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=puller, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    every = [msg_id for batch in got for msg_id in batch]
    assert len(every) == total and len(set(every)) == total


def test_concurrent_acknowledgements_of_one_message_by_two_subscriptions_delete_it(store):
    topic_id = topic(store, '/orders')
    subs = [subscribe(store, topic_id, endpoint(store, f'ep{i}')) for i in range(2)]
    for _ in range(5):  # a race, so several rounds of it
        ids = [store.publish('/orders', msg(str(i))).msg_id for i in range(50)]
        threads = [threading.Thread(target=store.ack, args=(sub_id, ids)) for sub_id in subs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert (message_count(store), gd_depth(store, topic_id)) == (0, 0)


def test_max_depth_gd_holds_exactly_under_concurrent_publishers(store):
    topic_id, _ = one_sub(store, max_depth_gd=40)
    outcomes: list[str] = []

    def publisher():
        for i in range(10):
            try:
                store.publish('/orders', msg(str(i)))
                outcomes.append('ok')
            except MaxDepthReached:
                outcomes.append('full')

    threads = [threading.Thread(target=publisher) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert (outcomes.count('ok'), outcomes.count('full')) == (40, 40)
    assert message_count(store) == gd_depth(store, topic_id) == 40


def test_a_list_of_messages_is_committed_all_or_none_and_keeps_its_order(store):
    topic_id, sub_id = one_sub(store, max_depth_gd=3)
    published = store.publish_list('/orders', [msg('a'), msg('b')])
    assert len(published.msg_ids) == 2 and published.queued == 2
    with pytest.raises(MaxDepthReached):
        store.publish_list('/orders', [msg('c'), msg('d')])  # one would fit, two do not: none is stored
    assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['a', 'b']
    assert (message_count(store), gd_depth(store, topic_id)) == (2, 2)
