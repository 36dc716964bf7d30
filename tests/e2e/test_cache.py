"""Built-in caches on a real SQLite quickstart with two workers: the default cache, definitions through
the admin API, changes spread to every worker, and REST response caching behind the guards."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from tests.e2e.cache_services import SERVICES
from tests.e2e.harness import Env, zato
from zato.admin_client import AdminCallError

WORKERS = 2


@pytest.fixture(scope='module')
def cenv(env: Env) -> Env:
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'cache_test.py', 'source': SERVICES})
    env.channel('cache-call', '/cache-test/call', 'cache-test.call')
    env.wait_for(lambda: all(ready(env) for _ in range(4)), timeout=10)
    return env


def ready(env: Env) -> bool:
    r = requests.post(env.url + '/cache-test/call', json={'op': '__len__'}, headers={'Connection': 'close'}, timeout=10)
    return r.status_code == 200


def call(env: Env, op: str, *args: Any, cache: str | None = None, url: str | None = None, **kwargs: Any) -> dict:
    body = {'op': op, 'args': list(args), 'kwargs': kwargs, **({'cache': cache} if cache else {})}
    r = requests.post((url or env.url) + '/cache-test/call', json=body, headers={'Connection': 'close'}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def on_every_worker(env: Env, check, workers: int = WORKERS, urls: list[str] | None = None,
                    timeout: float = 10.0) -> None:
    """Until `check(answer)` holds for answers from `workers` different worker processes."""
    seen: set[int] = set()

    def all_seen() -> bool:
        for url in urls or [env.url]:
            answer = check(url)
            if answer is not None:
                seen.add(answer)
        return len(seen) >= workers
    env.wait_for(all_seen, timeout=timeout)


def seen_value(env: Env, key: str, expected: Any, cache: str | None = None):
    def check(url: str) -> int | None:
        answer = call(env, 'get', key, cache=cache, url=url)
        return answer['pid'] if 'error' not in answer and answer['result'] == expected else None
    return check


def test_every_cluster_has_a_default_cache(cenv):
    caches = cenv.admin.call('GET', '/zato/admin/caches/builtin')
    default = [c for c in caches if c['is_default']]
    assert [c['name'] for c in default] == ['default']
    assert default[0]['sync_method'] == 'in-background' and default[0]['max_size'] == 10000


def test_a_set_on_one_worker_is_seen_by_every_worker(cenv):
    call(cenv, 'set', 'spread-1', {'a': [1, 2]})
    on_every_worker(cenv, seen_value(cenv, 'spread-1', {'a': [1, 2]}))


def test_delete_and_clear_spread_to_every_worker(cenv):
    call(cenv, 'set', 'del-1', 'x')
    call(cenv, 'set', 'del-2', 'y')
    on_every_worker(cenv, seen_value(cenv, 'del-2', 'y'))
    call(cenv, 'delete', 'del-1')
    on_every_worker(cenv, seen_value(cenv, 'del-1', None))
    call(cenv, 'clear')
    on_every_worker(cenv, seen_value(cenv, 'del-2', None))


def test_by_prefix_changes_spread_to_every_worker(cenv):
    for i in range(3):
        call(cenv, 'set', f'bp-{i}', i)
    call(cenv, 'set', 'other', 'stays')
    on_every_worker(cenv, seen_value(cenv, 'bp-2', 2))
    assert call(cenv, 'delete_by_prefix', 'bp-', return_found=True)['result'] == {'bp-0': 0, 'bp-1': 1, 'bp-2': 2}
    on_every_worker(cenv, lambda url: (lambda a: a['pid'] if a['result'] == {} else None)(
        call(cenv, 'get_by_prefix', 'bp-', url=url)))
    assert call(cenv, 'get', 'other')['result'] == 'stays'


def test_an_expiry_ends_an_entry_on_every_worker(cenv):
    call(cenv, 'set', 'exp-1', 'soon', 1.0)
    time.sleep(1.2)
    on_every_worker(cenv, seen_value(cenv, 'exp-1', None))


def test_a_value_larger_than_max_item_size_is_refused(cenv):
    cenv.admin.call('POST', '/zato/admin/caches/builtin', {'name': 'small', 'max_item_size': 10})
    on_every_worker(cenv, lambda url: (lambda a: a['pid'] if 'error' not in a else None)(
        call(cenv, '__len__', cache='small', url=url)))
    r = requests.post(cenv.url + '/cache-test/call', json={'op': 'set', 'args': ['k', 'x' * 20], 'cache': 'small'},
                      timeout=10)
    assert r.status_code == 500  # the service's own mistake, as any exception it lets out
    assert call(cenv, 'set', 'k', 'x' * 5, cache='small')['result'] is None


def test_a_deleted_definition_forgets_its_entries_everywhere_and_its_name_raises(cenv):
    created = cenv.admin.call('POST', '/zato/admin/caches/builtin', {'name': 'doomed'})
    on_every_worker(cenv, lambda url: (lambda a: a['pid'] if 'error' not in a else None)(
        call(cenv, '__len__', cache='doomed', url=url)))
    call(cenv, 'set', 'secret', 's3cr3t', cache='doomed')
    on_every_worker(cenv, seen_value(cenv, 'secret', 's3cr3t', cache='doomed'))
    cenv.admin.call('DELETE', f'/zato/admin/caches/builtin/{created["id"]}')

    def gone(url: str) -> int | None:
        answer = call(cenv, 'get', 'secret', cache='doomed', url=url)
        return answer['pid'] if answer.get('type') == 'CacheDeleted' and 'No such cache `doomed`' in answer['error'] \
            else None
    on_every_worker(cenv, gone)
    # A new cache of the same name starts empty on every worker
    cenv.admin.call('POST', '/zato/admin/caches/builtin', {'name': 'doomed'})
    on_every_worker(cenv, seen_value(cenv, 'secret', None, cache='doomed'))


def test_the_default_cache_cannot_be_deleted_nor_one_a_channel_uses(cenv):
    caches = {c['name']: c for c in cenv.admin.call('GET', '/zato/admin/caches/builtin')}
    with pytest.raises(AdminCallError) as e:
        cenv.admin.call('DELETE', f'/zato/admin/caches/builtin/{caches["default"]["id"]}')
    assert e.value.status == 409
    used = cenv.admin.call('POST', '/zato/admin/caches/builtin', {'name': 'used'})
    cenv.channel('cache-used', '/cache-test/used', 'cache-test.token', method='GET', cache='used')
    with pytest.raises(AdminCallError) as e:
        cenv.admin.call('DELETE', f'/zato/admin/caches/builtin/{used["id"]}')
    assert e.value.status == 409 and 'cache-used' in str(e.value.details)


def test_admin_entries_browse_get_delete_and_clear(cenv):
    cenv.admin.call('POST', '/zato/admin/caches/builtin', {'name': 'browse'})
    on_every_worker(cenv, lambda url: (lambda a: a['pid'] if 'error' not in a else None)(
        call(cenv, '__len__', cache='browse', url=url)))
    call(cenv, 'set', 'b-1', {'n': 1}, cache='browse')
    call(cenv, 'set', 'b-2', 'two', cache='browse')
    on_every_worker(cenv, seen_value(cenv, 'b-2', 'two', cache='browse'))
    cid = next(c['id'] for c in cenv.admin.call('GET', '/zato/admin/caches/builtin') if c['name'] == 'browse')
    listed = cenv.admin.call('GET', f'/zato/admin/caches/builtin/{cid}/entries')
    assert [(e['key'], e['value']) for e in listed] == [('b-1', {'n': 1}), ('b-2', 'two')]
    assert cenv.admin.call('GET', f'/zato/admin/caches/builtin/{cid}/entry?key=b-1')['value'] == {'n': 1}
    cenv.admin.call('POST', f'/zato/admin/caches/builtin/{cid}/entry/delete', {'key': 'b-1'})
    on_every_worker(cenv, seen_value(cenv, 'b-1', None, cache='browse'))
    with pytest.raises(AdminCallError) as e:
        cenv.admin.call('GET', f'/zato/admin/caches/builtin/{cid}/entry?key=b-1')
    assert e.value.status == 404
    cenv.admin.call('POST', f'/zato/admin/caches/builtin/{cid}/clear')
    on_every_worker(cenv, seen_value(cenv, 'b-2', None, cache='browse'))


def test_bad_definitions_are_400s(cenv):
    for body, field in (({'name': 'x', 'max_size': 0}, 'max_size'), ({'name': 'x', 'sync_method': 'redis'},
                                                                      'sync_method'),
                        ({'name': 'x', 'max_item_size': 'big'}, 'max_item_size'), ({'name': 'x', 'color': 1}, 'color')):
        with pytest.raises(AdminCallError) as e:
            cenv.admin.call('POST', '/zato/admin/caches/builtin', body)
        assert e.value.status == 400 and field in str(e.value.details)
    with pytest.raises(AdminCallError) as e:
        cenv.channel('cache-bad', '/cache-test/bad', 'cache-test.token', cache='no-such-cache')
    assert e.value.status == 400 and 'no-such-cache' in str(e.value.details)


# Response caching

def token_of(url: str, **kwargs: Any) -> tuple[int, str | None]:
    r = requests.get(url, headers={'Connection': 'close', **kwargs.pop('headers', {})}, timeout=10, **kwargs)
    return r.status_code, (r.json().get('token') if r.status_code in (200, 400) else None)


def settled_token(env: Env, url: str, **kwargs: Any) -> str:
    """The token every worker answers with once the first answer is cached everywhere."""
    tokens: list[str | None] = []

    def same() -> bool:
        tokens[:] = [token_of(url, **kwargs)[1] for _ in range(4)]
        return len(set(tokens)) == 1 and tokens[0] is not None
    env.wait_for(same, timeout=10)
    return str(tokens[0])


def test_a_cached_channel_answers_a_get_from_the_cache_until_the_expiry(cenv):
    cenv.channel('cache-rc', '/cache-test/rc', 'cache-test.token', method='GET', cache='default', cache_expiry=2)
    url = cenv.url + '/cache-test/rc'
    cenv.wait_for(lambda: token_of(url)[0] == 200)
    first = settled_token(cenv, url)
    r = requests.get(url, timeout=10)
    assert r.json()['token'] == first and r.headers['Content-Type'] == 'application/json' and r.headers['X-Zato-CID']
    # Another query string is another entry
    assert token_of(url + '?a=1')[1] != first
    # Read all the time, the answer still expires (the default cache's extend_expiry_on_get does not apply)
    deadline = time.monotonic() + 3.5
    while token_of(url)[1] == first:
        assert time.monotonic() < deadline, 'the cached answer never expired'
        time.sleep(0.05)


def test_an_uncached_channel_and_a_non_200_answer_are_not_cached(cenv):
    cenv.channel('cache-none', '/cache-test/none', 'cache-test.token', method='GET')
    cenv.channel('cache-fail', '/cache-test/fail', 'cache-test.failing', method='GET', cache='default')
    for path in ('/cache-test/none', '/cache-test/fail'):
        url = cenv.url + path
        cenv.wait_for(lambda url=url: token_of(url)[0] in (200, 400))
        tokens = [token_of(url)[1] for _ in range(4)]
        assert len(set(tokens)) == 4, path


def test_get_request_hash_decides_which_requests_share_an_answer(cenv):
    cenv.channel('cache-hashed', '/cache-test/hashed', 'cache-test.hashed', method='GET', cache='default')
    url = cenv.url + '/cache-test/hashed'
    cenv.wait_for(lambda: token_of(url + '?v=1')[0] == 200)
    one = settled_token(cenv, url + '?v=1')
    # The same hash through another query string (the query string is part of the key too)
    assert settled_token(cenv, url + '?v=2') != one
    assert token_of(url + '?v=1')[1] == one


def test_a_cached_answer_is_given_only_to_a_caller_who_authenticates(cenv):
    sec = cenv.admin.call('POST', '/zato/admin/security', {'name': 'cache-sec', 'kind': 'basic_auth',
                                                           'username': 'cache-user'})
    cenv.channel('cache-auth', '/cache-test/auth', 'cache-test.token', method='GET', cache='default',
                 security='cache-sec')
    url = cenv.url + '/cache-test/auth'
    good = ('cache-user', sec['password'])
    cenv.wait_for(lambda: token_of(url, auth=good)[0] == 200)
    first = settled_token(cenv, url, auth=good)
    for _ in range(4):
        assert token_of(url)[0] == 401
        assert token_of(url, auth=('cache-user', 'wrong'))[0] == 401
        assert token_of(url, auth=good) == (200, first)


def test_a_cached_answer_is_charged_to_the_rate_limits(cenv):
    cenv.admin.call('POST', '/zato/admin/rate-limits', {'name': 'cache-rl', 'rules': '* = 2/m'})
    cenv.channel('cache-rl', '/cache-test/rl', 'cache-test.token', method='GET', cache='default',
                 rate_limit='cache-rl')
    url = cenv.url + '/cache-test/rl'
    cenv.wait_for(lambda: token_of(url)[0] in (200, 429))
    statuses = [token_of(url)[0] for _ in range(12)]
    # Each worker counts its own 2/m (approximate mode): at most 2 per worker pass, hits included
    assert statuses.count(200) <= 2 * WORKERS and statuses.count(429) >= 12 - 2 * WORKERS - 1, statuses


def test_the_cli_manages_caches_and_their_entries(cenv):
    zato('cache', 'builtin', 'create', cenv.path, 'name=cli-cache', 'max_size=50')
    listed = json.loads(zato('cache', 'builtin', 'list', cenv.path).stdout)
    assert {'cli-cache', 'default'} <= {c['name'] for c in listed}
    on_every_worker(cenv, lambda url: (lambda a: a['pid'] if 'error' not in a else None)(
        call(cenv, '__len__', cache='cli-cache', url=url)))
    call(cenv, 'set', 'cli-key', {'a': 1}, cache='cli-cache')
    on_every_worker(cenv, seen_value(cenv, 'cli-key', {'a': 1}, cache='cli-cache'))
    entry = json.loads(zato('cache', 'builtin', 'entry', 'get', cenv.path, 'cli-cache', 'key=cli-key').stdout)
    assert entry['value'] == {'a': 1}
    zato('cache', 'builtin', 'entry', 'delete', cenv.path, 'cli-cache', 'key=cli-key')
    on_every_worker(cenv, seen_value(cenv, 'cli-key', None, cache='cli-cache'))
    zato('cache', 'builtin', 'delete', cenv.path, 'cli-cache')
    assert 'cli-cache' not in {c['name'] for c in json.loads(zato('cache', 'builtin', 'list', cenv.path).stdout)}


def test_an_inactive_cache_has_no_entries_anywhere_and_its_name_says_so(cenv):
    created = cenv.admin.call('POST', '/zato/admin/caches/builtin', {'name': 'sleepy'})
    on_every_worker(cenv, seen_value(cenv, 'k', None, cache='sleepy'))
    call(cenv, 'set', 'k', 'v', cache='sleepy')
    on_every_worker(cenv, seen_value(cenv, 'k', 'v', cache='sleepy'))
    cenv.admin.call('PUT', f'/zato/admin/caches/builtin/{created["id"]}', {'is_active': False})
    on_every_worker(cenv, lambda url: (lambda a: a['pid'] if a.get('error') == 'Cache `sleepy` is not active'
                                       else None)(call(cenv, 'get', 'k', cache='sleepy', url=url)))
    cenv.admin.call('PUT', f'/zato/admin/caches/builtin/{created["id"]}', {'is_active': True})
    on_every_worker(cenv, seen_value(cenv, 'k', None, cache='sleepy'))
