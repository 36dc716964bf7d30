"""The scheduler, inside the servers: one worker of the cluster holds the scheduler's lease and fires
jobs; any worker runs them.

Firing (the lease holder). Every worker asks for the lease ``zato.scheduler`` (zato.odb.lease) every
fifth of its TTL ([scheduler] lease_ttl); the one that gets it loads the active jobs and, for each
due time, in one transaction:

* moves the job's ``next_run`` on (zato.scheduler.schedule.decide), only where it still is the due
  time being fired and only while its token holds the lease, by the ODB's clock (``UPDATE ... WHERE
  next_run = :due AND <the lease is held by the token>``, LeaseStore.held), and
* records the firing (job id, due time, token) in ``scheduler_firing``, whose key is (job id, due time).

Only then does it hand the run to any one worker of the cluster through the bus (``send_any``). So a
due time fires once: a holder that paused past its TTL and wakes up after another took over changes
nothing (the fence refuses its token), and two holders can never both move one due time on (the
second's UPDATE waits for the first's row lock and then finds ``next_run`` moved). The fence is in the
statement rather than a lock on the lease, so a holder paused in the middle of its transaction does
not keep the next one from taking over; at worst the new holder waits on that one job's row until the
paused one resumes or its connection is closed. The holder
renews the lease every third of its TTL; when a renewal or the fence says it is lost, it stops and
goes back to asking. A holder that dies is replaced within the TTL, and the new one fires the due
times missed meanwhile, late, as long as they are within [scheduler] misfire_grace.

Running (any worker). The worker that receives a firing claims it (``UPDATE ... SET started_at WHERE
started_at IS NULL``), so a firing sent twice runs once; the holder sends again a firing that no
worker claimed within a few seconds (the message or the worker was lost). A run whose worker dies
after claiming it is not run again (the service may have done its work): its firing keeps the
claim (``started_at``, ``worker``) and no end, which is how to find it. Unless the job has
``allow_overlap``, the run holds the lease ``zato.scheduler.job.<id>`` while it runs, and a firing
that finds the job's previous run still going is not run (its result is ``overlap``) — except a late
one (a new holder's catch-up, or a firing sent again), which waits up to LATE_WAIT seconds for that
run to end first: late firings of one job reach the workers close together. The service
runs with ``self.channel.type == 'scheduler'``, ``self.job_type`` and the job's ``extra`` as its raw
request, and ``self.environ['zato.scheduler']`` holding the job's ``id``, ``name`` and the ``due``
time of the run (seconds since the epoch), through the scheduler hooks (zato.service.invoker); the
run's times and result (``ok`` or ``error``) are written to the firing and to the job.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from sqlalchemy import delete, insert, select, update

from zato.config.channel import CHANNEL, ChannelInfo
from zato.errors import LockTimeout
from zato.odb.lease import MAX_HOLDER
from zato.odb.models import SchedulerFiring, SchedulerJob
from zato.scheduler.cron import parse as parse_cron, zone
from zato.scheduler.schedule import Schedule, decide, interval_of
from zato.service.invoker import new_cid
from zato.service.lock import LockArgs
from zato.service.reqresp import Request

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.scheduler')

LEASE = 'zato.scheduler'
RUN_SUBJECT = 'scheduler.run'
BUS_KIND = 'scheduler_job'
CHANNEL_INFO = ChannelInfo(None, 'scheduler', CHANNEL.SCHEDULER, 'dict')

# self.environ[ENVIRON_KEY] of a run: the job's id and name, and the due time it runs for
ENVIRON_KEY = 'zato.scheduler'

# A firing no worker claimed this long after it was sent is sent again, at most MAX_SENDS times in all
RESEND_AFTER = 3.0
MAX_SENDS = 3

# How long a run's overlap lease outlives a worker that died running it (renewed while it runs)
RUN_LEASE_TTL = 20.0

# A firing more than LATE_AFTER seconds after its due time (a new holder catching up, or a firing sent
# again) waits up to LATE_WAIT seconds for the job's previous run to end before it counts as an overlap:
# such firings reach the workers close together and must not skip one another
LATE_AFTER = 1.0
LATE_WAIT = 10.0

# Firings are kept this long (seconds), then deleted by the holder, once a minute
FIRING_RETENTION = 86400.0
PURGE_EVERY = 60.0

# The holder's loop wakes at least this often, to notice a lost lease and firings to send again
MAX_SLEEP = 0.5

# How much of an error a job keeps
MAX_ERROR = 2000


def schedule_of(row: SchedulerJob) -> Schedule:
    """The schedule of a job's row (its fields were checked when it was made or changed)."""
    if row.job_type == 'cron_style':
        return Schedule(row.job_type, int(row.start_date), cron_expr=parse_cron(row.cron_definition),
                        tz=zone(row.timezone))
    return Schedule(row.job_type, int(row.start_date), repeats=row.repeats,
                    interval=interval_of(row.weeks, row.days, row.hours, row.minutes, row.seconds))


@dataclass
class _Job:
    """What the holder keeps of an active job."""

    id: int
    name: str
    service: str
    job_type: str
    extra: str
    misfire: str
    allow_overlap: bool
    schedule: Schedule
    next_run: int
    runs: int

    @classmethod
    def of(cls, row: SchedulerJob) -> _Job | None:
        if not row.is_active or row.next_run is None:
            return None
        return cls(row.id, row.name, row.service_name, row.job_type, row.extra, row.misfire, row.allow_overlap,
                   schedule_of(row), int(row.next_run), row.runs)


def run_message(job_id: int, name: str, service: str, job_type: str, extra: str, allow_overlap: bool,
                due: float, cid: str, late: bool = False) -> dict[str, Any]:
    """What the bus carries to the worker that runs a firing (`late`: sent again, or fired late)."""
    return {'job_id': job_id, 'name': name, 'service': service, 'job_type': job_type, 'extra': extra,
            'allow_overlap': allow_overlap, 'due': due, 'cid': cid, 'late': late}


class Scheduler:
    """One per worker: asks for the lease and, holding it, fires jobs; runs the firings it receives."""

    def __init__(self, runtime: Runtime, clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.clock = clock
        self.ttl: float = runtime.config.get('scheduler', 'lease_ttl')
        self.grace: float = runtime.config.get('scheduler', 'misfire_grace')
        self.holder = f'{runtime.server_name}:{os.getpid()}'[:MAX_HOLDER]
        self.token: int | None = None
        self.jobs: dict[int, _Job] = {}
        self._wake = Event()
        self._ready = Event()
        self._renew_at = 0.0
        self._resend_at = 0.0
        self._purge_at = 0.0
        runtime.on_change(BUS_KIND, self.changed, self.reload)

    # Start and stop

    def start(self) -> gevent.Greenlet:
        self._ready.set()
        return gevent.spawn(self.run)

    def stop(self) -> None:
        """Gives the lease back at once, so that another worker takes over without waiting for the TTL."""
        token, self.token = self.token, None
        if token is not None:
            try:
                self.runtime.leases.release(LEASE, token)
            except Exception:
                logger.warning('Could not release the scheduler lease; it ends with its TTL', exc_info=True)

    # The loop

    def run(self) -> None:
        while True:
            try:
                if self.token is None and not self._acquire():
                    gevent.sleep(self.ttl / 5)
                    continue
                self._tick()
            except Exception:
                logger.exception('Scheduler loop failed; trying again')
                gevent.sleep(min(1.0, self.ttl / 5))

    def _acquire(self) -> bool:
        token = self.runtime.leases.acquire(LEASE, self.holder, self.ttl)
        if token is None:
            return False
        started = time.monotonic()
        self.token = token
        self._renew_at = started + self.ttl / 3
        self._resend_at = self._purge_at = 0.0
        logger.info('This worker (%s) holds the scheduler lease, token %s', self.holder, token)
        with self.runtime.Session() as session:
            self.reload(session)
        return True

    def _lose(self, why: str) -> None:
        if self.token is not None:
            logger.warning('Scheduler lease lost (token %s): %s', self.token, why)
        self.token = None
        self.jobs = {}

    def _tick(self) -> None:
        """One round of the holder: fire what is due, then the chores, then sleep until the next due time."""
        now = self.clock()
        for fired, job in enumerate(sorted(self.jobs.values(), key=lambda j: j.next_run)):
            # Renewed between firings too, so that a long catch-up does not outlive the lease; never before
            # the first: a holder that wakes from a pause finds out from the fence, which is what counts
            if job.next_run > now or self.token is None or (fired and not self._renew_if_due()):
                break
            self._fire(job, now)
        if self.token is None or not self._renew_if_due():
            return
        if now >= self._resend_at:
            self._resend(now)
            self._resend_at = now + 1.0
        if now >= self._purge_at:
            self._purge(now)
            self._purge_at = now + PURGE_EVERY
        next_due = min((job.next_run for job in self.jobs.values()), default=now + MAX_SLEEP)
        wait = max(0.0, min(next_due - self.clock(), self._renew_at - time.monotonic(), MAX_SLEEP))
        self._wake.clear()
        self._wake.wait(timeout=wait)

    def _renew_if_due(self) -> bool:
        """Renews the lease every third of its TTL; False (and the lease given up here) once it is lost."""
        if time.monotonic() < self._renew_at:
            return True
        assert self.token is not None
        if not self.runtime.leases.renew(LEASE, self.token, self.ttl):
            self._lose('its TTL had passed when it was renewed')
            return False
        self._renew_at = time.monotonic() + self.ttl / 3
        return True

    def _fire(self, job: _Job, now: float) -> None:
        """One due time of a job: the job moved on and the firing recorded in one transaction that
        changes nothing unless this worker's token holds the lease, then the run sent to a worker."""
        assert self.token is not None
        due = job.next_run
        decision = decide(job.schedule, due, job.runs, now, self.grace, job.misfire)
        runs = job.runs + (1 if decision.fire else 0)
        values: dict[str, Any] = {'next_run': decision.next_due, 'runs': runs}
        if decision.next_due is None:
            values['is_active'] = False  # a one-time job that fired, or an interval job out of repeats
        cid = new_cid()
        leases = self.runtime.leases
        with self.runtime.engine.begin() as conn:
            moved = conn.execute(update(SchedulerJob).where(
                SchedulerJob.id == job.id, SchedulerJob.next_run == due, SchedulerJob.is_active.is_(True),
                leases.held(LEASE, self.token)).values(**values)).rowcount
            if moved == 1 and decision.fire:
                conn.execute(insert(SchedulerFiring).values(
                    job_id=job.id, due_at=due, cluster_id=self.runtime.cluster_id, kind='schedule',
                    token=self.token, cid=cid, fired_at=now, sends=1, worker='', result=''))
        if moved != 1:
            if not leases.holds(LEASE, self.token):
                self._lose('the fence refused its token')
                return
            # Changed or deleted meanwhile: the ODB has the truth
            self._reload_one(job.id)
            return
        if decision.next_due is None:
            self.jobs.pop(job.id, None)
        else:
            job.next_run, job.runs = decision.next_due, runs
        if decision.late:
            logger.warning('Job `%s` was due at %s, %.1f s ago: %s', job.name, due, now - due,
                           'fired once for its late due times' if decision.fire else 'skipped (misfire policy)')
        if decision.fire:
            late = decision.late or now - due > LATE_AFTER
            self.runtime.bus.send_any(RUN_SUBJECT, run_message(job.id, job.name, job.service, job.job_type,
                                                               job.extra, job.allow_overlap, due, cid, late))

    def _resend(self, now: float) -> None:
        """Sends again the firings no worker claimed (a lost message, or a worker that died with it)."""
        with self.runtime.Session() as session:
            rows = session.execute(select(SchedulerFiring, SchedulerJob).join(
                SchedulerJob, SchedulerJob.id == SchedulerFiring.job_id).where(
                SchedulerFiring.cluster_id == self.runtime.cluster_id, SchedulerFiring.started_at.is_(None),
                SchedulerFiring.result == '', SchedulerFiring.sends < MAX_SENDS,
                SchedulerFiring.fired_at < now - RESEND_AFTER * SchedulerFiring.sends)).all()
            for firing, _ in rows:
                firing.sends += 1
            session.commit()
            messages = [run_message(row.id, row.name, row.service_name, row.job_type, row.extra, row.allow_overlap,
                                    firing.due_at, firing.cid, late=True) for firing, row in rows]
        for msg in messages:
            logger.warning('Job `%s`: the firing due at %s was not claimed by any worker; sending it again',
                           msg['name'], msg['due'])
            self.runtime.bus.send_any(RUN_SUBJECT, msg)

    def _purge(self, now: float) -> None:
        with self.runtime.Session() as session:
            session.execute(delete(SchedulerFiring).where(SchedulerFiring.cluster_id == self.runtime.cluster_id,
                                                          SchedulerFiring.fired_at < now - FIRING_RETENTION))
            session.commit()

    # Jobs changed through the admin API (every worker hears; only the holder keeps jobs)

    def reload(self, session: Any) -> None:
        if self.token is None:
            return
        rows = session.scalars(select(SchedulerJob).where(SchedulerJob.cluster_id == self.runtime.cluster_id))
        jobs = {}
        for row in rows:
            job = self._job_of(row)
            if job is not None:
                jobs[job.id] = job
        self.jobs = jobs
        self._wake.set()

    def changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        if self.token is None:
            return
        row = session.get(SchedulerJob, obj_id)
        job = None if row is None else self._job_of(row)
        if job is None:
            self.jobs.pop(obj_id, None)
        else:
            self.jobs[obj_id] = job
        self._wake.set()

    def _reload_one(self, job_id: int) -> None:
        with self.runtime.Session() as session:
            self.changed(session, job_id, {})

    @staticmethod
    def _job_of(row: SchedulerJob) -> _Job | None:
        try:
            return _Job.of(row)
        except ValueError:
            logger.exception('Job `%s` cannot be scheduled', row.name)
            return None

    # Running a firing (any worker)

    def on_run(self, msg: dict[str, Any]) -> None:
        """Runs a firing sent by the holder. Subscribed before the bus starts: a firing handed to this
        worker while it is still starting waits for start() (its services loaded) instead of being
        dropped for want of a subscriber."""
        self._ready.wait()
        job_id, due = msg['job_id'], msg['due']
        engine, started = self.runtime.engine, self.clock()
        with engine.begin() as conn:
            claimed = conn.execute(update(SchedulerFiring).where(
                SchedulerFiring.job_id == job_id, SchedulerFiring.due_at == due,
                SchedulerFiring.started_at.is_(None)).values(started_at=started, worker=self.holder)).rowcount
        if claimed != 1:
            return  # another worker has it (it was sent twice), or the job is gone
        if msg['allow_overlap']:
            self._run(msg, started)
            return
        block = LATE_WAIT if msg.get('late') else 0
        try:
            with self.runtime.locks.lock(LockArgs(f'{LEASE}.job.{job_id}', RUN_LEASE_TTL, block), msg['cid']):
                self._run(msg, started)
        except LockTimeout:
            logger.warning('Job `%s` due at %s not run: its previous run is still going (allow_overlap is off)',
                           msg['name'], due)
            self._record(msg, started, 'overlap', '', on_job=False)

    def _run(self, msg: dict[str, Any], started: float) -> None:
        extra = msg['extra']
        result, error = 'ok', ''
        try:
            cls = self.runtime.store.get(msg['service'])
            environ = {ENVIRON_KEY: {'id': msg['job_id'], 'name': msg['name'], 'due': msg['due']}}
            self.runtime.invoker.run(cls, msg['cid'], CHANNEL_INFO, Request(payload=extra, raw_request=extra),
                                     environ=environ, job_type=msg['job_type'])
        except Exception as e:
            result, error = 'error', f'{type(e).__name__}: {e}'[:MAX_ERROR]
            logger.exception('Job `%s` (service `%s`, cid `%s`) failed', msg['name'], msg['service'], msg['cid'])
        self._record(msg, started, result, error, on_job=True)

    def _record(self, msg: dict[str, Any], started: float, result: str, error: str, on_job: bool) -> None:
        ended = self.clock()
        job_id = msg['job_id']
        with self.runtime.engine.begin() as conn:
            conn.execute(update(SchedulerFiring).where(SchedulerFiring.job_id == job_id,
                                                       SchedulerFiring.due_at == msg['due'])
                         .values(ended_at=ended, result=result))
            if on_job:
                # A run that started earlier than the one the job shows never overwrites it
                conn.execute(update(SchedulerJob).where(
                    SchedulerJob.id == job_id,
                    (SchedulerJob.last_run_start.is_(None)) | (SchedulerJob.last_run_start <= started))
                    .values(last_run_start=started, last_run_end=ended, last_result=result, last_error=error))
