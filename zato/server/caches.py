"""The built-in caches of one worker: built from their definitions in the ODB, kept current by config
changes, and the cluster bus that carries every change of their entries to every worker.

Entries: a change made here (zato.cache.api) goes into an outbox that one greenlet sends on the bus
as a batch, so a `set` never waits for the bus and a burst of them costs a few messages; other
workers apply each change by its stamp (last writer wins, zato.cache.store). Consistency: eventual,
with every worker converging on the same entry for each key once the changes stop arriving; a
worker reads its own writes at once. A worker whose bus lost its connection clears its caches
(messages may have been missed meanwhile), so it answers a miss, never a stale value.

Definitions: deleting or deactivating one drops its entries on every worker (each worker applies
the config change), and `self.cache.builtin[name]` raises zato.cache.CacheDeleted from then on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import gevent

from zato.bus.base import RECONNECTED
from zato.cache.api import Cache
from zato.cache.store import CacheStore, Clock
from zato.odb.models import CacheBuiltin
from zato.service.cache import CacheFacade

if TYPE_CHECKING:
    from zato.bus.base import Bus

logger = logging.getLogger('zato.cache')

CACHE_SUBJECT = 'cache.changed'
NO_SYNC = 'no-sync'

# How often each worker drops the entries that expired (a read never returns one in any case)
SWEEP_INTERVAL = 5.0

# Changes of entries per bus message
MAX_BATCH = 500


class Caches:
    """The registry of one worker: `by_id`, and the facade services see as `self.cache` (`api`)."""

    def __init__(self, bus: Bus, cluster_id_of: Any) -> None:
        self.bus = bus
        self._cluster_id_of = cluster_id_of  # the runtime's cluster id, known once it started
        self.clock = Clock(bus.member_id)
        self.by_id: dict[int, Cache] = {}
        self.api = CacheFacade()
        self._outbox: list[list[Any]] = []
        self._flusher: gevent.Greenlet | None = None
        self._sweeper: gevent.Greenlet | None = None

    def start(self) -> None:
        """Subscribes to the bus (call before the bus starts) and starts the sweeper."""
        self.bus.subscribe(CACHE_SUBJECT, self.on_changes)
        self.bus.subscribe(RECONNECTED, self._on_reconnected)
        self._sweeper = gevent.spawn(self._sweep)

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.kill(block=False)

    # Definitions

    def reload_all(self, session: Any) -> None:
        from sqlalchemy import select
        rows = session.scalars(select(CacheBuiltin).where(CacheBuiltin.cluster_id == self._cluster_id_of())).all()
        for row in rows:
            self._apply_row(row.id, row)
        for gone in set(self.by_id) - {row.id for row in rows}:
            self._apply_row(gone, None)

    def changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        self._apply_row(obj_id, session.get(CacheBuiltin, obj_id))

    def _apply_row(self, obj_id: int, row: CacheBuiltin | None) -> None:
        cache = self.by_id.get(obj_id)
        builtin = self.api.builtin
        if cache is not None and (row is None or not row.is_active or row.name != cache.name):
            # Gone, inactive or renamed: its name no longer leads to it
            builtin.by_name.pop(cache.name, None)
            if self.api.default_cache is cache:
                self.api.default_cache = None
        if row is None or not row.is_active:
            if cache is not None:
                del self.by_id[obj_id]
                cache.is_deleted = True
                cache.store.forget()
            if row is None:
                builtin.inactive.pop(obj_id, None)
            else:
                builtin.inactive[obj_id] = row.name
            return
        builtin.inactive.pop(obj_id, None)
        spread = None if row.sync_method == NO_SYNC else self.spread
        if cache is None:
            store = CacheStore(row.name, self.clock, row.max_size, row.max_item_size, row.extend_expiry_on_get,
                               row.extend_expiry_on_set)
            cache = self.by_id[obj_id] = Cache(obj_id, store, spread)
        else:
            cache.store.configure(row.max_size, row.max_item_size, row.extend_expiry_on_get, row.extend_expiry_on_set)
            cache.name = cache.store.name = row.name
            cache.spread = spread
        builtin.by_name[row.name] = cache
        if row.is_default:
            self.api.default_cache = cache
        elif self.api.default_cache is cache:
            self.api.default_cache = None

    # Entries: this worker's changes out, the others' in

    def spread(self, cache_id: int, op: list[Any]) -> None:
        """Queues one change for every other worker; the flusher sends the queue as it finds it."""
        self._outbox.append([cache_id, *op])
        if self._flusher is None:
            self._flusher = gevent.spawn(self._flush)

    def _flush(self) -> None:
        try:
            while self._outbox:
                batch, self._outbox = self._outbox[:MAX_BATCH], self._outbox[MAX_BATCH:]
                try:
                    self.bus.publish(CACHE_SUBJECT, {'by': self.bus.member_id, 'ops': batch})
                except Exception:
                    logger.exception('Could not spread %d cache changes', len(batch))
        finally:
            self._flusher = None

    def on_changes(self, msg: dict[str, Any]) -> None:
        if msg.get('by') == self.bus.member_id:
            return  # applied when it was made
        by_id = self.by_id
        for op in msg.get('ops') or ():
            cache = by_id.get(op[0])
            if cache is None:
                continue  # a cache this worker does not have (deleted, or not heard of yet)
            try:
                cache.apply(op[1:])
            except Exception:
                logger.exception('Could not apply a cache change from %s: %r', msg.get('by'), op[:2])

    def _on_reconnected(self, _msg: dict[str, Any]) -> None:
        # Changes made meanwhile may never arrive: forget rather than serve what may be stale
        for cache in self.by_id.values():
            cache.store.clear(self.clock.stamp())

    def _sweep(self) -> None:
        while True:
            gevent.sleep(SWEEP_INTERVAL)
            for cache in list(self.by_id.values()):
                try:
                    cache.store.delete_expired()
                except Exception:
                    logger.exception('Could not drop expired entries of cache `%s`', cache.name)
