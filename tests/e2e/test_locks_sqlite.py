"""self.lock() on one host: the SQLite quickstart's two workers share a counter under the lock, and it
comes out exact; without the lock the same run comes out short (the checker sees a broken lock)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import requests

from zato.admin_client import AdminCallError

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
