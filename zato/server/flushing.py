"""What a worker's writers of in-memory records to the ODB share (service statistics,
zato.server.stats_flush; pub/sub endpoints' times, zato.server.pubsub_meta): a write every `interval`
seconds in a greenlet of their own, a failure logged once until a write succeeds again, and on
SQLite an engine of their own with a short busy timeout, so that another writer's lock costs the
worker's requests at most that long.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import gevent
from sqlalchemy import event

from zato.odb.engine import make_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# SQLite: how long one write may wait for another connection's write lock
SQLITE_BUSY_MS = 200


def _short_busy_timeout(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute(f'PRAGMA busy_timeout={SQLITE_BUSY_MS}')


def writer_engine(engine: Engine, **pool: Any) -> tuple[Engine, bool]:
    """The engine a writer uses, and whether it is its own (to dispose of when it stops): on SQLite a new
    one with a busy timeout of SQLITE_BUSY_MS, else `engine` itself."""
    if engine.dialect.name != 'sqlite':
        return engine, False
    own = make_engine(engine.url, **pool)
    event.listen(own, 'connect', _short_busy_timeout)  # after make_engine's own pragmas
    return own, True


class PeriodicWriter:
    """Calls `flush` every `interval` seconds once started; `flush_logged` logs a failure (`failed`, with
    the error) once, and `recovered` when a write succeeds after failures."""

    failed = ''
    recovered = ''

    def __init__(self, log: logging.Logger, interval: float) -> None:
        self.log = log
        self.interval = interval
        self._failing = False
        self._greenlet: gevent.Greenlet | None = None

    def flush(self, *args: Any) -> Any:
        raise NotImplementedError

    def start_writing(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop_writing(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(timeout=5)
            self._greenlet = None

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval)
            self.flush_logged()

    def flush_logged(self, *args: Any) -> bool:
        """`flush`, with a failure logged once until a flush succeeds again; what was not written is kept
        in memory for the next one."""
        try:
            self.flush(*args)
        except Exception as e:  # noqa: BLE001 - the ODB may be down; what is not written is kept for later
            if not self._failing:
                self.log.warning(self.failed, e)
            self._failing = True
            return False
        if self._failing:
            self.log.info(self.recovered)
        self._failing = False
        return True
