"""The built-in caches' pages over HTTP, against a running environment with two workers: the default
cache listed, a cache created from the form, its entries (set by a service) browsed and searched,
one deleted and then all cleared with the buttons — gone on every worker — and every action audited."""

from __future__ import annotations

import re
from html import unescape

import requests

from tests.e2e.harness import Env
from tests.web_admin.conftest import TIMEOUT, csrf

MODULE = '''
import os
from zato.server.service import Service


class CacheSet(Service):
    name = 'wa-cache.call'

    def handle(self):
        req = self.request.payload
        cache = self.cache.builtin[req['cache']]
        if req['op'] == 'set':
            cache.set(req['key'], req['value'])
        self.response.payload = {'pid': os.getpid(), 'keys': cache.keys()}
'''


def service(env: Env, body: dict) -> dict:
    r = requests.post(env.url + '/wa-cache/call', json=body, headers={'Connection': 'close'}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def keys_everywhere(env: Env, cache: str, expected: list[str]) -> None:
    """Until both workers hold exactly the keys `expected`."""
    seen: set[int] = set()

    def both() -> bool:
        answer = service(env, {'op': 'keys', 'cache': cache})
        # As sets: each worker lists its keys in its own LRU order, which is the order the sets reached
        # it (its own at once, the other worker's through the bus)
        if sorted(answer['keys']) == sorted(expected):
            seen.add(answer['pid'])
        return len(seen) >= 2
    env.wait_for(both, timeout=10)


def test_caches_are_created_browsed_and_cleared_from_the_web_admin(web_admin):
    env = web_admin.env
    s = web_admin.session()
    page = s.get(web_admin.url + '/caches/builtin', timeout=TIMEOUT).text
    assert '>default<' in page and 'id="menu-caches"' in page

    form = s.get(web_admin.url + '/caches/builtin/new', timeout=TIMEOUT).text
    r = s.post(web_admin.url + '/caches/builtin/new', data={
        'csrf_token': csrf(form), 'name': 'wa-orders', 'is_active': 'on', 'max_size': '100', 'max_item_size': '1000',
        'extend_expiry_on_get': 'on', 'sync_method': 'in-background'}, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303, r.text[:500]
    cache = next(c for c in env.admin.call('GET', '/zato/admin/caches/builtin') if c['name'] == 'wa-orders')
    assert cache['max_size'] == 100 and cache['extend_expiry_on_set'] is False

    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'wa_cache.py', 'source': MODULE})
    env.channel('wa-cache', '/wa-cache/call', 'wa-cache.call')
    env.wait_for(lambda: requests.post(env.url + '/wa-cache/call', json={'op': 'keys', 'cache': 'wa-orders'},
                                       timeout=TIMEOUT).status_code == 200, timeout=10)
    for key, value in (('order:1', {'total': 10}), ('order:2', 'two'), ('<b>odd key</b>', 3)):
        service(env, {'op': 'set', 'cache': 'wa-orders', 'key': key, 'value': value})
    keys_everywhere(env, 'wa-orders', ['order:1', 'order:2', '<b>odd key</b>'])

    base = f'{web_admin.url}/caches/builtin/{cache["id"]}'
    page = s.get(base + '/entries', timeout=TIMEOUT).text
    assert '<code>order:1</code>' in page and '&lt;b&gt;odd key&lt;/b&gt;' in page and '<b>odd key</b>' not in page
    assert 'order:2' not in s.get(base + '/entries', params={'query': 'order:1'}, timeout=TIMEOUT).text

    r = s.post(base + '/entries/delete', data={'csrf_token': csrf(page), 'key': '<b>odd key</b>'},
               allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303
    keys_everywhere(env, 'wa-orders', ['order:1', 'order:2'])

    r = s.post(base + '/clear', data={'csrf_token': csrf(page)}, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303
    keys_everywhere(env, 'wa-orders', [])

    audit = unescape(re.sub(r'<[^>]+>', ' ', s.get(web_admin.url + '/audit', timeout=TIMEOUT).text))
    for action in ('caches/builtin.create', 'caches/builtin.entry.delete', 'caches/builtin.clear'):
        assert action in audit, action
