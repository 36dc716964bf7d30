"""Delete an object, create another like it: nothing a worker remembered of the first may serve the second.

Each test deletes the newest object of its kind and creates one like it at once - on SQLite without
AUTOINCREMENT the new one would get the old id, and with it whatever workers had cached under that id
(the bug: a deleted Basic Auth definition's password kept working, and the new one got 401). Run on
SQLite and on PostgreSQL, two workers each; requests go over new connections to reach both workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.harness import Env, postgresql_cluster
from zato.admin_client import AdminCallError

WHO = '''
from zato.server.service import Service

class WhoAmI(Service):
    def handle(self):
        sec = self.channel.security
        self.response.payload = {'name': sec.name if sec else None, 'username': sec.username if sec else None}
'''

ROUNDS = 8  # fresh connections per check: enough to reach both workers


@contextlib.contextmanager
def _started(kind: str, tmp_path_factory) -> Iterator[Env]:
    if kind == 'postgresql':
        with postgresql_cluster(tmp_path_factory, 'recreate', servers=1) as e:
            yield e
        return
    e = Env(str(tmp_path_factory.mktemp('recreate-sqlite') / 'env'))
    e.start()
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture(scope='module', params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def env(request, tmp_path_factory):
    with _started(request.param, tmp_path_factory) as e:
        e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'recreate_who.py', 'source': WHO})
        e.wait_for(lambda: 'recreate-who.who-am-i' in [s['name'] for s in e.admin.call('GET', '/zato/admin/services')])
        yield e


def statuses(env, path, headers=None, auth=None) -> set[int]:
    headers = {'Connection': 'close', **(headers or {})}
    return {requests.get(env.url + path, headers=headers, auth=auth, timeout=10).status_code for _ in range(ROUNDS)}


def sec_def(env, **fields):
    return env.admin.call('POST', '/zato/admin/security', fields)


def channel(env, name, path, **extra):
    return env.channel(name, path, 'recreate-who.who-am-i', **extra)


def delete(env, what, obj_id):
    env.admin.call('DELETE', f'/zato/admin/{what}/{obj_id}')


def test_a_deleted_basic_auth_definitions_password_stops_working_and_the_new_one_works(env):
    first = sec_def(env, name='rc-basic', kind='basic_auth', username='rc-user')
    chan = channel(env, 'rc-basic', '/rc/basic', security='rc-basic')
    old = ('rc-user', first['password'])
    env.wait_for(lambda: statuses(env, '/rc/basic', auth=old) == {200})

    delete(env, 'channels/rest', chan['id'])
    delete(env, 'security', first['id'])
    second = sec_def(env, name='rc-basic', kind='basic_auth', username='rc-user')
    channel(env, 'rc-basic', '/rc/basic', security='rc-basic')
    assert second['id'] != first['id']
    new = ('rc-user', second['password'])
    env.wait_for(lambda: statuses(env, '/rc/basic', auth=new) == {200})
    assert statuses(env, '/rc/basic', auth=old) == {401}


def test_a_deleted_api_keys_value_stops_working_and_the_new_one_works(env):
    first = sec_def(env, name='rc-key', kind='apikey', header='X-RC-Key')
    chan = channel(env, 'rc-key', '/rc/key', security='rc-key')
    env.wait_for(lambda: statuses(env, '/rc/key', headers={'X-RC-Key': first['password']}) == {200})

    delete(env, 'channels/rest', chan['id'])
    delete(env, 'security', first['id'])
    second = sec_def(env, name='rc-key', kind='apikey', header='X-RC-Key')
    channel(env, 'rc-key', '/rc/key', security='rc-key')
    assert second['id'] != first['id']
    env.wait_for(lambda: statuses(env, '/rc/key', headers={'X-RC-Key': second['password']}) == {200})
    assert statuses(env, '/rc/key', headers={'X-RC-Key': first['password']}) == {401}


def log_in(env, password):
    r = requests.post(env.url + '/zato/jwt/log-in', json={'username': 'rc-jwt-user', 'password': password})
    assert r.status_code == 200, r.text
    return {'Authorization': f'Bearer {r.json()["token"]}'}


def test_the_tokens_of_a_deleted_jwt_definition_stop_working_for_a_new_one_with_the_same_user(env):
    first = sec_def(env, name='rc-jwt', kind='jwt', username='rc-jwt-user')
    chan = channel(env, 'rc-jwt', '/rc/jwt', security='rc-jwt')
    old_token = log_in(env, first['password'])
    env.wait_for(lambda: statuses(env, '/rc/jwt', headers=old_token) == {200})

    delete(env, 'channels/rest', chan['id'])
    delete(env, 'security', first['id'])
    second = sec_def(env, name='rc-jwt', kind='jwt', username='rc-jwt-user')
    channel(env, 'rc-jwt', '/rc/jwt', security='rc-jwt')
    assert second['id'] != first['id']
    new_token = log_in(env, second['password'])
    env.wait_for(lambda: statuses(env, '/rc/jwt', headers=new_token) == {200})
    assert statuses(env, '/rc/jwt', headers=old_token) == {401}


def test_a_recreated_channel_and_rate_limit_start_with_fresh_counters(env):
    limit = env.admin.call('POST', '/zato/admin/rate-limits', {'name': 'rc-limit', 'rules': '* = 2/m'})
    chan = channel(env, 'rc-limited', '/rc/limited', method='GET', rate_limit='rc-limit')
    url = env.url + '/rc/limited'
    # A POST gets 405 before any limit is checked: it shows the channel is routed without using quota
    env.wait_for(lambda: requests.post(url, headers={'Connection': 'close'}).status_code == 405)
    with requests.Session() as s:  # one connection: one worker, whose counters are the ones filled
        assert [s.get(url).status_code for _ in range(3)] == [200, 200, 429]

        delete(env, 'channels/rest', chan['id'])
        delete(env, 'rate-limits', limit['id'])
        env.wait_for(lambda: s.get(url).status_code == 404)
        new_limit = env.admin.call('POST', '/zato/admin/rate-limits', {'name': 'rc-limit', 'rules': '* = 2/m'})
        channel(env, 'rc-limited', '/rc/limited', method='GET', rate_limit='rc-limit')
        assert new_limit['id'] != limit['id']
        env.wait_for(lambda: s.post(url).status_code == 405)
        assert [s.get(url).status_code for _ in range(3)] == [200, 200, 429]


def test_a_recreated_outgoing_connection_is_the_new_definition(env):
    first = env.admin.call('POST', '/zato/admin/outconns/rest', {'name': 'rc-out', 'address_host': 'http://127.0.0.1:1',
                                                                 'timeout': 1})
    ping = env.admin.call('POST', f'/zato/admin/outconns/rest/{first["id"]}/ping')
    assert ping['ok'] is False

    delete(env, 'outconns/rest', first['id'])
    second = env.admin.call('POST', '/zato/admin/outconns/rest', {'name': 'rc-out', 'address_host': env.url,
                                                                  'address_url_path': '/zato/ping'})
    assert second['id'] != first['id']
    for _ in range(ROUNDS):
        ping = env.admin.call('POST', f'/zato/admin/outconns/rest/{second["id"]}/ping')
        assert ping['ok'] is True, ping


def test_a_security_definition_used_by_a_websocket_channel_cannot_be_deleted(env):
    # Deleting it would leave the channel open to anyone (the column is SET NULL on delete)
    sec = sec_def(env, name='rc-wsx-sec', kind='basic_auth', username='rc-wsx-user')
    env.admin.call('POST', '/zato/admin/channels/wsx', {'name': 'rc-wsx', 'url_path': '/rc/wsx',
                                                        'service': 'recreate-who.who-am-i', 'security': 'rc-wsx-sec'})
    with pytest.raises(AdminCallError) as e:
        delete(env, 'security', sec['id'])
    assert e.value.status == 409 and 'rc-wsx' in str(e.value)


def test_a_nul_character_in_admin_input_is_a_400_naming_it_not_a_500(env):
    """PostgreSQL's text cannot hold NUL, and its driver raises before a query is sent: the admin API
    refuses such input itself, on SQLite and PostgreSQL alike, and nothing is created."""
    from zato.admin_client import AdminCallError
    for path, body in [('/zato/admin/security', {'name': 'nul\x00def', 'kind': 'basic_auth', 'username': 'u',
                                                 'password': 'a-long-enough-password'}),
                       ('/zato/admin/channels/rest', {'name': 'nul-chan', 'url_path': '/nul/\x00',
                                                      'service': 'recreate-who.who-am-i'}),
                       ('/zato/admin/security', {'name': 'nul-key', 'kind': 'basic_auth', 'username': 'u',
                                                 'password': 'a-long-enough-password', 'x\x00': 1})]:
        with pytest.raises(AdminCallError) as caught:
            env.admin.call('POST', path, body)
        assert caught.value.status == 400 and 'NUL' in str(caught.value), (path, caught.value)
    assert not [s for s in env.admin.call('GET', '/zato/admin/security') if s['name'].startswith('nul')]
