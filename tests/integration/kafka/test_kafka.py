"""The Kafka connector directly against Tansu (Kafka protocol): send and delivery reports, the raw
producer, consumers, ping, what the hub sees while librdkafka works, a broker down at start and
one that dies mid-call, and definitions refused before they are saved."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import gevent
import pytest

from zato.connectors.base import ConnectorTimeout, ConnectorUnavailable, FieldError, validate
from zato.connectors.kafka import KafkaConnector
from zato.connectors.kafka_config import client_config, producer_config
from tests.integration.peers import KafkaPeer


def make(bootstrap: str, name: str = 'kafka test', **config) -> KafkaConnector:
    checked, secret = validate(KafkaConnector.fields, {'server_list': bootstrap, 'socket_timeout': 1.0, **config})
    KafkaConnector.check_config(checked)
    return KafkaConnector(name, checked, secret or '')


@pytest.fixture
def conn(kafka_peer) -> Iterator[KafkaConnector]:
    c = make(kafka_peer.bootstrap)
    c.start()
    assert c.wait_attempted(10), c.last_error
    try:
        yield c
    finally:
        c.stop()


def topic() -> str:
    return f't-{uuid.uuid4().hex[:10]}'


def read_all(conn: KafkaConnector, name: str, count: int) -> list:
    """`count` messages of partition 0 of `name` from the start: assign() is instant, subscribe() is not."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer = conn.consumer(f'g-{uuid.uuid4().hex[:8]}')
    try:
        consumer.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + 10
        while len(out) < count and time.monotonic() < deadline:
            msg = conn.poll(consumer, 1.0)
            if msg is not None and not msg.error():
                out.append(msg)
        return out
    finally:
        consumer.close()


def test_send_waits_for_the_delivery_report_and_the_message_reads_back_with_key_and_headers(conn):
    name = topic()
    first = conn.send(name, b'one', key='k1', headers={'h': b'1'}, partition=0)
    second = conn.send(name, 'two', partition=0)
    assert (first.topic(), first.partition(), first.offset()) == (name, 0, 0)
    assert second.offset() == 1

    got = read_all(conn, name, 2)
    assert [(m.value(), m.key(), m.headers()) for m in got] == [(b'one', b'k1', [('h', b'1')]), (b'two', None, None)]
    assert name in conn.topics()


def test_ping_lists_topics_and_times_the_round_trip(conn):
    assert 0 < conn.ping() < 1


def test_the_raw_producer_gets_its_delivery_callbacks_served_without_polling(conn):
    reports = []
    conn.producer.produce(topic(), b'raw', on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    deadline = time.monotonic() + 5
    while not reports and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert reports == [(None, 0)]


def test_sends_never_hold_the_hub_more_than_a_few_milliseconds(conn):
    gaps = []

    def ticker() -> None:
        last = time.monotonic()
        while True:
            gevent.sleep(0.001)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticks = gevent.spawn(ticker)
    try:
        name = topic()
        for i in range(20):
            conn.send(name, b'%d' % i, partition=0)
        sends = [gevent.spawn(conn.send, name, b'x', partition=0) for _ in range(100)]
        gevent.joinall(sends, raise_error=True)
        assert {g.value.offset() for g in sends} == set(range(20, 120))
    finally:
        ticks.kill()
    assert max(gaps) < 0.05, max(gaps)


def test_a_subscribed_consumer_joins_its_group_and_commits_after_processing(conn):
    name = topic()
    conn.send(name, b'a', partition=0)
    group = f'g-{uuid.uuid4().hex[:8]}'
    consumer = conn.consumer(group, [name])
    try:
        msg = None
        deadline = time.monotonic() + 15
        while msg is None and time.monotonic() < deadline:
            msg = conn.poll(consumer, 1.0)
        assert msg is not None and msg.error() is None and msg.value() == b'a'
        conn.commit(consumer, msg)
        from confluent_kafka import TopicPartition
        committed = consumer.committed([TopicPartition(name, 0)], timeout=5)
        assert committed[0].offset == 1
    finally:
        consumer.close()


def test_a_broker_down_at_start_is_reported_by_ping_and_the_client_is_built_when_it_comes_back():
    peer = KafkaPeer().start()
    try:
        peer.kill()  # the port is known and nobody listens on it
        conn = make(peer.bootstrap)
        started = time.monotonic()
        conn.start()
        assert time.monotonic() - started < 0.1
        try:
            assert conn.wait_attempted(5) is False
            with pytest.raises(ConnectorUnavailable) as info:
                conn.ping()
            assert f'127.0.0.1:{peer.port}' in str(info.value) and '_TRANSPORT' in str(info.value)
            with pytest.raises(ConnectorUnavailable):
                conn.send(topic(), b'x')

            peer.spawn(peer.command())  # the same port again
            deadline = time.monotonic() + 15
            while not conn.is_built and time.monotonic() < deadline:
                gevent.sleep(0.05)
            assert conn.is_built, conn.last_error
            assert conn.send(topic(), b'back').offset() == 0
        finally:
            conn.stop()
    finally:
        peer.stop()


def test_a_broker_that_dies_mid_call_gives_a_mapped_error_and_the_next_call_reconnects():
    peer = KafkaPeer().start()
    conn = make(peer.bootstrap, message_timeout=1.5)
    try:
        conn.start()
        assert conn.wait_attempted(10), conn.last_error
        name = topic()
        assert conn.send(name, b'before', partition=0).offset() == 0

        peer.kill()
        with pytest.raises(ConnectorTimeout) as info:
            conn.send(name, b'lost', partition=0)
        assert '`kafka test`' in str(info.value) and '_MSG_TIMED_OUT' in str(info.value)
        with pytest.raises(ConnectorUnavailable):
            conn.ping()

        peer.spawn(peer.command())
        # librdkafka reconnects by itself; the broker kept nothing (memory storage), so offset 0 again
        assert conn.send(name, b'after', timeout=10, partition=0).offset() == 0
        assert conn.ping() < 1
    finally:
        conn.stop()
        peer.stop()


def test_stop_fails_a_waiting_send_at_once_instead_of_leaving_it_to_time_out():
    peer = KafkaPeer().start()
    conn = make(peer.bootstrap)
    try:
        conn.start()
        assert conn.wait_attempted(10), conn.last_error
        peer.kill()
        sender = gevent.spawn(conn.send, topic(), b'x', partition=0)
        gevent.sleep(0.1)
        started = time.monotonic()
        conn.stop()
        sender.join(5)
        assert sender.dead and isinstance(sender.exception, ConnectorUnavailable), sender.exception
        assert time.monotonic() - started < 4
    finally:
        conn.stop()
        peer.stop()


@pytest.mark.parametrize('config, field', [
    ({'server_list': 'kafka://broker:9092'}, 'server_list'),
    ({'server_list': 'broker:0'}, 'server_list'),
    ({'server_list': ''}, 'server_list'),
    ({'acks': '2'}, 'acks'),
    ({'compression': 'brotli'}, 'compression'),
    ({'sasl_mechanism': 'GSSAPI', 'username': 'u'}, 'sasl_mechanism'),
    ({'sasl_mechanism': 'PLAIN'}, 'username'),
    ({'username': 'u'}, 'sasl_mechanism'),
    ({'tls_ca_file': '/no/such/ca.pem', 'is_tls_enabled': True}, 'tls_ca_file'),
    ({'tls_ca_file': __file__}, 'tls_ca_file'),
    ({'message_timeout': 0}, 'message_timeout'),
    ({'linger': -1}, 'linger'),
    ({'should_use_zookeeper': True}, 'should_use_zookeeper'),
    ({'client_id': 'a b'}, 'client_id'),
    ({'colour': 'red'}, 'colour'),
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(config, field):
    with pytest.raises(FieldError) as info:
        make('127.0.0.1:9092', **config)
    assert info.value.field == field


def test_sasl_and_tls_become_librdkafka_settings_and_the_password_only_goes_to_librdkafka():
    checked, secret = validate(KafkaConnector.fields, {
        'server_list': 'a:9093\nb', 'sasl_mechanism': 'SCRAM-SHA-512', 'username': 'u', 'password': 'p',
        'is_tls_enabled': True, 'tls_ca_file': __file__, 'acks': '1', 'compression': 'zstd',
        'linger': 0.02, 'message_timeout': 7})
    assert secret == 'p' and 'p' not in checked.values()
    out = producer_config(checked, secret)
    assert out['bootstrap.servers'] == 'a:9093,b:9092'
    assert out['security.protocol'] == 'SASL_SSL' and out['sasl.mechanism'] == 'SCRAM-SHA-512'
    assert (out['sasl.username'], out['sasl.password'], out['ssl.ca.location']) == ('u', 'p', __file__)
    assert (out['acks'], out['compression.type'], out['linger.ms'], out['message.timeout.ms']) == ('1', 'zstd', 20, 7000)
    plain, _ = validate(KafkaConnector.fields, {'server_list': 'a'})
    assert client_config(plain, '')['security.protocol'] == 'PLAINTEXT'
