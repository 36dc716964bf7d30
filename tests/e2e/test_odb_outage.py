"""An ODB that goes down under a running server is a 503 `odb_unavailable`, never a 500.

A server of a quickstart environment whose ODB is a PostgreSQL server of this test's own (the
machine's shared one at 5432 is never stopped) answers, while that PostgreSQL is stopped as abruptly
as a crash, (a) a service querying the ODB through self.odb, (b) an admin API call and (c) a service
taking self.lock() with 503, the code `odb_unavailable`, a Retry-After and the standard error body,
logged as a remote failure without a traceback; once PostgreSQL is back, the same calls succeed on
every worker. A worker started while PostgreSQL is down (gunicorn replacing one that died) waits for it
instead of failing to boot, which would make gunicorn stop the whole server.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg2
import pytest
import requests

from tests import pg
from tests.e2e.harness import Env, free_port_block

pytestmark = pytest.mark.postgresql

SERVICES = '''
from sqlalchemy import text

from zato.server.service import Service


class ODBQuery(Service):
    name = 'outage.odb-query'

    def handle(self):
        with self.odb.session() as session:
            self.response.payload = {'clusters': session.execute(text('SELECT count(*) FROM cluster')).scalar()}


class Pid(Service):
    name = 'outage.pid'

    def handle(self):
        import os
        self.response.payload = {'pid': os.getpid()}


class Locked(Service):
    name = 'outage.locked'

    def handle(self):
        with self.lock('outage.locked', ttl=5, block=2) as lock:
            self.response.payload = {'token': lock.token}
'''


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    with pg.private_server(free_port_block(1)) as server:
        conn = psycopg2.connect(server.dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('CREATE DATABASE zato')
        conn.close()
        env = Env(str(tmp_path_factory.mktemp('outage') / 'env'), '--odb', 'postgresql', '--odb-host', '127.0.0.1',
                  '--odb-port', str(server.port), '--odb-user', 'postgres', '--odb-db-name', 'zato', workers=2)
        env.pg = server
        try:
            env.start()
            env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'outage.py', 'source': SERVICES})
            env.channel('outage-odb', '/outage/odb', 'outage.odb-query')
            env.channel('outage-lock', '/outage/lock', 'outage.locked')
            env.channel('outage-pid', '/outage/pid', 'outage.pid')
            env.wait_for(lambda: all(status == 200 for status, _ in calls(env)), timeout=10)
            yield env
        finally:
            env.stop()


def calls(env) -> list[tuple[int, requests.Response]]:
    """(a) the service querying the ODB, (b) an admin API call reading the ODB, (c) the service taking
    self.lock(), each twice over a new connection so that both workers answer."""
    close = {'Connection': 'close'}
    out = []
    for _ in range(2):
        for r in (requests.get(env.url + '/outage/odb', headers=close, timeout=30),
                  requests.get(env.url + '/zato/admin/channels/rest', headers={**env.admin.headers, **close},
                               timeout=30),
                  requests.get(env.url + '/outage/lock', headers=close, timeout=30)):
            out.append((r.status_code, r))
    return out


def test_odb_down_is_503_odb_unavailable_for_a_service_the_admin_api_and_self_lock_then_all_work_again(env):
    answers = calls(env)
    assert [status for status, _ in answers] == [200] * 6, [r.text for _, r in answers]
    assert answers[0][1].json() == {'clusters': 1}
    log_before = len(env.log())

    env.pg.stop('immediate')
    try:
        answers = calls(env)
        for status, r in answers:
            assert status == 503, (r.request.url, r.text)
            body = r.json()
            assert set(body) == {'result', 'cid', 'details', 'code'}
            assert (body['result'], body['code']) == ('ZATO_ERROR', 'odb_unavailable')
            assert body['cid'] == r.headers['X-Zato-CID']
            assert body['details'] == ('Service Unavailable: the ODB could not be reached; the server log has the '
                                       f'details under cid {body["cid"]}')
            assert r.headers['Retry-After'] == '5'
        log = env.log()[log_before:]
        for _, r in answers:
            assert f"cid `{r.json()['cid']}`: the ODB could not be used: " in log
        # Logged as a remote end's failure: no traceback, nothing called an internal error
        request_lines = [line for line in log.splitlines() if 'zato.dispatcher' in line]
        assert request_lines and all('WARNING' in line for line in request_lines), request_lines
        assert 'Traceback' not in '\n'.join(line for line in log.splitlines() if '/outage/' in line)
    finally:
        env.pg.start()

    # Back: the pools reconnect on first use, on every worker
    env.wait_for(lambda: all(status == 200 for status, _ in calls(env)), timeout=20)
    assert [status for status, _ in calls(env)] == [200] * 6


def worker_pids(env) -> set[int]:
    pids = set()
    for _ in range(20):
        try:
            r = requests.get(env.url + '/outage/pid', headers={'Connection': 'close'}, timeout=5)
        except requests.RequestException:
            continue
        if r.status_code == 200:
            pids.add(r.json()['pid'])
    return pids


def test_a_worker_started_while_the_odb_is_down_waits_for_it_and_the_server_stays_up(env):
    env.wait_for(lambda: len(worker_pids(env)) == 2, timeout=20)
    victim = min(worker_pids(env))
    log_before = len(env.log())
    env.pg.stop('immediate')
    try:
        os.kill(victim, signal.SIGKILL)  # gunicorn starts another worker, which finds no ODB
        env.wait_for(lambda: 'cannot start: the ODB is unavailable' in env.log()[log_before:], timeout=20)
        time.sleep(3)  # several attempts, each failing
    finally:
        env.pg.start()
    env.wait_for(lambda: len(worker_pids(env) - {victim}) == 2, timeout=40)
    log = env.log()[log_before:]
    assert 'Worker failed to boot' not in log and 'Shutting down: Master' not in log
    assert [status for status, _ in calls(env)] == [200] * 6
