"""Expired GD messages deleted, once per interval for the whole cluster (3.1's zato.pubsub.cleanup,
every 5 minutes): each worker asks for the cleanup lease for one interval, and the one that gets it
deletes expired messages, in batches until none is left. An expired message is never handed out
(zato.pubsub.store), but until it is deleted it counts towards its topic's `max_depth_gd`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zato.pubsub.store import MAX_BATCH

if TYPE_CHECKING:
    from zato.odb.lease import LeaseStore
    from zato.pubsub.store import PubSubStore

LEASE = 'zato.pubsub.cleanup'


class Cleanup:
    """What one worker does each interval; `run_once` is the whole of it (the server's loop sleeps between)."""

    def __init__(self, leases: LeaseStore, store: PubSubStore, holder: str, interval: float) -> None:
        self.leases = leases
        self.store = store
        self.holder = holder
        self.interval = interval

    def run_once(self) -> int | None:
        """Messages deleted by this worker now; None when another worker holds the lease."""
        if self.leases.acquire(LEASE, self.holder, self.interval) is None:
            return None
        total = 0
        while True:
            deleted = self.store.delete_expired(MAX_BATCH)
            total += deleted
            if deleted < MAX_BATCH:
                return total
