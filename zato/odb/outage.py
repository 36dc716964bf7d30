"""When the ODB itself is out of reach, and how that reaches a caller: 503 `odb_unavailable`, not 500.

The engines the ODB is used through (zato.odb.engine.make_engine) mark each error SQLAlchemy reports
on them as the ODB being unavailable, or not, when it happens (SQLAlchemy's `handle_error` event,
which also fires for a failed connect); zato.errors.failure_of answers a marked error with 503, a
`Retry-After` and the code `odb_unavailable`, and logs it as a remote end's failure, without a
traceback. Only errors of the ODB's own engines are marked: another database a service talks to is
not the ODB.

What counts as unavailable:
- a connection that could not be made at all (server down, refused, unknown host, a database that
  is starting up or shutting down, too many connections, wrong credentials: nothing a caller or our
  code can change by asking differently);
- a connection lost while in use (the dialect's own test, `is_disconnect`: a server that was killed
  or restarted, a network cut);
- on PostgreSQL, a statement refused for a reason of the server's state: SQLSTATE class 08
  (connection exception), 53 (insufficient resources: disk full, out of memory, too many
  connections) and 57P01-57P03 (the server shutting down, crashed or not yet accepting connections);
- on SQLite, a database file that stays busy past the busy timeout, cannot be opened or read or
  written (SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_FULL).
- every connection of the worker's pool in use past `[odb] pool_timeout` (SQLAlchemy's TimeoutError,
  raised by the pool, not the driver, so marked by the pool class the engines use, WatchedPool): the
  ODB is saturated, and the caller is better told to come back than kept waiting.

Everything else stays our bug (500 with its traceback in the log): a syntax error, a missing table or
column, a constraint violated, a deadlock or a serialization failure (the code must retry those), a
statement cancelled by its timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool

from zato.errors import register_unavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# An attribute set on the SQLAlchemy exception raised for an error of an ODB engine
_MARK = '_zato_odb_unavailable'

# Seconds a caller is told to wait: PostgreSQL restarts in about that time, and the pool reconnects
# (zato.odb.engine's check of a connection idle past PING_AFTER_IDLE) on the first call after it is back
RETRY_AFTER = 5

_PG_STATES = ('57P01', '57P02', '57P03')
_PG_CLASSES = ('08', '53')

# SQLite's primary result codes (the low byte of sqlite_errorcode)
_SQLITE_BUSY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 5, 10, 13, 14
_SQLITE_CODES = frozenset((_SQLITE_BUSY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN))


def _state_says_unavailable(orig: BaseException) -> bool:
    pgcode = getattr(orig, 'pgcode', None)
    if pgcode:
        return pgcode in _PG_STATES or pgcode[:2] in _PG_CLASSES
    sqlite_code = getattr(orig, 'sqlite_errorcode', None)
    if sqlite_code is not None:
        return (sqlite_code & 0xFF) in _SQLITE_CODES
    return False


def is_unavailable(ctx: Any) -> bool:
    """Whether the error SQLAlchemy's ExceptionContext `ctx` describes means the ODB could not be used."""
    if ctx.sqlalchemy_exception is None:
        return False  # not a DBAPI error: something of ours
    if ctx.is_disconnect:
        return True
    if ctx.connection is None and ctx.statement is None:
        return True  # the connect itself failed
    return _state_says_unavailable(ctx.original_exception)


def _on_error(ctx: Any) -> None:
    if is_unavailable(ctx):
        setattr(ctx.sqlalchemy_exception, _MARK, True)


def _marked(e: BaseException) -> bool:
    return getattr(e, _MARK, False) is True


def odb_unavailable(e: BaseException) -> bool:
    """Whether `e`, or an exception it was raised from, is an error of an ODB engine marked as the ODB being
    unavailable, or the driver's own OperationalError (the cluster bus talks to the ODB's PostgreSQL
    through psycopg2 directly): what a worker starting while the ODB is down waits out (zato.server.worker)."""
    import sqlite3

    import psycopg2
    seen: BaseException | None = e
    while seen is not None:
        if _marked(seen) or isinstance(seen, (psycopg2.OperationalError, sqlite3.OperationalError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(e: BaseException) -> str:
    # The driver's message only, on one line: str() of a SQLAlchemy error carries the statement and its
    # parameters
    orig = getattr(e, 'orig', None)
    text = ' '.join(line.strip() for line in str(orig if orig is not None else e).splitlines() if line.strip())
    return f'the ODB could not be used: {text[:300] or type(e).__name__}'


class WatchedPool(QueuePool):
    """The ODB's connection pool: a checkout that timed out waiting for a free connection is marked as the
    ODB being unavailable, so that its TimeoutError is answered 503 like the errors of the driver."""

    def _do_get(self) -> Any:
        try:
            return super()._do_get()
        except PoolTimeout as e:
            setattr(e, _MARK, True)
            raise


def watch(engine: Engine) -> Engine:
    """Marks the errors of `engine` that mean the ODB is unavailable, and teaches zato.errors.failure_of
    to answer those with 503 `odb_unavailable`. Returns the engine."""
    register_unavailable(DBAPIError, 'odb', label='the ODB', applies=_marked, reason=_reason,
                         retry_after=RETRY_AFTER)
    register_unavailable(PoolTimeout, 'odb', label='the ODB', applies=_marked, reason=_reason, retry_after=RETRY_AFTER)
    if not event.contains(engine, 'handle_error', _on_error):
        event.listen(engine, 'handle_error', _on_error)
    return engine
