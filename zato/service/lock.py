"""What ``self.lock()`` decides without doing any I/O: its arguments, how long a waiter sleeps between
two attempts, and when a holder renews. zato.server.locks does the waiting and the talking to the ODB.

* ``self.lock(name=None, ttl=20, block=10)`` as in Zato 3.1: ``name`` defaults to the service's name,
  ``ttl`` is how long the lock outlives a holder that died (seconds), ``block`` how long to wait for it
  (0: try once). Zato 2.0's names ``expires`` (for ttl) and ``timeout`` (for block) are accepted too.
* A waiter tries again after 5 ms, then twice as long each time up to 100 ms, each wait shortened by a
  random part of itself, so that waiters that started together do not keep trying together; never past
  the end of its ``block``.
* A holder renews its lease every third of its TTL, so that a block which outlives the TTL keeps the
  lock, and one renewal that fails for a moment (the ODB restarting) leaves time for another.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ['DEFAULT_BLOCK', 'DEFAULT_TTL', 'LockArgs', 'lock_args', 'next_wait', 'renew_every']

DEFAULT_TTL = 20.0
DEFAULT_BLOCK = 10.0
MAX_NAME = 400            # the ODB column's length
MAX_TTL = 86400.0          # a lock held for longer than a day is a job for something else
FIRST_WAIT = 0.005
MAX_WAIT = 0.1
RENEW_FRACTION = 1 / 3


@dataclass(frozen=True, slots=True)
class LockArgs:
    name: str
    ttl: float
    block: float


def _seconds(what: str, value: object, low: float, high: float, low_inclusive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # noqa: PLR0124 - NaN
        raise ValueError(f'self.lock(): `{what}` must be a number of seconds, not {value!r}')
    if not (low <= value if low_inclusive else low < value) or value > high:
        bound = 'at least' if low_inclusive else 'above'
        raise ValueError(f'self.lock(): `{what}` must be {bound} {low:g} and at most {high:g} seconds, not {value!r}')
    return float(value)


def lock_args(default_name: str, name: str | None = None, ttl: float | None = None, block: float | None = None,
              expires: float | None = None, timeout: float | None = None) -> LockArgs:
    """The lock ``self.lock(...)`` asks for; ValueError naming the argument when one is wrong."""
    if ttl is not None and expires is not None:
        raise ValueError('self.lock(): give `ttl` or its old name `expires`, not both')
    if block is not None and timeout is not None:
        raise ValueError('self.lock(): give `block` or its old name `timeout`, not both')
    name = default_name if name is None else name
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(f'self.lock(): `name` must be a non-empty string of at most {MAX_NAME} characters, '
                         f'not {name!r}')
    ttl = ttl if ttl is not None else expires if expires is not None else DEFAULT_TTL
    block = block if block is not None else timeout if timeout is not None else DEFAULT_BLOCK
    return LockArgs(name, _seconds('ttl', ttl, 0, MAX_TTL, False), _seconds('block', block, 0, MAX_TTL, True))


def next_wait(attempt: int, remaining: float, jitter: float) -> float:
    """Seconds to sleep after failed attempt number `attempt` (0 for the first), with `remaining`
    seconds of the block left and `jitter` a random number in [0, 1)."""
    full = min(MAX_WAIT, FIRST_WAIT * (2 ** min(attempt, 16)))
    return max(0.0, min(remaining, full * (1 - jitter / 2)))


def renew_every(ttl: float) -> float:
    """Seconds between two renewals of a lease of `ttl` seconds."""
    return ttl * RENEW_FRACTION
