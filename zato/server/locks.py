"""``self.lock()``: a cluster-wide lock over a lease in the ODB (zato.odb.lease), held by one greenlet.

Waiting: the greenlets of one worker that want the same lock queue on a local semaphore first, so that
at most one of them at a time asks the ODB (the others wait for it without a query); that one tries
to acquire the lease, sleeping between attempts as zato.service.lock says, until ``block`` runs out
(zato.errors.LockTimeout).

Holding: a greenlet started with the lock renews the lease every third of its TTL while the block
runs. If a renewal finds the lease gone, or the ODB stays out of reach until the TTL has passed, the
lock is lost: ``check()`` and ``fenced()`` raise zato.errors.LockLost from then on, and so does the
end of the block (unless the block raised something of its own), because another holder may have
acted meanwhile. A worker that dies holds the lock no longer than the TTL.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from gevent.lock import Semaphore

from zato.errors import LeaseLost, LockLost, LockTimeout
from zato.odb.lease import MAX_HOLDER
from zato.service.lock import LockArgs, next_wait, renew_every

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from zato.odb.lease import LeaseStore

logger = logging.getLogger('zato.lock')


class _Gate:
    __slots__ = ('semaphore', 'users')

    def __init__(self) -> None:
        self.semaphore = Semaphore()
        self.users = 0


class Locks:
    """The locks of one worker: ``lock(args)`` makes the context manager ``self.lock()`` returns."""

    def __init__(self, store: LeaseStore, server_name: str) -> None:
        self.store = store
        self.holder = f'{server_name}:{os.getpid()}'
        self._gates: dict[str, _Gate] = {}

    def lock(self, args: LockArgs, cid: str = '') -> ClusterLock:
        holder = f'{self.holder}:{cid}' if cid else self.holder
        return ClusterLock(self, args, holder[:MAX_HOLDER])

    @contextmanager
    def _gate(self, name: str, timeout: float) -> Iterator[bool]:
        gate = self._gates.get(name)
        if gate is None:
            gate = self._gates[name] = _Gate()
        gate.users += 1
        entered = False
        try:
            entered = gate.semaphore.acquire(timeout=timeout)
            yield entered
        finally:
            if entered:
                gate.semaphore.release()
            gate.users -= 1
            if not gate.users:
                self._gates.pop(name, None)


class ClusterLock:
    """One ``with self.lock(...) as lock:`` block. While it runs, ``lock.token`` is the fencing token,
    ``lock.check()`` raises LockLost if the lock is no longer held, and ``with lock.fenced() as conn:``
    is an ODB transaction that commits only while it is."""

    def __init__(self, locks: Locks, args: LockArgs, holder: str) -> None:
        self._locks = locks
        self._store = locks.store
        self.name = args.name
        self.ttl = args.ttl
        self.block = args.block
        self.holder = holder
        self.token: int | None = None
        self.lost = False
        self._held = False
        self._gate: Any = None
        self._done = Event()
        self._renewer: gevent.Greenlet | None = None

    # Acquiring and releasing

    def __enter__(self) -> ClusterLock:
        if self._held:
            raise RuntimeError(f'Lock `{self.name}` is already held by this block')
        # The same object may be used for one block after another: each starts afresh
        self.token, self.lost, self._done, self._renewer = None, False, Event(), None
        deadline = time.monotonic() + self.block
        gate = self._locks._gate(self.name, self.block)
        if not gate.__enter__():
            gate.__exit__(None, None, None)
            raise LockTimeout(self.name, self.block)
        try:
            self.token = self._acquire(deadline)
        except BaseException:
            gate.__exit__(None, None, None)
            raise
        self._gate = gate
        self._held = True
        self._renewer = gevent.spawn(self._keep)
        return self

    def _acquire(self, deadline: float) -> int:
        attempt = 0
        while True:
            token = self._store.acquire(self.name, self.holder, self.ttl)
            if token is not None:
                return token
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(self.name, self.block)
            gevent.sleep(next_wait(attempt, remaining, random.random()))  # noqa: S311 - jitter, not a secret
            attempt += 1

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._done.set()
            if self._renewer is not None:
                self._renewer.join()  # a renewal under way finishes before the release
            try:
                # Tried even when already lost: harmless with a token no longer current, and it frees
                # the lock at once if the ODB was only out of reach for a while
                if not self._store.release(self.name, self.token):  # type: ignore[arg-type]
                    self._mark_lost('it had expired or another holder had it when the block ended')
            except Exception:
                logger.warning('Could not release lock `%s` (token %s); it ends with its TTL of %g s',
                               self.name, self.token, self.ttl, exc_info=True)
        finally:
            self._held = False
            if self._gate is not None:
                self._gate.__exit__(None, None, None)
                self._gate = None
        if self.lost and exc_type is None:
            raise LockLost(self.name)

    # While held

    def _keep(self) -> None:
        """Renews the lease every third of its TTL until the block ends or the lease is lost."""
        every = renew_every(self.ttl)
        valid_until = time.monotonic() + self.ttl  # by this process's clock: no later than the ODB's
        while not self._done.wait(timeout=every):
            asked = time.monotonic()
            try:
                renewed = self._store.renew(self.name, self.token, self.ttl)  # type: ignore[arg-type]
            except Exception:
                if time.monotonic() >= valid_until:
                    self._mark_lost('the ODB could not be reached to renew it within its TTL')
                    return
                logger.warning('Could not renew lock `%s`; trying again', self.name, exc_info=True)
                every = min(every, max(0.05, (valid_until - time.monotonic()) / 3))
                continue
            if not renewed:
                self._mark_lost('its TTL had passed when it was renewed')
                return
            valid_until = asked + self.ttl
            every = renew_every(self.ttl)

    def _mark_lost(self, why: str) -> None:
        if not self.lost:
            self.lost = True
            logger.error('Lock `%s` (token %s, TTL %g s) was lost: %s', self.name, self.token, self.ttl, why)

    def check(self) -> None:
        """Raises zato.errors.LockLost unless this block still holds the lock (asks the ODB)."""
        if not self._held or self.lost or self.token is None:
            raise LockLost(self.name)
        if not self._store.holds(self.name, self.token):
            self._mark_lost('the ODB says its token is no longer current')
            raise LockLost(self.name)

    @contextmanager
    def fenced(self) -> Iterator[Connection]:
        """An ODB transaction whose writes commit only while this block holds the lock: LockLost at the
        start if it does not, and no other holder can take the lock over until the transaction ends."""
        if not self._held or self.lost or self.token is None:
            raise LockLost(self.name)
        try:
            with self._store.fenced(self.name, self.token) as conn:
                yield conn
        except LockLost:
            raise
        except LeaseLost:
            self._mark_lost('the ODB says its token is no longer current')
            raise LockLost(self.name) from None
