"""SSO linked credentials end to end, on SQLite and on PostgreSQL (two workers each): a REST request
authenticated by a Basic Auth or JWT definition linked to an SSO user acts as that user - the
service sees the user, an SSO session is opened and then extended, the user's rate limit applies
(exact, cluster-wide, with PostgreSQL) - and unlinking, locking or deleting takes effect at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests import pg
from tests.e2e.harness import Env, zato

PASSWORD = 'correct horse battery'
SEC_PASSWORD = 'a linked secret of some length'
ENABLED = {'ZATO_COMPONENT_ENABLED_SSO': 'true'}

# A session lives a minute, so that its extension (in steps of 1% of that) shows within a second
SSO_CONF = '[apps]\nall = CRM, Other\ndefault = CRM\nlogin_allowed = CRM, Other\n[session]\nexpiry = 1\n'

SERVICE = '''
import os
from zato.server.service import Service

class Me(Service):
    def handle(self):
        user = self.sso_user
        self.response.payload = {'pid': os.getpid(), 'sso_user': None if user is None else {
            'user_id': user.user_id, 'username': user.username, 'current_app': user.current_app,
            'session_id': user.session_id}}
'''


def make_env(path: str, *args: str, env: dict[str, str] | None = None) -> Env:
    e = Env(path, *args, servers=1, workers=2, env={**ENABLED, **(env or {})})
    with open(f'{e.path}/config/repo/sso.conf', 'w', encoding='utf-8') as f:
        f.write(SSO_CONF)
    zato('sso', 'create-super-user', e.path, 'root1', '--password-stdin', input_text=PASSWORD + '\n', env=e.env)
    e.start()
    e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'linked_svc.py', 'source': SERVICE})
    return e


@pytest.fixture(scope='module')
def sqlite_env(tmp_path_factory):
    e = make_env(str(tmp_path_factory.mktemp('sso-linked') / 'env'))
    yield e
    e.stop()


@pytest.fixture(scope='module')
def pg_env(tmp_path_factory):
    with pg.scratch_database('zato_sso_linked_') as db:
        e = make_env(str(tmp_path_factory.mktemp('sso-linked-pg') / 'env'), '--odb', 'postgresql', '--odb-host',
                     pg.HOST, '--odb-port', str(pg.PORT), '--odb-user', pg.USER, '--odb-db-name', db,
                     env={'ZATO_ODB_PASSWORD': pg.PASSWORD})
        yield e
        e.stop()


@pytest.fixture(params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def env(request):
    return request.getfixturevalue('sqlite_env' if request.param == 'sqlite' else 'pg_env')


def sso(env: Env, method: str, path: str, body: dict) -> requests.Response:
    if method == 'GET':
        return requests.get(env.url + path, params=body, timeout=10)
    return requests.request(method, env.url + path, json=body, timeout=10)


def root(env: Env) -> str:
    resp = sso(env, 'POST', '/zato/sso/user/login', {'username': 'root1', 'password': PASSWORD, 'current_app': 'CRM'})
    assert resp.status_code == 200, resp.text
    return resp.json()['ust']


_names = iter(range(1, 1_000_000))


class Linked:
    """A user, a Basic Auth definition linked to them, and a channel behind the definition."""

    def __init__(self, env: Env, kind: str = 'basic_auth') -> None:
        n = next(_names)
        self.env = env
        self.ust = root(env)
        self.username = f'linked{n}'
        self.sec = f'linked-sec-{n}'
        created = sso(env, 'POST', '/zato/sso/user', {'ust': self.ust, 'current_app': 'CRM',
                                                       'username': self.username, 'password': PASSWORD})
        assert created.status_code == 200, created.text
        self.user_id = created.json()['user_id']
        env.admin.call('POST', '/zato/admin/security', {'name': self.sec, 'kind': kind, 'username': self.sec,
                                                        'password': SEC_PASSWORD, 'ttl': 600})
        self.url = env.url + f'/linked/{n}'
        self.channel_id = env.channel(self.sec, f'/linked/{n}', 'linked-svc.me', security=self.sec)['id']
        self.auth = (self.sec, SEC_PASSWORD) if kind == 'basic_auth' else None
        self.headers: dict[str, str] = {}
        if kind == 'jwt':
            env.wait_for(lambda: requests.post(env.url + '/zato/jwt/log-in', json={
                'username': self.sec, 'password': SEC_PASSWORD}).status_code == 200)
            token = requests.post(env.url + '/zato/jwt/log-in', json={'username': self.sec,
                                                                      'password': SEC_PASSWORD}).json()['token']
            self.headers = {'Authorization': f'Bearer {token}'}
        env.wait_for(lambda: all(self.get().status_code == 200 for _ in range(4)))

    def link(self, **extra) -> requests.Response:
        resp = sso(self.env, 'POST', '/zato/sso/user/linked', {
            'ust': self.ust, 'current_app': 'CRM', 'user_id': self.user_id,
            'auth_type': 'basic_auth' if self.auth else 'jwt', 'auth_username': self.sec, **extra})
        if resp.status_code == 200:
            # Every worker hears of the link through the bus and builds the channel's guards anew
            self.env.wait_for(lambda: all(self.get().json()['sso_user'] for _ in range(6)))
        return resp

    def unlink(self) -> requests.Response:
        return sso(self.env, 'DELETE', '/zato/sso/user/linked', {
            'ust': self.ust, 'current_app': 'CRM', 'user_id': self.user_id,
            'auth_type': 'basic_auth' if self.auth else 'jwt', 'auth_username': self.sec})

    def get(self, headers: dict[str, str] | None = None, session: requests.Session | None = None) \
            -> requests.Response:
        """A request over a new connection (spread across the workers), unless `session` is given."""
        if session is not None:
            return session.get(self.url, auth=self.auth, headers={**self.headers, **(headers or {})}, timeout=10)
        return requests.get(self.url, auth=self.auth, timeout=10,
                            headers={'Connection': 'close', **self.headers, **(headers or {})})

    def sessions(self) -> list[dict]:
        resp = sso(self.env, 'GET', '/zato/sso/user/session/list', {'ust': self.ust, 'current_app': 'CRM',
                                                                     'user_id': self.user_id})
        assert resp.status_code == 200, resp.text
        return resp.json()['result']


def test_a_linked_basic_auth_request_acts_as_the_user_in_one_session_it_extends(env):
    linked = Linked(env)
    assert linked.get().json()['sso_user'] is None  # not linked yet: a plain request
    assert linked.link().status_code == 200
    first = linked.get().json()['sso_user']
    assert first['username'] == linked.username and first['user_id'] == linked.user_id
    assert first['current_app'] == 'CRM'
    [session] = linked.sessions()
    assert (session['session_id'], session['auth_type'], session['current_app']) == \
        (first['session_id'], 'basic_auth', 'CRM')
    time.sleep(1.2)  # more than 1% of the minute a session lives: the next request moves its expiry on
    for _ in range(4):  # whichever worker serves it
        assert linked.get().json()['sso_user']['session_id'] == first['session_id']
    [later] = linked.sessions()
    assert later['session_id'] == session['session_id'] and later['expiration_time'] > session['expiration_time']


def test_the_application_header_opens_a_session_of_that_application_and_an_unknown_one_is_refused(env):
    linked = Linked(env)
    linked.link()
    other = linked.get({'X-Zato-SSO-Current-App': 'Other'}).json()['sso_user']
    assert other['current_app'] == 'Other'
    assert sorted(s['current_app'] for s in linked.sessions()) == ['CRM', 'Other']
    refused = linked.get({'X-Zato-SSO-Current-App': 'Payroll'})
    assert refused.status_code == 403 and refused.headers['Cache-Control'] == 'no-store'
    assert refused.json()['details'] == 'Invalid SSO application in X-Zato-SSO-Current-App'


def test_first_requests_of_a_credential_at_the_same_moment_open_one_session(env):
    linked = Linked(env)
    for _ in range(5):
        # Linked anew (unlinking ends its sessions): no session of `Other` yet. 16 first requests released
        # at once, over new connections to both workers
        linked.unlink()
        assert linked.link().status_code == 200
        start = threading.Barrier(16)

        def first(barrier: threading.Barrier) -> requests.Response:
            barrier.wait()
            return linked.get({'X-Zato-SSO-Current-App': 'Other'})

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(first, [start] * 16))
        assert [a.status_code for a in answers] == [200] * 16
        others = [s for s in linked.sessions() if s['current_app'] == 'Other']
        assert len(others) == 1, others
        assert {a.json()['sso_user']['session_id'] for a in answers} == {others[0]['session_id']}


def test_a_linked_jwt_acts_as_the_user(env):
    linked = Linked(env, 'jwt')
    assert linked.link().status_code == 200
    user = linked.get().json()['sso_user']
    assert user['username'] == linked.username
    assert [s['auth_type'] for s in linked.sessions()] == ['jwt']


def test_a_definition_is_linked_to_one_user_only(env):
    linked = Linked(env)
    linked.link()
    other = Linked(env)
    resp = sso(env, 'POST', '/zato/sso/user/linked', {'ust': other.ust, 'current_app': 'CRM',
                                                      'user_id': other.user_id, 'auth_type': 'basic_auth',
                                                      'auth_username': linked.sec})
    assert resp.status_code == 409
    assert resp.json() == {'cid': resp.headers['X-Zato-CID'], 'status': 'error', 'sub_status': ['E010001']}
    listed = sso(env, 'GET', '/zato/sso/user/linked', {'ust': linked.ust, 'current_app': 'CRM',
                                                       'user_id': linked.user_id}).json()['result']
    assert [(x['auth_type'], x['auth_username']) for x in listed] == [('basic_auth', linked.sec)]


def test_only_a_super_user_links(env):
    linked = Linked(env)
    ust = sso(env, 'POST', '/zato/sso/user/login', {'username': linked.username, 'password': PASSWORD,
                                                     'current_app': 'CRM'}).json()['ust']
    linked.ust = ust
    resp = linked.link()
    assert resp.status_code == 403 and resp.json()['sub_status'] == ['E005005']


def test_a_locked_user_is_refused_until_unlocked(env):
    linked = Linked(env)
    linked.link()
    assert sso(env, 'POST', '/zato/sso/user/lock', {'ust': linked.ust, 'current_app': 'CRM',
                                                    'user_id': linked.user_id}).status_code == 200
    for _ in range(4):  # at once, on every worker
        resp = linked.get()
        assert resp.status_code == 403 and resp.json()['details'] == 'Forbidden'
    sso(env, 'POST', '/zato/sso/user/unlock', {'ust': linked.ust, 'current_app': 'CRM', 'user_id': linked.user_id})
    assert linked.get().json()['sso_user']['username'] == linked.username


def test_unlinking_takes_effect_at_once_on_every_worker_and_ends_the_session(env):
    linked = Linked(env)
    linked.link()
    assert linked.get().json()['sso_user'] is not None
    assert linked.unlink().status_code == 200
    for _ in range(6):
        assert linked.get().json()['sso_user'] is None
    assert linked.sessions() == []
    assert linked.unlink().json()['sub_status'] == ['E010002']


def test_deleting_the_definition_or_the_user_removes_the_link(env):
    linked = Linked(env)
    linked.link()
    sec_id = next(s['id'] for s in env.admin.call('GET', '/zato/admin/security')
                  if s['name'] == linked.sec)
    env.admin.call('DELETE', f'/zato/admin/channels/rest/{linked.channel_id}')  # a definition in use stays
    env.admin.call('DELETE', f'/zato/admin/security/{sec_id}')
    listed = sso(env, 'GET', '/zato/sso/user/linked', {'ust': linked.ust, 'current_app': 'CRM',
                                                       'user_id': linked.user_id}).json()['result']
    assert listed == []

    gone = Linked(env)
    gone.link()
    assert sso(env, 'DELETE', '/zato/sso/user', {'ust': gone.ust, 'current_app': 'CRM',
                                                 'user_id': gone.user_id}).status_code == 200
    for _ in range(6):
        assert gone.get().json()['sso_user'] is None
    # No dangling link: the definition may be linked to another user at once
    heir = Linked(env)
    heir.sec, heir.url, heir.auth = gone.sec, gone.url, gone.auth
    assert heir.link().status_code == 200
    assert heir.get().json()['sso_user']['username'] == heir.username


def test_the_users_rate_limit_applies_to_a_linked_credential(sqlite_env):
    # SQLite has no exact store: the user's level counts per worker, so one connection (one worker) here
    linked = Linked(sqlite_env)
    linked.link()
    sso(sqlite_env, 'PATCH', '/zato/sso/user', {'ust': linked.ust, 'current_app': 'CRM', 'user_id': linked.user_id,
                                                'is_rate_limit_active': True, 'rate_limit_def': '* = 3/m'})
    with requests.Session() as s:
        statuses = [linked.get(session=s).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = linked.get(session=s)
    assert refused.headers['Cache-Control'] == 'no-store' and 1 <= int(refused.headers['Retry-After']) <= 60


@pytest.mark.postgresql
def pinned_to_both_workers(linked: Linked) -> list[requests.Session]:
    """Two keep-alive connections, one to each worker (new connections in a row often reach one worker)."""
    sessions: dict[int, requests.Session] = {}
    for _ in range(50):
        s = requests.Session()
        pid = linked.get(session=s).json()['pid']
        if pid in sessions:
            s.close()
        else:
            sessions[pid] = s
        if len(sessions) == 2:
            return list(sessions.values())
    raise AssertionError('50 new connections all reached one worker')


def test_the_users_rate_limit_is_exact_across_both_workers(pg_env):
    linked = Linked(pg_env)
    linked.link()
    first, second = pinned_to_both_workers(linked)  # before the limit: these requests are not counted
    resp = sso(pg_env, 'PATCH', '/zato/sso/user', {'ust': linked.ust, 'current_app': 'CRM',
                                                   'user_id': linked.user_id, 'is_rate_limit_active': True,
                                                   'rate_limit_def': '* = 10/m'})
    assert resp.status_code == 200, resp.text
    served = [linked.get(session=first if n % 2 else second) for n in range(10)]
    assert [r.status_code for r in served] == [200] * 10
    assert len({r.json()['pid'] for r in served}) == 2  # both workers served, and counted in one place
    for _ in range(3):
        refused = linked.get()
        assert refused.status_code == 429 and 1 <= int(refused.headers['Retry-After']) <= 60
