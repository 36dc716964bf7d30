"""The services the cache's e2e tests deploy (tests/e2e/test_cache.py, test_cache_cluster.py)."""

SERVICES = '''
import os
import uuid

from zato.server.service import Service


def _cache(svc, req):
    return svc.cache.builtin[req['cache']] if req.get('cache') else svc.cache.default


class CacheCall(Service):
    """Calls one method of a cache: {"cache": name or absent for the default, "op": "set", "args": [...]};
    answers with this worker's pid and the result, or the error a missing cache raises."""
    name = 'cache-test.call'

    def handle(self):
        req = self.request.payload
        try:
            cache = _cache(self, req)
        except KeyError as e:
            self.response.payload = {'pid': os.getpid(), 'error': str(e), 'type': type(e).__name__}
            return
        result = getattr(cache, req['op'])(*req.get('args', []), **req.get('kwargs', {}))
        if isinstance(result, dict | list | str | int | float | bool) or result is None:
            self.response.payload = {'pid': os.getpid(), 'result': result}
        else:
            self.response.payload = {'pid': os.getpid(), 'result': repr(result)}


class Token(Service):
    """A fresh token on each invocation: two answers with the same token are one answer, cached."""
    name = 'cache-test.token'

    def handle(self):
        self.response.payload = {'token': uuid.uuid4().hex, 'pid': os.getpid()}


class Hashed(Service):
    """Cached by its `v` query parameter alone: the other parameters do not make another entry."""
    name = 'cache-test.hashed'

    def get_request_hash(self):
        return self.request.http.GET.get('v', '')

    def handle(self):
        self.response.payload = {'token': uuid.uuid4().hex, 'v': self.request.http.GET.get('v', '')}


class Failing(Service):
    """A 400 each time: never cached."""
    name = 'cache-test.failing'

    def handle(self):
        self.response.status_code = 400
        self.response.payload = {'token': uuid.uuid4().hex}
'''
