"""self.lock() across a real cluster: two servers with two workers each, sharing a PostgreSQL ODB.

* A shared counter incremented 1,000 times under the lock (read, sleep, write) by every worker of both
  servers comes out exact; the same run with the lock made a no-op comes out short, so the checker can
  see a broken lock.
* A holder killed with SIGKILL keeps the lock only until its TTL runs out; the next holder gets a greater
  token, and a write with the dead holder's token is refused by the fence.
* A holder paused (SIGSTOP) past its TTL, while another takes the lock over and writes, cannot write
  when it resumes: its fenced write raises LockLost (503, code lock_lost) and the new holder's stays.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests
from sqlalchemy import text

from tests import pg
from tests.e2e.harness import postgresql_cluster
from zato.errors import LeaseLost
from zato.odb.engine import make_engine
from zato.odb.lease import LeaseStore

pytestmark = pytest.mark.postgresql

SERVICES = '''
import contextlib
import os
import time

import psycopg2
from sqlalchemy import text

from zato.server.service import Service


class Increment(Service):
    """Adds one to a counter `times` times, each a read, a short sleep and a write under the lock
    (or under nothing when `broken`, to show what the checker sees of a lock that does not lock)."""
    name = 'lock-test.increment'

    def handle(self):
        req = self.request.payload
        conn = psycopg2.connect(req['dsn'])
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for _ in range(req['times']):
                    guard = contextlib.nullcontext() if req.get('broken') else self.lock('lock-test.counter',
                                                                                          ttl=5, block=120)
                    with guard as lock:
                        cur.execute('SELECT value, clock_timestamp() FROM lock_counter WHERE id = %s', (req['id'],))
                        value, started = cur.fetchone()
                        time.sleep(0.002)
                        cur.execute('UPDATE lock_counter SET value = %s WHERE id = %s', (value + 1, req['id']))
                        cur.execute('INSERT INTO lock_log (counter_id, token, pid, started, ended) '
                                    'VALUES (%s, %s, %s, %s, clock_timestamp())',
                                    (req['id'], getattr(lock, 'token', None), os.getpid(), started))
        finally:
            conn.close()
        self.response.payload = {'pid': os.getpid()}


class Hold(Service):
    """Takes the lock `name`, says so in lock_holder (token, pid), sleeps `hold` seconds (a SIGKILL or a
    SIGSTOP arrives meanwhile), then writes `value` to the guarded row through the fence."""
    name = 'lock-test.hold'

    def handle(self):
        req = self.request.payload
        with self.lock(req['name'], ttl=req['ttl'], block=req['block']) as lock:
            waited_until = time.time()
            conn = psycopg2.connect(req['dsn'])
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute('INSERT INTO lock_holder (name, token, pid) VALUES (%s, %s, %s)',
                            (req['name'], lock.token, os.getpid()))
            conn.close()
            time.sleep(req['hold'])
            with lock.fenced() as odb:
                odb.execute(text('UPDATE lock_guarded SET value = :value, fence = :token WHERE name = :name'),
                            {'value': req['value'], 'token': lock.token, 'name': req['name']})
        self.response.payload = {'token': lock.token, 'pid': os.getpid(), 'acquired_at': waited_until}
'''

TABLES = '''
CREATE TABLE lock_counter (id integer PRIMARY KEY, value integer NOT NULL);
CREATE TABLE lock_log (counter_id integer NOT NULL, token bigint, pid integer NOT NULL, started timestamptz NOT NULL,
                       ended timestamptz NOT NULL);
CREATE TABLE lock_holder (name text NOT NULL, token bigint NOT NULL, pid integer NOT NULL);
CREATE TABLE lock_guarded (name text PRIMARY KEY, value text NOT NULL, fence bigint NOT NULL DEFAULT 0);
'''


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    with postgresql_cluster(tmp_path_factory, 'locks') as env:
        with psycopg2.connect(**pg.connect_kwargs(env.db)) as conn, conn.cursor() as cur:
            cur.execute(TABLES)
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'lock_test.py', 'source': SERVICES})
        env.channel('lock-increment', '/lock/increment', 'lock-test.increment')
        env.channel('lock-hold', '/lock/hold', 'lock-test.hold')
        # Every worker of both servers has the services and the channels
        env.wait_for(lambda: all(post(url, '/lock/increment', {'dsn': env.dsn, 'id': 0, 'times': 0}).status_code
                                 == 200 for url in env.urls for _ in range(6)), timeout=10)
        yield env


def post(url: str, path: str, body: dict, timeout: float = 120) -> requests.Response:
    # A new connection each time, so that calls spread over both workers of a server
    return requests.post(url + path, json=body, headers={'Connection': 'close'}, timeout=timeout)


def query(cluster, sql: str, args: tuple = ()) -> list[tuple]:
    with psycopg2.connect(**pg.connect_kwargs(cluster.db)) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def count_to_1000(cluster, counter_id: int, broken: bool) -> tuple[int, dict[int, str]]:
    """40 calls of 25 increments, 8 at a time, alternating between the servers: the counter's value,
    and which server each worker that answered belongs to."""
    query(cluster, 'INSERT INTO lock_counter (id, value) VALUES (%s, 0)', (counter_id,))

    def call(i: int) -> tuple[int, str]:
        url = cluster.urls[i % 2]
        r = post(url, '/lock/increment', {'dsn': cluster.dsn, 'id': counter_id, 'times': 25, 'broken': broken})
        assert r.status_code == 200, r.text
        return r.json()['pid'], url

    with ThreadPoolExecutor(8) as pool:
        servers = dict(pool.map(call, range(40)))
    return query(cluster, 'SELECT value FROM lock_counter WHERE id = %s', (counter_id,))[0][0], servers


def test_a_counter_incremented_1000_times_under_the_lock_by_4_workers_of_2_servers_is_exact(cluster):
    value, servers = count_to_1000(cluster, 1, broken=False)
    log = query(cluster, 'SELECT token, pid, started, ended FROM lock_log WHERE counter_id = 1 ORDER BY token')
    tokens = [token for token, *_ in log]
    assert len(tokens) == 1000 and len(set(tokens)) == 1000 and None not in tokens
    # By PostgreSQL's one clock, each holder's read-to-write ended before the next token's began
    assert [(a[0], b[0]) for a, b in itertools.pairwise(log) if a[3] > b[2]] == []
    assert value == 1000
    # Each increment had a token of its own, and every worker of both servers took part
    assert set(servers.values()) == set(cluster.urls)
    assert len({pid for _, pid, *_ in log}) == 4


def test_the_checker_sees_a_broken_lock_the_same_run_without_the_lock_comes_out_short(cluster):
    value, _ = count_to_1000(cluster, 2, broken=True)
    print(f'without the lock: {value} of 1000')
    assert value < 1000


def lease_store(cluster) -> LeaseStore:
    engine = make_engine(cluster.dsn.replace('postgresql://', 'postgresql+psycopg2://'))
    cluster_id = query(cluster, 'SELECT id FROM cluster')[0][0]
    return LeaseStore(engine, cluster_id)


def wait_for_holder(cluster, name: str) -> tuple[int, int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = query(cluster, 'SELECT token, pid FROM lock_holder WHERE name = %s ORDER BY token', (name,))
        if rows:
            return rows[-1]
        time.sleep(0.02)
    raise AssertionError(f'nobody took lock {name}')


def in_background(fn, *args) -> list:
    result: list = []

    def run() -> None:
        try:
            result.append(fn(*args))
        except Exception as e:  # noqa: BLE001 - the test looks at it
            result.append(e)

    threading.Thread(target=run, daemon=True).start()
    return result


def test_a_holder_killed_with_sigkill_is_taken_over_after_its_ttl_and_its_token_is_refused_by_the_fence(cluster):
    store = lease_store(cluster)
    query(cluster, "INSERT INTO lock_guarded (name, value) VALUES ('victim', 'nobody')")
    hold = {'dsn': cluster.dsn, 'name': 'victim', 'ttl': 3, 'block': 1, 'hold': 300, 'value': 'killed holder'}
    in_background(post, cluster.urls[0], '/lock/hold', hold)
    old_token, pid = wait_for_holder(cluster, 'victim')
    time.sleep(1.5)  # at least one renewal: the lock outlives its first TTL while its holder lives
    assert store.holds('victim', old_token)

    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    with store.engine.connect() as conn:
        expires_at = conn.execute(text("SELECT expires_at FROM lease WHERE name = 'victim'")).scalar()
    assert expires_at - killed_at <= 3.1

    take = {**hold, 'block': 10, 'hold': 0, 'value': 'next holder'}
    r = post(cluster.urls[1], '/lock/hold', take)
    assert r.status_code == 200, r.text
    new = r.json()
    assert new['token'] > old_token and new['pid'] != pid
    # Not before the dead holder's time ran out, and not much after it (waiters poll every 100 ms at most)
    with store.engine.connect() as conn:
        acquired_at = conn.execute(text("SELECT acquired_at FROM lease WHERE name = 'victim'")).scalar()
    assert expires_at <= acquired_at < expires_at + 1.0
    assert new['acquired_at'] - killed_at < 3 + 1.5

    # The dead holder's token can write nothing: through the fence in the ODB ...
    with pytest.raises(LeaseLost), store.fenced('victim', old_token) as conn:
        conn.execute(text("UPDATE lock_guarded SET value = 'late write' WHERE name = 'victim'"))
    # ... nor where the data keeps the greatest token it has seen
    late = query(cluster, "UPDATE lock_guarded SET value = 'late write', fence = %s WHERE name = 'victim' "
                          'AND fence <= %s RETURNING 1', (old_token, old_token))
    assert late == []
    assert query(cluster, "SELECT value, fence FROM lock_guarded WHERE name = 'victim'") == [('next holder',
                                                                                             new['token'])]
    store.engine.dispose()


def test_a_holder_paused_past_its_ttl_cannot_write_after_another_took_over(cluster):
    query(cluster, "INSERT INTO lock_guarded (name, value) VALUES ('paused', 'nobody')")
    hold = {'dsn': cluster.dsn, 'name': 'paused', 'ttl': 2, 'block': 1, 'hold': 1, 'value': 'paused holder'}
    paused_answer = in_background(post, cluster.urls[0], '/lock/hold', hold)
    old_token, pid = wait_for_holder(cluster, 'paused')
    os.kill(pid, signal.SIGSTOP)
    try:
        r = post(cluster.urls[1], '/lock/hold', {**hold, 'block': 10, 'hold': 0, 'value': 'next holder'})
        assert r.status_code == 200, r.text
        assert r.json()['token'] > old_token
    finally:
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while not paused_answer and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = paused_answer[0]
    assert answer.status_code == 503, answer.text
    assert answer.json()['code'] == 'lock_lost'
    assert query(cluster, "SELECT value FROM lock_guarded WHERE name = 'paused'") == [('next holder',)]
