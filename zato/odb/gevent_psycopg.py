"""Make psycopg2 cooperate with gevent.

libpq blocks in C where gevent cannot see it, so one slow query would stall every greenlet of a
worker. psycopg2's wait callback moves the waiting to Python: libpq runs non-blocking, and we
park the current greenlet on the connection's socket until libpq can go on. This applies to every
psycopg2 connection of the process, those SQLAlchemy opens included.
"""

from __future__ import annotations

from typing import Any

import psycopg2
from gevent.socket import wait_read, wait_write
from psycopg2 import extensions


def wait(conn: Any, timeout: float | None = None) -> None:
    """Drive `conn` until its current operation completes, yielding to other greenlets meanwhile.

    Used as psycopg2's wait callback, and directly for connections opened with `async_=True`.
    `timeout` bounds each single wait on the socket (it raises `socket.timeout`), not the total.
    """
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        # Ask for the descriptor each time: libpq may open a new socket while connecting
        # (e.g. retrying without SSL, or the next host of a multi-host DSN).
        if state == extensions.POLL_READ:
            wait_read(conn.fileno(), timeout=timeout)
        elif state == extensions.POLL_WRITE:
            wait_write(conn.fileno(), timeout=timeout)
        else:
            raise psycopg2.OperationalError(f'Unexpected result from connection.poll(): {state!r}')


def install() -> None:
    """Make every psycopg2 connection of this process wait through gevent. Idempotent."""
    if extensions.get_wait_callback() is not wait:
        extensions.set_wait_callback(wait)


def is_installed() -> bool:
    """Tell whether `install` is in effect."""
    return extensions.get_wait_callback() is wait
