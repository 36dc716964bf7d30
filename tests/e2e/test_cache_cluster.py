"""Built-in caches across a real cluster: two servers with two workers each, sharing a PostgreSQL ODB
and its bus. A set on one worker is seen by all four; delete and clear spread; a deleted definition
forgets its entries on every worker; a cached REST answer made on one server is served by the other."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.e2e.cache_services import SERVICES
from tests.e2e.harness import Env, postgresql_cluster

pytestmark = pytest.mark.postgresql

WORKERS = 4  # 2 servers x 2 workers


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    with postgresql_cluster(tmp_path_factory, 'cache') as env:
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'cache_test.py', 'source': SERVICES})
        env.channel('cache-call', '/cache-test/call', 'cache-test.call')
        env.wait_for(lambda: all(post(url, {'op': '__len__'}).status_code == 200
                                 for url in env.urls for _ in range(6)), timeout=20)
        yield env


def post(url: str, body: dict) -> requests.Response:
    # A new connection each time, so that calls spread over both workers of a server
    return requests.post(url + '/cache-test/call', json=body, headers={'Connection': 'close'}, timeout=10)


def call(url: str, op: str, *args: Any, cache: str | None = None, **kwargs: Any) -> dict:
    r = post(url, {'op': op, 'args': list(args), 'kwargs': kwargs, **({'cache': cache} if cache else {})})
    assert r.status_code == 200, r.text
    return r.json()


def on_all_workers(env: Env, check) -> None:
    """Until `check(url)` has returned the pid of each of the 4 workers of both servers."""
    seen: set[int] = set()

    def done() -> bool:
        for url in env.urls:
            for _ in range(3):
                pid = check(url)
                if pid is not None:
                    seen.add(pid)
        return len(seen) >= WORKERS
    env.wait_for(done, timeout=20)


def value_is(key: str, expected: Any, cache: str | None = None):
    def check(url: str) -> int | None:
        answer = call(url, 'get', key, cache=cache)
        return answer['pid'] if answer.get('result') == expected and 'error' not in answer else None
    return check


def test_a_set_on_one_worker_of_one_server_is_seen_by_every_worker_of_both(cluster):
    server1, server2 = cluster.urls
    call(server1, 'set', 'pg-1', {'from': 'server1'})
    on_all_workers(cluster, value_is('pg-1', {'from': 'server1'}))
    call(server2, 'set', 'pg-1', {'from': 'server2'})
    on_all_workers(cluster, value_is('pg-1', {'from': 'server2'}))


def test_delete_and_clear_spread_to_every_worker_of_both_servers(cluster):
    server1, server2 = cluster.urls
    call(server1, 'set', 'pg-del', 1)
    call(server1, 'set', 'pg-clear', 2)
    on_all_workers(cluster, value_is('pg-clear', 2))
    call(server2, 'delete', 'pg-del')
    on_all_workers(cluster, value_is('pg-del', None))
    assert call(server1, 'get', 'pg-clear')['result'] == 2
    call(server2, 'clear')
    on_all_workers(cluster, value_is('pg-clear', None))


def test_a_deleted_definition_forgets_its_entries_on_every_worker_of_both_servers(cluster):
    server1, server2 = cluster.urls
    created = cluster.admin.call('POST', '/zato/admin/caches/builtin', {'name': 'pg-doomed'})
    on_all_workers(cluster, value_is('secret', None, cache='pg-doomed'))
    call(server2, 'set', 'secret', 's3cr3t', cache='pg-doomed')
    on_all_workers(cluster, value_is('secret', 's3cr3t', cache='pg-doomed'))
    cluster.admin.call('DELETE', f'/zato/admin/caches/builtin/{created["id"]}')

    def gone(url: str) -> int | None:
        answer = call(url, 'get', 'secret', cache='pg-doomed')
        return answer['pid'] if answer.get('type') == 'CacheDeleted' else None
    on_all_workers(cluster, gone)
    cluster.admin.call('POST', '/zato/admin/caches/builtin', {'name': 'pg-doomed'})
    on_all_workers(cluster, value_is('secret', None, cache='pg-doomed'))


def test_a_cached_answer_made_on_one_server_is_served_by_the_other(cluster):
    server1, server2 = cluster.urls
    cluster.channel('pg-rc', '/cache-test/rc', 'cache-test.token', method='GET', cache='default', cache_expiry=60)

    def token(url: str) -> str | None:
        r = requests.get(url + '/cache-test/rc', headers={'Connection': 'close'}, timeout=10)
        return r.json()['token'] if r.status_code == 200 else None
    # Every worker of both servers routes the channel; then the cache starts empty everywhere
    cluster.wait_for(lambda: all(token(url) for url in cluster.urls for _ in range(4)), timeout=20)
    call(server1, 'set', 'pg-sentinel', 1)
    on_all_workers(cluster, value_is('pg-sentinel', 1))
    default = next(c['id'] for c in cluster.admin.call('GET', '/zato/admin/caches/builtin') if c['is_default'])
    cluster.admin.call('POST', f'/zato/admin/caches/builtin/{default}/clear')
    on_all_workers(cluster, value_is('pg-sentinel', None))

    first = token(server1)  # a miss on one worker of server1: the answer is made there, and spread

    def holds_an_answer(url: str) -> int | None:
        answer = call(url, 'keys')
        return answer['pid'] if answer['result'] else None
    on_all_workers(cluster, holds_an_answer)
    # Every worker of both servers now answers with it, without running the service again
    assert [token(url) for url in (server2, server1) for _ in range(4)] == [first] * 8
