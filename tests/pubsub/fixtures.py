"""A PubSubStore over a fresh, migrated ODB (SQLite in a temporary file, or a scratch PostgreSQL
database), with helpers that make topics, endpoints and subscriptions as rows."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.odb.lease_fixtures import migrated_odb
from zato.odb.models import PubSubEndpoint, PubSubSubscription, PubSubTopic
from zato.pubsub.keys import new_sub_key
from zato.pubsub.message import NewMessage, new_message
from zato.pubsub.store import PubSubStore


KINDS = ['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)]


@contextlib.contextmanager
def pubsub_store(kind: str, tmp_path) -> Iterator[PubSubStore]:
    with migrated_odb(kind, tmp_path, 'zato_pubsub_') as (engine, cluster_id):
        yield PubSubStore(engine, cluster_id)


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    """A store on SQLite, then on PostgreSQL (tests/pubsub/conftest.py makes it every test's there)."""
    with pubsub_store(request.param, tmp_path) as s:
        yield s


def topic(store: PubSubStore, name: str, **fields) -> int:
    with Session(store.engine) as session:
        row = PubSubTopic(cluster_id=store.cluster_id, name=name, opaque={}, **fields)
        session.add(row)
        session.commit()
        return row.id


def endpoint(store: PubSubStore, name: str, patterns: str = 'pub=/**\nsub=/**') -> int:
    with Session(store.engine) as session:
        row = PubSubEndpoint(cluster_id=store.cluster_id, name=name, endpoint_type='rest', role='pub-sub',
                             topic_patterns=patterns, opaque={})
        session.add(row)
        session.commit()
        return row.id


def subscribe(store: PubSubStore, topic_id: int, endpoint_id: int) -> int:
    with Session(store.engine) as session:
        row = PubSubSubscription(cluster_id=store.cluster_id, sub_key=new_sub_key('rest'), endpoint_id=endpoint_id,
                                 topic_id=topic_id, creation_time=time.time(), opaque={})
        session.add(row)
        session.commit()
        return row.id


def gd_depth(store: PubSubStore, topic_id: int) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text('SELECT gd_depth FROM pubsub_topic WHERE id = :id'), {'id': topic_id}).scalar_one()


def message_count(store: PubSubStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text('SELECT count(*) FROM pubsub_message')).scalar_one()


def msg(data, **fields) -> NewMessage:
    """A message of `data` with 3.1's fields, checked as a publication's input is (1 MiB at most)."""
    return new_message({'data': data, **fields}, 1 << 20)


def one_sub(store: PubSubStore, name: str = '/orders', **topic_fields) -> tuple[int, int]:
    """A topic and one subscription to it: (topic id, subscription id)."""
    topic_id = topic(store, name, **topic_fields)
    return topic_id, subscribe(store, topic_id, endpoint(store, f'ep{topic_id}'))
