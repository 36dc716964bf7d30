"""Expired messages deleted once per interval for the whole cluster (zato.pubsub.cleanup)."""

from __future__ import annotations

import time

import pytest

from tests.pubsub.fixtures import gd_depth, message_count, msg, one_sub, pubsub_store
from zato.odb.lease import LeaseStore
from zato.pubsub.cleanup import Cleanup

KINDS = ['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)]


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    with pubsub_store(request.param, tmp_path) as s:
        yield s


def test_one_worker_per_interval_deletes_the_expired_messages_and_frees_their_depth(store):
    topic_id, sub_id = one_sub(store, max_depth_gd=3)
    for i in range(3):
        store.publish('/orders', msg(str(i), expiration=50 if i else 60_000))
    time.sleep(0.1)
    leases = LeaseStore(store.engine, store.cluster_id)
    first, second = (Cleanup(leases, store, holder, 30) for holder in ('server1:1', 'server2:2'))
    assert first.run_once() == 2
    assert second.run_once() is None  # the lease is first's for this interval
    assert (message_count(store), gd_depth(store, topic_id)) == (1, 1)
    assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['0']
