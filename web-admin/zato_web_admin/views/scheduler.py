"""The Scheduler page: jobs with their type, service, next run and how the last run ended; create,
edit, delete, activate and deactivate them, and "Execute now". Each is an admin API call
(zato.scheduler.job.*), which validates the job and tells the cluster at once (docs/scheduler.md)."""

from __future__ import annotations

from typing import Any

from zato_web_admin.http import Route
from zato_web_admin.resources import Action, Field, Resource, crud_routes
from zato_web_admin.views.resources import ACTIVE, NAME, service_choices

JOB_TYPES = (('interval_based', 'Interval-based'), ('cron_style', 'Cron-style'), ('one_time', 'One-time'))
MISFIRE = (('fire_once', 'Fire once'), ('skip', 'Skip'))


def executed(out: dict[str, Any]) -> tuple[str, str]:
    return 'ok', f'started, cid {out.get("cid", "")}'


SCHEDULER_JOBS = Resource(
    'scheduler', 'Scheduler jobs', 'scheduler job', '/zato/admin/scheduler/jobs', section='Scheduler',
    fields=(
        NAME, ACTIVE,
        Field('job_type', 'Job type', 'select', required=True, default='interval_based', choices=JOB_TYPES),
        Field('service', 'Service', 'select', 'Invoked each time the job runs', required=True,
              choices=service_choices),
        Field('start_date', 'Start date', help='ISO 8601, such as 2027-01-31T08:00:00 (in the time zone below '
              'unless it ends with an offset or Z); empty: now', send_empty=False),
        Field('weeks', 'Weeks', 'number', 'Interval-based jobs: the interval is the sum of these', default=0),
        Field('days', 'Days', 'number', default=0),
        Field('hours', 'Hours', 'number', default=0),
        Field('minutes', 'Minutes', 'number', default=0),
        Field('seconds', 'Seconds', 'number', default=0),
        Field('repeats', 'Repeats', 'number', 'Interval-based jobs: runs in all; empty for ever'),
        Field('cron_definition', 'Cron definition', help='Cron-style jobs: minute hour day-of-month month '
              'day-of-week, and optionally seconds last, such as */15 * * * *'),
        Field('timezone', 'Time zone', help='Of the cron definition and a start date without an offset, such as '
              'Europe/Prague', default='UTC'),
        Field('extra', 'Extra', 'textarea', 'Given to the service as its raw request; key=value lines, as in 3.1'),
        Field('misfire', 'When runs were missed', 'select', 'Runs missed while no server was up: fire once for all '
              'of them, or skip them', default='fire_once', choices=MISFIRE),
        Field('allow_overlap', 'Allow overlapping runs', 'checkbox', 'Start a run even while the previous one is '
              'still going'),
    ),
    columns=(('name', 'Name'), ('job_type', 'Type'), ('service', 'Service'), ('next_run', 'Next run (UTC)'),
             ('last_run_start', 'Last run (UTC)'), ('last_result', 'Last result'), ('runs', 'Runs')),
    search_keys=('name', 'service', 'job_type', 'cron_definition'),
    actions=(Action('execute', 'Execute now', '/execute', executed),),
    audit_kind='scheduler-job',
)

RESOURCES = (SCHEDULER_JOBS,)

ROUTES: list[Route] = crud_routes(SCHEDULER_JOBS)
