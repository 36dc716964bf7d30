"""Two servers sharing a PostgreSQL ODB and the PostgreSQL cluster bus."""

from __future__ import annotations


import pytest
import requests

from tests.e2e.harness import postgresql_cluster

pytestmark = pytest.mark.postgresql

HELLO = '''
from zato.server.service import Service

class Hello(Service):
    def handle(self):
        self.response.payload = {'version': %d}
'''


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    with postgresql_cluster(tmp_path_factory, 'e2e') as env:
        yield env


def test_the_environment_uses_postgresql_for_the_odb_and_the_bus(cluster):
    text = open(f'{cluster.path}/config/repo/server.conf', encoding='utf-8').read()
    assert 'engine = postgresql' in text and 'backend = postgresql' in text


def test_the_four_workers_starting_together_make_one_pubsub_cleanup_job(cluster):
    for admin in cluster.admins:
        jobs = [j for j in admin.call('GET', '/zato/admin/scheduler/jobs') if j['name'] == 'zato.pubsub.cleanup']
        assert [(j['service'], j['seconds']) for j in jobs] == [('zato.pubsub.cleanup-service', 300)]


def test_a_module_dropped_into_pickup_is_served_by_every_worker_of_both_servers(cluster):
    cluster.drop('pg_hello.py', HELLO % 1)
    cluster.wait_for(lambda: all('pg-hello.hello' in [s['name'] for s in admin.call('GET', '/zato/admin/services')]
                                 for admin in cluster.admins), timeout=2.0)
    cluster.channel('pg-hello', '/pg/hello', 'pg-hello.hello')
    took = cluster.wait_for(lambda: all(cluster.fresh_get(url + '/pg/hello').json() == {'version': 1}
                                        for url in cluster.urls for _ in range(4)))
    assert took < 1.0

    cluster.drop('pg_hello.py', HELLO % 2)
    cluster.wait_for(lambda: all(cluster.fresh_get(url + '/pg/hello').json() == {'version': 2}
                                 for url in cluster.urls for _ in range(4)), timeout=2.0)


def test_a_channel_edited_through_one_server_is_served_by_the_other_within_one_second(cluster):
    cluster.drop('pg_edit.py', HELLO % 7)
    cluster.wait_for(lambda: 'pg-edit.hello' in [s['name'] for s in cluster.admins[1].call('GET',
                                                                                            '/zato/admin/services')])
    created = cluster.admins[1].call('POST', '/zato/admin/channels/rest',
                                     {'name': 'pg-edit', 'url_path': '/pg/edit/a', 'service': 'pg-edit.hello'})
    cluster.wait_for(lambda: cluster.fresh_get(cluster.urls[0] + '/pg/edit/a').status_code == 200)
    cluster.admins[0].call('PUT', f'/zato/admin/channels/rest/{created["id"]}', {'url_path': '/pg/edit/b'})
    took = cluster.wait_for(lambda: all(cluster.fresh_get(url + '/pg/edit/b').status_code == 200
                                        and cluster.fresh_get(url + '/pg/edit/a').status_code == 404
                                        for url in cluster.urls for _ in range(3)))
    assert took < 1.0


def test_an_exact_limit_is_one_count_for_every_worker_of_both_servers(cluster):
    import requests
    cluster.drop('pg_limited.py', HELLO % 3)
    cluster.wait_for(lambda: 'pg-limited.hello' in [s['name'] for s in cluster.admin.call('GET',
                                                                                          '/zato/admin/services')])
    cluster.admin.call('POST', '/zato/admin/rate-limits', {'name': 'pg-exact', 'rules': '* = 5/m', 'mode': 'exact'})
    cluster.channel('pg-limited', '/pg/limited', 'pg-limited.hello', method='GET', rate_limit='pg-exact')
    cluster.wait_for(lambda: all(requests.post(url + '/pg/limited', headers={'Connection': 'close'}).status_code
                                 == 405 for url in cluster.urls for _ in range(3)))
    statuses = [cluster.fresh_get(cluster.urls[i % 2] + '/pg/limited').status_code for i in range(16)]
    assert statuses.count(200) == 5 and statuses.count(429) == 11


WSX_SERVICES = '''
from zato.server.service import Service

class Echo(Service):
    name = 'pg-wsx.echo'
    def handle(self):
        self.response.payload = self.request.payload

class Broadcast(Service):
    name = 'pg-wsx.broadcast'
    def handle(self):
        self.wsx.channel['pg wsx'].broadcast(self.request.payload)
        self.response.payload = {'clients': len(self.wsx.channel['pg wsx'].clients())}
'''


def test_a_broadcast_reaches_every_client_of_both_servers_through_the_postgresql_bus(cluster):
    from tests.e2e.wsx_many import Crowd
    cluster.admin.call('POST', '/zato/admin/deploy', {'file_name': 'pg_wsx.py', 'source': WSX_SERVICES})
    cluster.wait_for(lambda: all('pg-wsx.broadcast' in [s['name'] for s in admin.call('GET', '/zato/admin/services')]
                                 for admin in cluster.admins))
    cluster.admin.call('POST', '/zato/admin/channels/wsx', {'name': 'pg wsx', 'url_path': '/pg/wsx',
                                                            'service': 'pg-wsx.echo', 'data_format': 'json'})
    cluster.channel('pg-wsx-broadcast', '/pg/wsx/broadcast', 'pg-wsx.broadcast')
    cluster.wait_for(lambda: all(cluster.fresh_get(url + '/pg/wsx').status_code == 426 for url in cluster.urls
                                 for _ in range(4)))
    crowds = [Crowd(cluster.base_port + i, '/pg/wsx', 12) for i in range(2)]
    try:
        r = requests.post(cluster.urls[1] + '/pg/wsx/broadcast', json={'from': 'server2'}, timeout=10)
        assert r.json() == {'clients': 24}
        for crowd in crowds:
            crowd.collect(1, timeout=5)
            assert all(m and m[0][1] == b'{"from":"server2"}' for m in crowd.messages.values())
    finally:
        for crowd in crowds:
            crowd.close()
