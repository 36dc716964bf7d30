"""[user_validation] service and [signup] callback_service_list on a running server: the services
are the deployment's own, from the pickup directory, invoked by SSO as 3.1 did."""

from __future__ import annotations

import os
import re

import pytest

from tests.e2e.harness import Env, zato
from tests.e2e.test_sso import ENABLED, PASSWORD, call, login
from tests.e2e.test_sso_docs import apply_ini, read_page


def from_page(pattern: str) -> str:
    """A block of docs/sso.md: the page's example is what runs here."""
    [block] = re.findall(pattern, read_page(), re.M | re.S)
    return block


# The module and the sso.conf of docs/sso.md's "Validating new users and hearing of sign-ups"
SERVICES = from_page(r'^```python\n(# ~/zato-quickstart/pickup/incoming/services/sso_hooks\.py\n.*?)^```')
HOOKS_INI = from_page(r'^```conf\n(.*?)^```')

INI = '[apps]\nsignup_allowed = CRM\n' + HOOKS_INI


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp('sso-hooks')
    e = Env(str(home / 'env'), env=ENABLED)
    path = os.path.join(e.path, 'config', 'repo', 'sso.conf')
    with open(path, encoding='utf-8') as f:
        conf = f.read()
    with open(path, 'w', encoding='utf-8') as f:
        f.write(apply_ini(conf, INI))
    e.drop('sso_hooks.py', SERVICES)
    zato('sso', 'create-super-user', e.path, 'root1', '--password-stdin', input_text=PASSWORD + '\n', env=e.env)
    e.start()
    yield e
    e.stop()


def signed_up(env) -> list[tuple[str, str, str]]:
    """(username, user_id, current_app) of each sign-up the callback logged."""
    return re.findall(r'New SSO user `([^`]+)` \((zusr\w+)\) signed up from (\w+)', env.log())


def signup(env, username: str):
    return call(env, 'POST', '/zato/sso/user/signup', {'username': username, 'password': PASSWORD,
                                                       'email': f'{username}@example.com', 'current_app': 'CRM'})


def test_a_sign_up_is_validated_by_the_deployments_service_and_its_callback_hears_of_it(env):
    env.wait_for(lambda: signup(env, 'test-apple').status_code == 400, timeout=30)  # once the services are deployed
    resp = signup(env, 'test-apple')
    assert (resp.status_code, resp.json()['sub_status']) == (400, ['E001001'])
    resp = signup(env, 'good-apple')
    assert resp.status_code == 200, resp.text
    env.wait_for(lambda: any(u[0] == 'good-apple' for u in signed_up(env)), timeout=10)
    root = login(env)
    [user] = call(env, 'GET', '/zato/sso/user/search', {'ust': root, 'current_app': 'CRM',
                                                        'username': 'good-apple'}).json()['result']
    assert ('good-apple', user['user_id'], 'CRM') in signed_up(env)
    assert all(u[0] != 'test-apple' for u in signed_up(env))


def test_the_built_in_rules_still_apply_through_the_built_in_service(env):
    # A reserved name refused by the built-in rules: the generic answer, as [signup] inform_if_user_invalid is false
    resp = signup(env, 'admin')
    assert (resp.status_code, resp.json()['sub_status']) == (403, ['E005001'])


def test_a_super_users_create_goes_through_the_validation_service_too(env):
    root = login(env)
    resp = call(env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': 'a-test-user',
                                                'password': PASSWORD})
    assert (resp.status_code, resp.json()['sub_status']) == (400, ['E001001'])
    resp = call(env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': 'well-made',
                                                'password': PASSWORD})
    assert resp.status_code == 200, resp.text
