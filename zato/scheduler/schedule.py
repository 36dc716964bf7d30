"""When a job is due: its first due time, the one after each firing, and what a late firing does.

Job types (Zato 3.1's):

* ``one_time``: due once, at ``start_date``, even when that is already past when the job is made
  (it then fires at once, subject to the misfire rule below); after it the job is inactive.
* ``interval_based``: due at ``start_date + k * interval`` for k = 0, 1, 2 ..., the interval being
  ``weeks``, ``days``, ``hours``, ``minutes`` and ``seconds`` added up. An interval is elapsed time:
  a daylight saving change moves no due time. A ``start_date`` in the past makes the first due time
  the first of that series not before now (the past ones are not made up for). ``repeats``, when
  set, is how many times the job runs in all; then it is inactive.
* ``cron_style``: due at every instant the cron definition matches in the job's time zone (UTC by
  default; zato.scheduler.cron has the daylight saving rules), not before ``start_date``.

Misfires. A due time is *late* when the scheduler comes to it more than ``grace`` seconds after it
(no server was up, or all were busy); a due time within the grace fires as usual, however late, so
that a new lease holder taking over from a dead one makes up for the seconds in between. For late
due times the job's ``misfire`` policy decides:

* ``fire_once`` (the default): the job fires once, now, for all of them (the firing keeps the first
  late due time), and then goes on from its first due time after now;
* ``skip``: none of them fires; the job goes on from its first due time after now.

Either way a late one-time job is done. Skipped due times do not count against ``repeats``.

Instants are seconds since the epoch; the caller passes "now". Nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zato.scheduler import cron

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

ONE_TIME, INTERVAL_BASED, CRON_STYLE = 'one_time', 'interval_based', 'cron_style'
JOB_TYPES = (ONE_TIME, INTERVAL_BASED, CRON_STYLE)
FIRE_ONCE, SKIP = 'fire_once', 'skip'
MISFIRE_POLICIES = (FIRE_ONCE, SKIP)

# The parts of an interval, in seconds
UNITS = (('weeks', 604800), ('days', 86400), ('hours', 3600), ('minutes', 60), ('seconds', 1))


@dataclass(frozen=True)
class Schedule:
    """What decides a job's due times."""

    job_type: str
    start: int                      # start_date, whole seconds since the epoch
    interval: int = 0               # interval_based: seconds, at least 1
    repeats: int | None = None      # interval_based: runs in all; None for ever
    cron_expr: cron.CronExpression | None = None
    tz: ZoneInfo | None = None

    def first_due(self, now: float) -> int | None:
        """The job's first due time when it is made (or changed) at `now`."""
        if self.job_type == ONE_TIME:
            return self.start
        if self.job_type == INTERVAL_BASED:
            if now <= self.start:
                return self.start
            steps = -(-(_ceil(now) - self.start) // self.interval)  # ceiling: the first not before now
            return self.start + steps * self.interval
        return self._cron_at_or_after(max(self.start, _ceil(now)))

    def _cron_at_or_after(self, instant: int) -> int | None:
        assert self.cron_expr is not None and self.tz is not None
        return self.cron_expr.next_after(instant - 1, self.tz)

    def due_after(self, due: int, runs: int) -> int | None:
        """The due time after `due`, once the job has run `runs` times; None when it is done."""
        if self.job_type == ONE_TIME:
            return None
        if self.job_type == INTERVAL_BASED:
            if self.repeats is not None and runs >= self.repeats:
                return None
            return due + self.interval
        assert self.cron_expr is not None and self.tz is not None
        return self.cron_expr.next_after(due, self.tz)

    def first_due_after(self, now: float, runs: int) -> int | None:
        """The first due time strictly after `now` (after late ones), once the job has run `runs` times."""
        if self.job_type == ONE_TIME or (self.repeats is not None and runs >= self.repeats):
            return None
        if self.job_type == INTERVAL_BASED:
            steps = int(now - self.start) // self.interval + 1
            return self.start + max(steps, 0) * self.interval
        return self._cron_at_or_after(max(self.start, int(now) + 1))


@dataclass(frozen=True)
class Decision:
    """What to do with a job's due time: fire it (or not), and the job's next due time (None: done)."""

    fire: bool
    next_due: int | None
    late: bool


def decide(schedule: Schedule, due: int, runs: int, now: float, grace: float, misfire: str) -> Decision:
    """What the scheduler does at `now` with a job due at `due` that has run `runs` times."""
    if now - due <= grace:
        return Decision(True, schedule.due_after(due, runs + 1), late=False)
    if misfire == FIRE_ONCE:
        return Decision(True, schedule.first_due_after(now, runs + 1), late=True)
    return Decision(False, schedule.first_due_after(now, runs), late=True)


def interval_of(weeks: int = 0, days: int = 0, hours: int = 0, minutes: int = 0, seconds: int = 0) -> int:
    """An interval in seconds from its parts."""
    parts = {'weeks': weeks, 'days': days, 'hours': hours, 'minutes': minutes, 'seconds': seconds}
    return sum(parts[name] * size for name, size in UNITS)


def _ceil(now: float) -> int:
    whole = int(now)
    return whole if whole == now else whole + 1
