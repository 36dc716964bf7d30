"""Inbound Kafka channels in a running Zato (two workers) against Tansu: messages reach the service
in order and decoded, a failing message comes again and holds its partition back, dead letters,
edits and restarts resume from the committed offset without loss, deactivation stops consuming,
bad definitions are refused, a broker down at start is waited for, and the docs page's example."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from tests.e2e.harness import Env, docs_example
from tests.integration.peers import KafkaPeer
from zato.admin_client import AdminCallError

SERVICES = '''
import json, os, time
from zato.server.service import Service

LOG = {log!r}
FLAGS = {flags!r}


def record(service, **extra):
    """One line per invocation: what the service saw."""
    k = service.request.kafka
    payload = service.request.payload
    entry = {{'channel': service.channel.name, 'type': service.channel.type, 'topic': k.topic,
              'partition': k.partition, 'offset': k.offset, 'key': k.key.decode() if k.key else None,
              'attempt': k.attempt, 'headers': [[n, v.decode() if v else None] for n, v in k.headers],
              'trace': (k.header('trace') or b'').decode(), 'timestamp': k.timestamp,
              'payload_type': type(payload).__name__, 'pid': os.getpid(), 'at': time.time(),
              'payload': payload.decode('latin-1') if isinstance(payload, bytes) else payload, **extra}}
    with open(os.path.join(LOG, service.channel.name + '.jsonl'), 'a') as f:
        f.write(json.dumps(entry) + '\\n')


class Record(Service):
    name = 'kc.record'

    def handle(self):
        record(self)


class Slow(Service):
    name = 'kc.slow'

    def handle(self):
        time.sleep(0.03)
        record(self)


class FailUntilFlag(Service):
    """Raises while the file its message names under FLAGS does not exist."""
    name = 'kc.fail-until-flag'

    def handle(self):
        payload = self.request.payload
        flag = payload.get('flag') if isinstance(payload, dict) else None
        ok = not flag or os.path.exists(os.path.join(FLAGS, flag))
        record(self, ok=ok)
        if not ok:
            raise ValueError(f'flag {{flag}} not set')


class Poison(Service):
    name = 'kc.poison'

    def handle(self):
        record(self)
        if self.request.payload == {{'poison': True}}:
            raise ValueError('poison')
'''

DEADLINE = 40.0  # seconds: group joins and rebalances on a loaded machine


# ################################################################################################ helpers

def new_topic() -> str:
    return f'kc-{uuid.uuid4().hex[:10]}'


def produce(bootstrap: str, topic: str, values: list[Any], partition: int = 0, key: str | None = None,
            headers: dict[str, str] | None = None) -> None:
    producer = Producer({'bootstrap.servers': bootstrap})
    for value in values:
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        producer.produce(topic, data, key=key, partition=partition, headers=headers)
    assert producer.flush(15) == 0


def committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int:
    """The group's committed offset of the partition (negative for none)."""
    consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': group, 'enable.auto.commit': False})
    try:
        return consumer.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every message `topic` has now, from each partition's start to its end (assign() reads at once)."""
    consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': f'reader-{uuid.uuid4().hex[:8]}',
                         'enable.auto.commit': False, 'enable.partition.eof': True})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        partitions = metadata.partitions if metadata is not None else {}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out, ended = [], set()
        deadline = time.monotonic() + DEADLINE
        while len(ended) < len(partitions) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is None:
                out.append(msg)
            elif msg.error().code() == KafkaError._PARTITION_EOF:
                ended.add(msg.partition())
        return out
    finally:
        consumer.close()


class Channels:
    """An environment with the services above deployed and an outgoing connection to Tansu; the
    channels a test creates are deleted after it, so that their consumers stop."""

    def __init__(self, env, workers: int, peer: KafkaPeer, tmp_path_factory) -> None:
        self.env, self.workers, self.peer = env, workers, peer
        self.log, self.flags = str(tmp_path_factory.mktemp('kc-log')), str(tmp_path_factory.mktemp('kc-flags'))
        self.created: list[int] = []
        env.admin.call('POST', '/zato/admin/deploy',
                       {'file_name': 'kc_services.py', 'source': SERVICES.format(log=self.log, flags=self.flags)})
        self.out_conn = env.admin.call('POST', '/zato/admin/outconns/kafka',
                                       {'name': 'kc conn', 'server_list': peer.bootstrap, 'socket_timeout': 1})

    def create(self, **body: Any) -> dict[str, Any]:
        created = self.env.admin.call('POST', '/zato/admin/channels/kafka', {'out_conn': 'kc conn', **body})
        self.created.append(created['id'])
        return created

    def cleanup(self) -> None:
        while self.created:
            try:
                self.delete(self.created[-1])
            except AdminCallError:
                self.created.pop()

    def edit(self, channel_id: int, **body: Any) -> dict[str, Any]:
        return self.env.admin.call('PUT', f'/zato/admin/channels/kafka/{channel_id}', body)

    def delete(self, channel_id: int) -> None:
        self.env.admin.call('DELETE', f'/zato/admin/channels/kafka/{channel_id}')
        self.created.remove(channel_id)

    def status(self, channel_id: int) -> dict[str, Any]:
        return self.env.admin.call('GET', f'/zato/admin/channels/kafka/{channel_id}/status')

    def records(self, name: str) -> list[dict[str, Any]]:
        try:
            with open(os.path.join(self.log, name + '.jsonl'), encoding='utf-8') as f:
                return [json.loads(line) for line in f if line.endswith('\n')]
        except FileNotFoundError:
            return []

    def wait(self, predicate, what: str, timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f'not within {timeout:g} s: {what}')
            time.sleep(0.1)

    def wait_joined(self, channel_id: int, version: int, partitions: set[tuple[str, int]]) -> dict[str, Any]:
        """Until every worker consumes at `version` and they hold every one of `partitions` between them."""
        found: dict[str, Any] = {}

        def joined() -> bool:
            found.update(self.status(channel_id))
            workers = found['workers']
            assigned = [(a['topic'], a['partition']) for w in workers for a in w['assigned']]
            return (len(workers) == self.workers and all(w['running'] and w['version'] == version for w in workers)
                    and set(assigned) == partitions and len(assigned) == len(partitions))
        try:
            self.wait(joined, f'{self.workers} worker(s) consuming {sorted(partitions)}')
        except AssertionError as e:
            raise AssertionError(f'{e}; the last status: {found}') from None
        return found


@pytest.fixture(scope='module')
def kc_two(env, kafka_peer, tmp_path_factory) -> Channels:
    return Channels(env, 2, kafka_peer, tmp_path_factory)


@pytest.fixture(scope='module')
def kc_one(kafka_peer, tmp_path_factory) -> Iterator[Channels]:
    """A second environment, with one worker: its channels' groups have one member.

    Tansu keeps a leader that left a group which was still forming as the group's leader, and the
    group never forms again. When the two consumers of a two-worker environment leave together (an
    edit, a deactivation) and the leader's leave comes second, that is what happens. Real Kafka
    elects a new leader; on Tansu, the restart tests use a group of one member instead.
    """
    env = Env(str(tmp_path_factory.mktemp('zato-one') / 'env'), workers=1)
    env.start()
    try:
        yield Channels(env, 1, kafka_peer, tmp_path_factory)
    finally:
        env.stop()


@pytest.fixture
def kc(kc_two) -> Iterator[Channels]:
    """Two workers, so two consumers in each channel's group."""
    yield kc_two
    kc_two.cleanup()


@pytest.fixture
def kc1(kc_one) -> Iterator[Channels]:
    yield kc_one
    kc_one.cleanup()


def offsets_in_order(records: list[dict[str, Any]], partition: int) -> list[int]:
    """The offsets a partition's records came in; fails if one skipped ahead of a message not yet seen."""
    offsets = [r['offset'] for r in records if r['partition'] == partition]
    highest = -1
    for offset in offsets:
        assert offset <= highest + 1, f'partition {partition} skipped to {offset} after {highest}: {offsets}'
        highest = max(highest, offset)
    return offsets


# ################################################################################################ tests

def test_messages_reach_the_service_in_order_decoded_with_their_kafka_details(kc):
    topic = new_topic()
    # Produced before the channel exists: start_from earliest reads them
    produce(kc.peer.bootstrap, topic, [{'n': i} for i in range(20)], partition=0, key='k0', headers={'trace': 't0'})
    produce(kc.peer.bootstrap, topic, [{'n': i} for i in range(5)], partition=1)
    created = kc.create(name='kc order', topics=[topic], service='kc.record')
    assert created['group_id'] == 'kc order' and created['data_format'] == 'json' and created['on_error'] == 'retry'

    kc.wait(lambda: {(r['partition'], r['offset']) for r in kc.records('kc order')} >=
            {(0, i) for i in range(20)} | {(1, i) for i in range(5)}, 'every message processed')
    records = kc.records('kc order')
    assert sorted(set(offsets_in_order(records, 0))) == list(range(20))
    assert sorted(set(offsets_in_order(records, 1))) == list(range(5))
    first = next(r for r in records if r['partition'] == 0 and r['offset'] == 7)
    assert first['payload'] == {'n': 7} and first['payload_type'] == 'dict'
    assert first['type'] == 'kafka' and first['topic'] == topic and first['key'] == 'k0'
    assert first['headers'] == [['trace', 't0']] and first['trace'] == 't0' and first['attempt'] == 1
    assert abs(first['timestamp'] / 1000 - time.time()) < 300

    # Both workers are in the group, the four partitions split between them; offsets are committed
    status = kc.wait_joined(created['id'], 1, {(topic, p) for p in range(4)})
    assert len({w['pid'] for w in status['workers']}) == 2
    kc.wait(lambda: committed(kc.peer.bootstrap, 'kc order', topic, 0) == 20, 'offset 20 committed')
    assert committed(kc.peer.bootstrap, 'kc order', topic, 1) == 5

    # Produced while consuming: the same
    produce(kc.peer.bootstrap, topic, [{'n': i} for i in range(20, 30)], partition=0)
    kc.wait(lambda: {r['offset'] for r in kc.records('kc order') if r['partition'] == 0} >= set(range(30)),
            'messages produced later processed')
    assert [r['payload']['n'] for r in kc.records('kc order') if r['partition'] == 0 and r['offset'] >= 20] == \
        list(range(20, 30))


def test_a_failing_message_comes_again_and_nothing_after_it_is_processed_or_committed_first(kc):
    topic = new_topic()
    created = kc.create(name='kc retry', topics=[topic], service='kc.fail-until-flag', retry_min=0.1, retry_max=0.3)
    produce(kc.peer.bootstrap, topic, [{'n': 0}, {'n': 1, 'flag': 'kc-retry'}, {'n': 2}, {'n': 3}], partition=0)

    kc.wait(lambda: max([r['attempt'] for r in kc.records('kc retry') if r['offset'] == 1] or [0]) >= 3,
            'offset 1 tried three times')
    records = kc.records('kc retry')
    assert [r['offset'] for r in records] == [0] + [1] * (len(records) - 1), 'nothing after offset 1 ran'
    assert [r['attempt'] for r in records if r['offset'] == 1] == list(range(1, len(records)))
    assert committed(kc.peer.bootstrap, 'kc retry', topic) == 1
    held = [h for w in kc.status(created['id'])['workers'] for h in w['held']]
    assert held and held[0]['partition'] == 0 and held[0]['offset'] == 1 and held[0]['attempts'] >= 3, held
    errors = [w['last_error'] for w in kc.status(created['id'])['workers'] if w['held']]
    assert 'ValueError: flag kc-retry not set' in errors[0] and 'attempt' in errors[0]

    with open(os.path.join(kc.flags, 'kc-retry'), 'w'):
        pass
    kc.wait(lambda: any(r['offset'] == 3 for r in kc.records('kc retry')), 'the rest processed')
    records = kc.records('kc retry')
    succeeded = [i for i, r in enumerate(records) if r['offset'] == 1 and r['ok']]
    assert len(succeeded) == 1 and [r['offset'] for r in records[succeeded[0] + 1:]] == [2, 3]
    kc.wait(lambda: committed(kc.peer.bootstrap, 'kc retry', topic) == 4, 'offset 4 committed')


def test_dead_letter_moves_a_poison_message_with_error_headers_and_the_next_one_proceeds(kc):
    topic, dlt = new_topic(), new_topic()
    created = kc.create(name='kc dlt', topics=[topic], service='kc.poison', on_error='dead_letter',
                        max_attempts=2, dead_letter_topic=dlt, retry_min=0.05, retry_max=0.1)
    produce(kc.peer.bootstrap, topic, [{'n': 0}], partition=0)
    produce(kc.peer.bootstrap, topic, [{'poison': True}], partition=0, key='kp', headers={'trace': 'tp'})
    produce(kc.peer.bootstrap, topic, [b'{not json', {'n': 3}], partition=0)

    kc.wait(lambda: any(r['offset'] == 3 for r in kc.records('kc dlt')), 'the message after the poison ones')
    records = kc.records('kc dlt')
    assert [(r['offset'], r['attempt']) for r in records] == [(0, 1), (1, 1), (1, 2), (3, 1)]
    kc.wait(lambda: committed(kc.peer.bootstrap, 'kc dlt', topic) == 4, 'offset 4 committed')

    kc.wait(lambda: len(read_topic(kc.peer.bootstrap, dlt)) == 2, 'two messages in the dead-letter topic')
    moved = sorted(read_topic(kc.peer.bootstrap, dlt), key=lambda m: int(dict(m.headers())['zato-original-offset']))
    poison, bad_json = (dict(m.headers()) for m in moved)
    assert moved[0].value() == b'{"poison": true}' and moved[0].key() == b'kp'
    assert poison['trace'] == b'tp' and poison['zato-error'] == b'ValueError: poison'
    assert poison['zato-error-type'] == b'ValueError' and poison['zato-attempts'] == b'2'
    assert poison['zato-channel'] == b'kc dlt' and poison['zato-service'] == b'kc.poison'
    assert (poison['zato-original-topic'], poison['zato-original-partition']) == (topic.encode(), b'0')
    assert len(poison['zato-cid']) == 24
    # A value that is not JSON never reaches the service; it fails the same way
    assert moved[1].value() == b'{not json' and bad_json['zato-original-offset'] == b'2'
    assert b'JSONDecodeError' in bad_json['zato-error'], bad_json
    workers = kc.status(created['id'])['workers']
    assert sum(w['dead_lettered'] for w in workers) == 2


def test_an_edit_and_an_edit_of_the_connection_resume_from_the_committed_offsets_without_loss(kc1):
    topic = new_topic()
    created = kc1.create(name='kc edit', topics=[topic], service='kc.slow')
    for partition in (0, 1):
        produce(kc1.peer.bootstrap, topic, [{'n': i} for i in range(40)], partition=partition)
    kc1.wait(lambda: len(kc1.records('kc edit')) >= 10, 'some messages processed')

    edited = kc1.edit(created['id'], data_format='text')
    assert edited['data_format'] == 'text'
    before_edit = len(kc1.records('kc edit'))
    kc1.wait_joined(created['id'], 2, {(topic, p) for p in range(4)})
    for partition in (0, 1):
        produce(kc1.peer.bootstrap, topic, [{'n': i} for i in range(40, 50)], partition=partition)

    expected = {(p, i) for p in (0, 1) for i in range(50)}
    kc1.wait(lambda: {(r['partition'], r['offset']) for r in kc1.records('kc edit')} >= expected,
            'every message processed at least once')
    records = kc1.records('kc edit')
    assert before_edit < 80, 'the edit came after every message was processed: nothing was tested'
    for partition in (0, 1):
        offsets_in_order(records, partition)
    # The old consumer committed the message in hand before it left: the new one went on from there,
    # not from the start, so no message ran twice
    assert len(records) == len({(r['partition'], r['offset']) for r in records}) == 100, 'each message exactly once'
    assert {r['payload_type'] for r in records if r['offset'] >= 40} == {'str'}
    assert {r['payload_type'] for r in records[:before_edit]} == {'dict'}

    # An edit of the outgoing connection restarts the channel's consumers on it
    started = {w['pid']: w['started_at'] for w in kc1.status(created['id'])['workers']}
    kc1.env.admin.call('PUT', f'/zato/admin/outconns/kafka/{kc1.out_conn["id"]}', {'client_id': 'kc-edited'})
    kc1.wait(lambda: all(w['started_at'] != started.get(w['pid']) and w['running']
                        for w in kc1.status(created['id'])['workers']), 'consumers restarted')
    produce(kc1.peer.bootstrap, topic, [{'n': 50}], partition=0)
    kc1.wait(lambda: any(r['offset'] == 50 for r in kc1.records('kc edit')), 'consumed after the connection edit')
    records = kc1.records('kc edit')
    assert len(records) == len({(r['partition'], r['offset']) for r in records}) == 101, 'each message exactly once'


def test_deactivating_stops_consumption_and_reactivating_goes_on_from_the_committed_offset(kc1):
    topic = new_topic()
    created = kc1.create(name='kc inactive', topics=[topic], service='kc.record')
    produce(kc1.peer.bootstrap, topic, [{'n': 0}], partition=0)
    kc1.wait(lambda: len(kc1.records('kc inactive')) == 1, 'the first message processed')

    kc1.edit(created['id'], is_active=False)
    kc1.wait(lambda: all(w['state'] == 'inactive' for w in kc1.status(created['id'])['workers']), 'consumers stopped')
    produce(kc1.peer.bootstrap, topic, [{'n': 1}], partition=0)
    # A negative: nothing may consume it while the channel is inactive
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert len(kc1.records('kc inactive')) == 1
        time.sleep(0.2)
    assert committed(kc1.peer.bootstrap, 'kc inactive', topic) == 1

    kc1.edit(created['id'], is_active=True)
    kc1.wait(lambda: len(kc1.records('kc inactive')) == 2, 'consumed once active again')
    assert [r['payload'] for r in kc1.records('kc inactive')] == [{'n': 0}, {'n': 1}]

    kc1.delete(created['id'])
    with pytest.raises(AdminCallError) as info:
        kc1.status(created['id'])
    assert info.value.status == 404


def test_a_partition_held_at_a_failing_message_is_not_left_paused_by_a_rebalance(kc1):
    topic = new_topic()
    # A backoff of a minute or two: the partition stays paused through the rebalances below, and the
    # message can only come again before the test's deadline if the rebalance un-paused it
    created = kc1.create(name='kc rebalance', topics=[topic], service='kc.fail-until-flag', retry_min=120,
                         retry_max=120)
    produce(kc1.peer.bootstrap, topic, [{'n': 0}, {'n': 1, 'flag': 'kc-rebalance'}, {'n': 2}], partition=0)
    kc1.wait_joined(created['id'], 1, {(topic, p) for p in range(4)})
    kc1.wait(lambda: any(h['offset'] == 1 for w in kc1.status(created['id'])['workers'] for h in w['held']),
             'partition 0 held at offset 1')
    with open(os.path.join(kc1.flags, 'kc-rebalance'), 'w'):
        pass

    # Another member joins the channel's group and leaves it again: two rebalances. Its member id sorts
    # after the channel's (client id `zato` or `kc-edited`), so the range assignor gives partition 0
    # back to the channel's consumer each time
    other = Consumer({'bootstrap.servers': kc1.peer.bootstrap, 'group.id': 'kc rebalance', 'client.id': 'zz-other',
                      'enable.auto.commit': False, 'session.timeout.ms': 6000, 'heartbeat.interval.ms': 500,
                      'socket.timeout.ms': 10000})
    try:
        other.subscribe([topic])
        deadline = time.monotonic() + DEADLINE
        while not other.assignment() and time.monotonic() < deadline:
            other.poll(0.2)
        assert other.assignment(), 'the other member got no partitions'
        assert TopicPartition(topic, 0) not in other.assignment()
    finally:
        other.close()

    kc1.wait(lambda: any(r['offset'] == 2 for r in kc1.records('kc rebalance')), 'partition 0 went on')
    kc1.wait(lambda: committed(kc1.peer.bootstrap, 'kc rebalance', topic) == 3, 'offset 3 committed')
    attempts = [r['attempt'] for r in kc1.records('kc rebalance') if r['offset'] == 1]
    assert attempts[-1] == 1, f'the message came again after the rebalance, as a first attempt: {attempts}'


def test_a_server_stopped_mid_stream_commits_the_message_in_hand_and_its_restart_goes_on_from_there(kc1):
    topic = new_topic()
    kc1.create(name='kc restart', topics=[topic], service='kc.slow')
    produce(kc1.peer.bootstrap, topic, [{'n': i} for i in range(100)], partition=0)
    kc1.wait(lambda: len(kc1.records('kc restart')) >= 10, 'some messages processed')

    kc1.env.stop()
    stopped_at = len(kc1.records('kc restart'))
    kc1.env.start()
    kc1.wait(lambda: {r['offset'] for r in kc1.records('kc restart')} >= set(range(100)), 'every message processed')
    records = kc1.records('kc restart')
    assert stopped_at < 100, 'the stop came after every message was processed: nothing was tested'
    offsets = offsets_in_order(records, 0)
    assert offsets == list(range(100)), 'a message ran twice or out of order'
    assert len({r['pid'] for r in records}) == 2


@pytest.mark.parametrize('body, field', [
    ({'out_conn': 'no such connection'}, 'out_conn'),
    ({'topics': []}, 'topics'),
    ({'topics': ['bad topic']}, 'topics'),
    ({'service': 'kc.no-such-service'}, 'service'),
    ({'data_format': 'xml'}, 'data_format'),
    ({'start_from': 'middle'}, 'start_from'),
    ({'on_error': 'ignore'}, 'on_error'),
    ({'on_error': 'dead_letter'}, 'dead_letter_topic'),
    ({'dead_letter_topic': 'kc-bad'}, 'dead_letter_topic'),
    ({'max_attempts': 0}, 'max_attempts'),
    ({'retry_min': 5, 'retry_max': 1}, 'retry_max'),
    ({'retry_min': 'soon'}, 'retry_min'),
    ({'colour': 'red'}, 'colour'),
])
def test_a_definition_that_cannot_work_is_refused_naming_the_field(kc, body, field):
    full = {'name': 'kc bad', 'topics': ['kc-bad'], 'service': 'kc.record', **body}
    with pytest.raises(AdminCallError) as info:
        kc.create(**full)
    assert info.value.status == 400 and f'`{field}`' in str(info.value), info.value


def test_an_outgoing_connection_of_another_kind_is_refused(kc):
    rest = kc.env.admin.call('POST', '/zato/admin/outconns/rest', {'name': 'kc rest', 'address_host': 'http://127.0.0.1:1'})
    with pytest.raises(AdminCallError) as info:
        kc.create(name='kc bad', topics=['kc-bad'], service='kc.record', out_conn=rest['id'])
    assert info.value.status == 400 and '`out_conn`' in str(info.value)


def test_a_broker_down_at_start_is_waited_for_and_consumed_from_once_it_is_up(kc):
    peer = KafkaPeer().start()
    try:
        peer.kill()  # the port is known and nobody listens on it
        conn = kc.env.admin.call('POST', '/zato/admin/outconns/kafka',
                                 {'name': 'kc down', 'server_list': peer.bootstrap, 'socket_timeout': 1})
        topic = new_topic()
        created = kc.create(name='kc down', out_conn=conn['id'], topics=[topic], service='kc.record')
        kc.wait(lambda: all(w['last_error'] for w in kc.status(created['id'])['workers']), 'the broker errors shown')
        assert str(peer.port) in kc.status(created['id'])['workers'][0]['last_error']

        peer.spawn(peer.command())  # the same port again
        produce(peer.bootstrap, topic, [{'n': i} for i in range(3)], partition=0)
        kc.wait(lambda: sorted(r['offset'] for r in kc.records('kc down')) == [0, 1, 2], 'consumed once up')
    finally:
        peer.stop()


def test_the_docs_example_confirms_each_order_it_consumes(kc):
    spec, file_name, code = docs_example('kafka-channels.md')
    kc.env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': code})
    conn_call, channel_call = spec['admin_after']
    kc.env.admin.call('POST', conn_call['path'], dict(conn_call['body'], server_list=kc.peer.bootstrap))
    created = kc.env.admin.call('POST', channel_call['path'], channel_call['body'])
    kc.created.append(created['id'])
    order_id = uuid.uuid4().hex
    produce(kc.peer.bootstrap, 'orders', [{'id': order_id}], partition=0, key=order_id)

    def confirmed() -> bool:
        return any(json.loads(m.value()) == {'id': order_id, 'status': 'confirmed'} and m.key() == order_id.encode()
                   for m in read_topic(kc.peer.bootstrap, 'orders.confirmed'))
    kc.wait(confirmed, 'the order confirmed')
