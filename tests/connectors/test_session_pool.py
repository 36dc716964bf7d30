"""The pool of open SMTP and IMAP sessions, over real socket pairs: a session is one end, its server
the other."""

from __future__ import annotations

import socket
import time

import gevent
import pytest

from zato.connectors.base import ConnectorUnavailable
from zato.connectors.session_pool import SessionPool


class Sessions:
    """Opens socket pairs; records what was opened and closed, and how."""

    def __init__(self) -> None:
        self.opened: list[tuple[socket.socket, socket.socket]] = []
        self.closed: list[tuple[socket.socket, bool]] = []

    def open(self) -> socket.socket:
        pair = socket.socketpair()
        self.opened.append(pair)
        return pair[0]

    def close(self, session: socket.socket, polite: bool) -> None:
        self.closed.append((session, polite))
        session.close()

    def server_of(self, session: socket.socket) -> socket.socket:
        return next(server for client, server in self.opened if client is session)

    def pool(self, size: int = 2, wait: float = 1.0, max_idle: float = 30.0) -> SessionPool[socket.socket]:
        return SessionPool(self.open, self.close, lambda s: s if s.fileno() >= 0 else None, size, wait, max_idle)


def test_an_idle_session_is_reused_and_a_second_call_at_once_gets_its_own():
    s = Sessions()
    pool = s.pool()
    with pool.session() as first:
        with pool.session() as second:
            assert second is not first
    with pool.session() as again:
        assert again is first or again is second
    assert len(s.opened) == 2 and s.closed == []


def test_a_session_the_server_closed_while_idle_is_replaced_without_a_round_trip():
    s = Sessions()
    pool = s.pool()
    with pool.session() as first:
        pass
    s.server_of(first).close()
    with pool.session() as second:
        assert second is not first
    assert s.closed == [(first, False)]


def test_a_session_the_server_said_goodbye_on_is_replaced():
    s = Sessions()
    pool = s.pool()
    with pool.session() as first:
        pass
    s.server_of(first).sendall(b'421 4.4.2 Idle for too long, closing\r\n')
    with pool.session() as second:
        assert second is not first


def test_a_session_idle_for_too_long_is_replaced():
    s = Sessions()
    pool = s.pool(max_idle=0.05)
    with pool.session() as first:
        pass
    time.sleep(0.1)
    with pool.session() as second:
        assert second is not first


def test_a_call_that_failed_drops_its_session_unless_the_failure_was_an_answer():
    s = Sessions()
    pool = s.pool()
    with pytest.raises(OSError), pool.session() as broken:
        raise OSError('reset')
    with pytest.raises(LookupError), pool.session(keep=lambda e: isinstance(e, LookupError)) as kept:
        raise LookupError('no such recipient')
    assert kept is not broken and s.closed == [(broken, False)]
    with pool.session() as again:
        assert again is kept


def test_calls_beyond_the_size_wait_for_a_slot_then_are_told_why():
    s = Sessions()
    pool = s.pool(size=1, wait=0.1)

    def hold() -> None:
        with pool.session():
            gevent.sleep(0.3)
    holder = gevent.spawn(hold)
    gevent.sleep(0.01)
    with pytest.raises(ConnectorUnavailable, match='all 1 sessions of the pool stayed in use for 0.1s'):
        with pool.session():
            pass
    holder.join()
    with pool.session():
        pass


def test_a_session_that_could_not_be_opened_gives_its_slot_back():
    calls = []

    def refuse() -> socket.socket:
        calls.append(1)
        raise ConnectionRefusedError('refused')
    pool: SessionPool[socket.socket] = SessionPool(refuse, lambda s, p: None, lambda s: s, 1, 0.1, 30.0)
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            pool.prime()
    assert len(calls) == 3


def test_closing_the_pool_says_goodbye_to_idle_sessions_and_closes_busy_ones_when_their_calls_end():
    s = Sessions()
    pool = s.pool()
    with pool.session() as busy:
        with pool.session() as idle:
            pass
        pool.close()
        assert s.closed == [(idle, True)]
    assert s.closed == [(idle, True), (busy, False)]
    with pytest.raises(ConnectorUnavailable, match='stopped'):
        with pool.session():
            pass
