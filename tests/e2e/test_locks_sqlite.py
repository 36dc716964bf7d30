"""self.lock() on one host: the SQLite quickstart's two workers share a counter under the lock, and it
comes out exact; without the lock the same run comes out short (the checker sees a broken lock). A worker
killed while holding the lock keeps it only until its TTL, and its token is refused by the fence."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text

from tests.e2e.harness import Env
from zato.admin_client import AdminCallError
from zato.errors import LeaseLost
from zato.odb.engine import make_engine
from zato.odb.lease import LeaseStore

SERVICE = '''
import contextlib
import os
import sqlite3
import time

from zato.server.service import Service


class Increment(Service):
    name = 'lock-sqlite.increment'

    def handle(self):
        req = self.request.payload
        db = sqlite3.connect(req['path'], timeout=10, isolation_level=None)
        try:
            for _ in range(req['times']):
                guard = contextlib.nullcontext() if req.get('broken') else self.lock(ttl=5, block=60)
                with guard:
                    value = db.execute('SELECT value FROM counter').fetchone()[0]
                    time.sleep(0.002)
                    db.execute('UPDATE counter SET value = ?', (value + 1,))
                    db.execute('INSERT INTO seen (pid) VALUES (?)', (os.getpid(),))
        finally:
            db.close()
        self.response.payload = {'pid': os.getpid()}
'''


def count_to(env, path: str, broken: bool) -> tuple[int, int]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('CREATE TABLE counter (value INTEGER NOT NULL)')
    db.execute('CREATE TABLE seen (pid INTEGER NOT NULL)')
    db.execute('INSERT INTO counter VALUES (0)')

    def call(_: int) -> None:
        r = requests.post(env.url + '/lock/sqlite/increment', json={'path': path, 'times': 25, 'broken': broken},
                          headers={'Connection': 'close'}, timeout=120)
        assert r.status_code == 200, r.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(call, range(16)))
    value = db.execute('SELECT value FROM counter').fetchone()[0]
    workers = db.execute('SELECT count(DISTINCT pid) FROM seen').fetchone()[0]
    db.close()
    return value, workers


def deploy(env, tmp_path) -> None:
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'lock_sqlite.py', 'source': SERVICE})
    try:
        env.channel('lock-sqlite-increment', '/lock/sqlite/increment', 'lock-sqlite.increment')
    except AdminCallError as e:
        assert e.status == 409  # made by the other test of this module in the same session
    probe = {'path': str(tmp_path / 'probe.sqlite3'), 'times': 0}
    env.wait_for(lambda: all(requests.post(env.url + '/lock/sqlite/increment', json=probe, timeout=10,
                                           headers={'Connection': 'close'}).status_code == 200 for _ in range(6)))


def test_a_counter_incremented_400_times_under_the_lock_by_both_workers_of_a_sqlite_server_is_exact(env, tmp_path):
    deploy(env, tmp_path)
    value, workers = count_to(env, str(tmp_path / 'counter.sqlite3'), broken=False)
    assert value == 400
    assert workers == 2


def test_the_same_run_without_the_lock_comes_out_short(env, tmp_path):
    deploy(env, tmp_path)
    value, _ = count_to(env, str(tmp_path / 'counter.sqlite3'), broken=True)
    assert value < 400


HOLD = '''
import os
import sqlite3
import time

from zato.server.service import Service


class Hold(Service):
    name = 'lock-sqlite.hold'

    def handle(self):
        req = self.request.payload
        with self.lock('lock-sqlite.victim', ttl=req['ttl'], block=req['block']) as lock:
            db = sqlite3.connect(req['path'], timeout=10, isolation_level=None)
            db.execute('INSERT INTO holder (token, pid) VALUES (?, ?)', (lock.token, os.getpid()))
            db.close()
            time.sleep(req['hold'])
        self.response.payload = {'token': lock.token, 'pid': os.getpid()}
'''


@pytest.fixture(scope='module')
def own_env(tmp_path_factory):
    """An environment of its own: a worker of it gets killed."""
    env = Env(str(tmp_path_factory.mktemp('locks-sqlite') / 'env'), workers=2)
    env.start()
    try:
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'lock_sqlite_hold.py', 'source': HOLD})
        env.channel('lock-sqlite-hold', '/lock/sqlite/hold', 'lock-sqlite.hold')
        yield env
    finally:
        env.stop()


def test_a_worker_killed_holding_the_lock_keeps_it_only_until_its_ttl(own_env, tmp_path):
    env = own_env
    path = str(tmp_path / 'holder.sqlite3')
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('CREATE TABLE holder (token INTEGER NOT NULL, pid INTEGER NOT NULL)')
    hold = {'path': path, 'ttl': 2, 'block': 1, 'hold': 300}
    env.wait_for(lambda: requests.post(env.url + '/lock/sqlite/hold', json={**hold, 'hold': 0}, timeout=10,
                                       headers={'Connection': 'close'}).status_code == 200, timeout=10)
    db.execute('DELETE FROM holder')

    def doomed_call() -> None:
        with contextlib.suppress(requests.RequestException):  # its worker is killed mid-call
            requests.post(env.url + '/lock/sqlite/hold', json=hold, timeout=600)

    threading.Thread(target=doomed_call, daemon=True).start()
    env.wait_for(lambda: db.execute('SELECT count(*) FROM holder').fetchone()[0] == 1, timeout=10)
    old_token, pid = db.execute('SELECT token, pid FROM holder').fetchone()
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    r = requests.post(env.url + '/lock/sqlite/hold', json={**hold, 'block': 10, 'hold': 0},
                      headers={'Connection': 'close'}, timeout=30)
    took = time.monotonic() - killed_at
    assert r.status_code == 200, r.text
    assert r.json()['token'] == old_token + 1 and r.json()['pid'] != pid
    assert took < 2 + 1.5

    # The dead holder's token can no longer write through the fence
    engine = make_engine(f'sqlite:///{os.path.join(env.path, "data", "odb.sqlite3")}')
    with engine.connect() as conn:
        cluster_id = conn.execute(text('SELECT id FROM cluster')).scalar()
    with pytest.raises(LeaseLost), LeaseStore(engine, cluster_id).fenced('lock-sqlite.victim', old_token):
        pass
    engine.dispose()
    db.close()
