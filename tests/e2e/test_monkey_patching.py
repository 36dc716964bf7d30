"""The gunicorn master is monkey-patched before it imports anything, so the modules that take the
standard library's ssl objects by name (jwt.jwks_client), which it preloads for its workers, get
gevent's: a start prints no MonkeyPatchWarning and the workers use gevent's ssl."""

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
    for body in answers_of_both_workers(env, '/test/patching/ssl'):
        assert body == {'ssl_context': 'gevent.ssl', 'jwks_client_context': 'gevent.ssl'}, body


def answers_of_both_workers(env: Env, path: str) -> list[dict]:
    """Four answers over fresh connections (both workers), once a channel just created has reached
    each worker: the admin API answers before the other worker has had the change over the bus."""
    answers: list[dict] = []

    def all_answered() -> bool:
        responses = [env.fresh_get(env.url + path) for _ in range(4)]
        answers[:] = [r.json() for r in responses]
        return all(r.status_code == 200 for r in responses)

    env.wait_for(all_answered, timeout=10)
    return answers


PRELOAD_CHECK = '''
import gc
import sys

from zato.server import preload
from zato.server.service import Service

class PreloadCheck(Service):
    name = 'patching.preload-check'

    def handle(self):
        # The ids the master recorded are addresses; a forked worker has the same objects there
        self.response.payload = {
            'preloaded': len(preload.PRELOADED),
            'imported_again': sorted(name for name, oid in preload.PRELOADED.items()
                                     if id(sys.modules.get(name)) != oid),
            'frozen': gc.get_freeze_count(),
            # Modules a worker imported while it started that the master had not: each one its own copy
            'imported_at_start': sorted(name for name in preload.STARTED_MODULES - preload.MASTER_MODULES
                                        if not getattr(sys.modules[name], '__zato_deployed__', False)),
        }
'''


def test_workers_use_the_modules_the_master_preloaded_and_froze(env):
    from zato.server.preload import AFTER_PATCHING, PRELOAD

    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'patching_preload.py', 'source': PRELOAD_CHECK})
    env.channel('patching-preload', '/test/patching/preload', 'patching.preload-check')
    for body in answers_of_both_workers(env, '/test/patching/preload'):
        assert body['preloaded'] == len(PRELOAD + AFTER_PATCHING) and body['imported_again'] == [], body
        assert body['imported_at_start'] == [], body
        assert body['frozen'] > 10_000, body  # what the master had imported, out of the collector's way
