"""The cleanup of expired pub/sub messages as a scheduler job, as in 3.1: the job `zato.pubsub.cleanup`
runs the internal service `zato.pubsub.cleanup-service` every `[pubsub] cleanup_interval` seconds (300).
The scheduler fires each due time once in the cluster (zato.server.scheduler), so no lease of its own is
needed. The job is made when a worker starts and finds none (the first of several to commit wins; the
others find its row), so an environment made before it existed gets one too; it is an ordinary job
afterwards: its interval may be changed, and it may be switched off (deleting it brings it back at the
next start)."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zato.odb.models import SchedulerJob
from zato.pubsub.cleanup import delete_expired
from zato.scheduler.schedule import Schedule
from zato.service.base import Service

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.pubsub')

JOB = 'zato.pubsub.cleanup'
SERVICE = 'zato.pubsub.cleanup-service'


class CleanupService(Service):
    """Deletes the expired messages of every topic; its response says how many."""
    name = SERVICE

    def handle(self) -> None:
        deleted = delete_expired(self.server.pubsub.gd)  # type: ignore[attr-defined]
        if deleted:
            logger.info('Pub/sub cleanup: %d expired messages deleted', deleted)
        self.response.payload = {'deleted': deleted}


def ensure_job(runtime: Runtime) -> None:
    """Makes the cleanup job if the cluster has none, and tells the scheduler's lease holder of it."""
    with runtime.Session() as session:
        if session.scalar(select(SchedulerJob.id).where(SchedulerJob.cluster_id == runtime.cluster_id,
                                                        SchedulerJob.name == JOB)) is not None:
            return
        seconds = max(1, round(float(runtime.config.get('pubsub', 'cleanup_interval'))))
        start = float(math.floor(time.time())) + seconds
        row = SchedulerJob(cluster_id=runtime.cluster_id, name=JOB, is_active=True, job_type='interval_based',
                           service_name=SERVICE, start_date=start, weeks=0, days=0, hours=0, minutes=0,
                           seconds=seconds, cron_definition='', timezone='UTC', extra='', misfire='fire_once',
                           allow_overlap=False, runs=0, last_result='', last_error='', version=1, opaque={},
                           next_run=Schedule('interval_based', int(start), interval=seconds).first_due(time.time()))
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()  # another worker made it a moment ago
            return
        runtime.commit_change(session, 'scheduler_job', row.id)
        logger.info('Scheduler job `%s` made: every %s s', JOB, seconds)
