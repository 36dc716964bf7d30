"""The web-admin's read-only view of pub/sub queues (zato_web_admin.pubsub_browse) over a real ODB,
SQLite and PostgreSQL, with messages published by the servers' own store: delivery order, a search by
a part of the data in any case whose % and _ are plain characters, pages, expired messages left out,
a message's fields and its endpoint's times."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.orm import Session

from tests.pubsub.fixtures import endpoint, msg, pubsub_store, subscribe, topic
from zato_web_admin import pubsub_browse as browse
from zato_web_admin.listing import Page

KINDS = ['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)]


@pytest.mark.parametrize('kind', KINDS)
def test_a_queue_page_is_in_delivery_order_searched_in_any_case_without_wildcards(kind, tmp_path):
    with pubsub_store(kind, tmp_path) as store:
        topic_id = topic(store, '/browse')
        ep = endpoint(store, 'browser')
        sub_id = subscribe(store, topic_id, ep)
        ids = {}
        for data, priority in (('Žluťoučký kůň', 3), ('100% sure_thing', 9), ('plain', 5), ({'Key': 'Value'}, 5)):
            ids[str(data)] = store.publish('/browse', msg(data, priority=priority), ep, 'pub=/**').msg_id
        store.publish('/browse', msg('gone at once', expiration=0))
        bulk = store.publish_list('/browse', [msg(f'bulk {n}', priority=1) for n in range(30)]).msg_ids

        with Session(store.engine) as db:
            def page(query: str = '', number: int = 1) -> tuple[list[str], int]:
                found, p = browse.queue_page(db, sub_id, Page(query=query, number=number, size=25))
                return [m['msg_id'] for m in found], p.total

            first, total = page()
            assert total == 34  # the expired one is neither listed nor counted
            assert first[:4] == [ids['100% sure_thing'], ids['plain'], ids["{'Key': 'Value'}"],
                                 ids['Žluťoučký kůň']]
            assert first[4:] == bulk[:21] and page(number=2) == (bulk[21:], 34)
            # Any case, also beyond ASCII where the ODB lowers it (PostgreSQL; SQLite's lower() is ASCII only)
            assert page('SURE') == ([ids['100% sure_thing']], 1)
            assert page('key') == ([ids["{'Key': 'Value'}"]], 1)  # a JSON message as its JSON text
            assert page('Žluť') == ([ids['Žluťoučký kůň']], 1)
            if kind == 'postgresql':
                assert page('ŽLUŤOUČKÝ') == ([ids['Žluťoučký kůň']], 1)
            # % and _ are what they are, not wildcards
            assert page('100%') == ([ids['100% sure_thing']], 1)
            assert page('s%g') == ([], 0) and page('p_ain') == ([], 0) and page('_') == ([ids['100% sure_thing']], 1)

            m = browse.queued_message(db, sub_id, ids['100% sure_thing'])
            assert m is not None
            assert (m['data'], m['priority'], m['topic_name'], m['published_by'], m['pub_pattern_matched']) == \
                   ('100% sure_thing', 9, '/browse', 'browser', 'pub=/**')
            assert m['delivery_count'] == 0 and not m['is_in_flight'] and not m['is_expired']
            assert browse.queued_message(db, sub_id, 'zpsm-none') is None

            # The endpoint's last publication is its newest message still held; its last subscription its newest
            last_pub, last_sub = browse.endpoint_times(db, store.cluster_id)[ep]
            assert last_pub is not None and last_sub is not None and abs(last_pub - time.time()) < 60
            subs = browse.subscriptions_of_topic(db, store.cluster_id, topic_id)
            assert [(s['endpoint'], s['queue_depth']) for s in subs] == [('browser', 34)]
