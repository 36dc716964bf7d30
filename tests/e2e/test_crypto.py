"""self.crypto and self.time through a deployed service on a running server (2 workers): what one
worker encrypts every worker decrypts, and so does anything holding the environment's key
(config/repo/secrets.conf); what the key did not make is refused; self.time tells the real time."""

from __future__ import annotations

from datetime import UTC, datetime

import requests
from cryptography.fernet import Fernet

from zato.security.secrets_file import read_secrets

SERVICES = '''
import os

from zato.server.service import BadRequest, Service
from zato.service.crypto import DecryptionError


class Encrypt(Service):
    name = 'crypto-test.encrypt'

    def handle(self):
        self.response.payload = {'token': self.crypto.encrypt(self.request.payload['text']), 'pid': os.getpid()}


class Decrypt(Service):
    name = 'crypto-test.decrypt'

    def handle(self):
        try:
            text = self.crypto.decrypt(self.request.payload['token'])
        except DecryptionError as e:
            raise BadRequest(str(e)) from None
        self.response.payload = {'text': text, 'pid': os.getpid()}


class Hash(Service):
    name = 'crypto-test.hash'

    def handle(self):
        req = self.request.payload
        if 'hash' in req:
            self.response.payload = {'ok': self.crypto.verify_hash(req['secret'], req['hash'])}
        else:
            self.response.payload = {'hash': self.crypto.hash_secret(req['secret'])}


class Now(Service):
    name = 'crypto-test.now'

    def handle(self):
        self.response.payload = {'utcnow': self.time.utcnow(format='YYYY-MM-DDTHH:mm:ss.SSSSSSZZ')}
'''


def call(env, path: str, body: dict) -> requests.Response:
    return requests.post(env.url + path, json=body, headers={'Connection': 'close'}, timeout=10)


def test_self_crypto_and_self_time_in_a_deployed_service(env):
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'crypto_test.py', 'source': SERVICES})
    for name in ('encrypt', 'decrypt', 'hash', 'now'):
        env.channel(f'crypto-test-{name}', f'/crypto-test/{name}', f'crypto-test.{name}')
    env.wait_for(lambda: call(env, '/crypto-test/now', {}).status_code == 200, timeout=5)

    # Encrypted by one worker, decrypted by both (new connections spread the calls)
    r = call(env, '/crypto-test/encrypt', {'text': 'zażółć: the secret'})
    assert r.status_code == 200, r.text
    token = r.json()['token']
    pids = set()

    def decrypted_by_both() -> bool:
        # New connections go to either worker, though not in turn: the kernel may hand several in a row
        # to the same one, so this asks until both have answered
        r = call(env, '/crypto-test/decrypt', {'token': token})
        assert r.status_code == 200 and r.json()['text'] == 'zażółć: the secret', r.text
        pids.add(r.json()['pid'])
        return len(pids) == 2
    env.wait_for(decrypted_by_both, timeout=10)

    # The environment's key, from secrets.conf, is the one: it decrypts the service's token, and the
    # service decrypts its tokens; a token of another key is refused with a clear 400
    key = Fernet(read_secrets(env.path)['secret_key'].encode())
    assert key.decrypt(token.encode()).decode() == 'zażółć: the secret'
    r = call(env, '/crypto-test/decrypt', {'token': key.encrypt(b'from outside').decode()})
    assert r.json()['text'] == 'from outside'
    r = call(env, '/crypto-test/decrypt', {'token': Fernet(Fernet.generate_key()).encrypt(b'x').decode()})
    assert r.status_code == 400
    assert r.json()['details'] == "Could not decrypt: not a token encrypted with this environment's key"

    # A hash made on one worker verifies on any, and only for its secret
    hashed = call(env, '/crypto-test/hash', {'secret': 's3cret'}).json()['hash']
    assert hashed.startswith('$argon2id$')
    assert all(call(env, '/crypto-test/hash', {'secret': 's3cret', 'hash': hashed}).json() == {'ok': True}
               for _ in range(4))
    assert call(env, '/crypto-test/hash', {'secret': 's3creT', 'hash': hashed}).json() == {'ok': False}

    # self.time tells the real time, in UTC
    before = datetime.now(UTC)
    told = datetime.fromisoformat(call(env, '/crypto-test/now', {}).json()['utcnow'])
    assert told.utcoffset().total_seconds() == 0
    assert before.timestamp() - 0.01 <= told.timestamp() <= datetime.now(UTC).timestamp() + 0.01
