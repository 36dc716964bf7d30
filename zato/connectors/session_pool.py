"""A small pool of open sessions with one server, for protocols where a session is a socket that
stays open between calls and carries one call at a time (SMTP, IMAP).

A call borrows an idle session, newest first, or opens a new one, and gives it back when it ends,
unless the call broke it. An idle session is reused only while it is fresh: idle for less than
`max_idle` seconds, and with nothing to read on its socket — a server that closed it, or said
goodbye first (SMTP's 421, IMAP's BYE), made it readable — so a stale session is noticed without a
round trip and replaced by a new one. Nothing is retried: a call that failed on a session fails.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import gevent.lock

from zato.connectors.base import ConnectorUnavailable

__all__ = ['SessionPool', 'still_open']

logger = logging.getLogger('zato.connectors.session_pool')

S = TypeVar('S')


def still_open(sock: Any) -> bool:
    """Whether an idle connection's socket is still open, without a round trip: nothing is due on an idle
    connection, so a socket with something to read was closed by the server, or told it was going to be
    (SMTP's 421, IMAP's BYE, LDAP's notice of disconnection). None, or a closed socket, is not open."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class SessionPool(Generic[S]):
    """Up to `size` sessions of one worker with one server.

    `open_session()` returns a new, ready session (or raises); `close_session(session, polite)` lets
    one go, saying goodbye to the server first when `polite` (a session that broke is closed without
    a word); `socket_of(session)` is its socket, or None if it has none any more. A call waits up to
    `wait` seconds for a free slot, then ConnectorUnavailable.
    """

    def __init__(self, open_session: Callable[[], S], close_session: Callable[[S, bool], None],
                 socket_of: Callable[[S], Any], size: int, wait: float, max_idle: float) -> None:
        self._open = open_session
        self._close = close_session
        self._socket_of = socket_of
        self.size = size
        self.wait = wait
        self.max_idle = max_idle
        self._slots = gevent.lock.BoundedSemaphore(size)
        self._idle: list[tuple[S, float]] = []  # (session, when it was given back), newest last
        self.closed = False

    @contextmanager
    def session(self, keep: Callable[[BaseException], bool] | None = None) -> Iterator[S]:
        """A session for this block alone. If the block raises, the session is closed, unless `keep`
        says the exception was an answer that leaves the session usable (a recipient refused ...)."""
        if self.closed:
            raise ConnectorUnavailable('stopped')
        if not self._slots.acquire(timeout=self.wait):
            raise ConnectorUnavailable(f'all {self.size} sessions of the pool stayed in use for {self.wait}s')
        try:
            session = self._take()
        except BaseException:
            self._slots.release()
            raise
        reuse = True
        try:
            yield session
        except BaseException as e:
            reuse = isinstance(e, Exception) and keep is not None and keep(e)
            raise
        finally:
            try:
                if reuse and not self.closed:
                    self._idle.append((session, time.monotonic()))
                else:
                    self._drop(session, polite=False)
            finally:
                self._slots.release()

    def prime(self) -> None:
        """Opens one session and keeps it idle: proves that the server answers and takes our credentials."""
        with self.session():
            pass

    def close(self) -> None:
        """Closes the idle sessions, politely; sessions in use are closed when their calls end."""
        self.closed = True
        idle, self._idle = self._idle, []
        for session, _ in idle:
            self._drop(session, polite=True)

    def _take(self) -> S:
        while self._idle:
            session, since = self._idle.pop()
            if self._fresh(session, since):
                return session
            self._drop(session, polite=False)
        return self._open()

    def _fresh(self, session: S, since: float) -> bool:
        return time.monotonic() - since < self.max_idle and still_open(self._socket_of(session))

    def _drop(self, session: S, polite: bool) -> None:
        try:
            self._close(session, polite)
        except Exception:  # noqa: BLE001 - a broken session may fail to say goodbye
            logger.debug('Could not close %r', session, exc_info=True)
