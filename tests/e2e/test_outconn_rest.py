"""Outgoing REST connections in a running server: a service calls a REST channel of the same server
through ``self.out.rest[name].conn`` with Basic Auth; the admin API creates, edits, pings and
deletes; an edit reaches every worker within a second; inactive and bad definitions."""

from __future__ import annotations

import time

import pytest
import requests

from zato.admin_client import AdminCallError

SERVICES = '''
import os
from zato.connectors.base import ConnectorError
from zato.server.service import Service

class Target(Service):
    """The remote end: what it was called with, and which worker answered."""
    name = 'ocr.target'

    def handle(self):
        http = self.request.http
        self.response.payload = {
            'version': http.path.split('/')[2], 'item': http.params['item'], 'query': http.GET,
            'body': self.request.payload, 'method': http.method, 'cid': http.headers.get('x-zato-cid'),
            'user': self.channel.security.username if self.channel.security else None, 'pid': os.getpid()}

class Call(Service):
    name = 'ocr.call'

    def handle(self):
        req = self.request.payload
        try:
            conn = getattr(self.out, req.get('kind', 'rest'))[req['conn']].conn
            response = getattr(conn, req.get('method', 'post'))(self.cid, req.get('data'), params=req.get('params'))
        except ConnectorError as e:
            self.response.payload = {'error': str(e), 'type': type(e).__name__}
            return
        except KeyError as e:
            self.response.payload = {'error': e.args[0], 'type': 'KeyError'}
            return
        self.response.payload = {'status': response.status_code, 'data': response.data, 'cid': self.cid,
                                 'pid': os.getpid()}

class Unhandled(Service):
    name = 'ocr.unhandled'

    def handle(self):
        self.out.rest[self.request.payload['conn']].conn.get(self.cid)
'''

PASSWORD = 'ocr-Secret-123'


@pytest.fixture(scope='module')
def setup(env):
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'ocr_services.py', 'source': SERVICES})
    env.wait_for(lambda: 'ocr.call' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.admin.call('POST', '/zato/admin/security', {'name': 'ocr.sec', 'kind': 'basic_auth', 'username': 'ocr-user',
                                                    'password': PASSWORD})
    env.channel('ocr-target-v1', '/ocr/v1/{item}', 'ocr.target', security='ocr.sec')
    env.channel('ocr-target-v2', '/ocr/v2/{item}', 'ocr.target', security='ocr.sec')
    env.channel('ocr-call', '/ocr/call', 'ocr.call')
    env.channel('ocr-unhandled', '/ocr/unhandled', 'ocr.unhandled')


def call(env, **req) -> dict:
    r = requests.post(env.url + '/ocr/call', json=req, headers={'Connection': 'close'}, timeout=15)
    assert r.status_code == 200, r.text
    return r.json()


def create(env, name: str, **config) -> dict:
    body = {'name': name, 'address_host': f'http://127.0.0.1:{env.base_port}', 'address_url_path': '/ocr/v1/{item}',
            'auth_type': 'basic_auth', 'username': 'ocr-user', 'secret': PASSWORD, **config}
    return env.admin.call('POST', '/zato/admin/outconns/rest', body)


def test_a_service_calls_a_rest_channel_through_an_outgoing_connection_with_basic_auth(env, setup):
    created = create(env, 'ocr main', timeout=5)
    assert 'secret' not in created and created['has_secret'] is True
    assert created['address_url_path'] == '/ocr/v1/{item}' and created['pool_size'] == 20

    env.wait_for(lambda: 'status' in call(env, conn='ocr main', params={'item': 'x'}), timeout=5)
    out = call(env, conn='ocr main', data={'order': 1}, params={'item': 'a b', 'page': '2'})
    assert out['status'] == 200
    data = out['data']
    assert data['version'] == 'v1' and data['item'] == 'a b' and data['query'] == {'page': '2'}
    assert data['body'] == {'order': 1} and data['method'] == 'POST' and data['user'] == 'ocr-user'
    assert data['cid'] == out['cid']

    # The 3.1 name reaches the same connection; other methods too
    out = call(env, kind='plain_http', conn='ocr main', method='get', params={'item': 'y'})
    assert out['status'] == 200 and out['data']['method'] == 'GET' and out['data']['item'] == 'y'

    # A wrong password is an answer (401), not an exception
    env.admin.call('POST', f'/zato/admin/outconns/rest/{created["id"]}/change-password', {'secret': 'wrong'})
    env.wait_for(lambda: call(env, conn='ocr main', params={'item': 'x'}).get('status') == 401, timeout=2)

    # Unknown names list close ones
    out = call(env, conn='ocr mian', params={'item': 'x'})
    assert out['type'] == 'KeyError' and '`ocr main`' in out['error']


def test_ping_times_a_head_request_or_says_why_there_was_none(env, setup):
    created = create(env, 'ocr ping')
    # At once after the create: the worker serving the ping may not have heard of it yet, and waits
    ping = env.admin.call('POST', f'/zato/admin/outconns/rest/{created["id"]}/ping')
    assert ping['ok'] is True and 0 < ping['time'] < 1, ping

    down = env.admin.call('POST', '/zato/admin/outconns/plain_http', {
        'name': 'ocr down', 'address_host': 'http://127.0.0.1:1', 'timeout': 2})
    assert down['kind'] == 'rest'
    ping = env.admin.call('POST', f'/zato/admin/outconns/rest/{down["id"]}/ping')
    assert ping['ok'] is False and '`ocr down`' in ping['error'] and 'http://127.0.0.1:1' in ping['error'], ping
    out = call(env, conn='ocr down')
    assert out['type'] == 'ConnectorUnavailable' and '`ocr down`' in out['error']


def test_an_edit_takes_effect_on_every_worker_within_a_second(env, setup):
    created = create(env, 'ocr edit')
    env.wait_for(lambda: call(env, conn='ocr edit', params={'item': 'x'}).get('status') == 200, timeout=5)
    env.admin.call('PUT', f'/zato/admin/outconns/rest/{created["id"]}', {'address_url_path': '/ocr/v2/{item}'})
    time.sleep(1.0)
    versions, pids = set(), set()
    for _ in range(60):
        out = call(env, conn='ocr edit', params={'item': 'x'})
        versions.add(out['data']['version'])
        pids.add(out['pid'])
        if len(pids) == 2 and len(versions) > 0:
            break
    assert len(pids) == 2, 'every call went to one worker'
    assert versions == {'v2'}
    assert env.admin.call('GET', f'/zato/admin/outconns/rest/{created["id"]}')['address_url_path'] == '/ocr/v2/{item}'


def test_an_inactive_connection_raises_an_error_naming_it_and_a_deleted_one_is_gone(env, setup):
    created = create(env, 'ocr inactive')
    env.admin.call('PUT', f'/zato/admin/outconns/rest/{created["id"]}', {'is_active': False})
    env.wait_for(lambda: call(env, conn='ocr inactive', params={'item': 'x'}).get('type') == 'ConnectorInactive',
                 timeout=2)
    out = call(env, conn='ocr inactive', params={'item': 'x'})
    assert out['error'] == 'Outgoing rest connection `ocr inactive` is not active'
    ping = env.admin.call('POST', f'/zato/admin/outconns/rest/{created["id"]}/ping')
    assert ping == {'ok': False, 'error': 'Outgoing rest connection `ocr inactive` is not active'}

    # Unhandled, it is a 503 (the remote end's failure, not ours) with the error naming the connection in
    # the server log
    r = requests.post(env.url + '/ocr/unhandled', json={'conn': 'ocr inactive'}, timeout=10)
    assert r.status_code == 503 and r.json()['code'] == 'connection_inactive' and r.headers['X-Zato-CID'] in r.text
    env.wait_for(lambda: 'Outgoing rest connection `ocr inactive` is not active (ConnectorInactive)' in env.log(),
                 timeout=2)

    env.admin.call('PUT', f'/zato/admin/outconns/rest/{created["id"]}', {'is_active': True})
    env.wait_for(lambda: call(env, conn='ocr inactive', params={'item': 'x'}).get('status') == 200, timeout=2)

    env.admin.call('DELETE', f'/zato/admin/outconns/rest/{created["id"]}')
    env.wait_for(lambda: call(env, conn='ocr inactive', params={'item': 'x'}).get('type') == 'KeyError', timeout=2)
    with pytest.raises(AdminCallError) as info:
        env.admin.call('GET', f'/zato/admin/outconns/rest/{created["id"]}')
    assert info.value.status == 404


@pytest.mark.parametrize('body, field', [
    ({'colour': 'red'}, 'colour'),
    ({'timeout': 0}, 'timeout'),
    ({'timeout': 'soon'}, 'timeout'),
    ({'address_host': 'not a url'}, 'address_host'),
    ({'address_host': 'http://127.0.0.1:99999'}, 'address_host'),
    ({'address_url_path': 'relative/{x'}, 'address_url_path'),
    ({'auth_type': 'kerberos'}, 'auth_type'),
    ({'pool_size': True}, 'pool_size'),
    ({'tls_ca_file': '/no/such/file.pem'}, 'tls_ca_file'),
    ({'auth_type': 'basic_auth', 'username': ''}, 'username'),
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(env, setup, body, field):
    with pytest.raises(AdminCallError) as info:
        create(env, 'ocr bad', **body)
    assert info.value.status == 400 and f'`{field}`' in str(info.value)


def test_a_required_field_is_required_and_an_edit_is_validated_too(env, setup):
    with pytest.raises(AdminCallError) as info:
        env.admin.call('POST', '/zato/admin/outconns/rest', {'name': 'ocr no host'})
    assert info.value.status == 400 and '`address_host`' in str(info.value)

    created = create(env, 'ocr edit bad')
    with pytest.raises(AdminCallError) as info:
        env.admin.call('PUT', f'/zato/admin/outconns/rest/{created["id"]}', {'address_host': 'ftp://x'})
    assert info.value.status == 400 and '`address_host`' in str(info.value)
    listed = env.admin.call('GET', '/zato/admin/outconns/rest')
    assert any(row['name'] == 'ocr edit bad' for row in listed) and all('secret' not in row for row in listed)
    assert env.admin.call('GET', '/zato/admin/outconns/plain_http') == listed


def test_the_kinds_and_their_fields_are_listed_for_forms(env):
    kinds = {k['kind']: k for k in env.admin.call('GET', '/zato/admin/outconns')}
    assert {'rest', 'jsonrpc', 'ldap', 'mongodb', 'kafka', 'sftp', 'ssh', 'slack', 'telegram', 'wsx', 'smtp',
            'imap'} <= set(kinds)
    assert kinds['rest']['aliases'] == ['plain_http']
    fields = {f['name']: f for f in kinds['rest']['fields']}
    assert fields['address_host'] == {'name': 'address_host', 'type': 'str', 'required': True, 'default': None,
                                      'doc': fields['address_host']['doc'], 'secret': False}
    assert fields['timeout']['type'] == 'float' and fields['timeout']['default'] == 10.0
    assert fields['secret']['secret'] is True and fields['secret']['default'] is None
    assert fields['headers']['type'] == 'dict'
