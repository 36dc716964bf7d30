"""SSO end to end: 3.1's REST channels on a running environment (SQLite, and a two-server
PostgreSQL cluster), users made with `zato sso ...`."""

from __future__ import annotations

import concurrent.futures
import time

import pyotp
import pytest
import requests

from tests import pg
from tests.e2e.harness import Env, zato

PASSWORD = 'correct horse battery'
ENABLED = {'ZATO_COMPONENT_ENABLED_SSO': 'true'}


def make_env(path: str, *args: str, servers: int = 1, workers: int = 2, env: dict[str, str] | None = None) -> Env:
    e = Env(path, *args, servers=servers, workers=workers, env={**ENABLED, **(env or {})})
    zato('sso', 'create-super-user', e.path, 'root1', '--password-stdin', input_text=PASSWORD + '\n', env=e.env)
    e.start()
    return e


@pytest.fixture(scope='module')
def sqlite_env(tmp_path_factory):
    e = make_env(str(tmp_path_factory.mktemp('sso') / 'env'))
    yield e
    e.stop()


@pytest.fixture(scope='module')
def pg_cluster(tmp_path_factory):
    with pg.scratch_database('zato_sso_e2e_') as db:
        e = make_env(str(tmp_path_factory.mktemp('sso-pg') / 'env'), '--odb', 'postgresql', '--odb-host', pg.HOST,
                     '--odb-port', str(pg.PORT), '--odb-user', pg.USER, '--odb-db-name', db, servers=2, workers=2,
                     env={'ZATO_ODB_PASSWORD': pg.PASSWORD})
        yield e
        e.stop()


@pytest.fixture(params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def env(request):
    return request.getfixturevalue('sqlite_env' if request.param == 'sqlite' else 'pg_cluster')


def call(env: Env, method: str, path: str, body: dict | None = None, url: str | None = None,
         **kwargs) -> requests.Response:
    if method == 'GET':
        return requests.get((url or env.url) + path, params=body, timeout=10, **kwargs)
    return requests.request(method, (url or env.url) + path, json=body, timeout=10, **kwargs)


def login(env: Env, username: str = 'root1', password: str = PASSWORD, **extra) -> str:
    resp = call(env, 'POST', '/zato/sso/user/login', {'username': username, 'password': password,
                                                      'current_app': 'CRM', **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()['ust']


def test_login_answers_with_31s_envelope_and_a_ust(env):
    resp = call(env, 'POST', '/zato/sso/user/login', {'username': 'root1', 'password': PASSWORD,
                                                      'current_app': 'CRM'})
    assert resp.status_code == 200
    body = resp.json()
    assert body['status'] == 'ok' and body['cid'] == resp.headers['X-Zato-CID'] and len(body['ust']) >= 43
    assert resp.headers['Cache-Control'] == 'no-store'


def test_a_refused_login_is_the_generic_e005001_in_31s_envelope(env):
    for username in ('root1', 'nobody'):
        resp = call(env, 'POST', '/zato/sso/user/login', {'username': username, 'password': 'wrong password',
                                                          'current_app': 'CRM'})
        assert resp.status_code == 403
        assert resp.json() == {'cid': resp.headers['X-Zato-CID'], 'status': 'error', 'sub_status': ['E005001']}


@pytest.mark.parametrize('body, status, code', [
    ({'password': PASSWORD, 'current_app': 'CRM'}, 400, 'E008003'),
    ({'username': ['root1'], 'password': PASSWORD, 'current_app': 'CRM'}, 400, 'E008002'),
    ({'username': 'root1', 'password': PASSWORD, 'current_app': 'ERP'}, 403, 'E004001'),
    ({'username': 'root1', 'password': PASSWORD, 'current_app': 'CRM', 'remote_addr': '1.2.3.4'}, 403, 'E006001'),
])
def test_bad_input_gets_a_clear_status_and_sub_status_never_a_500(sqlite_env, body, status, code):
    resp = call(sqlite_env, 'POST', '/zato/sso/user/login', body)
    assert (resp.status_code, resp.json()['sub_status']) == (status, [code])


def test_a_nul_character_anywhere_in_the_input_is_a_400_not_a_500(env):
    """PostgreSQL refuses NUL in text, and the driver raises before the query is sent: every SSO call
    refuses such input itself, in the body or in the query string, as invalid input."""
    root = login(env)
    for method, path, body in [
        ('POST', '/zato/sso/user/login', {'username': 'root\x001', 'password': PASSWORD, 'current_app': 'CRM'}),
        ('POST', '/zato/sso/user/login', {'username': 'root1', 'password': 'a\x00b', 'current_app': 'CRM'}),
        ('GET', '/zato/sso/user/search', {'ust': root, 'current_app': 'CRM', 'display_name': 'Al\x00'}),
        ('POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': 'nul\x00user',
                                    'password': PASSWORD}),
        ('PATCH', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'display_name': ['x', {'y': '\x00'}]}),
    ]:
        resp = call(env, method, path, body)
        assert (resp.status_code, resp.json()['sub_status']) == (400, ['E008002']), (path, body, resp.text)


def test_a_body_that_is_not_a_json_object_is_a_400(sqlite_env):
    resp = requests.post(sqlite_env.url + '/zato/sso/user/login', data=b'[1, 2]', timeout=10)
    assert (resp.status_code, resp.json()['sub_status']) == (400, ['E008002'])
    resp = requests.post(sqlite_env.url + '/zato/sso/user/login', data=b'{', timeout=10)
    assert resp.status_code == 400


def test_a_super_user_creates_gets_searches_updates_locks_and_deletes_a_user(env):
    root = login(env)
    username = f'alice{time.monotonic_ns()}'
    resp = call(env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': username,
                                                'password': PASSWORD, 'email': f'{username}@example.com',
                                                'display_name': 'Alice A.'})
    assert resp.status_code == 200, resp.text
    user_id = resp.json()['user_id']
    alice = login(env, username)
    me = call(env, 'GET', '/zato/sso/user', {'ust': alice, 'current_app': 'CRM'}).json()
    assert (me['username'], me['email'], me['is_super_user']) == (username, f'{username}@example.com', False)
    found = call(env, 'GET', '/zato/sso/user/search', {'ust': root, 'current_app': 'CRM', 'username': username}).json()
    assert [u['user_id'] for u in found['result']] == [user_id] and found['total'] == 1
    assert call(env, 'PATCH', '/zato/sso/user', {'ust': alice, 'current_app': 'CRM',
                                                 'display_name': 'Alice B.'}).json()['status'] == 'ok'
    # A user may not act on others, nor search
    resp = call(env, 'GET', '/zato/sso/user/search', {'ust': alice, 'current_app': 'CRM'})
    assert (resp.status_code, resp.json()['sub_status']) == (403, ['E005005'])
    assert call(env, 'POST', '/zato/sso/user/lock', {'ust': root, 'current_app': 'CRM',
                                                     'user_id': user_id}).status_code == 200
    resp = call(env, 'GET', '/zato/sso/user', {'ust': alice, 'current_app': 'CRM'})
    assert (resp.status_code, resp.json()['sub_status']) == (403, ['E007001'])  # locking ended the session
    assert call(env, 'POST', '/zato/sso/user/unlock', {'ust': root, 'current_app': 'CRM',
                                                       'user_id': user_id}).status_code == 200
    login(env, username)
    assert call(env, 'DELETE', '/zato/sso/user', {'ust': root, 'current_app': 'CRM',
                                                  'user_id': user_id}).status_code == 200
    resp = call(env, 'POST', '/zato/sso/user/login', {'username': username, 'password': PASSWORD,
                                                      'current_app': 'CRM'})
    assert resp.json()['sub_status'] == ['E005001']


def test_sessions_are_verified_renewed_listed_and_ended_on_every_server(env):
    root = login(env)
    for url in env.urls:
        assert call(env, 'POST', '/zato/sso/user/session', {'current_ust': root, 'target_ust': root,
                                                            'current_app': 'CRM'}, url=url).json()['is_valid']
    renewed = call(env, 'PATCH', '/zato/sso/user/session', {'ust': root, 'current_app': 'CRM'}).json()
    assert renewed['status'] == 'ok' and renewed['expiration_time'].endswith('+00:00')
    got = call(env, 'GET', '/zato/sso/user/session', {'current_ust': root, 'current_app': 'CRM'}).json()
    assert got['remote_addr'] == '127.0.0.1' and got['current_app'] == 'CRM'
    listed = call(env, 'GET', '/zato/sso/user/session/list', {'ust': root, 'current_app': 'CRM'}).json()
    assert listed['result']
    assert call(env, 'POST', '/zato/sso/user/logout', {'ust': root, 'current_app': 'CRM'}).json()['status'] == 'ok'
    for url in env.urls:
        resp = call(env, 'GET', '/zato/sso/user', {'ust': root, 'current_app': 'CRM'}, url=url)
        assert resp.json()['sub_status'] == ['E007001']


def test_a_password_change_kills_the_other_sessions(env):
    root = login(env)
    username = f'bob{time.monotonic_ns()}'
    call(env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': username,
                                         'password': PASSWORD})
    old = login(env, username)
    mine = login(env, username)
    resp = call(env, 'PATCH', '/zato/sso/user/password', {'ust': mine, 'current_app': 'CRM',
                                                          'old_password': PASSWORD, 'new_password': 'new secret 1'})
    assert resp.status_code == 200, resp.text
    assert call(env, 'GET', '/zato/sso/user', {'ust': old, 'current_app': 'CRM'}).json()['sub_status'] == ['E007001']
    assert call(env, 'GET', '/zato/sso/user', {'ust': mine, 'current_app': 'CRM'}).json()['username'] == username


def test_the_sso_channels_go_through_the_ip_level_of_the_guard_chain(sqlite_env):
    """A default rate-limit definition (the IP level) applies to /zato/sso/... as to any user channel."""
    created = sqlite_env.admin.call('POST', '/zato/admin/rate-limits', {'name': 'sso-ip', 'rules': '10.9.9.9 = 1/s',
                                                                        'is_default': True})
    try:
        sqlite_env.wait_for(lambda: call(sqlite_env, 'POST', '/zato/sso/user/login', {}).status_code == 403
                            and 'sub_status' not in call(sqlite_env, 'POST', '/zato/sso/user/login', {}).json())
    finally:
        sqlite_env.admin.call('DELETE', f'/zato/admin/rate-limits/{created["id"]}')
    sqlite_env.wait_for(lambda: call(sqlite_env, 'POST', '/zato/sso/user/login', {}).status_code == 400)


@pytest.mark.postgresql
def test_100_concurrent_logins_with_one_totp_code_over_two_servers_make_exactly_one_session(pg_cluster):
    username = f'totp{time.monotonic_ns()}'
    root = login(pg_cluster)
    call(pg_cluster, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': username,
                                                'password': PASSWORD})
    out = zato('sso', 'reset-totp-key', pg_cluster.path, username, env=pg_cluster.env).stdout
    key = out.split('Key: ')[1].split()[0]
    totp = pyotp.TOTP(key)
    while 30 - time.time() % 30 < 8:  # not at the edge of a step: the code must stay valid throughout
        time.sleep(0.5)
    code = totp.now()

    def attempt(i: int) -> int:
        url = pg_cluster.urls[i % 2]
        return requests.post(url + '/zato/sso/user/login', json={'username': username, 'password': PASSWORD,
                                                                 'current_app': 'CRM', 'totp_code': code},
                             headers={'Connection': 'close'}, timeout=60).status_code
    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        statuses = list(pool.map(attempt, range(100)))
    assert statuses.count(200) == 1, statuses
    assert statuses.count(403) == 99
    root = login(pg_cluster)
    users = call(pg_cluster, 'GET', '/zato/sso/user/search', {'ust': root, 'current_app': 'CRM',
                                                              'username': username}).json()['result']
    sessions = call(pg_cluster, 'GET', '/zato/sso/user/session/list', {'ust': root, 'current_app': 'CRM',
                                                                       'user_id': users[0]['user_id']}).json()
    assert len(sessions['result']) == 1


def test_quickstart_writes_a_commented_ssoconf_at_the_defaults(sqlite_env):
    from zato.sso.config import load, parse_text
    text = open(f'{sqlite_env.path}/config/repo/sso.conf', encoding='utf-8').read()
    assert '# Every key is shown at its default' in text and '[user_address_list]' in text
    assert load(sqlite_env.path) == parse_text('', 'defaults')


def test_a_bad_ssoconf_stops_the_start_with_one_line_naming_the_key(tmp_path):
    e = Env(str(tmp_path / 'env'), env=ENABLED)
    conf = f'{e.path}/config/repo/sso.conf'
    with open(conf, encoding='utf-8') as f:
        text = f.read()
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(text.replace('[session]\n# Minutes a session lives after its creation or last renewal (idle expiry).\n'
                             'expiry = 60', '[session]\nexpiry = soon'))
    for command in ('check-config', 'start'):
        proc = zato(command, e.path, env=e.env, check=False)
        assert proc.returncode == 1
        assert proc.stderr.count('\n') == 1, proc.stderr
        assert 'sso.conf [session] expiry: invalid value `soon`' in proc.stderr
    e.stop()


def test_over_rest_an_unknown_users_login_takes_as_long_as_a_wrong_passwords(sqlite_env):
    """Medians of back-to-back pairs (the order alternating), so that the machine's other work weighs on both."""
    session = requests.Session()

    def timed(username: str) -> float:
        started = time.perf_counter()
        resp = session.post(sqlite_env.url + '/zato/sso/user/login', json={
            'username': username, 'password': 'wrong password', 'current_app': 'CRM'}, timeout=10)
        took = time.perf_counter() - started
        assert resp.json()['sub_status'] == ['E005001']
        return took
    username = f'timed{time.monotonic_ns()}'
    root = login(sqlite_env)
    call(sqlite_env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': username,
                                                'password': PASSWORD})
    timed('nobody'), timed(username)
    differences = []
    for i in range(60):
        if i % 4 == 3:  # never five failures in a row: a lockout would answer without the hash
            call(sqlite_env, 'POST', '/zato/sso/user/unlock', {'ust': root, 'current_app': 'CRM',
                                                               'user_id': sso_user_id(sqlite_env, root, username)})
        first, second = (timed('nobody'), timed(username)) if i % 2 else (timed(username), timed('nobody'))[::-1]
        differences.append(second - first)
    import statistics
    assert abs(statistics.median(differences)) < 0.005, (statistics.median(differences), differences)


def sso_user_id(env: Env, root: str, username: str) -> str:
    found = call(env, 'GET', '/zato/sso/user/search', {'ust': root, 'current_app': 'CRM', 'username': username})
    return found.json()['result'][0]['user_id']


def test_without_the_setting_the_sso_channels_are_not_served(tmp_path):
    e = Env(str(tmp_path / 'env'))
    e.start()
    try:
        resp = call(e, 'POST', '/zato/sso/user/login', {'username': 'root1', 'password': PASSWORD,
                                                        'current_app': 'CRM'})
        assert (resp.status_code, resp.json()['details']) == (404, 'URL not found `/zato/sso/user/login`')
    finally:
        e.stop()


def test_a_user_who_must_change_the_password_sends_a_new_one_with_the_login(env):
    root = login(env)
    username = f'erin{time.monotonic_ns()}'
    call(env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': 'CRM', 'username': username,
                                         'password': PASSWORD, 'password_must_change': True})
    body = {'username': username, 'password': PASSWORD, 'current_app': 'CRM'}
    resp = call(env, 'POST', '/zato/sso/user/login', body)
    assert (resp.status_code, resp.json()['sub_status']) == (403, ['E003007'])
    resp = call(env, 'POST', '/zato/sso/user/login', {**body, 'new_password': 'short'})
    assert (resp.status_code, resp.json()['sub_status']) == (400, ['E003002'])
    resp = call(env, 'POST', '/zato/sso/user/login', {**body, 'new_password': 'a brand new passphrase'})
    assert resp.status_code == 200 and resp.json()['status'] == 'ok'
    assert call(env, 'POST', '/zato/sso/user/login', body).json()['sub_status'] == ['E005001']
    login(env, username, 'a brand new passphrase')
