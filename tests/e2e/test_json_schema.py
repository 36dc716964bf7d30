"""JSON Schema validation of service input: one line in a service, compiled once, applied live."""

from __future__ import annotations

import json
import os

import requests

from tests.e2e.harness import zato
from zato.admin_client import AdminCallError

USER_SCHEMA = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    'type': 'object',
    'properties': {'user_id': {'type': 'integer'}, 'user_name': {'type': 'string'},
                   'address': {'$ref': 'address.json'}},
    'required': ['user_id', 'user_name'],
}
ADDRESS_SCHEMA = {'type': 'object', 'properties': {'city': {'type': 'string'}}, 'required': ['city']}

SERVICE = '''
from zato.server.service import Service

class Check(Service):
    schema = 'user.json'

    def handle(self):
        self.response.payload = {'ok': True, 'user_id': self.request.payload['user_id']}
'''

_ready = {}


def _setup(env):
    if env.path in _ready:
        return
    schema_dir = os.path.join(env.path, 'config', 'repo', 'schema', 'json')
    with open(os.path.join(schema_dir, 'user.json'), 'w', encoding='utf-8') as f:
        json.dump(USER_SCHEMA, f)
    with open(os.path.join(schema_dir, 'address.json'), 'w', encoding='utf-8') as f:
        json.dump(ADDRESS_SCHEMA, f)
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'schema_svc.py', 'source': SERVICE})
    env.channel('schema-check', '/e2e/schema/check', 'schema-svc.check')
    env.wait_for(lambda: requests.post(env.url + '/e2e/schema/check', json={}).status_code == 400)
    _ready[env.path] = True


def test_valid_input_reaches_the_service(env):
    _setup(env)
    r = requests.post(env.url + '/e2e/schema/check', json={'user_id': 123, 'user_name': 'Joe',
                                                      'address': {'city': 'Oslo'}})
    assert r.status_code == 200 and r.json() == {'ok': True, 'user_id': 123}


def test_invalid_input_is_a_400_with_3_1s_error_object_and_no_details_by_default(env):
    _setup(env)
    r = requests.post(env.url + '/e2e/schema/check', json={'user_id': 123})
    cid = r.headers['X-Zato-CID']
    assert r.status_code == 400
    assert r.json() == {'result': 'ZATO_ERROR', 'cid': cid,
                        'details': {'is_ok': False, 'cid': cid, 'message': 'Invalid request'}, 'code': 'bad_request'}


def test_a_ref_to_another_local_schema_file_is_enforced(env):
    _setup(env)
    r = requests.post(env.url + '/e2e/schema/check', json={'user_id': 1, 'user_name': 'x', 'address': {'town': 'y'}})
    assert r.status_code == 400


def test_error_details_and_validation_itself_are_switched_live_through_the_admin_api(env):
    _setup(env)
    bad = {'user_id': 'not a number', 'user_name': 'Joe'}
    env.admin.call('PUT', '/zato/admin/services/schema-svc.check', {'needs_json_schema_err_details': True})
    took = env.wait_for(lambda: all('user_id must be integer' in
                                    requests.post(env.url + '/e2e/schema/check', json=bad,
                                                  headers={'Connection': 'close'}).json()['details']['message']
                                    for _ in range(4)))
    assert took < 1.0
    info = env.admin.call('GET', '/zato/admin/services/schema-svc.check')
    assert info['schema'] == 'user.json' and info['needs_json_schema_err_details'] is True

    env.admin.call('PUT', '/zato/admin/services/schema-svc.check', {'is_json_schema_enabled': False})
    env.wait_for(lambda: all(requests.post(env.url + '/e2e/schema/check', json=bad,
                                           headers={'Connection': 'close'}).status_code == 200 for _ in range(4)))
    env.admin.call('PUT', '/zato/admin/services/schema-svc.check', {'is_json_schema_enabled': True,
                                                                     'needs_json_schema_err_details': False})
    env.wait_for(lambda: all(requests.post(env.url + '/e2e/schema/check', json=bad,
                                           headers={'Connection': 'close'}).status_code == 400 for _ in range(4)))


def test_a_schema_dropped_into_pickup_is_recompiled_and_applied_without_a_restart(env):
    _setup(env)
    good = {'user_id': 5, 'user_name': 'Ann'}
    assert requests.post(env.url + '/e2e/schema/check', json=good).status_code == 200
    stricter = {**USER_SCHEMA, 'required': ['user_id', 'user_name', 'email']}
    env.drop('user.json', json.dumps(stricter))
    env.wait_for(lambda: all(requests.post(env.url + '/e2e/schema/check', json=good,
                                           headers={'Connection': 'close'}).status_code == 400 for _ in range(4)),
                 timeout=3.0)
    env.drop('user.json', json.dumps(USER_SCHEMA))
    env.wait_for(lambda: all(requests.post(env.url + '/e2e/schema/check', json=good,
                                           headers={'Connection': 'close'}).status_code == 200 for _ in range(4)),
                 timeout=3.0)


def test_a_schema_that_does_not_compile_is_refused_at_deploy_time_and_the_old_one_stays(env, tmp_path):
    _setup(env)
    bad = tmp_path / 'user.json'
    bad.write_text('{"type": "object", "required": "user_id"')
    out = zato('deploy', str(bad), env.path, check=False)
    assert out.returncode == 1 and 'user.json: not valid JSON' in out.stderr and out.stderr.count('\n') == 1
    bad.write_text(json.dumps({'type': 'object', 'properties': {'a': {'$ref': 'missing.json'}}}))
    out = zato('deploy', str(bad), env.path, check=False)
    assert out.returncode == 1 and 'missing.json' in out.stderr
    assert requests.post(env.url + '/e2e/schema/check', json={'user_id': 1}).status_code == 400
    assert requests.post(env.url + '/e2e/schema/check', json={'user_id': 1, 'user_name': 'x'}).status_code == 200


def test_a_service_whose_schema_is_missing_is_not_deployed(env):
    source = SERVICE.replace("'user.json'", "'nowhere.json'").replace('class Check', 'class Missing')
    try:
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'schema_missing.py', 'source': source})
    except AdminCallError as e:
        assert e.status == 400
        assert 'schema_missing.py: schema-missing.missing: JSON Schema nowhere.json: no such schema' in e.details
    else:
        raise AssertionError('deployed a service without its schema')
    assert 'schema-missing.missing' not in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')]
