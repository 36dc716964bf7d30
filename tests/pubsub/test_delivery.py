"""Push delivery (zato.server.pubsub_delivery) against SQLite and PostgreSQL: the delivery tasks under their
leases, with a target that records what it is sent."""

from __future__ import annotations

import time

import gevent
import pytest
from sqlalchemy import text

from tests.pubsub.fixtures import msg, one_sub
from zato.odb.lease import LeaseStore
from zato.server.pubsub_delivery import Delivery, DeliveryError, SocketError, lease_name



def wait_for(check, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        gevent.sleep(0.02)
    raise AssertionError('Timed out waiting')


class Target:
    """A delivery target whose failures are set by the test: fail_with is raised while set."""

    def __init__(self) -> None:
        self.received: list = []
        self.fail_with: Exception | None = None
        self.failures = 0

    def __call__(self, sub, payload) -> None:
        if self.fail_with is not None:
            self.failures += 1
            raise self.fail_with
        self.received.append(payload)

    def data(self) -> list:
        out = []
        for item in self.received:
            out += [m['data'] for m in (item if isinstance(item, list) else [item])]
        return out


def push_sub(store, name='/orders', **fields):
    topic_id, sub_id = one_sub(store, name)
    values = {'delivery_method': 'notify', 'wait_sock_err': 0, 'wait_non_sock_err': 0, **fields}
    with store.engine.begin() as conn:
        conn.execute(text('UPDATE pubsub_sub SET ' + ', '.join(f'{k} = :{k}' for k in values) + ' WHERE id = :id'),
                     {**values, 'id': sub_id})
    return topic_id, sub_id


def delivery(store, target, holder='w1', ttl=2.0):
    return Delivery(store, LeaseStore(store.engine, store.cluster_id), target, holder=holder, ttl=ttl,
                    sync_interval=0.2, delivery_timeout=1.0, server_name='s1')


@pytest.fixture
def running():
    started = []

    def start(d):
        started.append(d)
        d.start()
        return d
    yield start
    for d in started:
        d.stop()


def test_messages_are_pushed_in_order_acknowledged_and_the_delivery_time_recorded(store, running):
    _, sub_id = push_sub(store)
    target = Target()
    d = running(delivery(store, target))
    for i in range(5):
        store.publish('/orders', msg(i))
    d.wake({'topic': '/orders'})
    wait_for(lambda: len(target.data()) == 5)
    assert target.data() == [0, 1, 2, 3, 4]
    wait_for(lambda: store.depth(sub_id) == 0)
    first = target.received[0][0]
    assert {'msg_id', 'data', 'topic_name', 'sub_key', 'priority', 'mime_type', 'size', 'has_gd', 'delivery_count',
            'expiration', 'expiration_time_iso', 'pub_time_iso', 'ext_pub_time_iso', 'ext_client_id', 'in_reply_to',
            'correl_id', 'server_name', 'server_pid'} <= set(first)
    assert first['topic_name'] == '/orders' and first['server_name'] == 's1'
    with store.engine.connect() as conn:
        assert conn.execute(text('SELECT last_delivery_time FROM pubsub_sub WHERE id = :id'),
                            {'id': sub_id}).scalar() is not None


def test_one_message_is_sent_unwrapped_when_the_subscription_says_so(store, running):
    push_sub(store, wrap_one_msg_in_list=False)
    target = Target()
    running(delivery(store, target))
    store.publish('/orders', msg('only'))
    wait_for(lambda: target.received)
    assert isinstance(target.received[0], dict) and target.received[0]['data'] == 'only'


def test_a_pull_subscription_gets_no_task(store, running):
    _, sub_id = one_sub(store)
    target = Target()
    d = running(delivery(store, target))
    store.publish('/orders', msg(1))
    gevent.sleep(0.6)  # three sync rounds: nothing may be delivered, so there is nothing to wait for
    assert target.received == [] and d.tasks == {} and store.depth(sub_id) == 1


def test_a_failing_message_blocks_the_queue_then_everything_goes_in_order(store, running):
    _, sub_id = push_sub(store, delivery_batch_size=1, wait_non_sock_err=1)
    target = Target()
    failing = [True]

    def first_fails(sub, payload):
        if payload[0]['data'] == 0 and failing[0]:
            target.failures += 1
            raise DeliveryError('503')
        target(sub, payload)
    running(delivery(store, first_fails))
    for i in range(4):
        store.publish('/orders', msg(i))
    wait_for(lambda: target.failures >= 2)
    assert target.received == []  # the next messages wait for the first
    failing[0] = False
    wait_for(lambda: len(target.data()) == 4)
    assert target.data() == [0, 1, 2, 3]
    wait_for(lambda: store.depth(sub_id) == 0)


def test_a_failed_message_is_set_aside_when_the_queue_does_not_block(store, running):
    _, sub_id = push_sub(store, delivery_batch_size=1, delivery_err_should_block=False, wait_sock_err=1)
    target = Target()
    calls = []

    def first_fails(sub, payload):
        calls.append(payload[0]['data'])
        if payload[0]['data'] == 0 and calls.count(0) == 1:
            raise SocketError('refused')
        target(sub, payload)
    running(delivery(store, first_fails))
    for i in range(3):
        store.publish('/orders', msg(i))
    wait_for(lambda: len(target.data()) == 3)
    assert target.data() == [1, 2, 0]
    wait_for(lambda: store.depth(sub_id) == 0)


def test_after_its_retries_a_message_stays_queued_and_is_counted(store, running):
    _, sub_id = push_sub(store, delivery_max_retry=2)
    target = Target()
    target.fail_with = DeliveryError('500')
    d = running(delivery(store, target))
    store.publish('/orders', msg('x'))
    wait_for(lambda: d.exhausted == 1)
    assert target.failures == 3  # the first try and two retries
    gevent.sleep(0.6)  # set aside: no more tries meanwhile
    assert target.failures == 3 and store.depth(sub_id) == 1


def test_one_worker_holds_a_subscription_and_its_stop_hands_it_over_at_once(store, running):
    _, sub_id = push_sub(store)
    t1, t2 = Target(), Target()
    d1 = running(delivery(store, t1, 'w1', ttl=60.0))
    wait_for(lambda: sub_id in d1.tasks)
    d2 = running(delivery(store, t2, 'w2', ttl=60.0))
    gevent.sleep(0.5)
    assert sub_id not in d2.tasks
    store.publish('/orders', msg('a'))
    wait_for(lambda: t1.data() == ['a'])
    d1.stop()  # the lease given back: w2 takes over long before the 60 s TTL
    wait_for(lambda: sub_id in d2.tasks, timeout=5)
    store.publish('/orders', msg('b'))
    wait_for(lambda: t2.data() == ['b'])
    assert t1.data() == ['a']


def test_a_task_whose_lease_is_gone_delivers_nothing(store, running):
    _, sub_id = push_sub(store)
    target = Target()
    d = delivery(store, target, ttl=60.0)
    d.sync()
    task = d.tasks[sub_id]
    task.greenlet.kill()
    leases = LeaseStore(store.engine, store.cluster_id)
    assert leases.release(lease_name(sub_id), task.token)
    assert leases.acquire(lease_name(sub_id), 'other', 60.0) is not None
    store.publish('/orders', msg(1))
    task.done = False
    # As after a pause of the worker: a third of the TTL went by since the last renewal, which the fence
    # makes before acting, and which fails (within that third no one could have taken the lease over)
    task._renew_at = time.monotonic() - 1
    assert task.round() is True and task.done
    assert target.received == []
    d.stop()


def test_only_topics_with_a_wsx_subscriber_or_a_push_task_of_another_worker_wake_other_workers(store):
    from tests.pubsub.fixtures import endpoint, subscribe, topic
    _, pushed_here = push_sub(store, '/pushed-here')
    _, pushed_there = push_sub(store, '/pushed-there')
    one_sub(store, '/pulled')  # a REST endpoint's pull subscription: pulled, never pushed
    wsx_endpoint = endpoint(store, 'wsx-client')
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE pubsub_endpoint SET endpoint_type = 'wsx' WHERE id = :id"), {'id': wsx_endpoint})
    subscribe(store, topic(store, '/to-wsx'), wsx_endpoint)
    here = delivery(store, Target())
    assert here.leases.acquire(lease_name(pushed_there), 'w2', 60) is not None  # another worker's task
    assert here.wakes_others('/pulled')  # nothing looked up yet: every publication is told
    here.sync()  # takes /pushed-here
    assert set(here.tasks) == {pushed_here}
    assert [here.wakes_others(name) for name in ('/pushed-here', '/pushed-there', '/to-wsx', '/pulled')] == \
        [False, True, True, False]
    here.stop()


def test_a_task_that_lost_its_lease_after_pulling_gives_the_batch_back_at_once(store):
    from zato.server.pubsub_delivery import _Task, load_subs
    _, sub_id = push_sub(store)
    for i in range(3):
        store.publish('/orders', msg(f'm{i}'))
    target = Target()
    d = delivery(store, target)
    task = _Task(d, load_subs(store)[sub_id], d.leases.acquire(lease_name(sub_id), 'w1', 2.0))
    task._holds = lambda: False  # another worker took the lease between this task's pull and its fence
    assert task.round() is True and task.done
    assert target.received == []
    again = store.pull(sub_id, 10, 30)  # visible at once, in order, not after the visibility timeout
    assert [(m['data'], m['delivery_count']) for m in again] == [('m0', 2), ('m1', 2), ('m2', 2)]
