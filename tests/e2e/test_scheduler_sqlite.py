"""The scheduler on one host (SQLite quickstart, one server, two workers): jobs of each type fire on
time, once per due time, with 3.1's channel, job type, raw request and hooks; repeats, one-time jobs,
"Execute now", errors, edits applied at once, overlap prevention, and the misfire policies across a
stop of the whole environment."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import time
from datetime import UTC, datetime

import pytest

from tests.e2e.harness import ROOT, Env, docs_example, zato
from zato.admin_client import AdminCallError

SERVICE = '''
import os
import sqlite3
import time

from zato.server.service import Service


class Record(Service):
    """Writes a row per run (and one per hook) to the SQLite file `db` named in the job's extra."""
    name = 'sched-test.record'

    def _db(self):
        extra = dict(line.split('=', 1) for line in self.request.raw_request.splitlines() if '=' in line)
        return extra, sqlite3.connect(extra['db'], timeout=30, isolation_level=None)

    def _hook(self, hook):
        _, db = self._db()
        db.execute('INSERT INTO hooks (cid, hook) VALUES (?, ?)', (self.cid, hook))
        db.close()

    def before_job(self):
        self._hook('before_job')

    def before_interval_based_job(self):
        self._hook('before_interval_based_job')

    def before_one_time_job(self):
        self._hook('before_one_time_job')

    def before_cron_style_job(self):
        self._hook('before_cron_style_job')

    def after_job(self):
        self._hook('after_job')

    def after_interval_based_job(self):
        self._hook('after_interval_based_job')

    def handle(self):
        extra, db = self._db()
        started = time.time()
        time.sleep(float(extra.get('sleep', 0)))
        job = self.environ['zato.scheduler']
        db.execute('INSERT INTO runs (job, due, channel, job_type, raw, started, ended, pid, cid) '
                   'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                   (job['name'], job['due'], self.channel.type, self.job_type, self.request.raw_request, started,
                    time.time(), os.getpid(), self.cid))
        db.close()
        if extra.get('fail'):
            raise ValueError('failed on purpose')
'''


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    e = Env(str(tmp_path_factory.mktemp('sched') / 'env'), env={'ZATO_SCHEDULER_MISFIRE_GRACE': '3',
                                                                'ZATO_MAIN_GRACEFUL_TIMEOUT': '5'})
    e.start()
    e.db = os.path.join(e.path, 'runs.sqlite3')
    db = sqlite3.connect(e.db, isolation_level=None)
    db.execute('PRAGMA journal_mode=WAL')
    db.execute('CREATE TABLE runs (job TEXT, due REAL, channel TEXT, job_type TEXT, raw TEXT, started REAL, '
               'ended REAL, pid INTEGER, cid TEXT)')
    db.execute('CREATE TABLE hooks (cid TEXT, hook TEXT)')
    db.close()
    e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'sched_test.py', 'source': SERVICE})
    yield e
    e.stop()


def runs(env, job: str) -> list[tuple]:
    db = sqlite3.connect(env.db, timeout=30)
    try:
        return db.execute('SELECT due, channel, job_type, raw, started, ended, pid, cid FROM runs WHERE job = ? '
                          'ORDER BY due', (job,)).fetchall()
    finally:
        db.close()


def hooks(env, cid: str) -> list[str]:
    db = sqlite3.connect(env.db, timeout=30)
    try:
        return [row[0] for row in db.execute('SELECT hook FROM hooks WHERE cid = ? ORDER BY rowid', (cid,))]
    finally:
        db.close()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def create(env, name: str, **fields) -> dict:
    extra = fields.pop('extra', [f'db={env.db}'])
    return env.admin.call('POST', '/zato/admin/scheduler/jobs', {'name': name, 'service': 'sched-test.record',
                                                                'extra': extra, **fields})


def job(env, job_id: int) -> dict:
    return env.admin.call('GET', f'/zato/admin/scheduler/jobs/{job_id}')


def test_an_interval_job_fires_each_due_time_once_on_time_then_stops_after_its_repeats(env):
    start = int(time.time()) + 2
    created = create(env, 'every-second', job_type='interval_based', seconds=1, repeats=5, start_date=iso(start),
                     extra=[f'db={env.db}', 'note=hello'])
    assert created['next_run'] == iso(start) and created['is_active'] is True
    env.wait_for(lambda: len(runs(env, 'every-second')) == 5, timeout=20)
    time.sleep(1.5)
    found = runs(env, 'every-second')
    assert [row[0] for row in found] == [start + i for i in range(5)]
    for due, channel, job_type, raw, started, _, _, cid in found:
        assert (channel, job_type, raw) == ('scheduler', 'interval_based', f'db={env.db}\nnote=hello')
        assert 0 <= started - due < 1.0, (due, started)
        assert hooks(env, cid) == ['before_job', 'before_interval_based_job', 'after_job',
                                   'after_interval_based_job']
    done = job(env, created['id'])
    assert (done['is_active'], done['next_run'], done['runs'], done['last_result']) == (False, None, 5, 'ok')
    assert done['last_run_start'] is not None and done['last_run_end'] >= done['last_run_start']


def test_a_cron_job_with_seconds_fires_on_its_seconds_and_a_one_time_job_fires_once(env):
    start = time.time()
    cron = create(env, 'cron-every-2s', job_type='cron_style', cron_definition='* * * * * */2')
    once = create(env, 'one-time', job_type='one_time', start_date=iso(int(start) + 2))
    time.sleep(6)
    env.admin.call('PUT', f'/zato/admin/scheduler/jobs/{cron["id"]}', {'is_active': False})
    stopped = time.time()
    cron_runs = runs(env, 'cron-every-2s')
    assert len(cron_runs) >= 2 and all(int(row[0]) % 2 == 0 for row in cron_runs)
    assert len({row[0] for row in cron_runs}) == len(cron_runs)
    assert {row[2] for row in cron_runs} == {'cron_style'}
    assert [row[0] for row in runs(env, 'one-time')] == [int(start) + 2]
    assert hooks(env, runs(env, 'one-time')[0][7]) == ['before_job', 'before_one_time_job', 'after_job']
    assert job(env, once['id'])['is_active'] is False
    # Made inactive with an edit: the holder heard at once, nothing fires after it
    time.sleep(3)
    assert all(row[0] <= stopped for row in runs(env, 'cron-every-2s'))


def test_execute_now_runs_a_job_at_once_and_a_failure_is_the_jobs_last_result(env):
    created = create(env, 'failing', job_type='interval_based', hours=1, start_date=iso(time.time() + 3600),
                     extra=[f'db={env.db}', 'fail=1'])
    answer = env.admin.call('POST', f'/zato/admin/scheduler/jobs/{created["id"]}/execute')
    assert answer['name'] == 'failing' and answer['cid']
    env.wait_for(lambda: job(env, created['id'])['last_result'] == 'error', timeout=10)
    failed = job(env, created['id'])
    assert 'ValueError: failed on purpose' in failed['last_error']
    assert failed['next_run'] == created['next_run']  # the schedule is as it was
    assert [row[7] for row in runs(env, 'failing')] == [answer['cid']]


def test_a_run_never_overlaps_the_previous_one_unless_the_job_allows_it(env):
    for name, allow in (('slow-no-overlap', False), ('slow-overlap', True)):
        create(env, name, job_type='interval_based', seconds=1, start_date=iso(int(time.time()) + 1),
               extra=[f'db={env.db}', 'sleep=2.5'], allow_overlap=allow)
    time.sleep(8)
    for name in ('slow-no-overlap', 'slow-overlap'):
        jobs = env.admin.call('GET', '/zato/admin/scheduler/jobs')
        job_id = next(j['id'] for j in jobs if j['name'] == name)
        env.admin.call('PUT', f'/zato/admin/scheduler/jobs/{job_id}', {'is_active': False})
    time.sleep(3)
    spans = sorted((row[4], row[5]) for row in runs(env, 'slow-no-overlap'))
    assert len(spans) >= 2
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    overlapping = sorted((row[4], row[5]) for row in runs(env, 'slow-overlap'))
    assert any(a[1] > b[0] for a, b in zip(overlapping, overlapping[1:], strict=False)), overlapping


@pytest.mark.parametrize('fields, says', [
    ({'job_type': 'cron_style', 'cron_definition': '61 * * * *'}, 'cron_definition'),
    ({'job_type': 'cron_style', 'cron_definition': '* * * * *', 'timezone': 'Mars/Olympus'}, 'timezone'),
    ({'job_type': 'interval_based'}, 'above 0'),
    ({'job_type': 'interval_based', 'seconds': -1}, 'seconds'),
    ({'job_type': 'interval_based', 'seconds': 1, 'repeats': -2}, 'repeats'),
    ({'job_type': 'weekly'}, 'job_type'),
    ({'job_type': 'one_time', 'start_date': 'tomorrow'}, 'start_date'),
    ({'job_type': 'one_time', 'misfire': 'later'}, 'misfire'),
    ({'job_type': 'one_time', 'extra': {'a': 1}}, 'extra'),
    ({'job_type': 'one_time', 'service': 'no.such.service'}, 'service'),
    ({'job_type': 'one_time', 'colour': 'red'}, 'colour'),
])
def test_a_bad_job_is_refused_with_400_naming_the_field(env, fields, says):
    with pytest.raises(AdminCallError) as e:
        create(env, 'bad', **fields)
    assert e.value.status == 400 and says in str(e.value)


def test_due_times_missed_while_no_server_was_up_follow_the_misfire_policy(env):
    start = int(time.time()) + 1
    for name, misfire in (('missed-fire-once', 'fire_once'), ('missed-skip', 'skip')):
        create(env, name, job_type='interval_based', seconds=2, start_date=iso(start), misfire=misfire)
    env.wait_for(lambda: runs(env, 'missed-fire-once') and runs(env, 'missed-skip'), timeout=10)
    env.stop()
    stopped = time.time()
    time.sleep(6)  # three due times or more, all later than the grace (3 s) by the time a server is up
    env.start()
    started = time.time()
    time.sleep(5)
    once = [row[0] for row in runs(env, 'missed-fire-once')]
    skip = [row[0] for row in runs(env, 'missed-skip')]
    # fire_once: exactly one run for the due times missed while down, at once; skip: none of them. A run
    # for a missed due time is one that started after the stop and more than the grace (3 s) after its due
    # time; that due time may be a little before `stopped`, when the stop came just as it fell due
    late_once = [row for row in runs(env, 'missed-fire-once') if row[4] > stopped and row[4] - row[0] > 3]
    late_skip = [row for row in runs(env, 'missed-skip') if row[4] > stopped and row[4] - row[0] > 3]
    assert len(late_once) == 1 and late_once[0][0] > stopped - 2, (once, stopped, started)
    assert late_skip == [], (skip, stopped, started)
    # Both go on from their first due time after the start
    assert any(due >= started - 3 for due in once) and any(due >= started - 3 for due in skip)
    assert len(set(once)) == len(once) and len(set(skip)) == len(skip)


def test_the_command_line_examples_of_the_docs_page_run_as_written(env):
    # The page's ```sh block, each command (lines joined at a trailing backslash) run against this environment
    _, file_name, code = docs_example('scheduler.md')
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': code})
    with open(os.path.join(ROOT, 'docs', 'scheduler.md'), encoding='utf-8') as f:
        block = re.search(r'^```sh\n(.*?)^```', f.read(), re.S | re.M).group(1)
    for command in block.replace('\\\n', ' ').splitlines():
        args = shlex.split(command.replace('~/zato-quickstart', env.path))
        assert args[0] == 'zato'
        zato(*args[1:], env=env.env)
    nightly = job_named(env, 'nightly-report')
    assert (nightly['cron_definition'], nightly['timezone'], nightly['is_active']) == ('0 2 * * *', 'Europe/Prague',
                                                                                        False)
    env.wait_for(lambda: job_named(env, 'nightly-report')['last_result'] == 'ok', timeout=10)  # executed


def job_named(env, name: str) -> dict:
    return next(j for j in env.admin.call('GET', '/zato/admin/scheduler/jobs') if j['name'] == name)
