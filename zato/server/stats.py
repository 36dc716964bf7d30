"""Per-service usage statistics of one worker, in memory: for each service and wall-clock minute,
the number of calls, how many failed, the sum and maximum of their durations, a latency
histogram (zato.odb.histogram) and the time of the last call.

``record`` runs at the end of every invocation (zato.service.invoker), so it is kept to a few
list and dict operations: no lock (a worker's greenlets never switch inside it), no I/O, no clock
call of its own, no allocation except a service's first call in a minute. bench/stats.py measures
it. zato.server.stats_flush copies the rows out every few seconds and writes them to the ODB.

A call counts as an error when the service raised anything but a client error (zato.errors.
ClientError: the caller's mistake, answered with a 4xx) or answered with a status of 500 or more.
Internal services (names starting with ``zato.`` or ``pub.zato.``: the admin API, the ping) are
not recorded, so they never show among a user's services.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zato.odb.histogram import BOUNDS, SIZE

logger = logging.getLogger('zato.stats')

INTERNAL_PREFIXES = ('zato.', 'pub.zato.')

# One row per service and minute: calls, errors, total and max seconds, the last call (on the
# perf_counter clock), then the histogram's buckets
_COUNT, _ERRORS, _TOTAL, _MAX, _LAST = range(5)
_FIRST_BUCKET = 5
_EMPTY_ROW: list[Any] = [0, 0, 0.0, 0.0, 0.0] + [0] * SIZE

_bisect = bisect_right
_BOUNDS = BOUNDS


def is_internal(name: str) -> bool:
    """Whether a service ships with the server (its calls are not recorded)."""
    return name.startswith(INTERNAL_PREFIXES)


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """A copy of one service's row of one minute, as handed to the flusher."""
    minute: int               # minutes since the epoch, UTC
    name: str
    count: int
    errors: int
    total: float              # seconds
    max: float                # seconds
    last_call: float          # seconds since the epoch
    histogram: list[int]      # dense bucket counts


class ServiceStats:
    """One per worker. ``record`` is the request path's side; ``take`` and ``mark_sent`` the flusher's.

    Rows of the current minute are updated in place; a minute that has ended is kept until its rows
    are marked sent, up to `max_pending` minutes besides the current one (when the ODB stays
    unreachable for longer, the oldest are dropped and their calls counted in ``dropped``).
    """

    def __init__(self, wall: Callable[[], float] = time.time, perf: Callable[[], float] = time.perf_counter,
                 max_pending: int = 60) -> None:
        self._wall = wall
        self._perf = perf
        self.max_pending = max_pending
        self.minutes: dict[int, dict[str, list[Any]]] = {}
        self.dropped = 0
        self._sent: dict[tuple[int, str], int] = {}
        self._rows: dict[str, list[Any]] = {}
        self._minute = 0
        self._minute_end = float('-inf')  # on the perf clock; the first record starts a minute

    def record(self, name: str, started: float, ended: float, status: Any) -> None:
        """One finished invocation: its start and end on the perf_counter clock, and its response
        status, or None when the service raised."""
        if ended >= self._minute_end:
            self._roll(ended)
        row = self._rows.get(name)
        if row is None:
            if name.startswith(INTERNAL_PREFIXES):
                return
            row = self._rows[name] = _EMPTY_ROW[:]
        duration = ended - started
        row[0] += 1
        try:
            if status >= 500:
                row[1] += 1
        except TypeError:  # None, the service raised; or a status_code that is not a number
            row[1] += 1
        row[2] += duration
        if duration > row[3]:
            row[3] = duration
        row[4] = ended
        row[5 + _bisect(_BOUNDS, duration)] += 1

    def _roll(self, now: float) -> None:
        """Starts the minute `now` (a perf_counter reading) falls in, by the wall clock."""
        wall = self._wall()
        minute = int(wall // 60)
        self._minute = minute
        self._minute_end = now + (minute + 1) * 60 - wall
        rows = self.minutes.get(minute)
        if rows is None:
            rows = self.minutes[minute] = {}
            while len(self.minutes) > self.max_pending + 1:
                self._drop(min(self.minutes))
        self._rows = rows

    def _drop(self, minute: int) -> None:
        rows = self.minutes.pop(minute)
        lost = sum(row[_COUNT] - self._sent.get((minute, name), 0) for name, row in rows.items())
        for name in rows:
            self._sent.pop((minute, name), None)
        if lost:
            self.dropped += lost
            logger.warning('Statistics of %d calls in minute %d were never written to the ODB and are dropped',
                           lost, minute)

    def take(self) -> list[MinuteRow]:
        """Copies of every row changed since it was last marked sent."""
        now = self._perf()
        if now >= self._minute_end:
            self._roll(now)  # so that a minute which ended while nothing was called counts as ended
        to_wall = self._wall() - now
        sent = self._sent
        out = []
        for minute, rows in self.minutes.items():
            for name, row in rows.items():
                if sent.get((minute, name)) != row[_COUNT]:
                    out.append(MinuteRow(minute, name, row[_COUNT], row[_ERRORS], row[_TOTAL], row[_MAX],
                                         row[_LAST] + to_wall, row[_FIRST_BUCKET:]))
        return out

    def mark_sent(self, taken: list[MinuteRow]) -> None:
        """The rows `take` returned are in the ODB; minutes that ended and are all there are forgotten."""
        sent = self._sent
        for row in taken:
            sent[(row.minute, row.name)] = row.count
        current = self._minute
        for minute in [m for m in self.minutes if m < current]:
            rows = self.minutes[minute]
            if all(sent.get((minute, name)) == row[_COUNT] for name, row in rows.items()):
                del self.minutes[minute]
                for name in rows:
                    del sent[(minute, name)]
