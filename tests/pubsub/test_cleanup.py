"""Expired messages deleted (zato.pubsub.cleanup, run by the scheduler job of that name)."""

from __future__ import annotations

import time


from tests.pubsub.fixtures import gd_depth, message_count, msg, one_sub
from zato.pubsub.cleanup import delete_expired



def test_the_expired_messages_are_deleted_in_batches_and_free_their_depth(store):
    topic_id, sub_id = one_sub(store, max_depth_gd=5)
    for i in range(5):
        store.publish('/orders', msg(str(i), expiration=50 if i else 60_000))
    time.sleep(0.1)
    assert delete_expired(store, batch=3) == 4  # two batches: 3, then 1
    assert delete_expired(store, batch=3) == 0
    assert (message_count(store), gd_depth(store, topic_id)) == (1, 1)
    assert [m['data'] for m in store.pull(sub_id, 10, 30)] == ['0']
