"""When each pub/sub endpoint last published and last had a message delivered (3.1 kept this in Redis):
kept in the worker's memory and written to the endpoint's row in the ODB every few seconds.

The rules, each with a test in tests/pubsub/test_meta.py:

* Recording is a dict update and nothing else: a publication or a delivery never waits for a write
  of its own, so the publish path costs no more with it than without it.
* Every [pubsub] meta_flush_interval seconds a worker writes what it recorded since its last write,
  one UPDATE per endpoint and column, a transaction per column with the endpoints in id order (so
  that two workers' writes never wait for each other in a cycle), and once more when the worker stops.
  On SQLite the writes have a connection of their own with a short busy timeout, as the statistics'
  (zato.server.stats_flush): another writer's lock costs this worker at most that long.
* A write only ever raises a stored time (GREATEST on PostgreSQL, MAX on SQLite): workers that flush
  in any order, or an older time written after a newer one, never move a time back.
* A write that fails (the ODB away, SQLite's write lock held too long) keeps its times in memory, the
  newer of each pair winning, for the next flush; a deleted endpoint's times are dropped by the UPDATE
  matching no row.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, func, update

from zato.odb.models import PubSubEndpoint
from zato.server.flushing import PeriodicWriter, writer_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql import Update

logger = logging.getLogger('zato.pubsub')

# The column of each kind of time on pubsub_endpoint
PUBLISHED = 'last_pub_time'
DELIVERED = 'last_delivery_time'



def _update(dialect: str, column: str) -> Update:
    """Raises the endpoint's `column` to `when`, never lowers it (SQLite's two-argument MAX is its GREATEST)."""
    greatest = func.max if dialect == 'sqlite' else func.greatest
    stored = getattr(PubSubEndpoint, column)
    return update(PubSubEndpoint).where(PubSubEndpoint.id == bindparam('endpoint_id')) \
        .values({column: greatest(func.coalesce(stored, 0.0), bindparam('when'))})


def _merge(into: dict[int, float], other: dict[int, float]) -> None:
    for endpoint_id, when in other.items():
        if when > into.get(endpoint_id, 0.0):
            into[endpoint_id] = when


class EndpointMeta(PeriodicWriter):
    """One per worker. `published` and `delivered` only record; `flush` writes; `start` flushes every
    `interval` seconds in a greenlet and `stop` flushes once more."""

    failed = 'Could not write the last publication and delivery times of endpoints: %s'
    recovered = 'The last publication and delivery times of endpoints are written again'

    def __init__(self) -> None:
        super().__init__(logger, 5.0)
        self.times: dict[str, dict[int, float]] = {PUBLISHED: {}, DELIVERED: {}}
        self.engine: Engine | None = None
        self._owns_engine = False

    def published(self, endpoint_id: int | None, when: float) -> None:
        """The endpoint published at `when` (seconds since the epoch); None: a service did, as no endpoint."""
        times = self.times[PUBLISHED]
        if endpoint_id is not None and when > times.get(endpoint_id, 0.0):
            times[endpoint_id] = when

    def delivered(self, endpoint_id: int, when: float) -> None:
        """A message reached the endpoint at `when`: pushed to it, or acknowledged or taken by it."""
        times = self.times[DELIVERED]
        if when > times.get(endpoint_id, 0.0):
            times[endpoint_id] = when

    # Writing

    def start(self, engine: Engine, interval: float) -> None:
        self.engine, self._owns_engine = writer_engine(engine, pool_size=1)
        self.interval = interval
        self.start_writing()

    def stop(self) -> None:
        """The last write of this worker's times (called when it stops)."""
        self.stop_writing()
        if self.engine is not None:
            self.flush_logged()
            if self._owns_engine:
                self.engine.dispose()

    def flush(self) -> int:
        """Writes the times recorded since the last flush; how many (endpoint, column) pairs it wrote."""
        if self.engine is None:
            raise RuntimeError('EndpointMeta is not started')
        taken = {column: times for column, times in self.times.items() if times}
        if not taken:
            return 0
        for column in taken:
            self.times[column] = {}
        try:
            dialect = self.engine.dialect.name
            for column, times in taken.items():
                with self.engine.begin() as conn:
                    conn.execute(_update(dialect, column), [{'endpoint_id': endpoint_id, 'when': when}
                                                            for endpoint_id, when in sorted(times.items())])
        except BaseException:
            # Back into memory, with whatever came meanwhile (a column written already is written again,
            # which changes nothing)
            for column, times in taken.items():
                _merge(self.times[column], times)
            raise
        return sum(len(times) for times in taken.values())
