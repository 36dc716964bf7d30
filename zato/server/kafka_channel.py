"""Inbound Kafka channels of one worker: the consumer loop.

Each active channel runs one consumer per worker, every one in the channel's consumer group, so
Kafka spreads the topics' partitions over the workers of every server. A consumer's greenlet polls
without blocking the hub (``conn.poll``: ``poll(0)`` and gevent sleeps), invokes the channel's
service once per message, in order, and commits that message's offset synchronously (in gevent's
threadpool) only after the service returned without raising. Delivery is at least once: a message
whose commit did not happen (a worker killed, a rebalance, a broker gone) comes again.

A message whose service raised is never skipped. Its partition is paused and rewound to it (pause
and seek), then resumed after an exponential backoff, so the broker hands the same message again
and nothing after it in that partition runs, let alone is committed, before it succeeds; the other
partitions go on meanwhile. With on_error `dead_letter`, the attempt that reaches `max_attempts`
produces the message, with headers saying why, to the dead-letter topic, and then commits it.

librdkafka reconnects to brokers by itself, with its own backoff; a broker that is down only shows
as errors (error_cb), logged the first time and every tenth. A consumer that cannot be built (its
outgoing connection is missing or inactive) is tried again with backoff. Stopping (an edit, a
delete, the worker stopping) finishes the message in hand, commits it and closes the consumer,
which leaves the group; the channel's new consumer starts once the old one is closed.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import gevent
import gevent.event
import orjson
from sqlalchemy import select

from zato.connectors.base import backoff_delay, describe
from zato.connectors.kafka import in_thread
from zato.odb.models import ChannelKafka
from zato.config.channel import ChannelInfo
from zato.service.invoker import new_cid
from zato.service.reqresp import Request

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

    from zato.connectors.kafka import KafkaConnector
    from zato.server.outconns import OutConns
    from zato.server.store import ServiceStore
    from zato.service.invoker import Invoker

__all__ = ['CHANNEL_TYPE', 'ChannelConsumer', 'KafkaChannelConfig', 'KafkaChannels', 'KafkaMessage', 'KafkaRequest']

logger = logging.getLogger('zato.kafka_channel')

CHANNEL_TYPE = 'kafka'

POLL_WAIT = 0.25          # seconds one poll waits for a message: how soon a stop is noticed
STOP_WAIT = 30.0          # seconds a new consumer waits for the one it replaces to finish its message

# Seconds a new consumer waits after the one it replaces left the group. An edit reaches every worker
# at about the same time: waiting lets all the old members leave before the new ones join, so the
# group rebalances once rather than once per worker. (Tansu, the broker of the tests, also keeps a
# leader that left a group still forming as its leader, and the group never forms again.)
REJOIN_DELAY = 1.0
OPEN_RETRY_MIN = 0.5      # backoff between attempts to build a consumer
OPEN_RETRY_MAX = 30.0
METADATA_REFRESH = 10000  # milliseconds: a topic created after its channel started is consumed this soon
LOG_EVERY = 10            # broker errors: the first is logged, then every tenth
ERROR_TEXT_MAX = 2000     # characters of an exception a dead-letter header keeps

STATUS_SUBJECT = 'kafka_channel.status'
STATUS_REPLY_SUBJECT = 'kafka_channel.status-reply'
STATUS_QUIET = 0.3        # a status round is over when no worker has answered for this long
STATUS_MAX = 3.0


# ################################################################################################ what a service sees

@dataclass(frozen=True, slots=True)
class KafkaMessage:
    """``self.request.kafka``: where the message came from, and which attempt at it this is."""
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp: int | None  # milliseconds since the epoch, as the producer or the broker set it
    attempt: int           # 1, then 2 ... each time this worker gets the message again after a failure

    def header(self, name: str) -> bytes | None:
        """The value of the last header named `name`, or None."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None


class KafkaRequest(Request):
    """``self.request`` of a service invoked by a Kafka channel: ``payload`` is the message's value
    decoded per the channel's data_format, ``raw_request`` its bytes, ``kafka`` a KafkaMessage."""

    __slots__ = ('kafka',)

    def __init__(self, kafka: KafkaMessage, payload: Any, raw_request: bytes) -> None:
        super().__init__(payload, raw_request)
        self.kafka = kafka


def headers_of(msg: Message) -> list[tuple[str, bytes | None]]:
    """A message's headers as (name, value) pairs, in order; a name may repeat."""
    headers = msg.headers() or ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(name, value.encode() if isinstance(value, str) else value) for name, value in pairs]


def decode(value: bytes | None, data_format: str) -> Any:
    """A message's value as the service gets it: parsed JSON, str, or the bytes; None for no value."""
    if value is None:
        return None
    if data_format == 'json':
        return orjson.loads(value)
    if data_format == 'text':
        return value.decode('utf-8')
    return value


# ################################################################################################ config

@dataclass(frozen=True, slots=True)
class KafkaChannelConfig:
    """One channel (table channel_kafka), as the worker runs it."""
    id: int
    name: str
    is_active: bool
    out_conn_id: int | None
    topics: tuple[str, ...]
    group_id: str
    service_name: str
    data_format: str
    start_from: str
    on_error: str
    max_attempts: int
    dead_letter_topic: str
    retry_min: float
    retry_max: float
    version: int

    @classmethod
    def from_model(cls, row: ChannelKafka) -> KafkaChannelConfig:
        return cls(id=row.id, name=row.name, is_active=row.is_active, out_conn_id=row.out_conn_id,
                   topics=tuple(row.topics or ()), group_id=row.group_id, service_name=row.service_name,
                   data_format=row.data_format, start_from=row.start_from, on_error=row.on_error,
                   max_attempts=row.max_attempts, dead_letter_topic=row.dead_letter_topic,
                   retry_min=row.retry_min, retry_max=row.retry_max, version=row.version)


class _Held:
    """A partition held back at a message whose service failed, until it is tried again."""

    __slots__ = ('offset', 'attempts', 'resume_at', 'paused')

    def __init__(self, offset: int, attempts: int, resume_at: float) -> None:
        self.offset = offset
        self.attempts = attempts
        self.resume_at = resume_at
        self.paused = True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec='milliseconds')


# ################################################################################################ the consumer loop

class KafkaHost(Protocol):
    """What the Kafka channels use of their worker."""

    bus: Any
    cluster_id: int
    server_name: str
    store: ServiceStore
    invoker: Invoker
    outconn_mgr: OutConns


class ChannelConsumer:
    """One channel's consumer on this worker: a greenlet that builds a consumer, consumes until
    stopped, and builds it again if it failed."""

    def __init__(self, runtime: KafkaHost, config: KafkaChannelConfig, out_conn_version: int | None,
                 previous: ChannelConsumer | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.out_conn_version = out_conn_version  # of the outgoing connection it was started with
        self.info = ChannelInfo(config.id, config.name, CHANNEL_TYPE, config.data_format)
        self.state = 'starting'
        self.assigned: set[tuple[str, int]] = set()
        self.held: dict[tuple[str, int], _Held] = {}
        self.processed = 0
        self.failed = 0
        self.dead_lettered = 0
        self.last_error = ''
        self.last_error_at: str | None = None
        self.started_at = _now()
        self._broker_errors = 0
        self._previous = previous
        self._stopping = False
        self._wake = gevent.event.Event()
        self._greenlet: gevent.Greenlet | None = None

    def __repr__(self) -> str:
        return f'<ChannelConsumer `{self.config.name}` {self.state}>'

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """Asks the loop to stop after the message in hand; returns at once."""
        self._stopping = True
        self._wake.set()

    def join(self, timeout: float) -> bool:
        """Waits until the loop ended (the consumer closed); True if it did."""
        greenlet = self._greenlet
        if greenlet is None:
            return True
        greenlet.join(timeout)
        return greenlet.dead

    def kill(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    @property
    def running(self) -> bool:
        return self.state == 'consuming'

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {'state': self.state, 'running': self.running, 'version': self.config.version,
                'started_at': self.started_at,
                'assigned': [{'topic': t, 'partition': p} for t, p in sorted(self.assigned)],
                'held': [{'topic': t, 'partition': p, 'offset': h.offset, 'attempts': h.attempts,
                          'retry_in': round(max(0.0, h.resume_at - now), 3) if h.paused else 0.0}
                         for (t, p), h in sorted(self.held.items())],
                'processed': self.processed, 'failed': self.failed, 'dead_lettered': self.dead_lettered,
                'last_error': self.last_error, 'last_error_at': self.last_error_at}

    # ------------------------------------------------------------------ building and closing

    def _run(self) -> None:
        previous, self._previous = self._previous, None
        if previous is not None:
            if not previous.join(STOP_WAIT):
                logger.warning('Kafka channel `%s`: the previous consumer is still busy after %gs; starting anyway',
                               self.config.name, STOP_WAIT)
            self._wake.wait(REJOIN_DELAY)
        failures = 0
        try:
            while not self._stopping:
                try:
                    connector = self._connector()
                    consumer = self._open(connector)
                except Exception as e:  # noqa: BLE001 - whatever failed is reported and tried again
                    self._error(f'could not start consuming: {describe(e)}', log=failures % LOG_EVERY == 0)
                    self._wait(backoff_delay(failures, OPEN_RETRY_MIN, OPEN_RETRY_MAX, 0.5 + random.random() / 2))
                    failures += 1
                    continue
                failures = 0
                try:
                    self._consume(connector, consumer)
                except Exception as e:  # noqa: BLE001 - the consumer is built again, from the committed offsets
                    logger.exception('Kafka channel `%s`: the consumer failed; building it again', self.config.name)
                    self._error(f'the consumer failed: {describe(e)}', log=False)
                finally:
                    self._close(consumer)
                if not self._stopping:
                    self._wait(OPEN_RETRY_MIN)
        finally:
            self.state = 'stopped'

    def _connector(self) -> KafkaConnector:
        """The channel's outgoing Kafka connection: ConnectorInactive, ConnectorUnavailable or
        LookupError saying why there is none to use."""
        conn_id = self.config.out_conn_id
        handle = None if conn_id is None else self.runtime.outconn_mgr.by_id.get(conn_id)
        if handle is None or handle.kind != 'kafka':
            raise LookupError('its outgoing Kafka connection no longer exists')
        return handle.conn

    def _open(self, connector: KafkaConnector) -> Consumer:
        config = self.config
        consumer = connector.consumer(config.group_id, (), {
            'enable.auto.commit': False,
            'enable.auto.offset.store': False,
            'auto.offset.reset': config.start_from,
            'topic.metadata.refresh.interval.ms': METADATA_REFRESH,
            'error_cb': self._on_broker_error,
        })
        try:
            consumer.subscribe(list(config.topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
                               on_lost=self._on_revoke)
        except Exception:
            in_thread(consumer.close)
            raise
        self.state = 'consuming'
        logger.info('Kafka channel `%s`: consuming %s as group `%s` (version %d)', config.name,
                    ', '.join(config.topics), config.group_id, config.version)
        return consumer

    def _close(self, consumer: Consumer) -> None:
        self.state = 'stopping' if self._stopping else 'starting'
        try:
            # Leaves the group (a rebalance hands its partitions to the other workers) and may wait
            # for the broker: not on the hub
            in_thread(consumer.close)
        except Exception:
            logger.exception('Kafka channel `%s`: could not close the consumer', self.config.name)
        self.assigned.clear()
        self.held.clear()
        logger.info('Kafka channel `%s`: consumer closed (version %d)', self.config.name, self.config.version)

    def _wait(self, seconds: float) -> None:
        self.state = 'waiting'
        self._wake.wait(seconds)

    # ------------------------------------------------------------------ consuming

    def _consume(self, connector: KafkaConnector, consumer: Consumer) -> None:
        from confluent_kafka import KafkaException

        while not self._stopping:
            if self.held:
                self._resume_due(consumer)
            msg = connector.poll(consumer, POLL_WAIT)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                self._on_broker_error(err)
                continue
            # Once polled, a message is finished even if a stop came meanwhile
            self._handle(connector, consumer, msg)

    def _handle(self, connector: KafkaConnector, consumer: Consumer, msg: Message) -> None:
        tp = (msg.topic() or '', msg.partition() or 0)
        offset = msg.offset() or 0
        held = self.held.get(tp)
        if held is not None and offset > held.offset:
            return  # fetched before the partition was rewound; it comes again after the held message
        attempt = held.attempts + 1 if held is not None and offset == held.offset else 1
        if self._broker_errors:
            logger.info('Kafka channel `%s`: consuming again after %d broker error(s)', self.config.name,
                        self._broker_errors)
            self._broker_errors = 0
        cid = new_cid()
        try:
            self._invoke(msg, attempt, cid)
        except Exception as e:  # noqa: BLE001 - the service's failure decides what happens to the message
            self.failed += 1
            self._failed(connector, consumer, msg, attempt, cid, e)
            return
        if held is not None and offset == held.offset:
            del self.held[tp]
        self.processed += 1
        self._commit(connector, consumer, msg)

    def _invoke(self, msg: Message, attempt: int, cid: str) -> None:
        config = self.config
        value = msg.value()
        _, timestamp = msg.timestamp()
        kafka = KafkaMessage(msg.topic() or '', msg.partition() or 0, msg.offset() or 0, msg.key(),
                             headers_of(msg), timestamp if timestamp > 0 else None, attempt)
        request = KafkaRequest(kafka, decode(value, config.data_format), value or b'')
        service = self.runtime.store.get(config.service_name)
        self.runtime.invoker.run(service, cid, self.info, request)

    def _failed(self, connector: KafkaConnector, consumer: Consumer, msg: Message, attempt: int, cid: str,
                e: Exception) -> None:
        config = self.config
        where = f'{msg.topic()}[{msg.partition()}] offset {msg.offset()}'
        self._error(f'{where}, attempt {attempt}, cid {cid}: {describe(e)}', log=False)
        if config.on_error == 'dead_letter' and attempt >= config.max_attempts:
            try:
                self._dead_letter(msg, attempt, cid, e)
            except Exception as dle:  # noqa: BLE001 - the message is held and tried again instead
                self._error(f'{where}: could not be produced to dead-letter topic `{config.dead_letter_topic}`: '
                            f'{describe(dle)}')
            else:
                logger.warning('Kafka channel `%s`: %s moved to dead-letter topic `%s` after %d attempt(s), '
                               'cid %s: %s', config.name, where, config.dead_letter_topic, attempt, cid, describe(e))
                self.held.pop((msg.topic() or '', msg.partition() or 0), None)
                self.dead_lettered += 1
                self._commit(connector, consumer, msg)
                return
        delay = backoff_delay(attempt - 1, config.retry_min, config.retry_max, 0.5 + random.random() / 2)
        logger.warning('Kafka channel `%s`: service `%s` failed on %s (attempt %d, cid %s): %s; again in %.2fs',
                       config.name, config.service_name, where, attempt, cid, describe(e), delay)
        self._hold(consumer, msg, attempt, delay)

    def _hold(self, consumer: Consumer, msg: Message, attempt: int, delay: float) -> None:
        """Pauses the message's partition and rewinds it to the message, to be resumed after `delay`."""
        from confluent_kafka import TopicPartition

        topic, partition, offset = msg.topic() or '', msg.partition() or 0, msg.offset() or 0
        position = TopicPartition(topic, partition, offset)
        consumer.pause([position])
        # If the rewind fails this raises: the consumer is built again and starts from the committed offset
        consumer.seek(position)
        self.held[(topic, partition)] = _Held(offset, attempt, time.monotonic() + delay)

    def _resume_due(self, consumer: Consumer) -> None:
        from confluent_kafka import TopicPartition

        now = time.monotonic()
        for (topic, partition), held in self.held.items():
            if held.paused and held.resume_at <= now:
                consumer.resume([TopicPartition(topic, partition)])
                held.paused = False

    def _dead_letter(self, msg: Message, attempt: int, cid: str, e: Exception) -> None:
        config = self.config
        error = describe(e)[:ERROR_TEXT_MAX]
        _, timestamp = msg.timestamp()
        headers: list[tuple[str, bytes | str]] = [(k, v if v is not None else b'') for k, v in headers_of(msg)]
        headers += [('zato-error', error), ('zato-error-type', type(e).__name__), ('zato-channel', config.name),
                    ('zato-service', config.service_name), ('zato-cid', cid), ('zato-attempts', str(attempt)),
                    ('zato-original-topic', msg.topic() or ''), ('zato-original-partition', str(msg.partition())),
                    ('zato-original-offset', str(msg.offset())), ('zato-original-timestamp', str(timestamp))]
        # The connection in place now: an edit of it since this consumer started retired the old one
        self._connector().send(config.dead_letter_topic, msg.value(), key=msg.key(), headers=headers)

    def _commit(self, connector: KafkaConnector, consumer: Consumer, msg: Message) -> None:
        try:
            connector.commit(consumer, msg)
        except Exception as e:  # noqa: BLE001 - not fatal: a later commit covers it, or the message comes again
            self._error(f'could not commit {msg.topic()}[{msg.partition()}] offset {msg.offset()}: {describe(e)}')

    # ------------------------------------------------------------------ librdkafka's callbacks (run in poll or close)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.update((p.topic, p.partition) for p in partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        held = []
        for p in partitions:
            self.assigned.discard((p.topic, p.partition))
            # Whoever gets it next starts from the committed offset, which is the held message's
            if self.held.pop((p.topic, p.partition), None) is not None:
                held.append(p)
        if held:
            # librdkafka keeps a partition paused through a rebalance, even if this consumer gets it
            # back, and nothing would resume it
            consumer.resume(held)

    def _on_broker_error(self, err: KafkaError) -> None:
        self._error(f'{err.name()}: {err.str()}', log=self._broker_errors % LOG_EVERY == 0)
        self._broker_errors += 1

    def _error(self, text: str, log: bool = True) -> None:
        self.last_error = text
        self.last_error_at = _now()
        if log:
            logger.warning('Kafka channel `%s`: %s', self.config.name, text)


# ############################################################################################ the channels of a worker

class KafkaChannels:
    """The Kafka channels of one worker: starts, restarts and stops their consumers as the cluster
    bus reports changes to them or to their outgoing connections, and answers status queries."""

    def __init__(self, runtime: KafkaHost) -> None:
        self.runtime = runtime
        self.configs: dict[int, KafkaChannelConfig] = {}
        self.consumers: dict[int, ChannelConsumer] = {}
        self._stopping: list[ChannelConsumer] = []  # replaced ones that may still finish a message
        self._replies: dict[str, list[dict[str, Any]]] = {}

    def start(self) -> None:
        self.runtime.bus.subscribe(STATUS_SUBJECT, self._on_status_query)
        self.runtime.bus.subscribe(STATUS_REPLY_SUBJECT, self._on_status_reply)

    def reload_all(self, session: Any) -> None:
        rows = session.scalars(select(ChannelKafka).where(ChannelKafka.cluster_id == self.runtime.cluster_id)).all()
        for gone in set(self.configs) - {row.id for row in rows}:
            self._set(gone, None)
        for row in rows:
            self._set(row.id, KafkaChannelConfig.from_model(row))

    def changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        """The runtime's handler of a change of a Kafka channel."""
        self.apply(session, obj_id)

    def apply(self, session: Any, obj_id: int) -> None:
        row = session.get(ChannelKafka, obj_id)
        self._set(obj_id, None if row is None else KafkaChannelConfig.from_model(row))

    def out_conn_changed(self, out_conn_id: int) -> None:
        """An outgoing connection was created, edited or deleted: its channels start again on it."""
        for config in [c for c in self.configs.values() if c.out_conn_id == out_conn_id]:
            self._set(config.id, config)

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stops every consumer, each finishing its message in hand, for at most `timeout` seconds."""
        consumers = [*self.consumers.values(), *self._stopping]
        self.consumers.clear()
        self._stopping.clear()
        for consumer in consumers:
            consumer.stop()
        deadline = time.monotonic() + timeout
        for consumer in consumers:
            if not consumer.join(max(0.0, deadline - time.monotonic())):
                logger.warning('Kafka channel `%s`: still busy at stop; killed', consumer.config.name)
                consumer.kill()

    def _set(self, obj_id: int, config: KafkaChannelConfig | None) -> None:
        """Starts, restarts or stops one channel's consumer; one whose definition and outgoing
        connection are as they were keeps running."""
        old = self.consumers.get(obj_id)
        if config is None:
            self.configs.pop(obj_id, None)
        else:
            self.configs[obj_id] = config
        out_conn_version = self._out_conn_version(config)
        if old is not None and old.config == config and old.out_conn_version == out_conn_version:
            return
        if old is not None:
            del self.consumers[obj_id]
            old.stop()
            self._stopping = [c for c in self._stopping if not c.join(0)] + [old]
        if config is not None and config.is_active:
            new = ChannelConsumer(self.runtime, config, out_conn_version, previous=old)
            self.consumers[obj_id] = new
            new.start()

    def _out_conn_version(self, config: KafkaChannelConfig | None) -> int | None:
        if config is None or config.out_conn_id is None:
            return None
        handle = self.runtime.outconn_mgr.by_id.get(config.out_conn_id)
        return None if handle is None else handle.version

    # ------------------------------------------------------------------ status, from every worker

    def local_status(self, channel_id: int) -> dict[str, Any]:
        """What this worker's consumer of the channel is doing."""
        out: dict[str, Any] = {'server': self.runtime.server_name, 'pid': os.getpid()}
        consumer = self.consumers.get(channel_id)
        if consumer is not None:
            return {**out, **consumer.status()}
        config = self.configs.get(channel_id)
        state = 'unknown' if config is None else 'inactive'
        return {**out, 'state': state, 'running': False, 'version': None if config is None else config.version,
                'assigned': [], 'held': [], 'last_error': ''}

    def cluster_status(self, channel_id: int) -> list[dict[str, Any]]:
        """local_status of every worker of every server that answers within a few seconds."""
        query = secrets.token_hex(8)
        replies = self._replies[query] = []
        try:
            self.runtime.bus.publish(STATUS_SUBJECT, {'query': query, 'id': channel_id})
            started = time.monotonic()
            count, quiet_since = 0, started
            while time.monotonic() - started < STATUS_MAX:
                gevent.sleep(0.02)
                if len(replies) != count:
                    count, quiet_since = len(replies), time.monotonic()
                elif count and time.monotonic() - quiet_since >= STATUS_QUIET:
                    break
        finally:
            self._replies.pop(query, None)
        return sorted(replies, key=lambda r: (r['server'], r['pid']))

    def _on_status_query(self, msg: dict[str, Any]) -> None:
        self.runtime.bus.publish(STATUS_REPLY_SUBJECT, {'query': msg['query'], 'status': self.local_status(msg['id'])})

    def _on_status_reply(self, msg: dict[str, Any]) -> None:
        replies = self._replies.get(msg['query'])
        if replies is not None:
            replies.append(msg['status'])
