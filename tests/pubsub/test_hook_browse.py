"""Pub/sub hooks' runner (zato.pubsub.hook) and the browsing of queues (PubSubStore.browse, message,
clear), over a real ODB (SQLite and PostgreSQL) and a real ServiceStore holding the hook services."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.pubsub.fixtures import message_count, msg, one_sub
from zato.odb.models import PubSubTopic
from zato.pubsub import hook
from zato.pubsub.hook import PubSubHook
from zato.pubsub.store import PubSubStore
from zato.server.store import ServiceStore
from zato.service.base import Service



class Host:
    """What the runner needs of a worker's runtime: its services, its ODB sessions, its cluster."""

    def __init__(self, store: PubSubStore, *services: type) -> None:
        self.store = ServiceStore()
        for cls in services:
            self.store.services[cls.name] = cls
        self.Session = sessionmaker(store.engine)
        self.cluster_id = store.cluster_id


class ByData(PubSubHook):
    name = 'test.by-data'

    def before_delivery(self):
        data = self.request.input.data
        if data == 'boom':
            raise ValueError('boom')
        return {'skip-me': 'skip', 'delete-me': 'delete', 'odd': 'archive'}.get(data)

    def before_publish(self):
        if self.request.input.data == 'drop':
            return 'skip'
        self.request.input.data = f'{self.topic_name}:{self.request.input.data}'
        return None


class Other(PubSubHook):
    name = 'test.other'

    def before_delivery(self):
        return 'skip'


class NotAHook(Service):
    name = 'test.not-a-hook'

    def handle(self):
        pass


def set_topic_hook(store: PubSubStore, topic_id: int, name: str | None) -> None:
    with Session(store.engine) as session:
        session.execute(update(PubSubTopic).where(PubSubTopic.id == topic_id).values(hook_service=name))
        session.commit()


def test_before_delivery_answers_the_hooks_action_and_deliver_for_none_errors_and_nonsense(store):
    host = Host(store, ByData, Other)
    topic_id, _ = one_sub(store, '/hooked')
    sub = {'id': 1, 'sub_key': 'zpsk.rest.x', 'hook_service': None}
    # No hook on the topic nor the subscription: deliver
    assert hook.before_delivery(host, '/hooked', sub, {'data': 'skip-me'}) == 'deliver'
    set_topic_hook(store, topic_id, ByData.name)
    got = [hook.before_delivery(host, '/hooked', sub, {'data': d})
           for d in ('skip-me', 'delete-me', 'plain', 'boom', 'odd')]
    assert got == ['skip', 'delete', 'deliver', 'deliver', 'deliver']
    # The subscription's own hook wins over its topic's; an object with attributes does as a dict
    class Sub:
        id, sub_key, hook_service = 2, 'zpsk.rest.y', Other.name
    assert hook.before_delivery(host, '/hooked', Sub(), {'data': 'plain'}) == 'skip'


def test_a_missing_or_wrong_hook_service_raises_on_publish_and_delivers_on_delivery(store):
    host = Host(store, NotAHook)
    topic_id, _ = one_sub(store, '/hooked')
    for name, error in (('test.no-such', KeyError), (NotAHook.name, TypeError)):
        set_topic_hook(store, topic_id, name)
        with pytest.raises(error):
            hook.before_publish(host, name, '/hooked', {'data': 'x'})
        assert hook.before_delivery(host, '/hooked', {'sub_key': 'k'}, {'data': 'skip-me'}) == 'deliver'


def test_before_publish_changes_fields_or_drops_the_message(store):
    host = Host(store, ByData)
    assert hook.before_publish(host, ByData.name, '/t', {'data': 'a', 'priority': 7}) == \
        {'data': '/t:a', 'priority': 7}
    assert hook.before_publish(host, ByData.name, '/t', {'data': 'drop'}) is None


def test_browsing_reads_in_delivery_order_by_page_and_query_without_dequeuing(store):
    _, sub_id = one_sub(store)
    ids = [store.publish('/orders', msg(f'order-{i}', priority=9 if i == 3 else 5)).msg_id for i in range(5)]
    page, total = store.browse(sub_id, 0, 2, '')
    assert total == 5 and [m['data'] for m in page] == ['order-3', 'order-0']
    page, _ = store.browse(sub_id, 2, 2, '')
    assert [m['data'] for m in page] == ['order-1', 'order-2']
    everything, total = store.browse(sub_id, 0, None, '')
    assert total == 5 and [m['msg_id'] for m in everything] == [ids[3], ids[0], ids[1], ids[2], ids[4]]
    # A substring of the data; LIKE's wildcards are taken as they are
    store.publish('/orders', msg('50% off_now'))
    assert [m['data'] for m in store.browse(sub_id, 0, 10, '4')[0]] == ['order-4']
    assert [m['data'] for m in store.browse(sub_id, 0, 10, '%')[0]] == ['50% off_now']
    assert store.browse(sub_id, 0, 10, '_n')[1] == 1
    # Nothing was dequeued nor marked delivered
    pulled = store.pull(sub_id, 10, 30.0)
    assert len(pulled) == 6 and all(m['delivery_count'] == 1 for m in pulled)


def test_one_message_is_read_by_msg_id_and_a_queue_is_cleared(store):
    topic_id, sub_id = one_sub(store)
    msg_id = store.publish('/orders', msg({'n': 1})).msg_id
    got = store.message(msg_id, sub_id)
    assert got is not None and got['data'] == {'n': 1} and got['delivery_count'] == 0
    anywhere = store.message(msg_id)
    assert anywhere is not None and anywhere['topic_name'] == '/orders' and anywhere['delivery_count'] is None
    assert store.message('zpsm.no-such') is None
    assert store.clear(sub_id) == 1
    assert store.message(msg_id, sub_id) is None and store.message(msg_id) is None
    assert message_count(store) == 0 and store.clear(sub_id) == 0
