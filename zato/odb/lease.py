"""Cluster-wide leases in the ODB: acquire with a TTL, renew, release, each one statement, fenced by a
token that only grows.

The rules, each with a test in tests/odb/test_lease.py:

* A lease is free when it has no row or its row's ``expires_at`` has passed. Acquiring a free lease
  makes the caller its holder until now + TTL and hands it the next token of that name (1, then one
  more at each acquisition, never reused: rows are never deleted and a release keeps the token).
  Acquiring a lease that is not free changes nothing and returns None. One statement decides:
  ``INSERT ... ON CONFLICT (cluster_id, name) DO UPDATE ... WHERE expires_at <= now RETURNING token``,
  so two callers racing for a free lease can never both get it.
* "Now" is always the ODB's clock, read inside the statement (PostgreSQL's ``clock_timestamp()``,
  SQLite's ``julianday('now')``): servers whose clocks disagree still agree on who holds a lease, and
  nothing here reads the process's clock.
* Renewing and releasing take the token and succeed only while that token is the current one and has
  not expired: a holder that paused past its TTL cannot extend or end the time of whoever took over.
  An expired lease is lost even if nobody took it yet, so that ``holds`` never says yes to a holder
  whose time another could have started.
* Fencing: a holder's token goes with its writes. ``fenced(name, token)`` opens a transaction on the
  ODB in which the lease is checked and then kept from changing hands until the transaction ends
  (PostgreSQL: ``SELECT ... FOR SHARE`` of its row; SQLite: ``BEGIN IMMEDIATE``, one writer at a time),
  so a write made in it commits only while the lease is held, and a new holder's acquisition comes
  after it. Elsewhere, the token is compared where the data lives: ``... WHERE fence <= :token``, or
  the write itself carries the check (``held(name, token)``, a condition for its WHERE): it changes
  nothing unless the token holds the lease when the statement runs, and keeps no one from taking the
  lease over afterwards, so a holder paused in the middle of its transaction does not hold up the
  next one (as it would inside ``fenced``).

PostgreSQL runs each operation as one autocommitted statement, committed durably (unlike the rate
limits' counters, never with ``synchronous_commit = off``): an acquisition lost in a crash would let
the next one hand out the same token again. SQLite (one host) runs the same
statements, each in a ``BEGIN IMMEDIATE`` transaction, so a writer waits (busy_timeout) instead of
failing to upgrade a read lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Connection, Engine

from zato.errors import LeaseLost
from zato.odb.engine import autocommit

__all__ = ['LeaseState', 'LeaseStore', 'MAX_NAME', 'MAX_HOLDER']

MAX_NAME = 400     # the column's length
MAX_HOLDER = 200

# The ODB's clock, in seconds since the epoch, read where the statement runs
_NOW = {
    'postgresql': 'extract(epoch FROM clock_timestamp())::float8',
    'sqlite': "((julianday('now') - 2440587.5) * 86400.0)",
}

_ACQUIRE = """
INSERT INTO lease (cluster_id, name, holder, token, acquired_at, expires_at)
VALUES (:cluster_id, :name, :holder, 1, {now}, {now} + :ttl)
ON CONFLICT (cluster_id, name) DO UPDATE
   SET holder = excluded.holder, token = lease.token + 1,
       acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
 WHERE lease.expires_at <= excluded.acquired_at
RETURNING token
"""

# Each statement below matches only while :token is the current token and its time has not run out
_RENEW = """
UPDATE lease SET expires_at = {now} + :ttl
 WHERE cluster_id = :cluster_id AND name = :name AND token = :token AND expires_at > {now}
"""
_RELEASE = """
UPDATE lease SET expires_at = {now}, holder = ''
 WHERE cluster_id = :cluster_id AND name = :name AND token = :token AND expires_at > {now}
"""
_HOLDS = """
SELECT 1 FROM lease
 WHERE cluster_id = :cluster_id AND name = :name AND token = :token AND expires_at > {now}
"""
_HELD = ('EXISTS (SELECT 1 FROM lease WHERE cluster_id = :fence_cluster_id AND name = :fence_name '
         'AND token = :fence_token AND expires_at > {now})')
_STATE = ('SELECT holder, token, expires_at - {now} FROM lease '
          'WHERE cluster_id = :cluster_id AND name = :name')


@dataclass(frozen=True, slots=True)
class LeaseState:
    """What the ODB says of a lease: its current (or last) holder and token, and how many seconds it
    has left (0 or less: free)."""

    holder: str
    token: int
    expires_in: float

    @property
    def is_free(self) -> bool:
        return self.expires_in <= 0


def _check(name: str, holder: str | None = None, ttl: float | None = None) -> None:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(f'A lease name must be a non-empty string of at most {MAX_NAME} characters, not {name!r}')
    if holder is not None and (not isinstance(holder, str) or len(holder) > MAX_HOLDER):
        raise ValueError(f'A lease holder must be a string of at most {MAX_HOLDER} characters')
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= 86400 * 365):
        raise ValueError(f'A lease TTL must be a number of seconds above 0 and at most a year, not {ttl!r}')


class LeaseStore:
    """The leases of one cluster in its ODB (table ``lease``; see the module's rules)."""

    def __init__(self, engine: Engine, cluster_id: int) -> None:
        self.engine = engine
        self.cluster_id = cluster_id
        dialect = engine.dialect.name
        if dialect not in _NOW:
            raise ValueError(f'Leases need PostgreSQL or SQLite, not {dialect}')
        self._sqlite = dialect == 'sqlite'
        now = _NOW[dialect]
        self._acquire = text(_ACQUIRE.format(now=now))
        self._renew = text(_RENEW.format(now=now))
        self._release = text(_RELEASE.format(now=now))
        self._holds = text(_HOLDS.format(now=now))
        self._state = text(_STATE.format(now=now))
        self._held = text(_HELD.format(now=now))
        self._holds_locked = text(_HOLDS.format(now=now) + ('' if self._sqlite else ' FOR SHARE'))

    @contextmanager
    def _statement(self) -> Iterator[Connection]:
        """A connection to run one statement on, committed when the block ends."""
        if self._sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql('BEGIN IMMEDIATE')
                yield conn
                conn.commit()
        else:
            with autocommit(self.engine) as conn:
                yield conn

    def acquire(self, name: str, holder: str, ttl: float) -> int | None:
        """The new fencing token if the lease was free and is now `holder`'s for `ttl` seconds, else None."""
        _check(name, holder, ttl)
        with self._statement() as conn:
            token = conn.execute(self._acquire, {'cluster_id': self.cluster_id, 'name': name, 'holder': holder,
                                                 'ttl': float(ttl)}).scalar()
        return None if token is None else int(token)

    def renew(self, name: str, token: int, ttl: float) -> bool:
        """Makes the lease end `ttl` seconds from now; False if `token` no longer holds it."""
        _check(name, ttl=ttl)
        with self._statement() as conn:
            count = conn.execute(self._renew, {'cluster_id': self.cluster_id, 'name': name, 'token': token,
                                               'ttl': float(ttl)}).rowcount
        return count == 1

    def release(self, name: str, token: int) -> bool:
        """Ends the holder's time now, keeping the token; False if `token` no longer held the lease."""
        _check(name)
        with self._statement() as conn:
            count = conn.execute(self._release, {'cluster_id': self.cluster_id, 'name': name,
                                                 'token': token}).rowcount
        return count == 1

    def holds(self, name: str, token: int) -> bool:
        """Whether `token` is the lease's current token and its time has not run out."""
        _check(name)
        with self._statement() as conn:
            row = conn.execute(self._holds, {'cluster_id': self.cluster_id, 'name': name, 'token': token}).first()
        return row is not None

    def check(self, name: str, token: int) -> None:
        """Raises zato.errors.LeaseLost unless `token` holds the lease."""
        if not self.holds(name, token):
            raise LeaseLost(f'Lease `{name}` is no longer held by token {token}')

    @contextmanager
    def fenced(self, name: str, token: int) -> Iterator[Connection]:
        """A transaction on the ODB that commits only while `token` holds the lease: it raises LeaseLost
        at the start if it does not, and no one can take the lease over until the block ends. Write
        through the connection it yields; an exception in the block rolls everything back."""
        _check(name)
        args = {'cluster_id': self.cluster_id, 'name': name, 'token': token}
        with self.engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql('BEGIN IMMEDIATE')
            else:
                conn.begin()
            try:
                if conn.execute(self._holds_locked, args).first() is None:
                    raise LeaseLost(f'Lease `{name}` is no longer held by token {token}')
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def held(self, name: str, token: int) -> TextClause:
        """A condition for the WHERE of an UPDATE or DELETE: true only while `token` holds the lease, by
        the ODB's clock when the statement runs (see the module's rules)."""
        _check(name)
        return self._held.bindparams(fence_cluster_id=self.cluster_id, fence_name=name, fence_token=token)

    def state(self, name: str) -> LeaseState | None:
        """The lease as the ODB has it now, or None if it was never acquired."""
        _check(name)
        with self._statement() as conn:
            row = conn.execute(self._state, {'cluster_id': self.cluster_id, 'name': name}).first()
        return None if row is None else LeaseState(row[0], int(row[1]), float(row[2]))
