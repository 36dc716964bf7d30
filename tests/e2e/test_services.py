"""What a service author relies on, end to end: SimpleIO, per-verb handlers, hooks, invoke,
invoke_async, and clean error responses."""

from __future__ import annotations

import json
import os

import requests

API = '''
import os
from zato.server.service import Service, Int, Bool, Text, Date, BadRequest

class GetCustomer(Service):
    class SimpleIO:
        input_required = 'customer_id', Text('name')
        input_optional = Bool('is_active', default=True), Date('since')
        output_required = 'cust_id', 'name'
        output_optional = 'is_active', 'since', 'notes'
        skip_empty_keys = True

    def handle(self):
        inp = self.request.input
        self.response.payload.cust_id = inp.customer_id
        self.response.payload.name = inp.name
        self.response.payload.is_active = inp.is_active
        self.response.payload.since = inp.since

class Wrapped(Service):
    class SimpleIO:
        output_required = 'a',
        response_elem = 'customer'
    def handle(self):
        self.response.payload = {'a': 1}

class Verbs(Service):
    def handle_GET(self):
        self.response.payload = {'verb': 'GET', 'id': self.request.http.params.get('id'),
                                 'q': self.request.http.GET.get('q')}
    def handle_POST(self):
        self.response.status_code = 201
        self.response.headers['X-Custom'] = 'yes'
        self.response.payload = {'verb': 'POST', 'got': self.request.payload}

class Hooks(Service):
    def accept(self):
        return self.request.http.headers.get('x-allow') == 'yes'
    def handle(self):
        self.response.payload = {'channel': self.channel.name, 'type': self.channel.type}

class Caller(Service):
    def handle(self):
        out = self.invoke('e2e-svc.callee', {'n': 20})
        self.response.payload = {'callee_said': out, 'cid': self.cid}

class Callee(Service):
    class SimpleIO:
        input_required = 'n',
        output_required = 'double',
    def handle(self):
        self.response.payload.double = int(self.request.input.n) * 2

class Slow(Service):
    def handle(self):
        import gevent
        gevent.sleep(float(self.request.payload['sleep']))
        self.response.payload = {'slept': True}

class CallerWithTimeout(Service):
    def handle(self):
        from zato.errors import InvocationTimeout
        try:
            self.invoke('e2e-svc.slow', {'sleep': 1}, timeout=0.2)
        except Exception as e:
            self.response.payload = {'error': type(e).__name__}

class AsyncStarter(Service):
    def handle(self):
        cid = self.invoke_async('e2e-svc.async-target', {'path': self.request.http.GET['path']})
        self.response.payload = {'cid': cid}

class AsyncTarget(Service):
    def handle(self):
        with open(self.request.payload['path'], 'w') as f:
            f.write(self.cid + ' ' + str(os.getpid()))

class Fails(Service):
    def handle(self):
        raise ValueError('secret internal detail')

class Refuses(Service):
    def handle(self):
        raise BadRequest('Customer is closed')

class Big(Service):
    def handle(self):
        self.response.payload = 'x' * 3_000_000

class Silent(Service):
    def handle(self):
        pass

class Text_(Service):
    name = 'e2e-svc.text'
    def handle(self):
        self.response.payload = 'plain text'
        self.response.content_type = 'text/plain'
'''

CHANNELS = [
    ('/e2e/customer/{customer_id}', 'e2e-svc.get-customer', {}),
    ('/e2e/wrapped', 'e2e-svc.wrapped', {}),
    ('/e2e/verbs/{id}', 'e2e-svc.verbs', {}),
    ('/e2e/hooks', 'e2e-svc.hooks', {}),
    ('/e2e/caller', 'e2e-svc.caller', {}),
    ('/e2e/caller-timeout', 'e2e-svc.caller-with-timeout', {}),
    ('/e2e/async', 'e2e-svc.async-starter', {}),
    ('/e2e/fails', 'e2e-svc.fails', {}),
    ('/e2e/refuses', 'e2e-svc.refuses', {}),
    ('/e2e/text', 'e2e-svc.text', {}),
    ('/e2e/get-only', 'e2e-svc.hooks', {'method': 'GET'}),
    ('/e2e/big', 'e2e-svc.big', {}),
    ('/e2e/customer-by-body', 'e2e-svc.get-customer', {}),
]

_ready = {}


def _setup(env):
    if _ready.get(env.path):
        return
    env.drop('e2e_svc.py', API)
    env.wait_for(lambda: 'e2e-svc.text' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    for i, (path, service, extra) in enumerate(CHANNELS):
        env.channel(f'e2e-svc-{i}', path, service, **extra)
    env.wait_for(lambda: env.fresh_get(env.url + '/e2e/wrapped').status_code == 200)
    _ready[env.path] = True


def test_simpleio_converts_input_by_name_and_type_and_skips_empty_keys(env):
    _setup(env)
    r = requests.post(env.url + '/e2e/customer/123?is_active=false', json={'name': 'Joe', 'since': '2024-01-31'})
    assert r.status_code == 200, r.text
    assert r.json() == {'cust_id': 123, 'name': 'Joe', 'is_active': False, 'since': '2024-01-31'}
    r = requests.post(env.url + '/e2e/customer/7', json={'name': 'Ann'})
    assert r.json() == {'cust_id': 7, 'name': 'Ann', 'is_active': True}


def test_a_missing_input_is_a_400_naming_the_field(env):
    _setup(env)
    r = requests.post(env.url + '/e2e/customer/123', json={})
    assert r.status_code == 400
    body = r.json()
    assert body['result'] == 'ZATO_ERROR' and body['cid'] == r.headers['X-Zato-CID']
    assert '`name`' in body['details']


def test_a_wrongly_typed_input_is_a_400_naming_the_field(env):
    _setup(env)
    r = requests.post(env.url + '/e2e/customer/abc', json={'name': 'Joe'})
    assert r.status_code == 400
    assert '`customer_id`' in r.json()['details']
    r = requests.post(env.url + '/e2e/customer/1', json={'name': 'Joe', 'since': 'yesterday'})
    assert r.status_code == 400 and '`since`' in r.json()['details']


def test_an_integer_beyond_64_bits_is_a_400_naming_the_field_from_the_path_the_query_or_the_body(env):
    _setup(env)
    expected = 'Invalid input `customer_id`: expected an integer from -9223372036854775808 to 9223372036854775807'
    for url, body in ((env.url + '/e2e/customer/99999999999999999999999', {'name': 'Joe'}),
                      (env.url + '/e2e/customer/9223372036854775808', {'name': 'Joe'}),
                      (env.url + '/e2e/customer/1?customer_id=99999999999999999999999', {'name': 'Joe'}),
                      (env.url + '/e2e/customer-by-body', {'name': 'Joe', 'customer_id': '99999999999999999999999'}),
                      (env.url + '/e2e/customer-by-body', {'name': 'Joe', 'customer_id': 2 ** 63})):
        r = requests.post(url, json=body, timeout=10)
        assert r.status_code == 400, (url, body, r.text)
        assert r.json()['details'] == expected, (url, body)
    # Beyond 2**64 a JSON number is a float, refused as one
    r = requests.post(env.url + '/e2e/customer-by-body', data=b'{"name": "Joe", "customer_id": 99999999999999999999999}',
                      headers={'Content-Type': 'application/json'}, timeout=10)
    assert r.status_code == 400 and r.json()['details'] == 'Invalid input `customer_id`: expected an integer'
    r = requests.post(env.url + '/e2e/customer/9223372036854775807', json={'name': 'Joe'}, timeout=10)
    assert r.status_code == 200 and r.json()['cust_id'] == 2 ** 63 - 1


def test_response_elem_wraps_the_output_when_set(env):
    _setup(env)
    assert requests.get(env.url + '/e2e/wrapped').json() == {'customer': {'a': 1}}


def test_invalid_json_is_a_400(env):
    _setup(env)
    for body in (b'{"name": ', b'{"a": NaN}', b'\xff\xfe'):
        r = requests.post(env.url + '/e2e/customer/1', data=body, headers={'Content-Type': 'application/json'})
        assert r.status_code == 400, body
        assert r.json()['result'] == 'ZATO_ERROR'


def test_per_verb_handlers_are_dispatched_and_a_verb_without_one_is_a_405(env):
    _setup(env)
    r = requests.get(env.url + '/e2e/verbs/5?q=x')
    assert r.json() == {'verb': 'GET', 'id': '5', 'q': 'x'}
    r = requests.post(env.url + '/e2e/verbs/5', json={'a': 1})
    assert r.status_code == 201 and r.headers['X-Custom'] == 'yes'
    assert r.json() == {'verb': 'POST', 'got': {'a': 1}}
    r = requests.delete(env.url + '/e2e/verbs/5')
    assert r.status_code == 405
    assert r.headers['Allow'] == 'GET, POST'


def test_a_channel_restricted_to_a_method_answers_405_to_others(env):
    _setup(env)
    r = requests.post(env.url + '/e2e/get-only', headers={'X-Allow': 'yes'})
    assert r.status_code == 405
    assert r.headers['Allow'] == 'GET'


def test_head_gets_the_headers_of_get_without_a_body(env):
    _setup(env)
    get = requests.get(env.url + '/e2e/wrapped')
    head = requests.head(env.url + '/e2e/wrapped')
    assert head.status_code == 200
    assert head.content == b''
    assert head.headers['Content-Length'] == get.headers['Content-Length']


def test_accept_returning_false_refuses_with_400(env):
    _setup(env)
    assert requests.get(env.url + '/e2e/hooks').status_code == 400
    r = requests.get(env.url + '/e2e/hooks', headers={'X-Allow': 'yes'})
    assert r.json() == {'channel': 'e2e-svc-3', 'type': 'http-soap'}


def test_a_service_invokes_another_and_gets_its_output(env):
    _setup(env)
    r = requests.get(env.url + '/e2e/caller')
    assert r.json()['callee_said'] == {'double': 40}


def test_invoke_with_a_timeout_raises_invocation_timeout(env):
    _setup(env)
    assert requests.get(env.url + '/e2e/caller-timeout').json() == {'error': 'InvocationTimeout'}


def test_invoke_async_returns_a_cid_at_once_and_the_service_runs_in_the_background(env, tmp_path):
    _setup(env)
    target = tmp_path / 'async.txt'
    r = requests.get(env.url + '/e2e/async', params={'path': str(target)})
    cid = r.json()['cid']
    assert len(cid) == 24
    env.wait_for(lambda: target.exists() and target.read_text().startswith(cid))


def test_an_unexpected_error_is_a_500_without_a_traceback_and_is_logged_with_its_cid(env):
    _setup(env)
    r = requests.get(env.url + '/e2e/fails')
    assert r.status_code == 500
    assert 'secret internal detail' not in r.text and 'Traceback' not in r.text
    cid = r.headers['X-Zato-CID']
    env.wait_for(lambda: cid in env.log() and 'secret internal detail' in env.log())


def test_a_service_chooses_a_client_error_status_by_raising(env):
    _setup(env)
    r = requests.get(env.url + '/e2e/refuses')
    assert r.status_code == 400 and r.json()['details'] == 'Customer is closed'


def test_a_string_payload_is_sent_as_is_with_the_services_content_type(env):
    _setup(env)
    r = requests.get(env.url + '/e2e/text')
    assert r.text == 'plain text' and r.headers['Content-Type'] == 'text/plain'


def test_the_cli_invokes_a_service_with_a_payload(env):
    _setup(env)
    from tests.e2e.harness import zato
    out = zato('service', 'invoke', env.path, 'e2e-svc.callee', '--payload', '{"n": 4}')
    assert '"double": 8' in out.stdout
    out = zato('service', 'invoke', env.path, 'e2e-svc.callee', '--payload', '{}', check=False)
    assert out.returncode == 1 and 'Missing input `n`' in out.stderr
    out = zato('service', 'invoke', env.path, 'e2e-svc.callee', '--payload', '{bad', check=False)
    assert out.returncode == 1 and '--payload is not valid JSON' in out.stderr
    assert os.path.exists(env.path)


def test_the_cli_prints_nothing_for_a_service_that_returns_nothing(env):
    _setup(env)
    from tests.e2e.harness import zato
    out = zato('service', 'invoke', env.path, 'e2e-svc.silent')
    assert (out.returncode, out.stdout, out.stderr) == (0, '', '')
    # The admin API says so with a 204 and no body, not {"response": ""}
    r = requests.post(env.url + '/zato/admin/invoke', json={'name': 'e2e-svc.silent'}, headers=env.admin.headers)
    assert (r.status_code, r.content) == (204, b'')
    # A string still comes back as {"response": ...}
    assert json.loads(zato('service', 'invoke', env.path, 'e2e-svc.text').stdout) == {'response': 'plain text'}


def test_a_response_larger_than_the_socket_buffer_arrives_whole(env):
    _setup(env)
    for _ in range(3):
        r = requests.get(env.url + '/e2e/big')
        assert r.status_code == 200 and len(r.content) == 3_000_000
