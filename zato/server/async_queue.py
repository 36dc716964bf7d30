"""``self.invoke_async`` on any worker of the cluster, at least once, and the fan-in of
``self.patterns.fanout`` / ``.parallel``, with their state in the ODB.

The rules (tests/server/test_async_queue.py and tests/e2e/test_async_cluster.py):

* ``invoke_async`` commits a row to ``async_invocation`` before it returns the CID; the cluster bus
  then wakes one worker (``send_any``). The bus only wakes: the row is the message.
* A worker owns a row by one conditional UPDATE (its claim ran out → this worker's token, now +
  ``[async] claim_ttl``), and renews the claim every third of that while the service runs.
* The row is deleted only by the worker whose claim it still is, in one transaction with what the
  run queues next: the callback, a fan-in's answer and, with the last answer, the final callbacks.
* Every worker looks every ``[async] sweep_interval`` seconds for rows no one owns (a wake-up lost,
  a worker that died mid-run) and claims them.
* So: **at least once**. A run whose worker died is run again by another worker (a service may see
  the same CID twice; make it idempotent). A run that raised is not retried: its exception is its
  result, logged with the CID (3.1 did not retry either; ``self.patterns.invoke_retry`` does).
* ``expiration`` (3.1: 15 s) bounds when a run may start: a row that no worker started by then
  (or that must start again after its worker died) is deleted with a warning naming its CID and
  service, never run. 0 means no expiration; the patterns use it, so that a fan-in completes.
* A fan-out's group row counts answers: its UPDATE ``done = done + 1`` locks the row until the
  transaction ends, so of two targets answering at once on two servers one sees the other's count,
  and exactly one transaction sees ``done == total`` and queues the final callbacks, each once.
* Times are each server's clock; servers' clocks are expected to agree (NTP) to well within
  ``claim_ttl``.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import gevent
import orjson
from gevent.pool import Pool
from sqlalchemy import delete, select, update

from zato.config.channel import CHANNEL, ChannelInfo
from zato.errors import ClientError
from zato.odb.models import AsyncInvocation, InvocationGroup, InvocationGroupResponse
from zato.service.async_job import Job
from zato.service.invoker import ASYNC_SUBJECT, new_cid

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.async')

SWEEP_BATCH = 100
GROUP_CHANNELS = {
    'fanout': (CHANNEL.FANOUT_CALL, CHANNEL.FANOUT_ON_TARGET, CHANNEL.FANOUT_ON_FINAL),
    'parallel': (CHANNEL.PARALLEL_EXEC_CALL, CHANNEL.PARALLEL_EXEC_ON_TARGET, CHANNEL.PARALLEL_EXEC_ON_FINAL),
}


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode('utf-8', 'replace')
    return str(value)


def jsonable(value: Any) -> Any:
    """`value` as JSON data: what a callback or a fan-in can be given (bytes as text, others by str)."""
    return orjson.loads(orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS))


def pack(value: Any) -> dict[str, Any]:
    """A payload as it is stored: bytes kept as bytes, anything else as JSON data."""
    if isinstance(value, (bytes, bytearray)):
        return {'bytes': base64.b64encode(value).decode('ascii')}
    return {'json': jsonable(value)}


def unpack(stored: dict[str, Any]) -> Any:
    if 'bytes' in stored:
        return base64.b64decode(stored['bytes'])
    return stored.get('json')


def utc_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Claimed:
    """A row this worker owns, read out of its session."""
    id: int
    token: str
    cid: str
    service: str
    payload: Any
    channel: str
    data_format: str
    transport: str
    callback: str
    zato_ctx: dict[str, Any]
    environ: dict[str, Any]
    group_cid: str | None
    group_index: int
    expires_at: float
    attempts: int


class AsyncQueue:
    """One per worker: queues invocations, runs those it claims, sweeps for those no one owns."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.claim_ttl: float = runtime.config.get('async', 'claim_ttl')
        self.sweep_interval: float = runtime.config.get('async', 'sweep_interval')
        self.member = f'{runtime.server_name}:{os.getpid()}'
        self._pool = Pool(20)

    # Queueing

    def add(self, session: Any, job: Job) -> int:
        """Adds a row in `session` (not committed); returns its id, to wake a worker with after the commit."""
        now = time.time()
        row = AsyncInvocation(
            cluster_id=self.runtime.cluster_id, cid=job.cid or new_cid(), service=job.service,
            payload=pack(job.payload), channel=job.channel, data_format=job.data_format or '',
            transport=job.transport or '', callback=job.callback or '', zato_ctx=jsonable(job.zato_ctx or {}),
            environ=jsonable(job.environ or {}), group_cid=job.group_cid, group_index=job.group_index,
            created_at=now, expires_at=now + job.expiration if job.expiration else 0.0, claimed_by='',
            claimed_until=0.0, attempts=0)
        session.add(row)
        session.flush()
        return row.id

    def wake(self, ids: list[int]) -> None:
        for row_id in ids:
            try:
                self.runtime.bus.send_any(ASYNC_SUBJECT, {'id': row_id})
            except Exception:  # noqa: BLE001 - the row is committed: a sweep runs it without the wake-up
                logger.warning('Could not wake a worker for async invocation %s; a sweep will run it', row_id,
                               exc_info=True)

    def enqueue(self, job: Job) -> str:
        """Commits one invocation and wakes a worker; returns its CID."""
        job.cid = job.cid or new_cid()
        with self.runtime.Session() as session:
            row_id = self.add(session, job)
            session.commit()
        self.wake([row_id])
        return job.cid

    def start_group(self, kind: str, source: str, targets: list[tuple[str, Any]], on_target: list[str],
                    on_final: list[str], cid: str | None = None) -> str:
        """Queues a fan-out or parallel call: the group row and every target, in one transaction."""
        call_channel = GROUP_CHANNELS[kind][0]
        cid = cid or new_cid()
        with self.runtime.Session() as session:
            session.add(InvocationGroup(cluster_id=self.runtime.cluster_id, cid=cid, kind=kind, source=source,
                                        total=len(targets), done=0, on_target=on_target, on_final=on_final,
                                        req_ts_utc=utc_iso()))
            ids = [self.add(session, Job(name, payload, new_cid(), call_channel, group_cid=cid, group_index=index,
                                         environ={'group_cid': cid}))
                   for index, (name, payload) in enumerate(targets)]
            session.commit()
        self.wake(ids)
        return cid

    # Running

    def on_wake(self, msg: dict[str, Any]) -> None:
        self.run(msg['id'])

    def claim(self, row_id: int) -> Claimed | None:
        token = f'{self.member}:{secrets.token_hex(4)}'
        now = time.time()
        with self.runtime.Session() as session:
            result = session.execute(
                update(AsyncInvocation)
                .where(AsyncInvocation.id == row_id, AsyncInvocation.claimed_until < now)
                .values(claimed_by=token, claimed_until=now + self.claim_ttl, attempts=AsyncInvocation.attempts + 1))
            session.commit()
            if result.rowcount != 1:
                return None
            row = session.get(AsyncInvocation, row_id)
            if row is None:
                return None
            return Claimed(row.id, token, row.cid, row.service, unpack(row.payload), row.channel, row.data_format,
                           row.transport, row.callback, dict(row.zato_ctx or {}), dict(row.environ or {}),
                           row.group_cid, row.group_index, row.expires_at, row.attempts)

    def run(self, row_id: int) -> None:
        """Runs the row if this worker can claim it; any other worker's claim makes it a no-op."""
        job = self.claim(row_id)
        if job is None:
            return
        if job.expires_at and time.time() > job.expires_at:
            self._delete_expired(job)
            return
        if job.attempts > 1:
            logger.warning('Running async invocation of `%s` again (attempt %s): the worker that ran it before '
                           'stopped before it finished, cid `%s`', job.service, job.attempts, job.cid)
        renewer = gevent.spawn(self._renew, job)
        try:
            ok, response, error = self._invoke(job)
        finally:
            renewer.kill(block=False)
        self._finish(job, ok, response, error)

    def _invoke(self, job: Claimed) -> tuple[bool, Any, str | None]:
        environ = dict(job.environ)
        environ['zato_ctx'] = job.zato_ctx
        environ['transport'] = job.transport
        channel = ChannelInfo(None, job.channel, job.channel, job.data_format)
        try:
            response = self.runtime.invoker.invoke(job.service, job.payload, cid=job.cid, channel=channel,
                                                   environ=environ)
        except Exception as e:  # noqa: BLE001 - a failed run is its result: logged, not retried
            # A traceback for a bug only: not for a service not there or a client's mistake (a bad payload)
            logger.warning('Async invocation of `%s` failed, cid `%s`: %s: %s', job.service, job.cid,
                           type(e).__name__, e, exc_info=not isinstance(e, (KeyError, ClientError)))
            return False, None, f'{type(e).__name__}: {e}'
        return True, response, None

    def _renew(self, job: Claimed) -> None:
        while True:
            gevent.sleep(self.claim_ttl / 3)
            try:
                with self.runtime.Session() as session:
                    result = session.execute(
                        update(AsyncInvocation)
                        .where(AsyncInvocation.id == job.id, AsyncInvocation.claimed_by == job.token)
                        .values(claimed_until=time.time() + self.claim_ttl))
                    session.commit()
                if result.rowcount != 1:
                    logger.warning('Lost the claim of async invocation of `%s`, cid `%s`', job.service, job.cid)
                    return
            except Exception:  # noqa: BLE001 - the ODB may be back at the next try
                logger.warning('Could not renew the claim of async invocation %s', job.id, exc_info=True)

    def _delete_expired(self, job: Claimed) -> None:
        with self.runtime.Session() as session:
            session.execute(delete(AsyncInvocation).where(AsyncInvocation.id == job.id,
                                                          AsyncInvocation.claimed_by == job.token))
            session.commit()
        logger.warning('Async invocation of `%s` expired before a worker could run it; dropped, cid `%s`',
                       job.service, job.cid)

    def _finish(self, job: Claimed, ok: bool, response: Any, error: str | None) -> None:
        """Deletes the row and queues what follows from it, in one transaction, if the claim is still ours."""
        with self.runtime.Session() as session:
            result = session.execute(delete(AsyncInvocation).where(AsyncInvocation.id == job.id,
                                                                   AsyncInvocation.claimed_by == job.token))
            if result.rowcount != 1:
                session.rollback()
                logger.warning('Async invocation of `%s` finished after its claim ran out; another worker runs it, '
                               'cid `%s`', job.service, job.cid)
                return
            follow: list[int] = []
            if ok and job.callback:
                follow.append(self.add(session, Job(job.callback, response, new_cid(), CHANNEL.INVOKE_ASYNC_CALLBACK,
                                                    job.data_format, job.transport,
                                                    environ={'in_reply_to': job.cid})))
            if job.group_cid is not None:
                follow += self._record(session, job, ok, response, error)
            session.commit()
        self.wake(follow)

    def _record(self, session: Any, job: Claimed, ok: bool, response: Any, error: str | None) -> list[int]:
        """A target's answer to its group; with the last one, the final callbacks. In the caller's transaction."""
        cluster_id = self.runtime.cluster_id
        where = (InvocationGroup.cluster_id == cluster_id, InvocationGroup.cid == job.group_cid)
        # The increment locks the group row until this transaction ends: the next answer waits and counts after
        counted = session.execute(update(InvocationGroup).where(*where).values(done=InvocationGroup.done + 1))
        if counted.rowcount != 1:
            logger.warning('No fan-out/parallel call `%s` for the answer of `%s`', job.group_cid, job.service)
            return []
        kind, source, total, done, on_target, on_final, req_ts = session.execute(
            select(InvocationGroup.kind, InvocationGroup.source, InvocationGroup.total, InvocationGroup.done,
                   InvocationGroup.on_target, InvocationGroup.on_final, InvocationGroup.req_ts_utc)
            .where(*where)).one()
        _, on_target_channel, on_final_channel = GROUP_CHANNELS[kind]
        item = jsonable({'cid': job.cid, 'group_cid': job.group_cid, 'source': source, 'target': job.service,
                         'response': response, 'ok': ok, 'exception': error, 'req_ts_utc': req_ts,
                         'resp_ts_utc': utc_iso()})
        session.add(InvocationGroupResponse(cluster_id=cluster_id, group_cid=job.group_cid, idx=job.group_index,
                                            data=item))
        follow = [self.add(session, Job(name, item, new_cid(), on_target_channel, environ={'group_cid': job.group_cid}))
                  for name in on_target]
        if done == total:
            session.flush()
            rows = session.scalars(select(InvocationGroupResponse.data).where(
                InvocationGroupResponse.cluster_id == cluster_id, InvocationGroupResponse.group_cid == job.group_cid)
                .order_by(InvocationGroupResponse.idx)).all()
            final = {'cid': job.group_cid, 'source': source, 'req_ts_utc': req_ts, 'on_target': on_target,
                     'on_final': on_final, 'data': list(rows)}
            follow += [self.add(session, Job(name, final, new_cid(), on_final_channel,
                                             environ={'group_cid': job.group_cid})) for name in on_final]
            session.execute(delete(InvocationGroupResponse).where(
                InvocationGroupResponse.cluster_id == cluster_id, InvocationGroupResponse.group_cid == job.group_cid))
            session.execute(delete(InvocationGroup).where(*where))
        return follow

    # The safety net

    def sweep(self) -> int:
        """Claims and runs (in the background) rows no worker owns; returns how many it found."""
        now = time.time()
        with self.runtime.Session() as session:
            ids = session.scalars(select(AsyncInvocation.id).where(
                AsyncInvocation.cluster_id == self.runtime.cluster_id, AsyncInvocation.claimed_until < now)
                .order_by(AsyncInvocation.id).limit(SWEEP_BATCH)).all()
        for row_id in ids:
            self._pool.spawn(self.run, row_id)
        return len(ids)

    def run_sweeper(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the ODB may be back at the next sweep
                logger.warning('Sweeping async invocations failed', exc_info=True)
            gevent.sleep(self.sweep_interval)
