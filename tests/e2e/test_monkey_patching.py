"""A worker is monkey-patched before anything takes the standard library's ssl objects by name: the
gunicorn master imports none of the modules that do (jwt.jwks_client, urllib3), so a start prints no
MonkeyPatchWarning and those modules, imported in the worker, use gevent's ssl."""

from __future__ import annotations

import os

from tests.e2e.harness import Env

SSL_CHECK = '''
import ssl

import jwt.jwks_client
from zato.server.service import Service

class SSLCheck(Service):
    name = 'patching.ssl-check'

    def handle(self):
        self.response.payload = {'ssl_context': ssl.SSLContext.__module__,
                                 'jwks_client_context': jwt.jwks_client.SSLContext.__module__}
'''


def output_of(env: Env, server: str = 'server1') -> str:
    """What the server's processes wrote to stdout and stderr (`zato start` sends both to this file)."""
    with open(os.path.join(env.path, 'logs', f'{server}.stdout.log'), encoding='utf-8') as f:
        return f.read()


def test_a_start_prints_no_monkey_patch_warning_and_jwt_uses_gevents_ssl(env):
    env.wait_for(lambda: env.fresh_get(env.url + '/zato/ping').status_code == 200)
    # Each worker has written its start-up lines by now
    env.wait_for(lambda: env.log().count(' ready') >= 2, timeout=10)
    assert 'MonkeyPatchWarning' not in output_of(env)
    assert 'MonkeyPatchWarning' not in env.log()

    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'patching_ssl.py', 'source': SSL_CHECK})
    env.channel('patching-ssl', '/test/patching/ssl', 'patching.ssl-check')
    for _ in range(4):  # both workers
        body = env.fresh_get(env.url + '/test/patching/ssl').json()
        assert body == {'ssl_context': 'gevent.ssl', 'jwks_client_context': 'gevent.ssl'}, body
