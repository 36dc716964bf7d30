"""Outgoing MongoDB connections in a running Zato (two workers) against SecantusDB: the example of
docs/outgoing-mongodb.md as written, credentials right and wrong through the admin API, ping,
inactive, edits reaching every worker, delete, and definitions refused at save."""

from __future__ import annotations


import pytest
import requests

from tests.e2e.harness import docs_example
from zato.admin_client import AdminCallError


SERVICES = '''
import os
from zato.connectors.base import ConnectorError
from zato.server.service import Service

class Call(Service):
    """Inserts into a collection and counts it, with pymongo's connection errors mapped."""
    name = 'mdb.call'

    def handle(self):
        req = self.request.payload
        try:
            conn = self.out.mongodb[req['conn']].conn
            with conn.mapped_errors():
                coll = conn.client.zato_e2e[req.get('coll', 'items')]
                coll.insert_one({'pid': os.getpid()})
                count = coll.count_documents({})
        except ConnectorError as e:
            self.response.payload = {'error': str(e), 'type': type(e).__name__}
            return
        except KeyError as e:
            self.response.payload = {'error': e.args[0], 'type': 'KeyError'}
            return
        self.response.payload = {'count': count, 'pid': os.getpid()}
'''


@pytest.fixture(scope='module')
def example(env) -> dict:
    """The docs page's example, deployed as written, with a channel to call it."""
    spec, file_name, code = docs_example('outgoing-mongodb.md')
    out = env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': code})
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'mdb_services.py', 'source': SERVICES})
    env.channel('mdb-example', '/mdb/example', 'outgoing-mongodb.save-customer')
    env.channel('mdb-call', '/mdb/call', 'mdb.call')
    return {'services': out['services'], 'spec': spec}


def call(env, **req) -> dict:
    r = requests.post(env.url + '/mdb/call', json=req, headers={'Connection': 'close'}, timeout=15)
    assert r.status_code == 200, r.text
    return r.json()


def create(env, name: str, peer, **config) -> dict:
    body = {'name': name, 'server_list': f'{peer.host}:{peer.port}', 'server_select_timeout': 2, **config}
    return env.admin.call('POST', '/zato/admin/outconns/mongodb', body)


def ping(env, conn_id: int) -> dict:
    return env.admin.call('POST', f'/zato/admin/outconns/mongodb/{conn_id}/ping')


def test_the_docs_example_inserts_finds_and_logs_on_every_worker(env, example, mongo_peer):
    # What the docs test creates, pointed at the peer
    body = dict(example['spec']['admin_after'][0]['body'], server_list=f'{mongo_peer.host}:{mongo_peer.port}')
    created = env.admin.call('POST', '/zato/admin/outconns/mongodb', body)
    assert created['name'] == 'My MongoDB Connection' and created['has_secret'] is False

    def answered() -> bool:
        r = requests.post(env.url + '/mdb/example', headers={'Connection': 'close'}, timeout=10)
        return r.status_code == 200
    env.wait_for(answered, timeout=10)

    counts = []
    for _ in range(6):
        r = requests.post(env.url + '/mdb/example', headers={'Connection': 'close'}, timeout=10)
        assert r.status_code == 200, r.text
        counts.append(r.json()['count'])
    assert counts == sorted(counts) and len(set(counts)) == 6  # every call inserted one more
    env.wait_for(lambda: env.log().count("Customer: {'_id': ObjectId(") >= sum(counts), timeout=5)
    assert "'name': 'Jane Doe'" in env.log()

    assert ping(env, created['id'])['ok'] is True


def test_the_right_password_works_and_a_wrong_one_is_an_auth_error_that_ping_explains(env, example, mongo_auth_peer):
    peer = mongo_auth_peer
    created = create(env, 'mdb auth', peer, username=peer.user, secret=peer.password)
    assert created['has_secret'] is True and 'password' not in created and 'secret' not in created
    result = ping(env, created['id'])
    assert result['ok'] is True, result
    env.wait_for(lambda: 'count' in call(env, conn='mdb auth'), timeout=10)

    env.admin.call('POST', f'/zato/admin/outconns/mongodb/{created["id"]}/change-password', {'password': 'wrong'})
    env.wait_for(lambda: call(env, conn='mdb auth').get('type') == 'ConnectorAuthError', timeout=10)
    out = call(env, conn='mdb auth')
    assert '`mdb auth`' in out['error'] and 'authentication failed' in out['error'], out
    result = ping(env, created['id'])
    assert result['ok'] is False and 'ConnectorAuthError' in result['error'], result
    assert 'authentication failed' in result['error'] and 'wrong' not in result['error']
    assert 'wrong' not in env.log() and peer.password not in env.log()

    # `secret` is the generic name of the same field
    env.admin.call('POST', f'/zato/admin/outconns/mongodb/{created["id"]}/change-password', {'secret': peer.password})
    env.wait_for(lambda: 'count' in call(env, conn='mdb auth'), timeout=10)


def test_inactive_edited_down_and_back_and_deleted(env, example, mongo_peer):
    created = create(env, 'mdb edit', mongo_peer)
    env.wait_for(lambda: 'count' in call(env, conn='mdb edit'), timeout=10)

    env.admin.call('PUT', f'/zato/admin/outconns/mongodb/{created["id"]}', {'is_active': False})
    env.wait_for(lambda: call(env, conn='mdb edit').get('type') == 'ConnectorInactive', timeout=2)
    assert call(env, conn='mdb edit')['error'] == 'Outgoing mongodb connection `mdb edit` is not active'

    # An edit to a port nobody listens on reaches both workers; ping says why
    env.admin.call('PUT', f'/zato/admin/outconns/mongodb/{created["id"]}',
                   {'is_active': True, 'server_list': f'{mongo_peer.host}:1', 'server_select_timeout': 0.5})
    env.wait_for(lambda: call(env, conn='mdb edit').get('type') == 'ConnectorUnavailable', timeout=5)
    result = ping(env, created['id'])
    assert result['ok'] is False and 'refused' in result['error'].lower(), result
    for _ in range(10):  # whichever worker answers
        out = call(env, conn='mdb edit')
        assert out['type'] == 'ConnectorUnavailable' and f'{mongo_peer.host}:1' in out['error'], out
    # Back to the peer: built in the background on every worker, the next calls work
    env.admin.call('PUT', f'/zato/admin/outconns/mongodb/{created["id"]}',
                   {'server_list': [f'{mongo_peer.host}:{mongo_peer.port}']})
    env.wait_for(lambda: 'count' in call(env, conn='mdb edit'), timeout=10)
    workers = set()
    for _ in range(60):
        out = call(env, conn='mdb edit')
        assert 'count' in out, out
        workers.add(out['pid'])
        if len(workers) == 2:
            break
    assert len(workers) == 2, 'every call went to one worker'
    assert env.admin.call('GET', f'/zato/admin/outconns/mongodb/{created["id"]}')['server_list'] == [
        f'{mongo_peer.host}:{mongo_peer.port}']

    env.admin.call('DELETE', f'/zato/admin/outconns/mongodb/{created["id"]}')
    env.wait_for(lambda: call(env, conn='mdb edit').get('type') == 'KeyError', timeout=2)


@pytest.mark.parametrize('body, field', [
    ({'server_list': 'mongodb://db:27017'}, 'server_list'),
    ({'server_list': 'db:0'}, 'server_list'),
    ({'connect_timeout': 0}, 'connect_timeout'),
    ({'read_pref_type': 'fastest'}, 'read_pref_type'),
    ({'auth_mechanism': 'SCRAM-SHA-256'}, 'auth_mechanism'),
    ({'colour': 'red'}, 'colour'),
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(env, body, field):
    with pytest.raises(AdminCallError) as info:
        env.admin.call('POST', '/zato/admin/outconns/mongodb', {'name': 'mdb bad', **body})
    assert info.value.status == 400 and f'`{field}`' in str(info.value)
