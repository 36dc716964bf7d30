"""The cluster bus interface: subscriptions and callback dispatch shared by every backend.

A bus instance lives in one gevent worker process. It tells every worker of every server that
something changed (`publish`), and hands "invoke async" messages to exactly one worker of the
cluster (`send_any`). Backends only move bytes; this module owns what happens on arrival.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
import secrets
import socket
from typing import Any
from collections.abc import Callable

import gevent
import orjson

logger = logging.getLogger('zato.bus')

Callback = Callable[[dict], None]

# Told to subscribers after a backend lost and regained its connection: messages published in
# between may be gone, so a worker should reload whatever config it caches.
RECONNECTED = 'bus.reconnected'


def new_member_id(hostname: str | None = None) -> str:
    """Return an id unique to this bus instance in the cluster: `host:pid:random`."""
    if hostname is None:
        hostname = socket.gethostname()
    return f'{hostname}:{os.getpid()}:{secrets.token_hex(6)}'


def encode_message(subject: str, msg: dict) -> bytes:
    """Serialise one bus message to the wire format every backend uses."""
    return orjson.dumps({'s': subject, 'm': msg})


def decode_message(data: bytes | str) -> tuple[str, dict]:
    """Parse what `encode_message` produced; ValueError if it is not a bus message."""
    obj = orjson.loads(data)
    if not isinstance(obj, dict) or not isinstance(obj.get('s'), str) or 'm' not in obj:
        raise ValueError(f'Not a bus message: {str(data)[:200]!r}')
    return obj['s'], obj['m']


class Bus(ABC):
    """Abstract. All methods are safe to call from any greenlet of a gevent-patched process.

    Callbacks run in a greenlet each, so a slow callback never blocks the receive loop. An
    exception in a callback is logged to the `zato.bus` logger and swallowed. All callbacks of
    one subject receive the same message dict; treat it as read-only.
    """

    member_id: str

    def __init__(self) -> None:
        self.member_id = new_member_id()
        self._subscribers: dict[str, list[Callback]] = {}

    # ------------------------------------------------------------------ the interface

    def subscribe(self, subject: str, callback: Callback) -> None:
        """Call `callback(msg)` for every message of `subject` this instance receives.

        Several callbacks per subject are allowed; subscribing before or after `start` both work.
        """
        # Copy on write, so a dispatch in progress iterates over a list no one mutates.
        self._subscribers[subject] = [*self._subscribers.get(subject, ()), callback]

    @abstractmethod
    def start(self) -> None:
        """Begin receiving in a background greenlet.

        Returns once the backend is ready to receive, so a message published after `start`
        returns is guaranteed to reach this instance.
        """

    @abstractmethod
    def publish(self, subject: str, msg: dict) -> None:
        """Send `msg` to every started bus instance of the cluster, this one included."""

    @abstractmethod
    def send_any(self, subject: str, msg: dict) -> None:
        """Send `msg` to exactly one started bus instance of the cluster (possibly this one).

        Delivery is at most once.
        """

    @abstractmethod
    def stop(self) -> None:
        """Stop receiving and release the backend's resources. Safe to call more than once."""

    # ------------------------------------------------------------------ for backends

    def _dispatch(self, subject: str, msg: dict) -> None:
        """Run each callback of `subject` in its own greenlet."""
        callbacks = self._subscribers.get(subject)
        if not callbacks:
            logger.debug('Bus %s: no subscriber for subject %r', self.member_id, subject)
            return
        for callback in callbacks:
            gevent.spawn(self._run_callback, callback, subject, msg)

    def _run_callback(self, callback: Callback, subject: str, msg: dict[str, Any]) -> None:
        try:
            callback(msg)
        except Exception:
            logger.exception('Bus %s: callback %r for subject %r failed', self.member_id, callback, subject)
