"""invoke_async, fan-out and service states across a real cluster: two servers with two workers each,
sharing a PostgreSQL ODB and the postgresql bus.

* Every invoke_async runs once, on workers of both servers, none lost.
* A worker killed with SIGKILL while it runs an invoke_async does not lose it: another worker runs it
  again once the dead one's claim ran out (at least once).
* Fan-outs whose targets run on both servers at once each call their final callback exactly once,
  with every target's answer, in the order the targets were given.
* A service switched off, or undeployed, through one server stops answering on every worker of both.
* User config dropped into the pickup directory reaches every worker of both servers, and so does a
  changed version of it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time

import psycopg2
import pytest
import requests

from tests import pg
from tests.e2e.harness import postgresql_cluster
from zato.admin_client import AdminCallError

pytestmark = pytest.mark.postgresql

CLAIM_TTL = 3

SERVICES = '''
import json
import os
import time

import psycopg2

from zato.server.service import Service


def execute(dsn, sql, args):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
    finally:
        conn.close()


class Record(Service):
    """Says that it ran (which server, which process), sleeps if asked to, then says that it finished."""
    name = 'ac.record'

    def handle(self):
        req = self.request.payload
        where = (self.server.server_name, os.getpid())
        execute(req['dsn'], 'INSERT INTO ac_run (tag, cid, server, pid) VALUES (%s, %s, %s, %s)',
                (req['tag'], self.cid, *where))
        if req.get('sleep'):
            time.sleep(req['sleep'])
            execute(req['dsn'], 'INSERT INTO ac_done (tag, cid, server, pid) VALUES (%s, %s, %s, %s)',
                    (req['tag'], self.cid, *where))
        self.response.payload = {'n': req.get('n'), 'server': where[0]}


class Config(Service):
    name = 'ac.config'

    def handle(self):
        self.response.payload = {'url': self.user_config.ac_crm.api.url, 'server': self.server.server_name}


class Final(Service):
    name = 'ac.final'

    def handle(self):
        req = self.request.payload
        execute(os.environ['AC_DSN'], 'INSERT INTO ac_final (group_cid, data) VALUES (%s, %s)', (req['cid'], json.dumps(req['data'])))


class Start(Service):
    name = 'ac.start'

    def handle(self):
        req = self.request.payload
        if req['what'] == 'async':
            cids = [self.invoke_async('ac.record', {'dsn': req['dsn'], 'tag': req['tag'], 'n': n,
                                                    'sleep': req.get('sleep', 0)}, expiration=0)
                    for n in range(req['count'])]
            self.response.payload = {'cids': cids}
        else:
            targets = [('ac.record', {'dsn': req['dsn'], 'tag': req['tag'], 'n': n}) for n in range(req['count'])]
            self.response.payload = {'cid': self.patterns.fanout.invoke(targets, 'ac.final')}
'''

TABLES = '''
CREATE TABLE ac_run (tag text NOT NULL, cid text NOT NULL, server text NOT NULL, pid integer NOT NULL);
CREATE TABLE ac_done (tag text NOT NULL, cid text NOT NULL, server text NOT NULL, pid integer NOT NULL);
CREATE TABLE ac_final (group_cid text NOT NULL, data text NOT NULL);
'''


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    with postgresql_cluster(tmp_path_factory, 'async', {'ZATO_ASYNC_CLAIM_TTL': str(CLAIM_TTL),
                                                        'ZATO_ASYNC_SWEEP_INTERVAL': '0.5'}, dsn_env='AC_DSN') as env:
        with psycopg2.connect(**pg.connect_kwargs(env.db)) as conn, conn.cursor() as cur:
            cur.execute(TABLES)
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'ac_services.py', 'source': SERVICES})
        env.channel('ac-start', '/ac/start', 'ac.start')
        env.wait_for(lambda: all(start(url, 'async', 'warm-up', 0).status_code == 200
                                 for url in env.urls for _ in range(6)), timeout=15)
        yield env


def start(url: str, what: str, tag: str, count: int, **extra) -> requests.Response:
    body = {'what': what, 'tag': tag, 'count': count, 'dsn': CLUSTER_DSN[0], **extra}
    return requests.post(url + '/ac/start', json=body, headers={'Connection': 'close'}, timeout=60)


CLUSTER_DSN: list[str] = ['']


@pytest.fixture(autouse=True)
def _dsn(cluster):
    CLUSTER_DSN[0] = cluster.dsn


def query(env, sql: str, *args) -> list[tuple]:
    with psycopg2.connect(env.dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def test_every_invoke_async_runs_once_on_workers_of_both_servers(cluster):
    tag = 'spread'
    cids = []
    for i in range(8):
        r = start(cluster.urls[i % 2], 'async', tag, 10)
        assert r.status_code == 200, r.text
        cids += r.json()['cids']
    cluster.wait_for(lambda: query(cluster, 'SELECT count(*) FROM ac_run WHERE tag = %s', tag)[0][0] >= 80,
                     timeout=30)
    time.sleep(CLAIM_TTL)  # a second run, if there were one, would have come by now
    runs = query(cluster, 'SELECT cid, server FROM ac_run WHERE tag = %s', tag)
    assert sorted(cid for cid, _ in runs) == sorted(cids)  # each once: none lost, none twice
    assert {server for _, server in runs} == {'server1', 'server2'}


def test_a_worker_killed_while_running_an_invoke_async_leaves_it_to_another_worker(cluster):
    tag = f'killed-{secrets.token_hex(2)}'
    r = start(cluster.urls[0], 'async', tag, 1, sleep=8)
    cid = r.json()['cids'][0]
    cluster.wait_for(lambda: query(cluster, 'SELECT pid FROM ac_run WHERE cid = %s', cid), timeout=15)
    [(victim,)] = query(cluster, 'SELECT pid FROM ac_run WHERE cid = %s', cid)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    # Another worker starts it again after the claim ran out, and this time it finishes
    cluster.wait_for(lambda: query(cluster, 'SELECT pid FROM ac_done WHERE cid = %s', cid), timeout=CLAIM_TTL + 30)
    [(finisher,)] = query(cluster, 'SELECT pid FROM ac_done WHERE cid = %s', cid)
    assert finisher != victim
    runs = query(cluster, 'SELECT pid FROM ac_run WHERE cid = %s ORDER BY pid', cid)
    assert sorted(pid for pid, in runs) == sorted([victim, finisher])
    assert time.monotonic() - killed_at < CLAIM_TTL + 20


def test_fanouts_across_both_servers_call_their_final_callback_once_with_every_answer(cluster):
    tag = 'fanout'
    groups = []
    for i in range(16):
        r = start(cluster.urls[i % 2], 'fanout', tag, 6)
        assert r.status_code == 200, r.text
        groups.append(r.json()['cid'])
    cluster.wait_for(lambda: len(query(cluster, 'SELECT group_cid FROM ac_final')) >= len(groups), timeout=60)
    time.sleep(CLAIM_TTL)  # a duplicate, if there were one, would have come by now
    finals = query(cluster, 'SELECT group_cid, data FROM ac_final')
    assert sorted(cid for cid, _ in finals) == sorted(groups)  # each exactly once
    for _, data in finals:
        answers = json.loads(data)
        assert [a['response']['n'] for a in answers] == list(range(6))
        assert all(a['ok'] and a['target'] == 'ac.record' and a['source'] == 'ac.start' for a in answers)
    servers = {server for server, in query(cluster, 'SELECT server FROM ac_run WHERE tag = %s', tag)}
    assert servers == {'server1', 'server2'}
    assert query(cluster, 'SELECT count(*) FROM invocation_group')[0][0] == 0
    assert query(cluster, 'SELECT count(*) FROM invocation_group_response')[0][0] == 0


def test_a_service_switched_off_or_undeployed_through_one_server_stops_on_every_worker_of_both(cluster):
    def statuses(url: str) -> set[int]:
        return {start(url, 'async', 'states', 0).status_code for _ in range(8)}

    cluster.admins[0].call('PUT', '/zato/admin/services/ac.start', {'is_active': False})
    cluster.wait_for(lambda: all(statuses(url) == {404} for url in cluster.urls), timeout=15)
    body = start(cluster.urls[1], 'async', 'states', 0).json()
    assert body['code'] == 'service_inactive'
    cluster.admins[1].call('PUT', '/zato/admin/services/ac.start', {'is_active': True})
    cluster.wait_for(lambda: all(statuses(url) == {200} for url in cluster.urls), timeout=15)

    cluster.admins[0].call('DELETE', '/zato/admin/services/ac.start')
    cluster.wait_for(lambda: all(statuses(url) == {404} for url in cluster.urls), timeout=15)
    assert start(cluster.urls[1], 'async', 'states', 0).json()['code'] == 'not_found'
    try:
        cluster.admins[1].call('GET', '/zato/admin/services/ac.start')
        raise AssertionError('still deployed')
    except AdminCallError as e:
        assert e.status == 404


def test_user_config_dropped_into_pickup_reaches_every_worker_of_both_servers(cluster):
    cluster.channel('ac-config', '/ac/config', 'ac.config')
    path = os.path.join(cluster.path, 'pickup', 'incoming', 'user-conf', 'ac_crm.ini')

    def drop(url: str) -> None:
        with open(path + '.tmp', 'w', encoding='utf-8') as f:
            f.write(f'[api]\nurl = {url}\n')
        os.replace(path + '.tmp', path)

    def everywhere(url: str) -> bool:
        answers = [cluster.fresh_get(base + '/ac/config') for base in cluster.urls for _ in range(6)]
        return all(r.status_code == 200 and r.json()['url'] == url for r in answers) and \
            {r.json()['server'] for r in answers} == {'server1', 'server2'}

    drop('https://crm.example.com/v1')
    cluster.wait_for(lambda: everywhere('https://crm.example.com/v1'), timeout=20)
    drop('https://crm.example.com/v2')
    cluster.wait_for(lambda: everywhere('https://crm.example.com/v2'), timeout=20)
