"""Outgoing Kafka connections over confluent-kafka (librdkafka): ``self.out.kafka['name'].conn``.

`conn.producer` is a `confluent_kafka.Producer` built from the definition; `conn.send(topic, value)`
produces one message and waits for its delivery report; `conn.consumer(group, topics)` is a new
`confluent_kafka.Consumer` configured from the same definition; `ping()` lists the topics.

librdkafka is C with threads of its own, and its blocking calls block the whole OS thread, the
gevent hub with it. So nothing here blocks in C on the hub:

- Delivery reports and librdkafka's log lines are served by one poller greenlet per connection
  calling ``poll(0)``, which never blocks: every millisecond while a send waits for a report, ten
  times a second otherwise. A raw ``conn.producer.produce(..., on_delivery=cb)`` gets its callback
  served by it too. A send waits on a gevent AsyncResult, so a greenlet timeout or kill cuts it short.
- Calls that wait on the network with no zero-timeout form (listing topics, a synchronous commit)
  run in gevent's threadpool: the calling greenlet waits, the other greenlets run.

Polling on the hub rather than waiting in the threadpool for every send was measured: a send on
loopback takes about as long (linger, 5 ms by default, dominates), but it needs no thread per
waiting send (the pool has ten), a waiting greenlet can be killed, and callbacks always run on the
hub's thread, where gevent objects may be touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import gevent
import gevent.event

from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field, describe)
from zato.connectors.kafka_config import (
    KAFKA_FIELDS, check_config, client_config, consumer_config, producer_config, server_list)

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Message, Producer
    from confluent_kafka.admin import AdminClient

__all__ = ['KafkaClient', 'KafkaConnector', 'error_class', 'in_thread']

logger = logging.getLogger('zato.connectors.kafka')

# Seconds between the poller's rounds while a send waits for its report, and while none does
BUSY_INTERVAL = 0.001
IDLE_INTERVAL = 0.1

# Seconds stop() gives messages still in the producer's queue before they are purged
CLOSE_GRACE = 2.0


def in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`func(*args, **kwargs)` in gevent's threadpool: blocks the calling greenlet, not the hub.
    What it raises is raised here (and not also printed by the threadpool as a failed task)."""
    def call() -> tuple[bool, Any]:
        try:
            return True, func(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - re-raised in the calling greenlet
            return False, e
    ok, value = gevent.get_hub().threadpool.spawn(call).get()
    if not ok:
        raise value
    return value


# ################################################################################################ errors

def _codes(*names: str) -> frozenset[int]:
    from confluent_kafka import KafkaError

    return frozenset(getattr(KafkaError, name) for name in names if hasattr(KafkaError, name))


def error_class(err: KafkaError) -> type[ConnectorError] | None:
    """The ConnectorError class for a librdkafka error about the connection (reaching a broker,
    credentials, time), or None for one about the operation itself (a message too large ...)."""
    code = err.code()
    if code in _codes('_TIMED_OUT', '_MSG_TIMED_OUT', 'REQUEST_TIMED_OUT', '_TIMED_OUT_QUEUE'):
        return ConnectorTimeout
    if code in _codes('_AUTHENTICATION', 'SASL_AUTHENTICATION_FAILED', 'ILLEGAL_SASL_STATE',
                      'UNSUPPORTED_SASL_MECHANISM', 'TOPIC_AUTHORIZATION_FAILED', 'GROUP_AUTHORIZATION_FAILED',
                      'CLUSTER_AUTHORIZATION_FAILED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'):
        return ConnectorAuthError
    if code in _codes('_TRANSPORT', '_ALL_BROKERS_DOWN', '_RESOLVE', '_SSL', '_DESTROY', '_FATAL',
                      '_PURGE_QUEUE', '_PURGE_INFLIGHT', 'NETWORK_EXCEPTION', 'BROKER_NOT_AVAILABLE'):
        return ConnectorUnavailable
    return None


def kafka_error(e: BaseException) -> KafkaError | None:
    """The KafkaError a KafkaException carries, if it carries one."""
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError):
        return e.args[0]
    return None


def explain(err: KafkaError) -> str:
    return f'{err.name()}: {err.str()}'


# ################################################################################################ the client

class KafkaClient:
    """What a built connection holds: its `producer`, an `admin` client (for listing topics) and
    the greenlet serving both of their callbacks. ``conn.client`` is this."""

    def __init__(self, producer: Producer, admin: AdminClient) -> None:
        self.producer = producer
        self.admin = admin
        self.waiting = 0  # sends waiting for their delivery report
        self._wake = gevent.event.Event()
        self._poller: gevent.Greenlet | None = None

    def start_polling(self) -> None:
        self._poller = gevent.spawn(self._poll)

    def wake(self) -> None:
        self._wake.set()

    def stop_polling(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None and poller is not gevent.getcurrent():
            poller.kill()

    def _poll(self) -> None:
        while True:
            try:
                served = self.producer.poll(0)
                self.admin.poll(0)
            except Exception:
                # A callback of the user's raised; the loop must go on or no report would be served again
                logger.exception('A Kafka producer callback raised')
                served = 0
            if self.waiting:
                gevent.sleep(0 if served else BUSY_INTERVAL)
            else:
                self._wake.wait(IDLE_INTERVAL)
                self._wake.clear()


# ################################################################################################ the connector

class KafkaConnector(Connector):
    """An outgoing Kafka connection; `conn` is the connector itself: `producer`, `send()`,
    `consumer()`, `poll()`, `commit()`, `topics()` and `ping()`."""

    kind: ClassVar[str] = 'kafka'
    fields: ClassVar[tuple[Field, ...]] = KAFKA_FIELDS

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self._broker_errors: list[KafkaError] = []

    # ------------------------------------------------------------------ for services

    @property
    def producer(self) -> Producer:
        """The connection's `confluent_kafka.Producer`; its delivery callbacks are served for you."""
        return self.client.producer

    def send(self, topic: str, value: bytes | str | None, key: bytes | str | None = None,
             headers: dict[str, bytes | str] | list[tuple[str, bytes | str]] | None = None,
             timeout: float | None = None, partition: int | None = None) -> Message:
        """Produces one message and waits for its delivery report; returns the delivered
        `confluent_kafka.Message` (``.topic()``, ``.partition()``, ``.offset()``).

        `timeout` (seconds) defaults to the connection's message_timeout plus one second: by then
        librdkafka has reported the message delivered or failed. Connection errors come out as
        ConnectorUnavailable, ConnectorTimeout or ConnectorAuthError; others (a message too large,
        an unknown topic the broker won't create ...) as confluent_kafka.KafkaException. A
        ConnectorTimeout from a send means the message may or may not be delivered: it is not
        sent again behind your back.
        """
        from confluent_kafka import KafkaException

        client = self.client
        wait = self.config['message_timeout'] + 1.0 if timeout is None else timeout
        deadline = time.monotonic() + wait
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            result.set((err, msg))

        options: dict[str, Any] = {'key': key, 'on_delivery': on_delivery}
        if headers is not None:
            options['headers'] = headers
        if partition is not None:
            options['partition'] = partition

        client.waiting += 1
        client.wake()
        try:
            while True:
                try:
                    client.producer.produce(topic, value, **options)
                    break
                except BufferError:
                    # The local queue is full: nothing was sent, so trying again is safe
                    if time.monotonic() >= deadline:
                        raise self.error(ConnectorTimeout, f'the producer\'s queue stayed full for {wait:g}s; '
                                                           'the message was not sent') from None
                    gevent.sleep(0.01)
                except KafkaException as e:
                    raise self._mapped_or_same(e) from e
            try:
                err, msg = result.get(timeout=max(0.0, deadline - time.monotonic()))
            except gevent.Timeout:
                raise self.error(ConnectorTimeout, f'no delivery report for a message to `{topic}` within '
                                                   f'{wait:g}s; it may still be delivered') from None
        finally:
            client.waiting -= 1
        if err is not None:
            failed = KafkaException(err)
            raise self._mapped_or_same(failed) from failed
        return msg

    def consumer(self, group: str, topics: Iterable[str] = (), config: dict[str, Any] | None = None) -> Consumer:
        """A new `confluent_kafka.Consumer` in consumer group `group`, subscribed to `topics` (if
        any; else use ``assign()``), configured from this connection; `config` adds or overrides
        librdkafka settings. Close it when done. Its ``poll(timeout)`` blocks the worker for up
        to `timeout`: use ``conn.poll(consumer, timeout)`` instead, and ``conn.commit()``."""
        from confluent_kafka import Consumer

        if not group:
            raise ValueError('A consumer group is required')
        consumer = Consumer({**consumer_config(self.config, self.secret, group), **(config or {})})
        topics = list(topics)
        if topics:
            consumer.subscribe(topics)
        return consumer

    def poll(self, consumer: Consumer, timeout: float = 1.0) -> Message | None:
        """The consumer's next message, or None after `timeout` seconds, without blocking the other
        greenlets: ``poll(0)`` with short gevent sleeps between. A message may carry an error
        (``msg.error()``), as with Consumer.poll."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            msg = consumer.poll(0)
            if msg is not None:
                return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            gevent.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)

    def commit(self, consumer: Consumer, message: Message | None = None) -> None:
        """Commits `message`'s offset (the next one after it), or the consumer's current positions,
        synchronously, in gevent's threadpool; connection errors mapped."""
        from confluent_kafka import KafkaException

        try:
            if message is None:
                in_thread(consumer.commit, asynchronous=False)
            else:
                in_thread(consumer.commit, message=message, asynchronous=False)
        except KafkaException as e:
            raise self._mapped_or_same(e) from e

    def topics(self) -> list[str]:
        """The names of the cluster's topics, sorted (internal ones left out unless the
        definition's should_exclude_internal_topics is false)."""
        try:
            return self._list_topics(self.client)
        except Exception as e:  # noqa: BLE001 - mapped, whatever the library raised
            raise self.map_error(e) from e

    # ------------------------------------------------------------------ the Connector contract

    def connect(self) -> KafkaClient:
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient

        self._broker_errors = []
        producer_settings: dict[str, Any] = {**producer_config(self.config, self.secret), 'error_cb': self._on_error}
        admin_settings: dict[str, Any] = {**client_config(self.config, self.secret), 'error_cb': self._on_error}
        producer = Producer(producer_settings)
        admin = AdminClient(admin_settings)
        client = KafkaClient(producer, admin)
        try:
            self._list_topics(client)
        except Exception as e:
            admin.poll(0)  # serves error_cb: an authentication failure shows there, not in the exception
            mapped = self.map_error(e)
            self._drop(producer)
            raise type(mapped)(f'{self._servers()}: {self._explain(e)}', kind=self.kind, name=self.name) from e
        client.start_polling()
        return client

    def ping_client(self, client: KafkaClient) -> None:
        """Lists the topics: a metadata round trip to a broker."""
        self._list_topics(client)

    def close_client(self, client: KafkaClient) -> None:
        client.stop_polling()
        producer = client.producer
        try:
            # Messages still queued get a moment to go, then fail their senders with _PURGE_QUEUE
            deadline = time.monotonic() + min(CLOSE_GRACE, self.config['message_timeout'])
            while len(producer) and time.monotonic() < deadline:
                producer.poll(0)
                gevent.sleep(0.01)
            self._drop(producer)
        except Exception:
            logger.exception('Could not close the Kafka producer of %r', self)

    def map_error(self, e: BaseException) -> ConnectorError:
        if isinstance(e, ConnectorError):
            return e
        err = kafka_error(e)
        if err is None:
            return super().map_error(e)
        cls = self._auth_failure() or error_class(err) or ConnectorUnavailable
        return self.error(cls, f'{self._servers()}: {self._explain(e)}')

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_config(config)

    # ------------------------------------------------------------------

    def _list_topics(self, client: KafkaClient) -> list[str]:
        metadata = in_thread(client.admin.list_topics, timeout=self.config['socket_timeout'])
        names = sorted(metadata.topics)
        if self.config['should_exclude_internal_topics']:
            names = [name for name in names if not name.startswith('__')]
        return names

    def _mapped_or_same(self, e: BaseException) -> BaseException:
        err = kafka_error(e)
        if err is not None and error_class(err) is None:
            return e
        return self.map_error(e)

    def _on_error(self, err: KafkaError) -> None:
        # librdkafka's error_cb: connection-wide errors (a broker down, credentials refused) that no
        # single call raises. Kept, few, to explain why connecting failed.
        self._broker_errors = [*self._broker_errors[-4:], err]

    def _auth_failure(self) -> type[ConnectorError] | None:
        for err in self._broker_errors:
            if error_class(err) is ConnectorAuthError:
                return ConnectorAuthError
        return None

    def _explain(self, e: BaseException) -> str:
        err = kafka_error(e)
        if err is None:
            return describe(e)
        text = explain(err)
        # The underlying reason (credentials refused, connection refused), when error_cb saw one
        extra = [explain(b) for b in self._broker_errors if b.code() != err.code()]
        return f'{text} ({extra[-1]})' if extra else text

    def _drop(self, producer: Producer) -> None:
        try:
            producer.purge()
            producer.poll(0)  # delivers _PURGE_QUEUE to whoever still waits
        except Exception:
            logger.exception('Could not purge the Kafka producer of %r', self)

    def _servers(self) -> str:
        return ', '.join(server_list(self.config['server_list']))
