"""JWT log-in, bearer tokens on a channel, sliding expiry, log-out, and tampered tokens."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
import requests

from zato.security.jwt_auth import signing_key
from zato.security.secrets_file import read_secrets

SERVICE = '''
from zato.server.service import Service

class Me(Service):
    def handle(self):
        self.response.payload = {'username': self.channel.security.username, 'type': self.channel.security.type}
'''

PASSWORD = 'jwt user secret of some length'
_ready = {}


def _setup(env):
    if env.path in _ready:
        return _ready[env.path]
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'jwt_svc.py', 'source': SERVICE})
    env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-jwt', 'kind': 'jwt', 'username': 'jwt-user',
                                                    'password': PASSWORD, 'ttl': 2, 'max_lifetime': 3600,
                                                    'audience': 'my-api'})
    env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-jwt-other', 'kind': 'jwt', 'username': 'other',
                                                    'password': PASSWORD, 'ttl': 60})
    env.channel('e2e-jwt', '/e2e/jwt/me', 'jwt-svc.me', security='e2e-jwt')
    env.channel('e2e-jwt-other', '/e2e/jwt/other', 'jwt-svc.me', security='e2e-jwt-other')
    key = signing_key(read_secrets(env.path)['secret_key'])
    env.wait_for(lambda: requests.get(env.url + '/e2e/jwt/other').status_code == 401)
    _ready[env.path] = key
    return key


def log_in(env, username='jwt-user', password=PASSWORD):
    return requests.post(env.url + '/zato/jwt/log-in', json={'username': username, 'password': password})


def bearer(token):
    return {'Authorization': f'Bearer {token}', 'Connection': 'close'}


def test_log_in_returns_a_token_that_opens_the_channel(env):
    _setup(env)
    r = log_in(env)
    assert r.status_code == 200 and r.headers['Cache-Control'] == 'no-store'
    body = r.json()
    assert body['token_type'] == 'Bearer' and body['expires_in'] == 2
    me = requests.get(env.url + '/e2e/jwt/me', headers=bearer(body['token']))
    assert me.status_code == 200 and me.json() == {'username': 'jwt-user', 'type': 'jwt'}


def test_a_failed_log_in_does_not_say_whether_the_user_exists(env):
    _setup(env)
    wrong_password, unknown_user = log_in(env, password='nope'), log_in(env, username='nobody')
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json()['details'] == unknown_user.json()['details'] == 'Invalid credentials'


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_tampered_expired_and_foreign_tokens_are_all_refused_with_401(env):
    key = _setup(env)
    good = jwt.decode(log_in(env).json()['token'], key, algorithms=['HS256'], audience='my-api')
    now = int(time.time())
    unsigned = (base64.urlsafe_b64encode(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode()).rstrip(b'=') + b'.' +
                base64.urlsafe_b64encode(json.dumps(good).encode()).rstrip(b'=') + b'.').decode()
    tokens = {
        'alg none': unsigned,
        'wrong key': jwt.encode(good, b'not the key' * 3, algorithm='HS256'),
        'HS512 with the right key': jwt.encode(good, key, algorithm='HS512'),
        'expired': jwt.encode({**good, 'exp': now - 10}, key, algorithm='HS256'),
        'not yet valid': jwt.encode({**good, 'nbf': now + 600}, key, algorithm='HS256'),
        'wrong audience': jwt.encode({**good, 'aud': 'another-api'}, key, algorithm='HS256'),
        'no audience': jwt.encode({k: v for k, v in good.items() if k != 'aud'}, key, algorithm='HS256'),
        'unknown session': jwt.encode({**good, 'jti': 'made-up'}, key, algorithm='HS256'),
        'another user': jwt.encode({**good, 'sub': 'other'}, key, algorithm='HS256'),
        'garbage': 'abc.def.ghi',
    }
    for what, token in tokens.items():
        r = requests.get(env.url + '/e2e/jwt/me', headers=bearer(token))
        assert r.status_code == 401, what
        assert r.headers['WWW-Authenticate'].startswith('Bearer'), what
    assert requests.get(env.url + '/e2e/jwt/me', headers=bearer(jwt.encode(good, key, algorithm='HS256'))) \
        .status_code == 200


def test_a_token_of_one_definition_does_not_open_a_channel_of_another(env):
    _setup(env)
    other = log_in(env, username='other').json()['token']
    assert requests.get(env.url + '/e2e/jwt/other', headers=bearer(other)).status_code == 200
    assert requests.get(env.url + '/e2e/jwt/me', headers=bearer(other)).status_code == 401


def test_each_use_slides_the_expiry_on_every_worker_and_an_idle_token_expires(env):
    _setup(env)
    token = log_in(env).json()['token']
    started = time.monotonic()
    while time.monotonic() - started < 4.5:   # more than twice the ttl of 2 s
        assert requests.get(env.url + '/e2e/jwt/me', headers=bearer(token)).status_code == 200
        time.sleep(0.7)
    time.sleep(2.6)
    assert requests.get(env.url + '/e2e/jwt/me', headers=bearer(token)).status_code == 401


def test_log_out_ends_the_token_on_every_worker_within_a_second(env):
    _setup(env)
    token = log_in(env).json()['token']
    assert requests.get(env.url + '/e2e/jwt/me', headers=bearer(token)).status_code == 200
    r = requests.post(env.url + '/zato/jwt/log-out', headers=bearer(token))
    assert r.status_code == 200
    took = env.wait_for(lambda: all(requests.get(env.url + '/e2e/jwt/me', headers=bearer(token)).status_code == 401
                                    for _ in range(6)))
    assert took < 1.0
    assert requests.post(env.url + '/zato/jwt/log-out', headers=bearer(token)).status_code == 401


def test_a_token_works_at_once_on_every_worker_right_after_log_in(env):
    _setup(env)
    for _ in range(5):
        token = log_in(env).json()['token']
        # A new connection each time, so the first use often lands on a worker that did not issue it
        assert requests.get(env.url + '/e2e/jwt/me', headers=bearer(token)).status_code == 200
