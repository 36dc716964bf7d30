"""Inactive and undeployed services, and self.user_config through the pickup directory, on a running
environment (two workers): every worker answers the same, whichever one a request reaches."""

from __future__ import annotations

import json
import os

import requests

from tests.e2e.harness import zato
from zato.admin_client import AdminCallError

MODULE = '''
from zato.errors import Inactive, ServiceNotFound
from zato.server.service import Service


class Answer(Service):
    name = 'states.answer'

    def handle(self):
        self.response.payload = {'answer': 42}


class Other(Service):
    name = 'states.other'

    def handle(self):
        self.response.payload = {'other': True}


class Caller(Service):
    name = 'states.caller'

    def handle(self):
        try:
            self.response.payload = {'got': self.invoke('states.answer')}
        except Inactive as e:
            self.response.payload = {'error': type(e).__name__, 'details': str(e)}


class By(Service):
    name = 'states.by'

    def handle(self):
        params = self.request.http.GET
        try:
            by_id = self.invoke_by_id(int(params['id']))
        except ServiceNotFound as e:
            by_id = {'error': type(e).__name__}
        self.response.payload = {'by_id': by_id, 'by_impl_name': self.invoke_by_impl_name(params['impl'])}


class Config(Service):
    name = 'states.config'

    def handle(self):
        conf = self.user_config
        crm = conf.get('states_crm')
        self.response.payload = {'url': crm.api.url if crm else None, 'stems': sorted(conf)}
'''


def _setup(env) -> None:
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'states_mod.py', 'source': MODULE})
    for name, path, service in (('states-answer', '/states/answer', 'states.answer'),
                                ('states-other', '/states/other', 'states.other'),
                                ('states-caller', '/states/caller', 'states.caller'),
                                ('states-config', '/states/config', 'states.config'),
                                ('states-by', '/states/by', 'states.by')):
        try:
            env.channel(name, path, service)
        except AdminCallError as e:
            assert e.status == 409
    try:
        env.admin.call('POST', '/zato/admin/channels/jsonrpc', {'name': 'states-rpc', 'url_path': '/states/jsonrpc',
                                                                'service_whitelist': ['states.answer']})
    except AdminCallError as e:
        assert e.status == 409
    env.wait_for(lambda: all(env.fresh_get(env.url + path).status_code == 200 for _ in range(6)
                             for path in ('/states/answer', '/states/other', '/states/caller')), timeout=10)


def every_worker(env, path: str, check) -> None:
    """Waits until `check(response)` holds for a run of requests on new connections (both workers)."""
    env.wait_for(lambda: all(check(env.fresh_get(env.url + path)) for _ in range(8)), timeout=10)


def test_an_inactive_service_answers_404_on_its_channels_and_raises_inactive_on_invoke(env):
    _setup(env)
    out = env.admin.call('PUT', '/zato/admin/services/states.answer', {'is_active': False})
    assert out['is_active'] is False
    every_worker(env, '/states/answer', lambda r: r.status_code == 404)
    r = env.fresh_get(env.url + '/states/answer')
    body = r.json()
    assert body == {'result': 'ZATO_ERROR', 'cid': r.headers['X-Zato-CID'], 'code': 'service_inactive',
                    'details': 'Service `states.answer` is inactive'}
    every_worker(env, '/states/caller', lambda r: r.json() == {'error': 'Inactive',
                                                               'details': 'Service `states.answer` is inactive'})
    # JSON-RPC answers as for a method that is not there
    rpc = {'jsonrpc': '2.0', 'method': 'states.answer', 'id': 1}
    r = requests.post(env.url + '/states/jsonrpc', json=rpc, headers={'Connection': 'close'}, timeout=10)
    assert r.json()['error']['code'] == -32601
    assert env.admin.call('GET', '/zato/admin/services/states.answer')['is_active'] is False
    # Redeploying the module keeps it switched off; switching it on brings it back everywhere
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'states_mod.py', 'source': MODULE + '\n# v2\n'})
    every_worker(env, '/states/answer', lambda r: r.status_code == 404)
    # The CLI's command made from the route, as a user would switch it on
    out = zato('service', 'edit', env.path, 'states.answer', 'is_active=true')
    assert json.loads(out.stdout)['is_active'] is True
    every_worker(env, '/states/answer', lambda r: r.status_code == 200 and r.json() == {'answer': 42})
    env.wait_for(lambda: requests.post(env.url + '/states/jsonrpc', json=rpc, timeout=10).json().get('result')
                 == {'answer': 42}, timeout=10)
    every_worker(env, '/states/caller', lambda r: r.json() == {'got': {'answer': 42}})


def test_invoke_by_id_and_by_impl_name(env):
    _setup(env)
    answer = env.admin.call('GET', '/zato/admin/services/states.answer')
    assert answer['impl_name'] == 'states_mod.Answer' and isinstance(answer['id'], int)
    every_worker(env, f'/states/by?id={answer["id"]}&impl=states_mod.Answer', lambda r: r.json() == {
        'by_id': {'answer': 42}, 'by_impl_name': {'answer': 42}})
    # An id no service has; a class no service is
    every_worker(env, '/states/by?id=999999&impl=states_mod.Other', lambda r: r.json() == {
        'by_id': {'error': 'ServiceNotFound'}, 'by_impl_name': {'other': True}})
    r = env.fresh_get(env.url + f'/states/by?id={answer["id"]}&impl=states_mod.Nothing')
    assert r.status_code == 404 and r.json()['code'] == 'not_found', r.text


def test_edit_refuses_a_non_boolean_is_active_and_an_internal_service(env):
    _setup(env)
    try:
        env.admin.call('PUT', '/zato/admin/services/states.answer', {'is_active': 'no'})
        raise AssertionError('accepted')
    except AdminCallError as e:
        assert e.status == 400 and 'is_active' in str(e.details)
    try:
        env.admin.call('DELETE', '/zato/admin/services/zato.ping')
        raise AssertionError('accepted')
    except AdminCallError as e:
        assert e.status == 400 and 'internal' in str(e.details)


def test_undeploying_a_service_removes_it_from_every_worker_and_the_last_one_takes_its_module(env):
    _setup(env)
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'states_mod.py', 'source': MODULE + '\n# v3\n'})
    out = json.loads(zato('service', 'delete', env.path, 'states.other').stdout)
    assert out == {'name': 'states.other', 'file_name': 'states_mod.py', 'module_deleted': False}
    every_worker(env, '/states/other', lambda r: r.status_code == 404 and r.json()['code'] == 'not_found')
    every_worker(env, '/states/answer', lambda r: r.status_code == 200)
    names = [s['name'] for s in env.admin.call('GET', '/zato/admin/services')]
    assert 'states.other' not in names and 'states.answer' in names
    try:
        env.admin.call('DELETE', '/zato/admin/services/states.other')
        raise AssertionError('deleted twice')
    except AdminCallError as e:
        assert e.status == 404
    # A changed version of the module brings it back
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'states_mod.py', 'source': MODULE + '\n# v4\n'})
    every_worker(env, '/states/other', lambda r: r.status_code == 200)

    # Deleting every service deletes the module
    for name in ('states.answer', 'states.caller', 'states.config', 'states.by'):
        assert env.admin.call('DELETE', f'/zato/admin/services/{name}')['module_deleted'] is False
    assert env.admin.call('DELETE', '/zato/admin/services/states.other') == {
        'name': 'states.other', 'file_name': 'states_mod.py', 'module_deleted': True}
    every_worker(env, '/states/answer', lambda r: r.status_code == 404)
    every_worker(env, '/states/other', lambda r: r.status_code == 404)


def test_user_config_dropped_into_pickup_reaches_every_worker_and_a_change_replaces_it(env):
    _setup(env)
    folder = os.path.join(env.path, 'pickup', 'incoming', 'user-conf')
    path = os.path.join(folder, 'states_crm.ini')
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        f.write('[api]\nurl = https://crm.example.com/v1\n')
    os.replace(path + '.tmp', path)
    every_worker(env, '/states/config', lambda r: r.json()['url'] == 'https://crm.example.com/v1')
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        f.write('[api]\nurl = https://crm.example.com/v2\n')
    os.replace(path + '.tmp', path)
    every_worker(env, '/states/config', lambda r: r.json()['url'] == 'https://crm.example.com/v2')
    # A broken file is refused; the previous version stays
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        f.write('no section header\n')
    os.replace(path + '.tmp', path)
    env.wait_for(lambda: 'states_crm.ini: not a valid INI file' in env.log(), timeout=10)
    assert requests.get(env.url + '/states/config', timeout=10).json()['url'] == 'https://crm.example.com/v2'
