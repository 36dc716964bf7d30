"""[user_validation] service and [signup] callback_service_list on a running server: the services
are the deployment's own, from the pickup directory, invoked by SSO as 3.1 did."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.harness import Env, zato
from tests.e2e.test_sso import ENABLED, PASSWORD, call, login
from tests.e2e.test_sso_docs import apply_ini

SERVICES = '''
import json, os
from zato.server.service import Service

class Validate(Service):
    """The built-in rules first, then one of our own: no `bad` in a username."""
    name = 'my.validate'

    def handle(self):
        data = self.request.payload
        out = self.invoke('zato.sso.signup.validate', data)
        if out['is_valid'] and 'bad' in data['username']:
            out = {'is_valid': False, 'sub_status': ['E001001']}
        self.response.payload = out

class OnSignUp(Service):
    name = 'my.on-signup'

    def handle(self):
        with open(os.environ['ZATO_TEST_SIGNUP_LOG'], 'a') as f:
            f.write(json.dumps(self.request.payload) + '\\n')
'''

INI = '''[apps]
signup_allowed = CRM
[signup]
callback_service_list = my.on-signup
[user_validation]
service = zato.sso.signup.validate, my.validate
'''


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp('sso-hooks')
    log = str(home / 'signed-up.jsonl')
    e = Env(str(home / 'env'), env={**ENABLED, 'ZATO_TEST_SIGNUP_LOG': log})
    path = os.path.join(e.path, 'config', 'repo', 'sso.conf')
    with open(path, encoding='utf-8') as f:
        conf = f.read()
    with open(path, 'w', encoding='utf-8') as f:
        f.write(apply_ini(conf, INI))
    e.drop('sso_hooks.py', SERVICES)
    zato('sso', 'create-super-user', e.path, 'root1', '--password-stdin', input_text=PASSWORD + '\n', env=e.env)
    e.start()
    e.log_path = log
    yield e
    e.stop()


def signed_up(env) -> list[dict]:
    if not os.path.exists(env.log_path):
        return []
    with open(env.log_path, encoding='utf-8') as f:
        return [json.loads(line) for line in f]


def signup(env, username: str):
    return call(env, 'POST', '/zato/sso/user/signup', {'username': username, 'password': PASSWORD,
                                                       'email': f'{username}@example.com', 'current_app': 'CRM'})


def test_a_sign_up_is_validated_by_the_deployments_service_and_its_callback_hears_of_it(env):
    env.wait_for(lambda: signup(env, 'bad-apple').status_code == 400, timeout=30)  # once the services are deployed
    resp = signup(env, 'bad-apple')
    assert (resp.status_code, resp.json()['sub_status']) == (400, ['E001001'])
    resp = signup(env, 'good-apple')
    assert resp.status_code == 200, resp.text
    env.wait_for(lambda: any(u['username'] == 'good-apple' for u in signed_up(env)), timeout=10)
    [heard] = [u for u in signed_up(env) if u['username'] == 'good-apple']
    assert heard['sign_up_confirm_token'] == resp.json()['confirm_token'] and heard['current_app'] == 'CRM'
    assert heard['user_id'].startswith('zusr') and 'password' not in heard
    assert all(u['username'] != 'bad-apple' for u in signed_up(env))


def test_the_built_in_rules_still_apply_through_the_built_in_service(env):
    # A reserved name refused by the built-in rules: the generic answer, as [signup] inform_if_user_invalid is false
    resp = signup(env, 'admin')
    assert (resp.status_code, resp.json()['sub_status']) == (403, ['E005001'])


def test_a_super_users_create_goes_through_the_validation_service_too(env):
    root = login(env)
    resp = call(env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': 'badly-made',
                                                'password': PASSWORD})
    assert (resp.status_code, resp.json()['sub_status']) == (400, ['E001001'])
    resp = call(env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': 'well-made',
                                                'password': PASSWORD})
    assert resp.status_code == 200, resp.text
