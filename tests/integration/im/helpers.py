"""Small helpers of the Slack and Telegram tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import gevent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Polls, yielding to gevent, so that a connector's connecting greenlet runs meanwhile."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'condition not met in time'
        gevent.sleep(0.05)
