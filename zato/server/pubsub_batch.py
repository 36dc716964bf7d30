"""Group commit of a worker's GD publications: those its greenlets make while a batch is being
committed are gathered and committed together as the next batch (PubSubStore.publish_batch), so that
a busy worker pays for one statement and one commit per batch instead of one per publication.

Nothing waits for company: a publication that finds no batch in flight starts one at once, so one
publisher alone sees the latency of one commit. Each publication still gets its own answer (its
msg_ids only once its batch is committed, or the error that refused it); a batch holds at most
`MAX_MESSAGES` messages and `MAX_BYTES` of data (one publication larger than that goes alone).

On PostgreSQL the batches share one connection, kept between batches (a checkout per batch halved
the rate at 10 publishers in flight). As the pool does with its own (zato.odb.engine), it is checked
with a round trip when it was unused for PING_AFTER_IDLE seconds, and replaced if it is gone; one an
error invalidated is dropped for a new one.

The batches run in a greenlet of their own, never in a caller's: a caller interrupted while it waits
(its timeout, its client gone) leaves the others' batch alone. If that greenlet is itself killed
mid-batch, every publication of the batch is answered 503 (`pubsub_publish_interrupted`): whether it
was committed is not known, as with any answer lost on the way, and a publisher that publishes again
may make a duplicate, never a loss.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import gevent
from gevent.event import AsyncResult
from sqlalchemy.engine import Connection

from zato.odb.engine import PING_AFTER_IDLE, ping
from zato.pubsub.errors import PublishInterrupted
from zato.pubsub.store import Publication, Published, PubSubStore

logger = logging.getLogger('zato.pubsub')

MAX_MESSAGES = 1000
MAX_BYTES = 8 * 1024 * 1024


class Batcher:
    """A worker's group commit of publications (see the module's docstring)."""

    def __init__(self, store: PubSubStore) -> None:
        self.store = store
        self._pending: deque[tuple[Publication, AsyncResult]] = deque()
        self._flusher: gevent.Greenlet | None = None
        self._conn: Connection | None = None
        self._last_used = 0.0
        self.batches = 0  # committed so far, and the publications they held: what a test or a probe reads
        self.publications = 0

    def publish(self, pub: Publication) -> Published:
        """Commits `pub` with whatever else is pending; its answer, or raises the error that refused it."""
        result: AsyncResult = AsyncResult()
        self._pending.append((pub, result))
        if self._flusher is None:
            self._flusher = gevent.spawn(self._run)
        answer = result.get()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _take(self) -> list[tuple[Publication, AsyncResult]]:
        batch = [self._pending.popleft()]
        count, size = len(batch[0][0].msgs), sum(m.size for m in batch[0][0].msgs)
        while self._pending:
            pub = self._pending[0][0]
            more, more_size = len(pub.msgs), sum(m.size for m in pub.msgs)
            if count + more > MAX_MESSAGES or size + more_size > MAX_BYTES:
                break
            batch.append(self._pending.popleft())
            count, size = count + more, size + more_size
        return batch

    def _run(self) -> None:
        batch: list[tuple[Publication, AsyncResult]] = []
        try:
            while self._pending:
                batch = self._take()
                try:
                    conn = self._connection()
                except Exception as e:  # noqa: BLE001 - the ODB out of reach: each publication's answer
                    answers: list[Published | Exception] = [e] * len(batch)
                else:
                    answers = self.store.publish_batch([pub for pub, _ in batch], conn)
                if self._conn is not None and self._conn.invalidated:
                    self._drop()
                for (_, result), answer in zip(batch, answers, strict=True):
                    result.set(answer)
                self.batches += 1
                self.publications += len(batch)
                batch = []
        except BaseException:
            self._drop()  # killed mid-statement: the connection's state is unknown
            raise
        finally:
            self._flusher = None
            for _, result in batch:
                if not result.ready():
                    result.set(PublishInterrupted())
            if self._pending:  # killed with more to do: another greenlet takes over
                self._flusher = gevent.spawn(self._run)

    def close(self) -> None:
        """Gives the batches' connection back (a worker stopping; a batch still running takes another)."""
        self._drop()

    def _connection(self) -> Connection | None:
        """The connection the batches share (PostgreSQL; None on SQLite: its store opens its own)."""
        if self.store.is_sqlite:
            return None
        now = time.monotonic()
        if self._conn is not None and now - self._last_used > PING_AFTER_IDLE:
            # Given back and taken again, it would not be checked: the pool counts idleness from check-in
            try:
                ping(self._conn.connection.dbapi_connection)
            except Exception:  # noqa: BLE001 - gone (a restart of PostgreSQL): a new one from the pool
                self._conn.invalidate()
                self._drop()
        if self._conn is None:
            self._conn = self.store.engine.connect().execution_options(isolation_level='AUTOCOMMIT')
        self._last_used = now
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a connection already broken; the pool discards it
                logger.debug('Could not close a publishing connection', exc_info=True)
