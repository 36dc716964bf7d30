"""The per-worker cache of verified sessions over REST (zato.sso.verify_cache): a change made on one server
ends a session on every worker of the other at once, through the cluster bus. The cache is set to remember
an entry for 10 minutes here, so that only the bus can make these tests pass; one server of two workers on
SQLite (its local bus), two servers of two workers each on PostgreSQL."""

from __future__ import annotations

import time

import psycopg2
import pytest
import requests

from tests import pg
from tests.e2e.harness import Env, zato
from zato.sso.context import ust_hash

PASSWORD = 'correct horse battery'
ENABLED = {'ZATO_COMPONENT_ENABLED_SSO': 'true'}
APP = 'CRM'
TRIES = 16  # verifies over fresh connections, so that every worker of a server answers some
PROPAGATION = 5.0  # seconds a bus message may take on a loaded machine; the cache's bound is 600


def make_env(path: str, *args: str, servers: int, env: dict[str, str] | None = None) -> Env:
    e = Env(path, *args, servers=servers, workers=2, env={**ENABLED, **(env or {})})
    conf = f'{e.path}/config/repo/sso.conf'
    with open(conf, encoding='utf-8') as f:
        text = f.read()
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(text.replace('\nverify_cache_seconds = 3\n', '\nverify_cache_seconds = 600\n', 1).replace(
            '\nexpiry = 60\n', '\nexpiry = 1\n', 1))
    zato('sso', 'create-super-user', e.path, 'root1', '--password-stdin', input_text=PASSWORD + '\n', env=e.env)
    e.start()
    return e


@pytest.fixture(scope='module')
def sqlite_env(tmp_path_factory):
    e = make_env(str(tmp_path_factory.mktemp('sso-vc') / 'env'), servers=1)
    yield e
    e.stop()


@pytest.fixture(scope='module')
def pg_db():
    with pg.scratch_database('zato_sso_vc_') as db:
        yield db


@pytest.fixture(scope='module')
def pg_cluster(tmp_path_factory, pg_db):
    e = make_env(str(tmp_path_factory.mktemp('sso-vc-pg') / 'env'), '--odb', 'postgresql', '--odb-host', pg.HOST,
                 '--odb-port', str(pg.PORT), '--odb-user', pg.USER, '--odb-db-name', pg_db, servers=2,
                 env={'ZATO_ODB_PASSWORD': pg.PASSWORD})
    yield e
    e.stop()


@pytest.fixture(params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def env(request):
    return request.getfixturevalue('sqlite_env' if request.param == 'sqlite' else 'pg_cluster')


def call(url: str, method: str, path: str, body: dict) -> requests.Response:
    if method == 'GET':
        return requests.get(url + path, params=body, timeout=10, headers={'Connection': 'close'})
    return requests.request(method, url + path, json=body, timeout=10, headers={'Connection': 'close'})


def login(env: Env, username: str = 'root1', password: str = PASSWORD) -> str:
    resp = call(env.url, 'POST', '/zato/sso/user/login', {'username': username, 'password': password,
                                                          'current_app': APP})
    assert resp.status_code == 200, resp.text
    return resp.json()['ust']


def new_user(env: Env, root: str) -> tuple[str, str]:
    """(user_id, UST) of a new regular user."""
    username = f'u{time.monotonic_ns()}'
    resp = call(env.url, 'POST', '/zato/sso/user', {'ust': root, 'current_app': APP, 'username': username,
                                                    'password': PASSWORD})
    assert resp.status_code == 200, resp.text
    return resp.json()['user_id'], login(env, username)


def verdicts(url: str, current: str, target: str) -> set:
    """What the workers of the server at `url` say of `target`: True, False, or a refusal's sub-status."""
    out = set()
    for _ in range(TRIES):
        body = call(url, 'POST', '/zato/sso/user/session', {'current_ust': current, 'target_ust': target,
                                                            'current_app': APP}).json()
        out.add(body['is_valid'] if body['status'] == 'ok' else body['sub_status'][0])
    return out


def ended_on(env: Env, current: str, target: str) -> None:
    """Every worker of the last server sees `target` ended within the bus's propagation time."""
    env.wait_for(lambda: verdicts(env.urls[-1], current, target) <= {False, 'E007001', 'E007002'},
                 timeout=PROPAGATION)


def test_a_logout_on_one_server_ends_the_session_on_the_other_at_once(env):
    root = login(env)
    _, ust = new_user(env, root)
    assert verdicts(env.urls[-1], ust, ust) == {True}  # remembered by the workers of the last server
    resp = call(env.url, 'POST', '/zato/sso/user/logout', {'ust': ust, 'current_app': APP})
    assert resp.json()['status'] == 'ok'
    ended_on(env, ust, ust)
    ended_on(env, root, ust)


@pytest.mark.parametrize('change', ['lock', 'password', 'delete'])
def test_a_change_of_the_user_on_one_server_ends_their_sessions_on_the_other_at_once(env, change):
    root = login(env)
    user_id, ust = new_user(env, root)
    assert verdicts(env.urls[-1], ust, ust) == {True}
    assert verdicts(env.urls[-1], root, ust) == {True}
    if change == 'lock':
        resp = call(env.url, 'POST', '/zato/sso/user/lock', {'ust': root, 'current_app': APP, 'user_id': user_id})
    elif change == 'password':
        resp = call(env.url, 'PATCH', '/zato/sso/user/password', {'ust': root, 'current_app': APP,
                                                                  'user_id': user_id, 'new_password': 'new secret 1'})
    else:
        resp = call(env.url, 'DELETE', '/zato/sso/user', {'ust': root, 'current_app': APP, 'user_id': user_id})
    assert resp.status_code == 200, resp.text
    ended_on(env, ust, ust)
    ended_on(env, root, ust)


@pytest.mark.postgresql
def test_an_expired_session_is_refused_though_every_worker_remembers_it(pg_cluster):
    started = time.time()
    ust = login(pg_cluster)
    for url in pg_cluster.urls:
        assert verdicts(url, ust, ust) == {True}
    time.sleep(max(0.0, started + 61 - time.time()))  # [session] expiry = 1 minute; the cache's bound is 10
    for url in pg_cluster.urls:
        assert verdicts(url, ust, ust) <= {'E007001', 'E007002'}


@pytest.mark.postgresql
def test_a_worker_whose_bus_reconnects_forgets_what_it_verified(pg_cluster, pg_db):
    root = login(pg_cluster)
    _, ust = new_user(pg_cluster, root)
    last = pg_cluster.urls[-1]
    assert verdicts(last, ust, ust) == {True}
    conn = psycopg2.connect(**pg.connect_kwargs(pg_db))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # Ended behind the servers' backs: no bus message, so the workers remember it still
            cur.execute('DELETE FROM zato_sso_session WHERE ust_hash = %s', (ust_hash(ust),))
            assert verdicts(last, ust, ust) == {True}
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                        "AND application_name = 'zato.bus.listen'", (pg_db,))
            assert len(cur.fetchall()) >= 4  # every worker's bus connection
    finally:
        conn.close()
    pg_cluster.wait_for(lambda: verdicts(last, ust, ust) == {'E007001'}, timeout=30)
