"""Security definitions on REST channels, end to end."""

from __future__ import annotations

import requests

from zato.admin_client import AdminCallError

WHO = '''
from zato.server.service import Service

class WhoAmI(Service):
    def handle(self):
        sec = self.channel.security
        self.response.payload = {'name': sec.name, 'type': sec.type, 'username': sec.username}
'''

_ready = {}


def _setup(env):
    if env.path in _ready:
        return _ready[env.path]
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'e2e_sec.py', 'source': WHO})
    basic = env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-basic', 'kind': 'basic_auth',
                                                            'username': 'joe', 'realm': 'My API'})
    apikey = env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-key', 'kind': 'apikey',
                                                             'header': 'X-API-Key'})
    env.channel('e2e-sec-basic', '/e2e/sec/basic', 'e2e-sec.who-am-i', security='e2e-basic')
    env.channel('e2e-sec-key', '/e2e/sec/key', 'e2e-sec.who-am-i', security='e2e-key')
    env.wait_for(lambda: requests.get(env.url + '/e2e/sec/key').status_code == 401)
    _ready[env.path] = basic, apikey
    return basic, apikey


def test_a_new_definition_gets_a_random_secret_shown_once_and_never_listed(env):
    basic, apikey = _setup(env)
    assert len(basic['password']) >= 24 and basic['password'] != apikey['password']
    listed = env.admin.call('GET', '/zato/admin/security')
    assert all('password' not in item and 'password_hash' not in item for item in listed)
    assert {'e2e-basic', 'e2e-key'} <= {item['name'] for item in listed}
    assert 'admin.invoke' not in {item['name'] for item in listed}


def test_basic_auth_lets_the_right_credentials_in_and_tells_the_service_who_called(env):
    basic, _ = _setup(env)
    r = requests.get(env.url + '/e2e/sec/basic', auth=('joe', basic['password']))
    assert r.status_code == 200
    assert r.json() == {'name': 'e2e-basic', 'type': 'basic_auth', 'username': 'joe'}


def test_basic_auth_failures_are_401_with_the_realm_and_say_nothing_about_the_user(env):
    basic, _ = _setup(env)
    bodies = []
    for auth in (None, ('joe', 'wrong password'), ('nobody', basic['password']), ('nobody', 'x')):
        r = requests.get(env.url + '/e2e/sec/basic', auth=auth)
        assert r.status_code == 401
        assert r.headers['WWW-Authenticate'] == 'Basic realm="My API"'
        body = r.json()
        bodies.append((body['result'], body['details']))
    assert len(set(bodies)) == 1


def test_an_api_key_is_checked_in_the_header_the_definition_names(env):
    _, apikey = _setup(env)
    r = requests.get(env.url + '/e2e/sec/key', headers={'X-API-Key': apikey['password']})
    assert r.status_code == 200 and r.json()['type'] == 'apikey'
    r = requests.get(env.url + '/e2e/sec/key', headers={'X-API-Key': 'wrong'})
    assert r.status_code == 401 and r.headers['WWW-Authenticate'].startswith('zato-apikey')
    assert requests.get(env.url + '/e2e/sec/key', headers={'X-Other': apikey['password']}).status_code == 401


def test_changing_a_password_locks_the_old_one_out_on_every_worker_within_a_second(env):
    created = env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-rotate', 'kind': 'basic_auth',
                                                              'username': 'ann'})
    env.channel('e2e-sec-rotate', '/e2e/sec/rotate', 'e2e-sec.who-am-i', security='e2e-rotate')
    old = ('ann', created['password'])
    env.wait_for(lambda: all(env.fresh_get(env.url + '/e2e/sec/rotate', auth=old).status_code == 200
                             for _ in range(4)))
    env.admin.call('POST', f'/zato/admin/security/{created["id"]}/change-password',
                   {'password': 'a much better secret'})
    took = env.wait_for(lambda: all(env.fresh_get(env.url + '/e2e/sec/rotate', auth=old).status_code == 401
                                    for _ in range(6)))
    assert took < 1.0
    r = env.fresh_get(env.url + '/e2e/sec/rotate', auth=('ann', 'a much better secret'))
    assert r.status_code == 200


def test_weak_passwords_and_bad_definitions_are_refused_with_400(env):
    sec_id = _setup(env)[0]['id']
    cases = [
        ('POST', f'/zato/admin/security/{sec_id}/change-password', {'password': 'password'}, 'most common'),
        ('POST', f'/zato/admin/security/{sec_id}/change-password', {'password': 'short'}, 'at least 8'),
        ('POST', '/zato/admin/security', {'name': 'x', 'kind': 'oauth', 'username': 'u'}, '`kind`'),
        ('POST', '/zato/admin/security', {'name': 'x', 'kind': 'basic_auth', 'username': 'a:b'}, '`username`'),
        ('POST', '/zato/admin/security', {'name': 'x', 'kind': 'apikey', 'header': 'X Key'}, '`header`'),
    ]
    for method, path, body, text in cases:
        try:
            env.admin.call(method, path, body)
        except AdminCallError as e:
            assert e.status == 400 and text in str(e.details), (body, e.details)
        else:
            raise AssertionError(f'accepted {body}')


def test_a_definition_used_by_a_channel_cannot_be_deleted(env):
    basic, _ = _setup(env)
    try:
        env.admin.call('DELETE', f'/zato/admin/security/{basic["id"]}')
    except AdminCallError as e:
        assert e.status == 409 and 'e2e-sec-basic' in e.details
    else:
        raise AssertionError('deleted a definition in use')


def test_the_cli_creates_a_definition_and_changes_its_password(env):
    import subprocess
    import sys

    from tests.e2e.harness import ROOT, zato
    out = zato('security', 'create', env.path, 'e2e-cli-sec', '--username', 'cli-user')
    assert 'Created basic_auth definition `e2e-cli-sec`' in out.stdout
    secret = out.stdout.split('Secret: ')[1].split()[0]
    env.channel('e2e-sec-cli', '/e2e/sec/cli', 'e2e-sec.who-am-i', security='e2e-cli-sec')
    env.wait_for(lambda: requests.get(env.url + '/e2e/sec/cli', auth=('cli-user', secret)).status_code == 200)

    proc = subprocess.run([sys.executable, '-m', 'zato.cli.main', 'security', 'change-password', env.path,
                           'e2e-cli-sec', '--password-stdin'], input='a fine new secret\n', text=True,
                          capture_output=True, cwd=ROOT, env={**__import__('os').environ, 'PYTHONPATH': ROOT})
    assert proc.returncode == 0 and 'changed' in proc.stdout
    env.wait_for(lambda: requests.get(env.url + '/e2e/sec/cli', auth=('cli-user', 'a fine new secret')).status_code
                 == 200)
    out = zato('security', 'change-password', env.path, 'no-such-def', check=False)
    assert out.returncode == 1 and 'no security definition named' in out.stderr
    listed = zato('security', 'list', env.path).stdout
    assert 'e2e-cli-sec' in listed and secret not in listed
