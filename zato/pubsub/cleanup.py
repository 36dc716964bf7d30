"""Expired GD messages deleted (3.1's zato.pubsub.cleanup). The server runs this from a scheduler job,
`zato.pubsub.cleanup` (zato.server.pubsub_cleanup), so it runs once per interval for the whole cluster. An
expired message is never handed out (zato.pubsub.store), but it counts towards its topic's
`max_depth_gd` until it is deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zato.pubsub.store import MAX_BATCH

if TYPE_CHECKING:
    from zato.pubsub.store import PubSubStore


def delete_expired(store: PubSubStore, batch: int = MAX_BATCH) -> int:
    """Deletes every expired message, `batch` at a time (one transaction each); returns how many."""
    total = 0
    while True:
        deleted = store.delete_expired(batch)
        total += deleted
        if deleted < batch:
            return total
