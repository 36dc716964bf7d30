"""Push delivery of pub/sub (3.1's delivery tasks, spec 6.3) on the ODB's leases.

The rules, each with a test in tests/pubsub/test_delivery.py (in zato.server: zato.pubsub may not import gevent):

* Every active subscription whose `delivery_method` is `notify` has one delivery task in the cluster at
  a time: the one whose worker holds the lease ``zato.pubsub.sub.<sub_id>`` ([pubsub] delivery_lease_ttl).
  Each worker's `Delivery` looks every [pubsub] task_sync_interval seconds (and when woken) for such
  subscriptions without a live holder and tries to take their leases; a worker that dies loses its
  leases with their TTL and the others take them over; a worker that stops gives its leases back, so
  that another takes over at once.
* A task renews its lease every third of its TTL and, before it acts on a batch, checks that its token
  still holds it (the fence, as the scheduler's); a lost lease ends the task, with nothing delivered.
* The loop: pull a batch with the acknowledged pull (PubSubStore.pull, invisible for longer than a
  delivery may take), hand it to the target, acknowledge it when the target took it. A message is thus
  delivered at least once: a holder that dies between delivering and acknowledging leaves the batch to
  be pulled again when its invisibility ends, by whoever holds the lease then (a duplicate).
* A failed delivery is tried again after `wait_sock_err` seconds (no connection, no answer) or
  `wait_non_sock_err` (any other error, e.g. a 5xx), until it was tried `delivery_max_retry` times
  after the first. `delivery_err_should_block`: true, the queue waits for the failed batch (the order is
  kept); false, the batch is set aside (invisible until its wait passes) and the next messages go.
  A message whose retries are all used up stays queued, set aside for PARKED_FOR seconds, logged at
  ERROR and counted (`Delivery.exhausted`); it is never dropped.
* A worker that takes a subscription's lease first makes its invisible entries visible again (`reclaim`):
  what a dead holder had in hand goes first, in order, and at once rather than after its visibility
  timeout. A holder that was only paused and still delivers its batch makes duplicates, never a gap.
* A publication wakes the tasks of its topic at once (after a stored publication PubSub.publish has
  zato.server.pubsub_wsx publish WAKE_SUBJECT on the cluster bus, in the background, one message a
  topic for the publications that came meanwhile; every worker hears it, the publisher's included);
  the task's own wait (task_sync_interval) is the fallback when the bus misses one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gevent
from gevent.event import Event
from sqlalchemy import bindparam, text

from zato.odb.lease import _NOW, MAX_HOLDER, LeaseStore
from zato.pubsub.store import PubSubStore, public

logger = logging.getLogger('zato.server.pubsub_delivery')

WAKE_SUBJECT = 'zato.pubsub.wake'

# How long a message whose retries are used up is kept out of the way before it is tried again
PARKED_FOR = 3600.0
# Seconds between two writes of a subscription's last_delivery_time by its delivery task (a transaction of
# its own, which a task pushing batch after batch would otherwise make after each)
LAST_DELIVERY_INTERVAL = 1.0

# What a before_delivery hook decides of one message
Decision = Literal['deliver', 'skip', 'delete']


def lease_name(sub_id: int) -> str:
    return f'zato.pubsub.sub.{sub_id}'


class SocketError(Exception):
    """The target could not be reached (no connection, no answer): retried after `wait_sock_err`."""


class DeliveryError(Exception):
    """The target answered with an error (e.g. a 5xx): retried after `wait_non_sock_err`."""


@dataclass(frozen=True, slots=True)
class Sub:
    """What a delivery task needs of its subscription."""

    id: int
    sub_key: str
    topic_name: str
    endpoint_id: int
    endpoint_type: str
    service_name: str | None
    out_rest_id: int | None
    out_http_method: str
    wrap_one_msg_in_list: bool
    delivery_batch_size: int
    delivery_max_retry: int
    delivery_err_should_block: bool
    wait_sock_err: float
    wait_non_sock_err: float
    hook_service: str | None = None  # the subscription's own PubSubHook (zato.pubsub.hook), if any


_SUBS = """
SELECT s.id, s.sub_key, t.name, e.id, e.endpoint_type, e.service_name, s.out_rest_id, s.out_http_method,
       s.wrap_one_msg_in_list, s.delivery_batch_size, s.delivery_max_retry, s.delivery_err_should_block,
       s.wait_sock_err, s.wait_non_sock_err, s.hook_service
  FROM pubsub_sub s JOIN pubsub_topic t ON t.id = s.topic_id JOIN pubsub_endpoint e ON e.id = s.endpoint_id
 WHERE s.cluster_id = :cluster_id AND s.delivery_method = 'notify' AND s.is_active = :true
 ORDER BY s.id
"""
# The topics with a WSX subscriber (a pusher on whichever worker its client is on, zato.server.pubsub_wsx): with
# the push subscriptions, what a publication must wake other workers for (Delivery.wakes_others)
_WSX_TOPICS = """
SELECT DISTINCT t.name
  FROM pubsub_sub s JOIN pubsub_topic t ON t.id = s.topic_id JOIN pubsub_endpoint e ON e.id = s.endpoint_id
 WHERE s.cluster_id = :cluster_id AND s.is_active = :true AND e.endpoint_type = 'wsx'
"""
_DEFER = 'UPDATE pubsub_queue SET visible_after = {now} + :wait WHERE id IN :ids'
# A new holder's first step: what the previous holder had in hand or had set aside is visible again
_RECLAIM = 'UPDATE pubsub_queue SET visible_after = 0 WHERE sub_id = :sub_id AND visible_after > {now}'
_LAST_DELIVERY = 'UPDATE pubsub_sub SET last_delivery_time = {now} WHERE id = :sub_id'


def load_subs(store: PubSubStore, wsx_topics: set[str] | None = None) -> dict[int, Sub]:
    """The cluster's active push (`notify`) subscriptions, by id; `wsx_topics`, when given, is filled with the
    names of the topics that have a WSX subscriber (_WSX_TOPICS)."""
    with store.engine.connect() as conn:
        rows = conn.execute(text(_SUBS), {'cluster_id': store.cluster_id, 'true': True}).all()
        if wsx_topics is not None:
            wsx_topics.update(conn.execute(text(_WSX_TOPICS), {'cluster_id': store.cluster_id,
                                                                'true': True}).scalars())
    return {int(r[0]): Sub(int(r[0]), r[1], r[2], int(r[3]), r[4], r[5], r[6], r[7] or 'POST', bool(r[8]),
                           max(1, int(r[9])), int(r[10]), bool(r[11]), float(r[12]), float(r[13]), r[14] or None)
            for r in rows}


# A target: takes the subscription and what to send (one message or a list), raises SocketError or
# any other exception when the delivery failed
Sender = Callable[[Sub, Any], None]


def before_delivery(sub: Sub, message: dict[str, Any]) -> Decision:
    """The default decision when no hook runner is given (the unit tests): deliver. The server passes
    its own (zato.server.pubsub: the subscription's or the topic's PubSubHook, zato.pubsub.hook).
    'skip': not delivered this time, visible again after task_sync_interval; 'delete': acknowledged
    without being delivered."""
    return 'deliver'


class Delivery:
    """One per worker: takes the leases of push subscriptions without a live holder and runs their tasks."""

    def __init__(self, store: PubSubStore, leases: LeaseStore, sender: Sender, *, holder: str, ttl: float,
                 sync_interval: float, delivery_timeout: float, server_name: str = '',
                 hook: Callable[[Sub, dict[str, Any]], Decision] = before_delivery,
                 on_delivered: Callable[[int, float], None] | None = None) -> None:
        self.store = store
        self.leases = leases
        self.sender = sender
        self.holder = holder[:MAX_HOLDER]
        self.ttl = ttl
        self.sync_interval = sync_interval
        # Pulled messages stay invisible well past a delivery's time, so none is handed out twice while in hand
        self.visibility = 2 * delivery_timeout + ttl
        self.server_name = server_name
        self.server_pid = os.getpid()
        self.hook = hook
        self.on_delivered = on_delivered  # (endpoint id, when): zato.server.pubsub_meta.EndpointMeta.delivered
        self.tasks: dict[int, _Task] = {}
        # As of the last look (None: none made yet, every publication is told to the other workers): the
        # cluster's push subscriptions and the topics with a WSX subscriber
        self.subs: dict[int, Sub] | None = None
        self.wsx_topics: frozenset[str] = frozenset()
        self.exhausted = 0  # messages whose retries were all used up (each time it happens)
        self.delivered = 0
        self._wake = Event()
        self._stopped = False
        self._greenlet: gevent.Greenlet | None = None
        now = _NOW[store.engine.dialect.name]
        self._defer = text(_DEFER.format(now=now)).bindparams(bindparam('ids', expanding=True))
        self._reclaim = text(_RECLAIM.format(now=now))
        self._last_delivery = text(_LAST_DELIVERY.format(now=now))

    def start(self) -> gevent.Greenlet:
        self._greenlet = gevent.spawn(self.run)
        return self._greenlet

    def stop(self) -> None:
        """Ends every task and gives its lease back, so that another worker takes over at once."""
        self._stopped = True
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        for task in list(self.tasks.values()):
            task.stop()
        self.tasks = {}

    def wake(self, msg: dict[str, Any] | None = None) -> None:
        """A publication (a WAKE_SUBJECT message of the bus, {'topic': name}): its topic's tasks pull at once.
        Without a topic (a subscription changed): every task, and a look for subscriptions at once. A
        publication does not make that look (it came for each publication on each worker): a new push
        subscription is found within `task_sync_interval`."""
        topic = (msg or {}).get('topic')
        for task in list(self.tasks.values()):
            if topic is None or task.sub.topic_name == topic:
                task.wake.set()
        if topic is None:
            self._wake.set()

    def wakes_others(self, topic_name: str) -> bool:
        """Whether a publication to the topic is told to the other workers, as of the last look (or none was
        made yet): it has a WSX subscriber, or a push subscription whose task is not this worker's (those
        of this worker are woken at once, zato.server.pubsub_wsx)."""
        if self.subs is None or topic_name in self.wsx_topics:
            return True
        for sub_id, sub in self.subs.items():
            if sub.topic_name == topic_name:
                task = self.tasks.get(sub_id)
                if task is None or task.done:
                    return True
        return False

    def run(self) -> None:
        while not self._stopped:
            try:
                self.sync()
            except Exception:
                logger.exception('Could not look for push subscriptions; trying again')
            self._wake.clear()
            self._wake.wait(timeout=self.sync_interval)

    def sync(self) -> None:
        """Takes the leases of the subscriptions this worker does not run yet and that no one holds; ends
        the tasks of those no longer pushed."""
        wsx_topics: set[str] = set()
        subs = load_subs(self.store, wsx_topics)
        self.subs, self.wsx_topics = subs, frozenset(wsx_topics)
        for sub_id, task in list(self.tasks.items()):
            if task.done or sub_id not in subs:
                task.stop()
                del self.tasks[sub_id]
            elif task.sub != subs[sub_id]:
                task.sub = subs[sub_id]
        for sub_id, sub in subs.items():
            if sub_id in self.tasks or self._stopped:
                continue
            token = self.leases.acquire(lease_name(sub_id), self.holder, self.ttl)
            if token is not None:
                logger.info('This worker (%s) delivers subscription %s (token %s)', self.holder, sub_id, token)
                self.reclaim(sub_id)
                task = _Task(self, sub, token)
                self.tasks[sub_id] = task
                task.greenlet = gevent.spawn(task.run)

    # What the tasks share

    def defer(self, entries: list[int], wait: float) -> None:
        """Makes queue entries invisible for `wait` seconds from now (by the ODB's clock)."""
        with self.store.transaction() as conn:
            conn.execute(self._defer, {'ids': entries, 'wait': float(wait)})

    def reclaim(self, sub_id: int) -> None:
        """Makes every entry of the subscription visible at once, when this worker has just taken its lease:
        only the lease's holder pulls a push subscription, so what is invisible now was in the hands of a
        holder that is gone (or fenced off). It is delivered first, in delivery order, before anything the
        previous holder never pulled, instead of after its visibility timeout and behind later messages."""
        with self.store.transaction() as conn:
            conn.execute(self._reclaim, {'sub_id': sub_id})

    def delivered_to(self, sub_id: int) -> None:
        with self.store.transaction() as conn:
            conn.execute(self._last_delivery, {'sub_id': sub_id})

    def to_send(self, sub: Sub, message: dict[str, Any]) -> dict[str, Any]:
        """A message as 3.1 pushes it (spec 6.3)."""
        out = public(message)
        out.update(sub_key=sub.sub_key, server_name=self.server_name, server_pid=self.server_pid)
        return out


class _Task:
    """The delivery task of one subscription, while its worker holds the subscription's lease."""

    def __init__(self, delivery: Delivery, sub: Sub, token: int) -> None:
        self.delivery = delivery
        self.sub = sub
        self.token = token
        self.name = lease_name(sub.id)
        self.wake = Event()
        self.done = False
        self.greenlet: gevent.Greenlet | None = None
        self._renew_at = time.monotonic() + delivery.ttl / 3
        self._delivery_time_at = 0.0

    def stop(self) -> None:
        self.done = True
        if self.greenlet is not None and self.greenlet is not gevent.getcurrent():
            self.greenlet.kill(block=True, timeout=5)
        try:
            self.delivery.leases.release(self.name, self.token)
        except Exception:
            logger.warning('Could not release lease `%s`; it ends with its TTL', self.name, exc_info=True)

    def _holds(self) -> bool:
        """The fence: whether the lease is still this task's. It is renewed when a third of its TTL has
        passed; until then it is this task's without asking the ODB (a round trip each round): no one can
        take a lease over before its TTL runs out, and two thirds of it are left (the ODB's clock and
        this worker's advance at the same rate; a worker paused past that is stopped by the renewal)."""
        if time.monotonic() < self._renew_at:
            return True
        if not self.delivery.leases.renew(self.name, self.token, self.delivery.ttl):
            return False
        self._renew_at = time.monotonic() + self.delivery.ttl / 3
        return True

    def _sleep(self, seconds: float) -> None:
        """Waits `seconds`, renewing the lease meanwhile (a long wait_non_sock_err outlives the TTL)."""
        end = time.monotonic() + seconds
        gevent.sleep(0)  # a wait of 0 still lets the worker's other greenlets run
        while not self.done and (left := end - time.monotonic()) > 0:
            gevent.sleep(min(left, self.delivery.ttl / 3))
            if not self._holds():
                self.done = True

    def run(self) -> None:
        try:
            while not self.done:
                if not self._holds():
                    logger.warning('Lease `%s` lost (token %s); its task ends', self.name, self.token)
                    break
                self.wake.clear()
                if not self.round():
                    self.wake.wait(timeout=min(self.delivery.sync_interval, self.delivery.ttl / 3))
        except gevent.GreenletExit:
            raise
        except Exception:
            logger.exception('Delivery task of subscription %s failed; another round will take it up', self.sub.id)
        finally:
            self.done = True

    def round(self) -> bool:
        """Pulls and delivers one batch; False if the queue had nothing to hand out."""
        d, sub = self.delivery, self.sub
        batch = d.store.pull(sub.id, sub.delivery_batch_size, d.visibility)
        if not batch:
            return False
        # The fence: the batch is acted on only while the lease is this task's. A task that lost it after
        # pulling gives the batch back at once: the new holder's reclaim may have come before this pull,
        # and the batch would otherwise stay invisible for the visibility timeout, then come late and out
        # of order (found by tests/e2e/test_pubsub_guarantee.py's helper)
        if not self._holds():
            self.done = True
            try:
                d.defer([m['_entry'] for m in batch], 0.0)
            except Exception:  # noqa: BLE001 - the ODB out of reach: the visibility timeout gives it back
                logger.warning('Subscription %s: could not give back a batch after losing its lease', sub.id,
                               exc_info=True)
            return True
        deliver: list[dict[str, Any]] = []
        skip: list[dict[str, Any]] = []
        delete: list[dict[str, Any]] = []
        for message in batch:
            decision = d.hook(sub, message)
            (deliver if decision == 'deliver' else skip if decision == 'skip' else delete).append(message)
        if skip:
            d.defer([m['_entry'] for m in skip], d.sync_interval)
        if delete:
            d.store.ack(sub.id, [m['msg_id'] for m in delete])
        if not deliver:
            return True
        payload: Any = [d.to_send(sub, m) for m in deliver]
        if len(payload) == 1 and not sub.wrap_one_msg_in_list:
            payload = payload[0]
        try:
            d.sender(sub, payload)
        except Exception as e:  # noqa: BLE001 - any failure of the target is retried
            self._failed(deliver, e)
            return True
        d.store.ack(sub.id, [m['msg_id'] for m in deliver])
        d.delivered += len(deliver)
        if time.monotonic() >= self._delivery_time_at:  # the subscription's last_delivery_time, once a second at most
            d.delivered_to(sub.id)
            self._delivery_time_at = time.monotonic() + LAST_DELIVERY_INTERVAL
        if d.on_delivered is not None:
            d.on_delivered(sub.endpoint_id, time.time())
        return True

    def _failed(self, batch: list[dict[str, Any]], error: Exception) -> None:
        d, sub = self.delivery, self.sub
        wait = sub.wait_sock_err if isinstance(error, SocketError) else sub.wait_non_sock_err
        # A message's delivery_count is how many times it was handed out: its first try and the retries
        exhausted = [m for m in batch if m['delivery_count'] > sub.delivery_max_retry]
        if exhausted:
            d.exhausted += len(exhausted)
            logger.error('Subscription %s: %d message(s) not delivered after %d retries (%s), kept in the queue '
                         'and set aside for %ss: %s', sub.id, len(exhausted), sub.delivery_max_retry, error,
                         PARKED_FOR, [m['msg_id'] for m in exhausted])
            d.defer([m['_entry'] for m in exhausted], PARKED_FOR)
        rest = [m for m in batch if m['delivery_count'] <= sub.delivery_max_retry]
        logger.warning('Subscription %s: delivery of %d message(s) failed (%s); trying again in %ss', sub.id,
                       len(batch), error, wait)
        if not rest:
            return
        if sub.delivery_err_should_block:
            # The queue waits: nothing else is pulled until the failed batch is visible again
            d.defer([m['_entry'] for m in rest], wait + d.visibility)
            self._sleep(wait)
            if not self.done:
                d.defer([m['_entry'] for m in rest], 0.0)
        else:
            d.defer([m['_entry'] for m in rest], wait)
            gevent.sleep(0)
