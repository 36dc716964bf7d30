"""Outgoing Kafka connections in a running Zato (two workers) against Tansu: the example of
docs/outgoing-kafka.md as written, ping through the admin API, inactive, edits reaching every
worker, delete, and definitions refused at save."""

from __future__ import annotations

import json

import pytest
import requests

from tests.e2e.harness import docs_example
from zato.admin_client import AdminCallError


SERVICES = '''
import os
from zato.connectors.base import ConnectorError
from zato.server.service import Service

class Call(Service):
    """Sends one message through a connection named in the request, errors as data."""
    name = 'kafka.call'

    def handle(self):
        req = self.request.payload
        try:
            msg = self.out.kafka[req['conn']].conn.send(req.get('topic', 'e2e'), b'x', partition=0, timeout=5)
        except ConnectorError as e:
            self.response.payload = {'error': str(e), 'type': type(e).__name__}
            return
        except KeyError as e:
            self.response.payload = {'error': e.args[0], 'type': 'KeyError'}
            return
        self.response.payload = {'offset': msg.offset(), 'pid': os.getpid()}
'''


@pytest.fixture(scope='module')
def example(env) -> dict:
    """The docs page's example, deployed as written, with a channel to call it."""
    spec, file_name, code = docs_example('outgoing-kafka.md')
    out = env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': code})
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'kafka_services.py', 'source': SERVICES})
    env.channel('kafka-example', '/kafka/example', 'outgoing-kafka.publish-order')
    env.channel('kafka-call', '/kafka/call', 'kafka.call')
    return {'services': out['services'], 'spec': spec}


def call(env, **req) -> dict:
    r = requests.post(env.url + '/kafka/call', json=req, headers={'Connection': 'close'}, timeout=15)
    assert r.status_code == 200, r.text
    return r.json()


def create(env, name: str, peer, **config) -> dict:
    body = {'name': name, 'server_list': peer.bootstrap, 'socket_timeout': 1, **config}
    return env.admin.call('POST', '/zato/admin/outconns/kafka', body)


def ping(env, conn_id: int) -> dict:
    return env.admin.call('POST', f'/zato/admin/outconns/kafka/{conn_id}/ping')


def test_the_docs_example_publishes_and_returns_where_the_message_landed(env, example, kafka_peer):
    body = dict(example['spec']['admin_after'][0]['body'], server_list=kafka_peer.bootstrap)
    created = env.admin.call('POST', '/zato/admin/outconns/kafka', body)
    assert created['name'] == 'My Kafka Connection' and created['has_secret'] is False

    def answered() -> bool:
        r = requests.post(env.url + '/kafka/example', json={'id': 7}, headers={'Connection': 'close'}, timeout=10)
        return r.status_code == 200
    env.wait_for(answered, timeout=10)

    for _ in range(4):
        r = requests.post(env.url + '/kafka/example', json={'id': 7}, headers={'Connection': 'close'}, timeout=10)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out['topic'] == 'orders' and out['offset'] >= 0, out
    result = ping(env, created['id'])
    assert result['ok'] is True, result


def test_inactive_edited_down_and_back_and_deleted(env, example, kafka_peer):
    created = create(env, 'kafka edit', kafka_peer)
    env.wait_for(lambda: 'offset' in call(env, conn='kafka edit'), timeout=10)

    env.admin.call('PUT', f'/zato/admin/outconns/kafka/{created["id"]}', {'is_active': False})
    env.wait_for(lambda: call(env, conn='kafka edit').get('type') == 'ConnectorInactive', timeout=2)
    assert call(env, conn='kafka edit')['error'] == 'Outgoing kafka connection `kafka edit` is not active'

    # An edit to a port nobody listens on reaches both workers; ping says why
    env.admin.call('PUT', f'/zato/admin/outconns/kafka/{created["id"]}',
                   {'is_active': True, 'server_list': '127.0.0.1:1'})
    env.wait_for(lambda: call(env, conn='kafka edit').get('type') == 'ConnectorUnavailable', timeout=5)
    result = ping(env, created['id'])
    assert result['ok'] is False and '127.0.0.1:1' in result['error'], result
    for _ in range(6):
        out = call(env, conn='kafka edit')
        assert out['type'] == 'ConnectorUnavailable' and '127.0.0.1:1' in out['error'], out

    env.admin.call('PUT', f'/zato/admin/outconns/kafka/{created["id"]}', {'server_list': [kafka_peer.bootstrap]})
    env.wait_for(lambda: 'offset' in call(env, conn='kafka edit'), timeout=10)
    workers = set()
    for _ in range(60):
        out = call(env, conn='kafka edit')
        assert 'offset' in out, out
        workers.add(out['pid'])
        if len(workers) == 2:
            break
    assert len(workers) == 2, 'every call went to one worker'

    env.admin.call('DELETE', f'/zato/admin/outconns/kafka/{created["id"]}')
    env.wait_for(lambda: call(env, conn='kafka edit').get('type') == 'KeyError', timeout=2)


def test_the_sasl_password_is_stored_as_a_secret_and_never_returned(env, example, kafka_peer):
    created = create(env, 'kafka sasl', kafka_peer, sasl_mechanism='PLAIN', username='u', password='Secret-123')
    assert created['has_secret'] is True and 'password' not in created and 'secret' not in created
    got = env.admin.call('GET', f'/zato/admin/outconns/kafka/{created["id"]}')
    assert 'Secret-123' not in json.dumps(got)
    env.admin.call('DELETE', f'/zato/admin/outconns/kafka/{created["id"]}')


@pytest.mark.parametrize('body, field', [
    ({'server_list': 'kafka://broker:9092'}, 'server_list'),
    ({'server_list': 'broker:70000'}, 'server_list'),
    ({'acks': 'some'}, 'acks'),
    ({'sasl_mechanism': 'PLAIN'}, 'username'),
    ({'should_use_zookeeper': True}, 'should_use_zookeeper'),
    ({'colour': 'red'}, 'colour'),
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(env, body, field):
    with pytest.raises(AdminCallError) as info:
        env.admin.call('POST', '/zato/admin/outconns/kafka', {'name': 'kafka bad', **body})
    assert info.value.status == 400 and f'`{field}`' in str(info.value)
