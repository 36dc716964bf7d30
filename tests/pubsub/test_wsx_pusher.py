"""A WSX subscription's pusher (zato.server.pubsub_wsx) stops when its subscription is deleted, on the
worker that holds it, rather than idling until its client's socket closes: heard of over the bus
(PubSub.sub_changed) or, when that message was missed, found by the reload that follows."""

from __future__ import annotations

from types import SimpleNamespace

import gevent
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from tests.pubsub.fixtures import endpoint, pubsub_store, subscribe, topic
from zato.odb.models import PubSubSubscription
from zato.server.pubsub import PubSub


@pytest.fixture
def held(tmp_path):
    """A worker's PubSub over a real SQLite ODB, holding the pusher of one WSX subscription."""
    with pubsub_store('sqlite', tmp_path) as store:
        client = SimpleNamespace(id='client-1', closed=False, closing=False, send=lambda data: True)
        runtime = SimpleNamespace(config=SimpleNamespace(get=lambda section, name: 1_000_000),
                                  wsx=SimpleNamespace(clients={client.id: client}), cluster_id=store.cluster_id)
        ps = PubSub(runtime)  # type: ignore[arg-type]
        ps.store = store
        sub_id = subscribe(store, topic(store, '/wsx/t'), endpoint(store, 'wsx-e'))
        ps.wsx.attach(sub_id, 'zpsk.wsx.t', '/wsx/t', client, 1.0)
        pusher = ps.wsx.pushers[sub_id]
        gevent.sleep(0.05)  # the pusher has pulled its empty queue and waits
        assert pusher.greenlet is not None and not pusher.greenlet.dead
        yield ps, store, sub_id, pusher
        for p in list(ps.wsx.pushers.values()):
            ps.wsx.detach(p.sub_id)


def delete_row(store, sub_id: int) -> None:
    with Session(store.engine) as session:
        session.execute(delete(PubSubSubscription).where(PubSubSubscription.id == sub_id))
        session.commit()


def test_a_subscription_changed_but_not_deleted_keeps_its_pusher(held):
    ps, store, sub_id, pusher = held
    with Session(store.engine) as session:
        ps.sub_changed(session, sub_id, {'kind': 'pubsub_sub', 'id': sub_id})
    gevent.sleep(0.05)
    assert ps.wsx.pushers.get(sub_id) is pusher and not pusher.greenlet.dead


def test_a_deleted_subscription_stops_its_idle_pusher_when_the_bus_says_so(held):
    ps, store, sub_id, pusher = held
    delete_row(store, sub_id)
    with Session(store.engine) as session:
        ps.sub_changed(session, sub_id, {'kind': 'pubsub_sub', 'id': sub_id, 'action': 'delete'})
    gevent.sleep(0.05)
    assert sub_id not in ps.wsx.pushers and pusher.stopped and pusher.greenlet.dead


def test_a_deleted_subscription_stops_its_pusher_at_the_reload_after_a_missed_bus_message(held):
    ps, store, sub_id, pusher = held
    delete_row(store, sub_id)
    with Session(store.engine) as session:
        ps.reload(session)
    gevent.sleep(0.05)
    assert sub_id not in ps.wsx.pushers and pusher.greenlet.dead
