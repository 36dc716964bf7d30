"""Service statistics end to end: REST calls to a quickstart environment with two workers, the
workers' flushes to the ODB (SQLite, and PostgreSQL), the numbers through the admin API, and the
workers' heartbeats up, down after a kill -9, and stopped after `zato stop`."""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
import requests
from sqlalchemy import select

from tests import pg
from tests.e2e.harness import Env
from tests.server.stats_services import SOURCE
from zato.admin_client import AdminCallError
from zato.odb import stats_query
from zato.odb.engine import make_engine, make_session_factory, make_url
from zato.odb.models import Cluster
from zato.security.secrets_file import Crypto, read_secrets
from zato.config import settings
from zato.server.runtime import odb_settings

FLUSH = 0.5

NAMES = ('ok', 'fail', 'refuse', 'unavailable', 'outer')
CALLS = {'ok': 20, 'fail': 5, 'refuse': 4, 'unavailable': 3, 'outer': 6}
ERRORS = {'fail', 'unavailable'}


def make_env(tmp_path_factory, *create_args: str, env: dict[str, str] | None = None) -> Env:
    e = Env(str(tmp_path_factory.mktemp('stats') / 'env'), *create_args, workers=2,
            env={'ZATO_STATS_FLUSH_INTERVAL': str(FLUSH), **(env or {})})
    e.start()
    return e


@pytest.fixture(scope='module', params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def stats_env(request, tmp_path_factory):
    if request.param == 'sqlite':
        e = make_env(tmp_path_factory)
        yield e
        e.stop()
        return
    with pg.scratch_database('zato_e2e_stats_') as db:
        e = make_env(tmp_path_factory, '--odb', 'postgresql', '--odb-host', pg.HOST, '--odb-port', str(pg.PORT),
                     '--odb-user', pg.USER, '--odb-db-name', db, env={'ZATO_ODB_PASSWORD': pg.PASSWORD})
        yield e
        e.stop()


def answered(env: Env, name: str, counted: Counter) -> int:
    """One call over a new connection; a call that reached the service is counted under its name."""
    status = env.fresh_get(f'{env.url}/stats-e2e/{name}').status_code
    if status != 404:  # 404: this worker has not loaded the channel yet; no service ran
        counted[name] += 1
    return status


@pytest.fixture(scope='module')
def calls(stats_env) -> Counter:
    """Deploys the services, creates their channels, calls each as CALLS says; what reached each service."""
    env = stats_env
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'stats_e2e.py', 'source': SOURCE})
    for name in NAMES:
        env.channel(f'stats-e2e-{name}', f'/stats-e2e/{name}', f'stats-e2e.{name}')
    counted: Counter = Counter()
    for name in NAMES:
        env.wait_for(lambda name=name: all(answered(env, name, counted) != 404 for _ in range(4)), timeout=10)
    for name, times in CALLS.items():
        for _ in range(times):
            answered(env, name, counted)
    counted['ok'] += counted['outer']  # each outer call invokes ok once more
    return counted


def summary(env: Env, minutes: int = 60) -> dict[str, dict]:
    return {row['name']: row for row in env.admin.call('GET', f'/zato/admin/stats/services?minutes={minutes}')}


def test_the_admin_api_has_each_services_exact_count_and_errors_within_a_few_flushes(stats_env, calls):
    expected = {f'stats-e2e.{name}': (count, count if name in ERRORS else 0) for name, count in calls.items()}
    stats_env.wait_for(lambda: {name: (row['count'], row['errors']) for name, row in summary(stats_env).items()
                                if name.startswith('stats-e2e.')} == expected, timeout=30)
    for name, row in summary(stats_env).items():
        if name.startswith('stats-e2e.'):
            assert row['p99_ms'] >= row['p50_ms'] > 0, row
            assert row['max_ms'] >= row['p99_ms'] and row['mean_ms'] > 0, row
            assert row['last_call'].endswith('+00:00'), row
    ok = summary(stats_env)['stats-e2e.ok']
    assert ok['p50_ms'] >= 1.4 and ok['mean_ms'] >= 2  # each call sleeps 2 ms
    assert ok['error_rate'] == 0 and summary(stats_env)['stats-e2e.fail']['error_rate'] == 1


def test_internal_services_such_as_the_admin_api_are_not_listed(stats_env, calls):
    stats_env.wait_for(lambda: 'stats-e2e.ok' in summary(stats_env), timeout=30)
    assert not [name for name in summary(stats_env) if name.startswith(('zato.', 'pub.zato.'))]


def test_the_per_minute_series_of_a_service_and_of_all_add_up_to_the_calls(stats_env, calls):
    def points(path: str) -> list[dict]:
        return stats_env.admin.call('GET', path)

    stats_env.wait_for(lambda: sum(p['count'] for p in points('/zato/admin/stats/services/stats-e2e.fail/series'))
                       == calls['fail'], timeout=30)
    fail = points('/zato/admin/stats/services/stats-e2e.fail/series?minutes=5')
    assert len(fail) == 5
    assert sum(p['errors'] for p in fail) == calls['fail']
    assert all(p['error_rate'] == 1 for p in fail if p['count'])
    every = points('/zato/admin/stats/series?minutes=10')
    assert len(every) == 10
    assert sum(p['count'] for p in every) >= sum(calls.values())  # the docs test may add its own calls


@pytest.mark.parametrize('path, status, details', [
    ('/zato/admin/stats/services?minutes=0', 400, 'Invalid input `minutes`: expected a whole number from 1 to 1440'),
    ('/zato/admin/stats/services?minutes=abc', 400, 'Invalid input `minutes`: expected a whole number from 1 to 1440'),
    ('/zato/admin/stats/services?minutes=1441', 400, 'Invalid input `minutes`: expected a whole number from 1 to 1440'),
    ('/zato/admin/stats/services?minute=5', 400, 'Unknown input `minute`; expected: minutes'),
    ('/zato/admin/stats/services/no.such.service/series', 404, 'Service `no.such.service` not found'),
])
def test_bad_input_is_a_clear_4xx(stats_env, path, status, details):
    with pytest.raises(AdminCallError) as e:
        stats_env.admin.call('GET', path)
    assert (e.value.status, e.value.details) == (status, details)


def test_the_stats_endpoints_need_the_admin_credential(stats_env):
    r = requests.get(f'{stats_env.url}/zato/admin/stats/services', timeout=10)
    assert r.status_code == 401


def workers_of(env: Env) -> list[dict]:
    [server] = env.admin.call('GET', '/zato/admin/stats/workers')
    assert server['name'] == 'server1'
    return server['workers']


def test_both_workers_are_up_and_a_killed_one_is_down_after_three_missed_heartbeats(stats_env, calls):
    stats_env.wait_for(lambda: [w['status'] for w in workers_of(stats_env)] == ['up', 'up'], timeout=30)
    victim = workers_of(stats_env)[0]['pid']
    os.kill(victim, signal.SIGKILL)  # no goodbye: only the missing heartbeats tell

    def victim_down_and_replaced() -> bool:
        status = {w['pid']: w['status'] for w in workers_of(stats_env)}
        return status.get(victim) == 'down' and sorted(status.values()) == ['down', 'up', 'up']
    stats_env.wait_for(victim_down_and_replaced, timeout=30)
    [server] = stats_env.admin.call('GET', '/zato/admin/stats/workers')
    assert server['is_up']


def test_after_zato_stop_every_worker_that_was_up_is_stopped_in_the_odb(stats_env, calls):
    """Last: it stops the environment. Read as the web-admin would, from the ODB itself."""
    stats_env.wait_for(lambda: sum(w['status'] == 'up' for w in workers_of(stats_env)) == 2, timeout=30)
    up = {w['pid'] for w in workers_of(stats_env) if w['status'] == 'up'}
    stats_env.stop()
    config = settings.load(stats_env.path)
    keys = read_secrets(stats_env.path)
    engine = make_engine(make_url(odb_settings(config, keys, Crypto(keys['secret_key'])), config.env_dir))
    try:
        with make_session_factory(engine)() as session:
            cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == config.get('main', 'cluster_name')))
            [server] = stats_query.workers(session, cluster_id)
            status = {w['pid']: w['status'] for w in server['workers']}
            assert {pid: status[pid] for pid in up} == dict.fromkeys(up, 'stopped')
            assert not server['is_up']
            # And the calls were all written, the last flush included
            rows = {row['name']: row for row in stats_query.services_summary(session, cluster_id)}
            assert rows['stats-e2e.fail']['count'] == calls['fail']
    finally:
        engine.dispose()
