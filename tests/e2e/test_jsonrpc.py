"""JSON-RPC 2.0 channels end to end: a real quickstart (2 workers), channels made through the admin
API, called over real sockets with hand-built bodies and with jsonrpcclient, an independent client."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from zato.admin_client import AdminCallError

SERVICES = '''
from zato.server.service import Service
from zato.errors import NotFound

class Add(Service):
    def handle(self):
        p = self.request.payload
        total = sum(p) if isinstance(p, list) else p['a'] + p['b']
        sec = self.channel.security
        self.response.payload = {'sum': total, 'channel_type': self.channel.type, 'channel': self.channel.name,
                                 'params_type': type(p).__name__, 'user': sec.username if sec else None,
                                 'cid': self.cid}

class Boom(Service):
    def handle(self):
        raise ValueError('the secret cause')

class Hidden(Service):
    def handle(self):
        self.response.payload = {'hidden': True}

class Record(Service):
    def handle(self):
        with open(self.request.payload['path'], 'a') as f:
            f.write(self.request.payload['line'] + '\\n')

class Text(Service):
    def handle(self):
        self.response.payload = 'plain text'

class Nothing(Service):
    def handle(self):
        pass

class Missing(Service):
    def handle(self):
        raise NotFound('Customer 5 not found')

class Unencodable(Service):
    def handle(self):
        self.response.payload = {'x': object()}

class User(Service):
    class SimpleIO:
        input_required = 'user_id',
        input_optional = 'name',
        output_required = 'user_id', 'name'
        response_elem = 'user'

    def handle(self):
        self.response.payload.user_id = self.request.input.user_id
        self.response.payload.name = self.request.input.name or 'anonymous'

class Checked(Service):
    schema = 'jrpc_user.json'

    def handle(self):
        self.response.payload = {'ok': True, 'user_id': self.request.payload['user_id']}
'''

SCHEMA = {'type': 'object', 'properties': {'user_id': {'type': 'integer'}}, 'required': ['user_id']}

WHITELIST = ['jrpc-e2e.add', 'jrpc-e2e.boom', 'jrpc-e2e.record', 'jrpc-e2e.text', 'jrpc-e2e.nothing',
             'jrpc-e2e.missing', 'jrpc-e2e.unencodable', 'jrpc-e2e.user', 'jrpc-e2e.checked',
             'jrpc-e2e.not-deployed']
PATH = '/e2e/jsonrpc'

_ready: dict[str, dict] = {}


def post(url, body, **kwargs):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url, data=data, headers={'Content-Type': 'application/json', **kwargs.pop('headers', {})},
                         timeout=10, **kwargs)


def fresh_post(url, body, **kwargs):
    """Over a new connection, so that successive calls reach both workers."""
    return post(url, body, headers={'Connection': 'close'}, **kwargs)


def call(method, params=None, id=1):
    out = {'jsonrpc': '2.0', 'method': method, 'id': id}
    if params is not None:
        out['params'] = params
    return out


def served_everywhere(url, body, status=200, **kwargs):
    return lambda: all(fresh_post(url, body, **kwargs).status_code == status for _ in range(4))


def _setup(env):
    if env.path in _ready:
        return _ready[env.path]
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'jrpc_user.json', 'source': json.dumps(SCHEMA)})
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'jrpc_e2e.py', 'source': SERVICES})
    chan = env.admin.call('POST', '/zato/admin/channels/jsonrpc',
                          {'name': 'e2e-main', 'url_path': PATH, 'service_whitelist': WHITELIST})
    env.wait_for(lambda: all(fresh_post(env.url + PATH, call('jrpc-e2e.add', [1])).json().get('result')
                             for _ in range(4)))
    _ready[env.path] = chan
    return chan


def error_of(r, code, id=1):
    assert r.status_code == 200, r.text
    assert r.headers['Content-Type'] == 'application/json'
    body = r.json()
    assert body['jsonrpc'] == '2.0' and body['id'] == id and 'result' not in body, body
    assert body['error']['code'] == code, body
    return body['error']


# Calls that work


def test_a_single_call_returns_its_result_with_the_id_and_the_cid_header(env):
    _setup(env)
    r = post(env.url + PATH, call('jrpc-e2e.add', {'a': 2, 'b': 3}, id=7))
    assert r.status_code == 200 and r.headers['Content-Type'] == 'application/json'
    cid = r.headers['X-Zato-CID']
    assert r.json() == {'jsonrpc': '2.0', 'id': 7,
                        'result': {'sum': 5, 'channel_type': 'json-rpc', 'channel': 'e2e-main',
                                   'params_type': 'dict', 'user': None, 'cid': cid}}


def test_params_as_an_array_reach_the_service_as_a_list(env):
    _setup(env)
    result = post(env.url + PATH, call('jrpc-e2e.add', [1, 2, 3])).json()['result']
    assert result['sum'] == 6 and result['params_type'] == 'list'


@pytest.mark.parametrize('id', ['abc-1', 12, -3, 1.5, None, ''])
def test_ids_are_echoed_as_sent(env, id):
    _setup(env)
    body = post(env.url + PATH, call('jrpc-e2e.text', id=id)).json()
    assert body == {'jsonrpc': '2.0', 'id': id, 'result': 'plain text'}


def test_a_service_without_a_payload_returns_null(env):
    _setup(env)
    assert post(env.url + PATH, call('jrpc-e2e.nothing')).json() == {'jsonrpc': '2.0', 'id': 1, 'result': None}


def test_a_simpleio_service_gets_params_as_input_and_its_result_comes_without_the_response_elem(env):
    _setup(env)
    body = post(env.url + PATH, call('jrpc-e2e.user', {'user_id': '12', 'name': 'Ann'})).json()
    assert body['result'] == {'user_id': 12, 'name': 'Ann'}


def test_a_batch_answers_every_call_in_order_and_one_failure_spoils_nothing_else(env):
    _setup(env)
    r = post(env.url + PATH, [call('jrpc-e2e.add', [1, 1], id='a'), call('jrpc-e2e.boom', id='b'),
                              call('jrpc-e2e.user', {}, id='c'), call('jrpc-e2e.hidden', id='d'),
                              {'jsonrpc': '2.0', 'method': 'jrpc-e2e.text'}, 5,
                              call('jrpc-e2e.text', id='e')])
    assert r.status_code == 200
    out = r.json()
    assert [item['id'] for item in out] == ['a', 'b', 'c', 'd', None, 'e']
    assert out[0]['result']['sum'] == 2
    assert [item.get('error', {}).get('code') for item in out] == [None, -32603, -32602, -32601, -32600, None]
    assert out[5]['result'] == 'plain text'
    # Each call of a batch has its own CID
    cids = {out[0]['result']['cid'], out[1]['error']['data']['ctx']['cid'], out[2]['error']['data']['ctx']['cid']}
    assert len(cids) == 3


def test_a_batch_of_one_is_answered_with_an_array_of_one(env):
    _setup(env)
    out = post(env.url + PATH, [call('jrpc-e2e.text', id=1)]).json()
    assert out == [{'jsonrpc': '2.0', 'id': 1, 'result': 'plain text'}]


# Notifications


def test_a_notification_runs_and_gets_204_with_no_body(env, tmp_path):
    _setup(env)
    path = str(tmp_path / 'notes.txt')
    r = post(env.url + PATH, {'jsonrpc': '2.0', 'method': 'jrpc-e2e.record', 'params': {'path': path, 'line': 'one'}})
    assert r.status_code == 204 and r.content == b'' and 'X-Zato-CID' in r.headers
    with open(path) as f:
        assert f.read() == 'one\n'


def test_a_batch_of_notifications_only_runs_them_all_and_returns_nothing(env, tmp_path):
    _setup(env)
    path = str(tmp_path / 'notes.txt')
    notes = [{'jsonrpc': '2.0', 'method': 'jrpc-e2e.record', 'params': {'path': path, 'line': str(i)}}
             for i in range(3)]
    # Failing notifications are not answered either
    notes += [{'jsonrpc': '2.0', 'method': 'jrpc-e2e.boom'}, {'jsonrpc': '2.0', 'method': 'jrpc-e2e.hidden'},
              {'jsonrpc': '2.0', 'method': 'jrpc-e2e.user', 'params': {}}]
    r = post(env.url + PATH, notes)
    assert r.status_code == 204 and r.content == b''
    with open(path) as f:
        assert f.read() == '0\n1\n2\n'


def test_in_a_mixed_batch_only_the_calls_with_ids_are_answered(env, tmp_path):
    _setup(env)
    path = str(tmp_path / 'notes.txt')
    out = post(env.url + PATH, [{'jsonrpc': '2.0', 'method': 'jrpc-e2e.record', 'params': {'path': path, 'line': 'x'}},
                                call('jrpc-e2e.text', id=2)]).json()
    assert out == [{'jsonrpc': '2.0', 'id': 2, 'result': 'plain text'}]


# Each error code


@pytest.mark.parametrize('body', [b'{"jsonrpc": "2.0", "method": "jrpc-e2e.text", "id": 1', b'not json',
                                  b'{"jsonrpc": "2.0", "method": "jrpc-e2e.text", "id": "\xff"}',
                                  b'{"jsonrpc": "2.0", "method": "jrpc-e2e.add", "params": [NaN], "id": 1}', b''])
def test_a_body_that_is_not_strict_json_is_a_parse_error_with_a_null_id(env, body):
    _setup(env)
    r = post(env.url + PATH, body)
    error = error_of(r, -32700, id=None)
    assert error['message'] == 'Parse error' and error['data']['ctx']['cid'] == r.headers['X-Zato-CID']


@pytest.mark.parametrize('body', [{'jsonrpc': '1.0', 'method': 'jrpc-e2e.text', 'id': 1},
                                  {'method': 'jrpc-e2e.text', 'id': 1},
                                  {'jsonrpc': '2.0', 'method': 5, 'id': 1}])
def test_a_request_of_the_wrong_shape_or_version_is_an_invalid_request(env, body):
    _setup(env)
    assert error_of(post(env.url + PATH, body), -32600)['message'] == 'Invalid Request'


def test_an_id_of_the_wrong_type_is_an_invalid_request_with_a_null_id(env):
    _setup(env)
    error_of(post(env.url + PATH, {'jsonrpc': '2.0', 'method': 'jrpc-e2e.text', 'id': True}), -32600, id=None)


def test_an_empty_batch_is_one_invalid_request_object_not_an_array(env):
    _setup(env)
    error_of(post(env.url + PATH, b'[]'), -32600, id=None)


def test_a_json_schema_failure_is_an_invalid_request(env):
    _setup(env)
    assert post(env.url + PATH, call('jrpc-e2e.checked', {'user_id': 5})).json()['result'] == {'ok': True,
                                                                                              'user_id': 5}
    error = error_of(post(env.url + PATH, call('jrpc-e2e.checked', {'user_id': 'five'}, id=3)), -32600, id=3)
    assert error['message'] == 'Invalid Request'


def test_a_method_not_on_the_whitelist_and_one_not_deployed_get_the_same_method_not_found(env):
    _setup(env)
    hidden = error_of(post(env.url + PATH, call('jrpc-e2e.hidden')), -32601)
    absent = error_of(post(env.url + PATH, call('jrpc-e2e.not-deployed')), -32601)
    internal = error_of(post(env.url + PATH, call('zato.service.invoke', {'name': 'jrpc-e2e.hidden'})), -32601)
    for error in (hidden, absent, internal):
        del error['data']['ctx']['cid']
    assert hidden == absent == internal == {'code': -32601, 'message': 'Method not found', 'data': {'ctx': {}}}


@pytest.mark.parametrize('params', [{}, {'user_id': 'not a number'}])
def test_simpleio_input_errors_are_invalid_params_naming_the_field(env, params):
    _setup(env)
    error = error_of(post(env.url + PATH, call('jrpc-e2e.user', params)), -32602)
    assert error['message'] == 'Invalid params' and 'user_id' in error['data']['details']


def test_params_that_are_not_an_object_or_an_array_are_invalid_params(env):
    _setup(env)
    error_of(post(env.url + PATH, {'jsonrpc': '2.0', 'method': 'jrpc-e2e.add', 'params': 'x', 'id': 1}), -32602)


def test_an_exception_in_the_service_is_an_internal_error_with_the_cid_and_no_traceback(env):
    _setup(env)
    r = post(env.url + PATH, call('jrpc-e2e.boom', id='z'))
    error = error_of(r, -32603, id='z')
    assert error == {'code': -32603, 'message': 'Internal error', 'data': {'ctx': {'cid': r.headers['X-Zato-CID']}}}
    assert 'secret' not in r.text and 'Traceback' not in r.text
    cid = error['data']['ctx']['cid']
    env.wait_for(lambda: any(cid in line and 'jrpc-e2e.boom' in line for line in env.log().splitlines()))
    assert 'the secret cause' in env.log()


def test_a_result_that_cannot_be_encoded_is_an_internal_error(env):
    _setup(env)
    error_of(post(env.url + PATH, call('jrpc-e2e.unencodable')), -32603)


def test_a_client_error_a_service_raises_keeps_its_details_as_a_server_error(env):
    _setup(env)
    error = error_of(post(env.url + PATH, call('jrpc-e2e.missing')), -32000)
    assert error['data']['details'] == 'Customer 5 not found'


def test_the_channel_answers_only_post_and_unknown_paths_stay_404(env):
    _setup(env)
    assert requests.get(env.url + PATH, timeout=10).status_code == 405
    assert post(env.url + PATH + '/nope', call('jrpc-e2e.text')).status_code == 404


# Security and rate limits


def test_basic_auth_failures_are_401_with_a_json_rpc_error_and_the_right_credentials_get_in(env):
    _setup(env)
    name = f'jrpc-sec-{uuid.uuid4().hex[:6]}'
    sec = env.admin.call('POST', '/zato/admin/security', {'name': name, 'kind': 'basic_auth', 'username': 'ann'})
    url = env.url + f'/e2e/jsonrpc/{name}'
    env.admin.call('POST', '/zato/admin/channels/jsonrpc', {'name': name, 'url_path': url[len(env.url):],
                                                            'service_whitelist': ['jrpc-e2e.add'], 'security': name})
    env.wait_for(served_everywhere(url, call('jrpc-e2e.add', [1]), 401))
    for auth in (None, ('ann', 'wrong'), ('bob', sec['password'])):
        r = post(url, call('jrpc-e2e.add', [1]), auth=auth)
        assert r.status_code == 401 and r.headers['WWW-Authenticate'].startswith('Basic realm=')
        assert r.json() == {'jsonrpc': '2.0', 'id': None,
                            'error': {'code': -32001, 'message': 'Unauthorized',
                                      'data': {'ctx': {'cid': r.headers['X-Zato-CID']}}}}
    r = post(url, call('jrpc-e2e.add', [1, 2]), auth=('ann', sec['password']))
    assert r.status_code == 200 and r.json()['result']['user'] == 'ann' and r.json()['result']['sum'] == 3


def test_a_rate_limit_makes_the_second_call_a_429_with_the_rate_limit_code(env):
    _setup(env)
    name = f'jrpc-rl-{uuid.uuid4().hex[:6]}'
    env.admin.call('POST', '/zato/admin/rate-limits', {'name': name, 'rules': '* = 1/m'})
    env.admin.call('POST', '/zato/admin/channels/jsonrpc', {'name': name, 'url_path': f'/e2e/jsonrpc/{name}',
                                                            'service_whitelist': ['jrpc-e2e.text'],
                                                            'rate_limit': name})
    url = env.url + f'/e2e/jsonrpc/{name}'
    # GET is refused with 405 before any limit is checked, so probing uses up no quota
    env.wait_for(lambda: all(requests.get(url, headers={'Connection': 'close'}, timeout=10).status_code == 405
                             for _ in range(4)))
    with requests.Session() as s:   # one connection, so one worker and its counters
        first = s.post(url, json=call('jrpc-e2e.text'), timeout=10)
        second = s.post(url, json=call('jrpc-e2e.text'), timeout=10)
    assert first.status_code == 200 and first.json()['result'] == 'plain text'
    assert second.status_code == 429 and second.headers['Cache-Control'] == 'no-store'
    assert 1 <= int(second.headers['Retry-After']) <= 60
    assert second.json() == {'jsonrpc': '2.0', 'id': None,
                             'error': {'code': -32429, 'message': 'Rate limit reached',
                                       'data': {'ctx': {'cid': second.headers['X-Zato-CID']}}}}


def test_a_services_own_rate_limit_applies_to_each_call_through_the_channel(env):
    _setup(env)
    name = f'jrpc-svc-rl-{uuid.uuid4().hex[:6]}'
    env.admin.call('POST', '/zato/admin/rate-limits', {'name': name, 'rules': '* = 2/m'})
    env.admin.call('PUT', '/zato/admin/services/jrpc-e2e.nothing', {'rate_limit': name})
    try:
        with requests.Session() as s:
            env.wait_for(lambda: s.post(env.url + PATH, json=call('jrpc-e2e.nothing'), timeout=10).status_code
                         == 429, timeout=5)
            out = s.post(env.url + PATH, json=[call('jrpc-e2e.nothing', id=1), call('jrpc-e2e.text', id=2)],
                         timeout=10)
        assert out.status_code == 200
        assert out.json()[0]['error']['code'] == -32429 and out.json()[1]['result'] == 'plain text'
    finally:
        env.admin.call('PUT', '/zato/admin/services/jrpc-e2e.nothing', {'rate_limit': None})


# The admin API


def admin_post(env, path, body):
    return requests.post(env.url + path, json=body, headers=env.admin.headers, timeout=10)


def test_create_is_201_and_get_list_edit_and_delete_work_live_on_every_worker(env):
    _setup(env)
    name = f'jrpc-admin-{uuid.uuid4().hex[:6]}'
    path = f'/e2e/jsonrpc/{name}'
    r = admin_post(env, '/zato/admin/channels/jsonrpc', {'name': name, 'url_path': path,
                                                         'service_whitelist': ['jrpc-e2e.text']})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created == {'id': created['id'], 'name': name, 'is_active': True, 'url_path': path, 'security': None,
                       'service_whitelist': ['jrpc-e2e.text'], 'rate_limit_id': None, 'rate_limit': None}
    chan_id = created['id']
    assert env.admin.call('GET', f'/zato/admin/channels/jsonrpc/{chan_id}') == created
    assert created in env.admin.call('GET', '/zato/admin/channels/jsonrpc')
    url = env.url + path
    env.wait_for(lambda: all(fresh_post(url, call('jrpc-e2e.add', [1])).json()['error']['code'] == -32601
                             for _ in range(4)))

    # A new whitelist applies on every worker within a second
    edited = env.admin.call('PUT', f'/zato/admin/channels/jsonrpc/{chan_id}',
                            {'service_whitelist': ['jrpc-e2e.add', 'jrpc-e2e.text']})
    assert edited['service_whitelist'] == ['jrpc-e2e.add', 'jrpc-e2e.text'] and edited['url_path'] == path
    took = env.wait_for(lambda: all(fresh_post(url, call('jrpc-e2e.add', [1])).json().get('result')
                                    for _ in range(4)))
    assert took < 1.0

    # An inactive channel is a 404
    env.admin.call('PUT', f'/zato/admin/channels/jsonrpc/{chan_id}', {'is_active': False})
    took = env.wait_for(served_everywhere(url, call('jrpc-e2e.text'), 404))
    assert took < 1.0
    r = post(url, call('jrpc-e2e.text'))
    assert r.status_code == 404 and r.json()['result'] == 'ZATO_ERROR'
    env.admin.call('PUT', f'/zato/admin/channels/jsonrpc/{chan_id}', {'is_active': True})
    env.wait_for(served_everywhere(url, call('jrpc-e2e.text'), 200))

    assert env.admin.call('DELETE', f'/zato/admin/channels/jsonrpc/{chan_id}') == {'id': chan_id, 'deleted': True}
    env.wait_for(served_everywhere(url, call('jrpc-e2e.text'), 404))
    with pytest.raises(AdminCallError) as e:
        env.admin.call('GET', f'/zato/admin/channels/jsonrpc/{chan_id}')
    assert e.value.status == 404


@pytest.mark.parametrize('body, field', [
    ({'url_path': '/e2e/jsonrpc/v1', 'service_whitelist': []}, 'name'),
    ({'name': 'v2', 'service_whitelist': []}, 'url_path'),
    ({'name': 'v3', 'url_path': '/e2e/jsonrpc/v3'}, 'service_whitelist'),
    ({'name': 'v4', 'url_path': '/e2e/jsonrpc/v4', 'service_whitelist': 'jrpc-e2e.add'}, 'service_whitelist'),
    ({'name': 'v5', 'url_path': '/e2e/jsonrpc/v5', 'service_whitelist': [1]}, 'service_whitelist'),
    ({'name': 'v6', 'url_path': '/e2e/jsonrpc/v6', 'service_whitelist': ['zato.service.invoke']},
     'service_whitelist'),
    ({'name': 'v7', 'url_path': 'no-slash', 'service_whitelist': []}, 'url_path'),
    ({'name': 'v8', 'url_path': '/zato/mine', 'service_whitelist': []}, 'url_path'),
    ({'name': 'v9', 'url_path': '/e2e/jsonrpc/{x}', 'service_whitelist': []}, 'url_path'),
    ({'name': 'v10', 'url_path': '/e2e/jsonrpc/v10', 'service_whitelist': [], 'is_active': 'yes'}, 'is_active'),
    ({'name': 'v11', 'url_path': '/e2e/jsonrpc/v11', 'service_whitelist': [], 'security': 'no-such'}, 'security'),
    ({'name': 'v12', 'url_path': '/e2e/jsonrpc/v12', 'service_whitelist': [], 'rate_limit': 'no-such'},
     'rate_limit'),
    ({'name': 'v13', 'url_path': '/e2e/jsonrpc/v13', 'service_whitelist': [], 'method': 'GET'}, 'method'),
    ({'name': '', 'url_path': '/e2e/jsonrpc/v14', 'service_whitelist': []}, 'name'),
])
def test_invalid_input_is_refused_with_400_naming_the_field(env, body, field):
    _setup(env)
    r = admin_post(env, '/zato/admin/channels/jsonrpc', body)
    assert r.status_code == 400, r.text
    assert f'`{field}`' in r.json()['details']


def test_a_path_a_rest_channel_serves_or_a_name_in_use_is_a_409(env):
    _setup(env)
    env.channel('jrpc-rest-clash', '/e2e/jsonrpc-rest-clash', 'jrpc-e2e.text', method='GET')
    r = admin_post(env, '/zato/admin/channels/jsonrpc', {'name': 'jrpc-clash', 'url_path': '/e2e/jsonrpc-rest-clash',
                                                         'service_whitelist': []})
    assert r.status_code == 409 and 'jrpc-rest-clash' in r.json()['details']
    r = admin_post(env, '/zato/admin/channels/jsonrpc', {'name': 'e2e-main', 'url_path': '/e2e/jsonrpc-other',
                                                         'service_whitelist': []})
    assert r.status_code == 409 and 'e2e-main' in r.json()['details']
    r = admin_post(env, '/zato/admin/channels/jsonrpc', {'name': 'jrpc-clash-2', 'url_path': PATH,
                                                         'service_whitelist': []})
    assert r.status_code == 409


def test_a_rest_channels_id_is_not_a_json_rpc_channel(env):
    _setup(env)
    rest = env.channel(f'jrpc-rest-{uuid.uuid4().hex[:6]}', f'/e2e/jrpc-rest-{uuid.uuid4().hex[:6]}', 'jrpc-e2e.text')
    with pytest.raises(AdminCallError) as e:
        env.admin.call('GET', f'/zato/admin/channels/jsonrpc/{rest["id"]}')
    assert e.value.status == 404
    assert rest['name'] not in {c['name'] for c in env.admin.call('GET', '/zato/admin/channels/jsonrpc')}


# An independent client


def test_jsonrpcclient_calls_the_channel_and_reads_every_answer(env):
    jc = pytest.importorskip('jsonrpcclient')
    _setup(env)
    url = env.url + PATH
    ok = jc.parse(requests.post(url, json=jc.request('jrpc-e2e.add', params={'a': 20, 'b': 22}), timeout=10).json())
    assert isinstance(ok, jc.Ok) and ok.result['sum'] == 42
    err = jc.parse(requests.post(url, json=jc.request('jrpc-e2e.hidden'), timeout=10).json())
    assert isinstance(err, jc.Error) and err.code == -32601 and err.message == 'Method not found'
    assert len(err.data['ctx']['cid']) == 24
    batch = [jc.request_uuid('jrpc-e2e.add', params=[i, i]) for i in range(5)]
    answers = list(jc.parse(requests.post(url, json=batch, timeout=10).json()))
    assert [a.id for a in answers] == [b['id'] for b in batch]
    assert [a.result['sum'] for a in answers] == [0, 2, 4, 6, 8]
    r = requests.post(url, json=jc.notification('jrpc-e2e.text'), timeout=10)
    assert r.status_code == 204 and r.content == b''

