"""A real quickstart environment: services deployed through the pickup directory and the CLI,
REST channels through the admin API, called with a real HTTP client."""

from __future__ import annotations

import time

import requests

from tests.e2e.harness import zato

HELLO_V1 = '''
from zato.server.service import Service

class Hello(Service):
    def handle(self):
        self.response.payload = {'version': 1, 'name': self.name}
'''

HELLO_V2 = HELLO_V1.replace("'version': 1", "'version': 2")

BROKEN = HELLO_V1 + '\ndef broken(:\n'


def test_ping_answers_for_load_balancers(env):
    r = requests.get(env.url + '/zato/ping', timeout=5)
    assert r.status_code == 200
    assert r.json() == {'pong': 'zato'}
    assert len(r.headers['X-Zato-CID']) == 24


def test_a_file_dropped_into_pickup_is_served_within_two_seconds(env):
    env.drop('e2e_hello.py', HELLO_V1)
    dropped = time.monotonic()
    env.wait_for(lambda: 'e2e-hello.hello' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    assert time.monotonic() - dropped < 2.0
    env.channel('e2e-hello', '/e2e/hello', 'e2e-hello.hello')
    env.wait_for(lambda: env.fresh_get(env.url + '/e2e/hello').status_code == 200, timeout=1.0)
    r = env.fresh_get(env.url + '/e2e/hello')
    assert r.json() == {'version': 1, 'name': 'e2e-hello.hello'}
    assert r.headers['Content-Type'] == 'application/json'


def test_a_redeploy_replaces_the_service_in_place_on_every_worker(env):
    env.drop('e2e_redeploy.py', HELLO_V1)
    env.wait_for(lambda: 'e2e-redeploy.hello' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.channel('e2e-redeploy', '/e2e/redeploy', 'e2e-redeploy.hello')
    env.wait_for(lambda: env.fresh_get(env.url + '/e2e/redeploy').status_code == 200)
    env.drop('e2e_redeploy.py', HELLO_V2)
    # Every request over a new connection, so both workers are asked
    env.wait_for(lambda: all(env.fresh_get(env.url + '/e2e/redeploy').json()['version'] == 2 for _ in range(10)),
                 timeout=2.0)


def test_a_module_that_fails_to_import_is_reported_and_the_previous_version_keeps_serving(env):
    env.drop('e2e_broken.py', HELLO_V1)
    env.wait_for(lambda: 'e2e-broken.hello' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.channel('e2e-broken', '/e2e/broken', 'e2e-broken.hello')
    env.wait_for(lambda: env.fresh_get(env.url + '/e2e/broken').status_code == 200)
    env.drop('e2e_broken.py', BROKEN)
    env.wait_for(lambda: 'e2e_broken.py, line 8: SyntaxError' in env.log())
    for _ in range(6):
        r = env.fresh_get(env.url + '/e2e/broken')
        assert r.status_code == 200 and r.json()['version'] == 1


def test_zato_deploy_deploys_a_file_and_reports_a_broken_one_in_one_line(env, tmp_path):
    good = tmp_path / 'e2e_cli.py'
    good.write_text(HELLO_V1)
    out = zato('deploy', str(good), env.path)
    assert 'Deployed e2e_cli.py (version 1): e2e-cli.hello' in out.stdout
    bad = tmp_path / 'e2e_cli_bad.py'
    bad.write_text('import no_such_module_here\n')
    out = zato('deploy', str(bad), env.path, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().count('\n') == 0
    assert "e2e_cli_bad.py, line 1: ModuleNotFoundError: No module named 'no_such_module_here'" in out.stderr
    assert 'Traceback' not in out.stderr


def test_a_channel_created_edited_and_deleted_through_the_admin_api_is_served_within_one_second(env):
    env.drop('e2e_chan.py', HELLO_V1)
    env.wait_for(lambda: 'e2e-chan.hello' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    created = env.channel('e2e-chan', '/e2e/chan/v1', 'e2e-chan.hello')
    took = env.wait_for(lambda: all(env.fresh_get(env.url + '/e2e/chan/v1').status_code == 200 for _ in range(6)))
    assert took < 1.0

    env.admin.call('PUT', f'/zato/admin/channels/rest/{created["id"]}', {'url_path': '/e2e/chan/v2'})
    took = env.wait_for(lambda: all(env.fresh_get(env.url + '/e2e/chan/v2').status_code == 200
                                    and env.fresh_get(env.url + '/e2e/chan/v1').status_code == 404
                                    for _ in range(4)))
    assert took < 1.0

    env.admin.call('DELETE', f'/zato/admin/channels/rest/{created["id"]}')
    took = env.wait_for(lambda: all(env.fresh_get(env.url + '/e2e/chan/v2').status_code == 404 for _ in range(6)))
    assert took < 1.0


def test_bad_admin_input_gets_a_clear_4xx_and_never_a_traceback(env):
    from zato.admin_client import AdminCallError
    cases = [
        ({'name': 'x', 'url_path': 'no-slash', 'service': 'zato.ping'}, 400, 'url_path'),
        ({'name': 'x', 'url_path': '/x', 'service': 'no.such.service'}, 400, 'not deployed'),
        ({'url_path': '/x', 'service': 'zato.ping'}, 400, 'Missing input `name`'),
        ({'name': 'x', 'url_path': '/x', 'service': 'zato.ping', 'is_active': 'yes'}, 400, 'is_active'),
        ({'name': 'x', 'url_path': '/zato/x', 'service': 'zato.ping'}, 400, 'reserved'),
    ]
    for payload, status, text in cases:
        try:
            env.admin.call('POST', '/zato/admin/channels/rest', payload)
        except AdminCallError as e:
            assert e.status == status, (payload, e)
            assert text in str(e.details), (payload, e.details)
        else:
            raise AssertionError(f'accepted {payload}')

    env.channel('e2e-dup', '/e2e/dup', 'zato.ping')
    for payload in ({'name': 'e2e-dup', 'url_path': '/e2e/dup2', 'service': 'zato.ping'},
                    {'name': 'e2e-dup2', 'url_path': '/e2e/dup', 'service': 'zato.ping'}):
        try:
            env.admin.call('POST', '/zato/admin/channels/rest', payload)
        except AdminCallError as e:
            assert e.status == 409
        else:
            raise AssertionError('duplicate accepted')

    # An edit onto a taken name is a 409 too, not a 500 (a check's query must not flush the half-edited row)
    other = env.channel('e2e-dup3', '/e2e/dup3', 'zato.ping')
    for change in ({'name': 'e2e-dup'}, {'url_path': '/e2e/dup'}):
        try:
            env.admin.call('PUT', f'/zato/admin/channels/rest/{other["id"]}', change)
        except AdminCallError as e:
            assert e.status == 409, (change, e)
        else:
            raise AssertionError(f'edit {change} accepted')
    assert env.admin.call('GET', f'/zato/admin/channels/rest/{other["id"]}')['name'] == 'e2e-dup3'


def test_the_admin_api_needs_the_admin_credential(env):
    r = requests.get(env.url + '/zato/admin/services', timeout=5)
    assert r.status_code == 401
    assert r.headers['WWW-Authenticate'].startswith('Basic realm=')
    assert r.json()['result'] == 'ZATO_ERROR'
    r = requests.get(env.url + '/zato/admin/services', auth=('admin.invoke', 'wrong'), timeout=5)
    assert r.status_code == 401
    r = requests.get(env.url + '/zato/admin/services', auth=('nobody', 'wrong'), timeout=5)
    assert r.status_code == 401


ROUTE_ECHO = '''
from zato.server.service import Service

class Customer(Service):
    def handle(self):
        self.response.payload = {'service': 'customer', 'params': dict(self.request.http.params)}

class Report(Service):
    def handle(self):
        self.response.payload = {'service': 'report', 'params': dict(self.request.http.params)}
'''


def test_a_literal_segment_outranks_a_parameter_and_one_template_cannot_be_served_twice(env):
    from zato.admin_client import AdminCallError
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'e2e_routes.py', 'source': ROUTE_ECHO})
    env.wait_for(lambda: 'e2e-routes.report' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.channel('e2e-report', '/e2e-rt/{kind}/summary-report', 'e2e-routes.report')
    env.channel('e2e-customer', '/e2e-rt/customer/{id}', 'e2e-routes.customer')
    url = env.url + '/e2e-rt/customer/summary-report'
    env.wait_for(lambda: all(env.fresh_get(url).json().get('service') == 'customer' for _ in range(4)))
    assert env.fresh_get(url).json() == {'service': 'customer', 'params': {'id': 'summary-report'}}
    assert env.fresh_get(env.url + '/e2e-rt/invoice/summary-report').json() == \
        {'service': 'report', 'params': {'kind': 'invoice'}}

    try:
        env.channel('e2e-customer-2', '/e2e-rt/customer/{customer_id}', 'e2e-routes.report')
    except AdminCallError as e:
        assert e.status == 409 and 'e2e-customer' in e.details and 'same template' in e.details, e
    else:
        raise AssertionError('a second channel for one template was accepted')
    env.channel('e2e-customer-post', '/e2e-rt/customer/{customer_id}', 'e2e-routes.report', method='POST')


PARAMS_PRI = '''
from zato.server.service import Service

class Name(Service):
    class SimpleIO:
        input_required = 'name',
        output_required = 'name',

    def handle(self):
        self.response.payload.name = self.request.input.name
'''


def test_a_channels_params_pri_decides_whether_the_path_or_the_body_wins(env):
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'e2e_params_pri.py', 'source': PARAMS_PRI})
    env.wait_for(lambda: 'e2e-params-pri.name' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.channel('e2e-pp-default', '/e2e-pp/default/{name}', 'e2e-params-pri.name')
    env.channel('e2e-pp-msg', '/e2e-pp/msg/{name}', 'e2e-params-pri.name', params_pri='msg-over-channel-params')

    def name_via(path: str) -> str:
        r = requests.post(env.url + path, json={'name': 'from-body'}, headers={'Connection': 'close'}, timeout=5)
        return r.json().get('name')

    env.wait_for(lambda: all(name_via('/e2e-pp/msg/from-path') == 'from-body' for _ in range(4)))
    assert {name_via('/e2e-pp/default/from-path') for _ in range(4)} == {'from-path'}
