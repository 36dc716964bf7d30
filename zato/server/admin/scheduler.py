"""Admin services of scheduler jobs (/zato/admin/scheduler/jobs ...), with Zato 3.1's names:
zato.scheduler.job.create, edit, delete, get, get-list and execute. A job is made active or inactive
with edit (``is_active``).

Times in and out: ``start_date`` is an ISO 8601 date and time (one without an offset is in the job's
``timezone``, UTC by default) or a number of seconds since the epoch; every time shown is ISO 8601 in
UTC. A create or a change of anything that decides when the job runs sets its next run time anew,
from now (zato.scheduler.schedule); the cluster bus tells the worker holding the scheduler lease, which
fires by it from then on.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from zato.errors import BadRequest
from zato.odb.models import SchedulerFiring, SchedulerJob
from zato.scheduler.cron import parse as parse_cron, zone
from zato.scheduler.schedule import JOB_TYPES, MISFIRE_POLICIES, UNITS, interval_of
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList
from zato.server.scheduler import RUN_SUBJECT, run_message, schedule_of
from zato.service.invoker import new_cid

# Every input a job takes; any other is refused, so that a misspelt field is not silently ignored
# (cluster_id is 3.1's and means nothing here: a server serves one cluster)
INPUTS = frozenset(('id', 'cluster_id', 'name', 'is_active', 'job_type', 'service', 'start_date', 'repeats',
                    'cron_definition', 'timezone', 'extra', 'misfire', 'allow_overlap', *(unit for unit, _ in UNITS)))

# What decides when a job runs: a change of any of these sets its next run time anew
SCHEDULE_FIELDS = ('is_active', 'job_type', 'start_date', 'repeats', 'cron_definition', 'timezone',
                   *(unit for unit, _ in UNITS))

MAX_UNIT = 1_000_000
MAX_REPEATS = 2 ** 31 - 1
MAX_EXTRA = 100_000
_YEAR_1 = -62135596800.0      # 0001-01-01T00:00:00Z
_YEAR_9999 = 253402300799.0   # 9999-12-31T23:59:59Z


def iso(value: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 in UTC (whole seconds unless it has a fraction)."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat()


def job_to_dict(row: SchedulerJob) -> dict[str, Any]:
    return {'id': row.id, 'name': row.name, 'is_active': row.is_active, 'job_type': row.job_type,
            'service': row.service_name, 'start_date': iso(row.start_date), 'weeks': row.weeks, 'days': row.days,
            'hours': row.hours, 'minutes': row.minutes, 'seconds': row.seconds, 'repeats': row.repeats,
            'cron_definition': row.cron_definition, 'timezone': row.timezone, 'extra': row.extra,
            'misfire': row.misfire, 'allow_overlap': row.allow_overlap, 'next_run': iso(row.next_run),
            'runs': row.runs, 'last_run_start': iso(row.last_run_start), 'last_run_end': iso(row.last_run_end),
            'last_result': row.last_result, 'last_error': row.last_error, 'version': row.version}


def _start_date(value: Any, tz_name: str) -> float:
    """Input `start_date` as seconds since the epoch (whole seconds: due times are)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadRequest(f'Invalid input `start_date`: `{value[:40]}` is not an ISO 8601 date and time') from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone(tz_name))
        seconds = parsed.timestamp()
    else:
        raise BadRequest('Invalid input `start_date`: expected an ISO 8601 date and time, or seconds since the epoch')
    if not math.isfinite(seconds) or not _YEAR_1 <= seconds <= _YEAR_9999:
        raise BadRequest('Invalid input `start_date`: out of range')
    return float(math.floor(seconds))


def _extra(value: Any) -> str:
    """Input `extra`: a string, or a list of strings (``key=value`` lines, as in 3.1), one per line."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = '\n'.join(value)
    if not isinstance(value, str):
        raise BadRequest('Invalid input `extra`: expected a string or a list of strings')
    if len(value) > MAX_EXTRA:
        raise BadRequest(f'Invalid input `extra`: at most {MAX_EXTRA} characters')
    return value


class _JobBase(CRUD):
    zato_dont_import = True

    model = SchedulerJob
    label = 'scheduler job'
    bus_kind = 'scheduler_job'

    def _new_row(self) -> SchedulerJob:
        return SchedulerJob(cluster_id=self.server.cluster_id, version=1, opaque={}, is_active=True, service_name='',
                            weeks=0, days=0, hours=0, minutes=0, seconds=0, cron_definition='', timezone='UTC',
                            extra='', misfire='fire_once', allow_overlap=False, runs=0, last_result='',
                            last_error='')

    def _apply(self, session: Any, row: SchedulerJob, data: dict[str, Any], creating: bool) -> None:
        unknown = sorted(set(data) - INPUTS)
        if unknown:
            raise BadRequest(f'Invalid input `{unknown[0]}`: a scheduler job has no such field')
        f = self.field
        before = None if creating else tuple(getattr(row, name) for name in SCHEDULE_FIELDS)
        self._apply_name(row, data, creating)
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        row.job_type = f(data, 'job_type', str, creating, row.job_type)
        if row.job_type not in JOB_TYPES:
            raise BadRequest(f'Invalid input `job_type`: expected one of {", ".join(JOB_TYPES)}')
        self._apply_service(session, row, data, creating)
        row.timezone = f(data, 'timezone', str, False, row.timezone)
        try:
            zone(row.timezone)
        except ValueError as e:
            raise BadRequest(f'Invalid input `timezone`: {e}') from None
        if data.get('start_date') is not None:
            row.start_date = _start_date(data['start_date'], row.timezone)
        elif creating:
            row.start_date = float(math.floor(time.time()))
        for unit, _ in UNITS:
            value = f(data, unit, int, False, getattr(row, unit))
            if not 0 <= value <= MAX_UNIT:
                raise BadRequest(f'Invalid input `{unit}`: expected 0 to {MAX_UNIT}')
            setattr(row, unit, value)
        if 'repeats' in data:
            row.repeats = f(data, 'repeats', int, False, None) or None  # 0 or null: for ever, as in 3.1
            if row.repeats is not None and not 0 < row.repeats <= MAX_REPEATS:
                raise BadRequest(f'Invalid input `repeats`: expected 1 to {MAX_REPEATS}, or null for ever')
        row.cron_definition = f(data, 'cron_definition', str, False, row.cron_definition).strip()
        if row.job_type == 'interval_based' and not interval_of(row.weeks, row.days, row.hours, row.minutes,
                                                                 row.seconds):
            raise BadRequest('Invalid input: an interval_based job needs one of weeks, days, hours, minutes '
                             'or seconds above 0')
        if row.job_type == 'cron_style':
            try:
                parse_cron(row.cron_definition)
            except ValueError as e:
                raise BadRequest(f'Invalid input `cron_definition`: {e}') from None
        if 'extra' in data:
            row.extra = _extra(data['extra'])
        row.misfire = f(data, 'misfire', str, False, row.misfire)
        if row.misfire not in MISFIRE_POLICIES:
            raise BadRequest(f'Invalid input `misfire`: expected one of {", ".join(MISFIRE_POLICIES)}')
        row.allow_overlap = f(data, 'allow_overlap', bool, False, row.allow_overlap)
        if creating or before != tuple(getattr(row, name) for name in SCHEDULE_FIELDS):
            row.next_run = schedule_of(row).first_due(time.time()) if row.is_active else None
            if row.is_active and row.next_run is None:
                raise BadRequest('Invalid input `cron_definition`: it never matches a date to come')

    def _to_dict(self, session: Any, row: SchedulerJob) -> dict[str, Any]:
        return job_to_dict(row)


class CreateJob(_JobBase, Create):
    name = 'zato.scheduler.job.create'


class EditJob(_JobBase, Edit):
    name = 'zato.scheduler.job.edit'


class DeleteJob(_JobBase, Delete):
    name = 'zato.scheduler.job.delete'


class GetJob(_JobBase, Get):
    name = 'zato.scheduler.job.get'


class GetJobList(_JobBase, GetList):
    name = 'zato.scheduler.job.get-list'


class ExecuteJob(_JobBase):
    """Runs a job now, on any worker of the cluster, whatever its schedule and even when inactive (its
    next run stays as it was): {"id", "name", "cid"}. Like a scheduled run, it is not started while the
    job's previous run is still going, unless the job allows overlapping runs."""
    name = 'zato.scheduler.job.execute'

    def handle(self) -> None:
        cid = new_cid()
        with self.server.Session() as session:
            row = self._get_row(session)
            msg = None
            for _ in range(3):  # two "Execute now" of one job in the same microsecond: the second moves on
                now = time.time()
                session.add(SchedulerFiring(job_id=row.id, due_at=now, cluster_id=self.server.cluster_id,
                                            kind='execute', token=0, cid=cid, fired_at=now, sends=1, worker='',
                                            result=''))
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    row = self._get_row(session)
                    continue
                msg = run_message(row.id, row.name, row.service_name, row.job_type, row.extra, row.allow_overlap,
                                  now, cid)
                break
            if msg is None:
                raise BadRequest('The job could not be executed now; try again')
        self.server.bus.send_any(RUN_SUBJECT, msg)
        self.response.payload = {'id': msg['job_id'], 'name': msg['name'], 'cid': cid}
