"""SSO attributes end to end: 3.1's REST channels /zato/sso/user/attr... and /zato/sso/session/attr...
on a running environment (SQLite, and a two-server PostgreSQL cluster of two workers each)."""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import sqlite3
import time

import pytest
import requests

from tests import pg
from tests.e2e.harness import Env, zato
from tests.e2e.test_sso import ENABLED, PASSWORD, call, login, make_env
from tests.e2e.test_sso_docs import apply_ini

APP = 'CRM'


@pytest.fixture(scope='module')
def sqlite_env(tmp_path_factory):
    # The background purge every second ([session] purge_interval), so that a test sees it work
    e = Env(str(tmp_path_factory.mktemp('sso-attr') / 'env'), env=ENABLED)
    path = os.path.join(e.path, 'config', 'repo', 'sso.conf')
    with open(path, encoding='utf-8') as f:
        conf = f.read()
    with open(path, 'w', encoding='utf-8') as f:
        f.write(apply_ini(conf, '[session]\npurge_interval = 1\n'))
    zato('sso', 'create-super-user', e.path, 'root1', '--password-stdin', input_text=PASSWORD + '\n', env=e.env)
    e.start()
    yield e
    e.stop()


@pytest.fixture(scope='module')
def pg_cluster(tmp_path_factory):
    with pg.scratch_database('zato_sso_attr_') as db:
        e = make_env(str(tmp_path_factory.mktemp('sso-attr-pg') / 'env'), '--odb', 'postgresql', '--odb-host',
                     pg.HOST, '--odb-port', str(pg.PORT), '--odb-user', pg.USER, '--odb-db-name', db, servers=2,
                     workers=2, env={'ZATO_ODB_PASSWORD': pg.PASSWORD})
        yield e
        e.stop()


@pytest.fixture(params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def env(request):
    return request.getfixturevalue('sqlite_env' if request.param == 'sqlite' else 'pg_cluster')


def new_user(env, root: str) -> tuple[str, str]:
    """(user_id, UST) of a new regular user."""
    username = f'attr{time.monotonic_ns()}'
    resp = call(env, 'POST', '/zato/sso/user', {'ust': root, 'current_app': APP, 'username': username,
                                                'password': 'correct horse battery'})
    assert resp.status_code == 200, resp.text
    return resp.json()['user_id'], login(env, username)


def ok(resp: requests.Response) -> dict:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body['status'] == 'ok' and body['cid'] == resp.headers['X-Zato-CID']
    return body


def refused(resp: requests.Response) -> tuple[int, list[str]]:
    return resp.status_code, resp.json()['sub_status']


def test_a_users_attribute_is_created_read_updated_set_listed_and_deleted_over_rest(env):
    _, ust = new_user(env, login(env))
    me = {'ust': ust, 'current_app': APP}
    path = '/zato/sso/user/attr'
    ok(call(env, 'POST', path, {**me, 'name': 'prefs', 'value': {'lang': 'en', 'n': [1, 2]}}))
    assert refused(call(env, 'POST', path, {**me, 'name': 'prefs', 'value': 1})) == (400, ['E009001'])
    got = ok(call(env, 'GET', path, {**me, 'name': 'prefs'}))
    assert got['found'] is True and got['value'] == {'lang': 'en', 'n': [1, 2]} and got['is_encrypted'] is False
    assert got['expiration_time'] is None and got['creation_time'].endswith('+00:00')
    ok(call(env, 'PATCH', path, {**me, 'name': 'prefs', 'value': 'updated'}))
    assert refused(call(env, 'PATCH', path, {**me, 'name': 'nope', 'value': 1})) == (400, ['E009002'])
    ok(call(env, 'PUT', path, {**me, 'name': 'other', 'value': 2}))
    assert ok(call(env, 'GET', path + '/names', me))['result'] == ['other', 'prefs']
    assert ok(call(env, 'GET', path + '/exists', {**me, 'name': 'prefs'}))['result'] is True
    ok(call(env, 'DELETE', path, {**me, 'name': 'prefs'}))
    assert refused(call(env, 'DELETE', path, {**me, 'name': 'prefs'})) == (400, ['E009002'])
    assert ok(call(env, 'GET', path, {**me, 'name': 'prefs'})) == {'cid': ANY, 'status': 'ok', 'found': False}


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


def test_the_many_forms_over_rest_with_a_query_strings_json_list(sqlite_env):
    env = sqlite_env
    _, ust = new_user(env, login(env))
    me = {'ust': ust, 'current_app': APP}
    path = '/zato/sso/user/attr'
    ok(call(env, 'POST', path, {**me, 'data': [{'name': 'a', 'value': 1}, {'name': 'b', 'value': 2, 'encrypt': True}]}))
    got = ok(call(env, 'GET', path, {**me, 'data': json.dumps(['a', 'b', 'c'])}))['result']
    assert got['a']['value'] == 1 and got['b']['value'] == 2 and got['b']['is_encrypted'] and got['c'] is None
    assert ok(call(env, 'GET', path + '/exists', {**me, 'data': '["a", "c"]'}))['result'] == {'a': True, 'c': False}
    # All or nothing
    assert refused(call(env, 'POST', path, {**me, 'data': [{'name': 'c', 'value': 3}, {'name': 'a', 'value': 0}]})) \
        == (400, ['E009001'])
    assert ok(call(env, 'GET', path + '/names', me))['result'] == ['a', 'b']
    ok(call(env, 'DELETE', path, {**me, 'data': ['a', 'b']}))
    assert ok(call(env, 'GET', path + '/names', me))['result'] == []


@pytest.mark.parametrize('body, status, code', [
    ({'name': 'x'}, 400, 'E008003'),                                 # no value
    ({'value': 1}, 400, 'E008003'),                                  # no name
    ({'name': ['x'], 'value': 1}, 400, 'E008002'),
    ({'name': 'x' * 201, 'value': 1}, 400, 'E008002'),
    ({'name': 'x', 'value': 'y' * 70_000}, 400, 'E008002'),
    ({'name': 'x', 'value': 1, 'expiration': 'soon'}, 400, 'E008002'),
    ({'name': 'x', 'value': 1, 'encrypt': 'maybe'}, 400, 'E008002'),
    ({'data': 'not a list'}, 400, 'E008002'),
    ({'ust': 'no such session', 'name': 'x', 'value': 1}, 403, 'E007001'),
])
def test_bad_attribute_input_gets_a_clear_status_and_sub_status(sqlite_env, body, status, code):
    _, ust = new_user(sqlite_env, login(sqlite_env))
    resp = call(sqlite_env, 'POST', '/zato/sso/user/attr', {'ust': ust, 'current_app': APP, **body})
    assert refused(resp) == (status, [code])


def test_an_attribute_expires_after_its_expiration(sqlite_env):
    _, ust = new_user(sqlite_env, login(sqlite_env))
    me = {'ust': ust, 'current_app': APP}
    ok(call(sqlite_env, 'POST', '/zato/sso/user/attr', {**me, 'name': 'otp', 'value': 1, 'expiration': 1}))
    assert ok(call(sqlite_env, 'GET', '/zato/sso/user/attr', {**me, 'name': 'otp'}))['found'] is True
    time.sleep(1.5)
    assert ok(call(sqlite_env, 'GET', '/zato/sso/user/attr', {**me, 'name': 'otp'}))['found'] is False


def test_a_user_cannot_read_or_write_another_users_attributes_but_a_super_user_can(env):
    root = login(env)
    alice_id, alice = new_user(env, root)
    bob_id, bob = new_user(env, root)
    path = '/zato/sso/user/attr'
    ok(call(env, 'POST', path, {'ust': alice, 'current_app': APP, 'name': 'secret', 'value': 'alice only'}))
    for method, body in (('GET', {'name': 'secret'}), ('PUT', {'name': 'secret', 'value': 'bob was here'}),
                         ('DELETE', {'name': 'secret'})):
        resp = call(env, method, path, {'ust': bob, 'current_app': APP, 'user_id': alice_id, **body})
        assert refused(resp) == (403, ['E005005']), method
    assert refused(call(env, 'GET', path + '/names', {'ust': bob, 'current_app': APP, 'user_id': alice_id})) == \
        (403, ['E005005'])
    # Bob's own attributes do not include Alice's
    assert ok(call(env, 'GET', path, {'ust': bob, 'current_app': APP, 'name': 'secret'}))['found'] is False
    got = ok(call(env, 'GET', path, {'ust': root, 'current_app': APP, 'user_id': alice_id, 'name': 'secret'}))
    assert got['value'] == 'alice only'


def test_session_attributes_belong_to_one_session_and_go_with_it(env):
    root = login(env)
    _, ust = new_user(env, root)
    path = '/zato/sso/session/attr'
    ok(call(env, 'POST', path, {'current_ust': ust, 'current_app': APP, 'name': 'cart', 'value': [1, 2]}))
    got = ok(call(env, 'GET', path, {'current_ust': ust, 'current_app': APP, 'name': 'cart'}))
    assert got['value'] == [1, 2]
    # The user's own attributes are another set
    assert ok(call(env, 'GET', '/zato/sso/user/attr/names', {'ust': ust, 'current_app': APP}))['result'] == []
    # A super-user names the session with target_ust; another user cannot
    got = ok(call(env, 'GET', path, {'current_ust': root, 'target_ust': ust, 'current_app': APP, 'name': 'cart'}))
    assert got['value'] == [1, 2]
    _, other = new_user(env, root)
    assert refused(call(env, 'GET', path, {'current_ust': other, 'target_ust': ust, 'current_app': APP,
                                           'name': 'cart'})) == (403, ['E005005'])
    ok(call(env, 'POST', '/zato/sso/user/logout', {'ust': ust, 'current_app': APP}))
    assert refused(call(env, 'GET', path, {'current_ust': root, 'target_ust': ust, 'current_app': APP,
                                           'name': 'cart'})) == (403, ['E007001'])


def test_concurrent_sets_and_creates_of_one_attribute_on_every_worker_and_server(env):
    """Writers on every worker (and both servers of the cluster) at the same moment: every `set`
    succeeds and one value stays; of the `create`s exactly one succeeds, the others are E009001."""
    _, ust = new_user(env, login(env))
    me = {'ust': ust, 'current_app': APP}

    def write(i: int, method: str, name: str) -> requests.Response:
        url = env.urls[i % len(env.urls)]
        return requests.request(method, url + '/zato/sso/user/attr', json={**me, 'name': name, 'value': i},
                                headers={'Connection': 'close'}, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        sets = list(pool.map(lambda i: write(i, 'PUT', 'shared'), range(20)))
        creates = list(pool.map(lambda i: write(i, 'POST', 'once'), range(20)))
    assert [r.status_code for r in sets] == [200] * 20, [r.text for r in sets if r.status_code != 200]
    assert ok(call(env, 'GET', '/zato/sso/user/attr', {**me, 'name': 'shared'}))['value'] in range(20)
    outcomes = sorted((r.status_code, r.json().get('sub_status')) for r in creates)
    assert outcomes == [(200, None)] + [(400, ['E009001'])] * 19
    assert ok(call(env, 'GET', '/zato/sso/user/attr/names', me))['result'] == ['once', 'shared']


def test_an_encrypted_value_is_nowhere_in_the_odb_files_in_the_clear(sqlite_env):
    """The SQLite ODB and its write-ahead log, byte for byte: the plain value of an encrypted
    attribute is not there, the plain value of an unencrypted one is (the check can see)."""
    _, ust = new_user(sqlite_env, login(sqlite_env))
    me = {'ust': ust, 'current_app': APP}
    secret, plain = f'secret-{time.monotonic_ns()}', f'plain-{time.monotonic_ns()}'
    ok(call(sqlite_env, 'PUT', '/zato/sso/user/attr', {**me, 'name': 's', 'value': secret, 'encrypt': True}))
    ok(call(sqlite_env, 'PUT', '/zato/sso/user/attr', {**me, 'name': 'p', 'value': plain}))
    assert ok(call(sqlite_env, 'GET', '/zato/sso/user/attr', {**me, 'name': 's'}))['value'] == secret
    files = glob.glob(os.path.join(sqlite_env.path, 'data', 'odb.sqlite3*'))
    stored = b''.join(open(name, 'rb').read() for name in files)  # noqa: SIM115 - read at once
    assert plain.encode() in stored
    assert secret.encode() not in stored


def test_the_background_purge_deletes_an_expired_attribute_from_the_odb(sqlite_env):
    _, ust = new_user(sqlite_env, login(sqlite_env))
    name = f'short-lived-{time.monotonic_ns()}'
    ok(call(sqlite_env, 'PUT', '/zato/sso/user/attr', {'ust': ust, 'current_app': APP, 'name': name, 'value': 1,
                                                       'expiration': 1}))

    def rows() -> int:
        with sqlite3.connect(os.path.join(sqlite_env.path, 'data', 'odb.sqlite3')) as db:
            return db.execute('SELECT count(*) FROM zato_sso_attr WHERE name = ?', (name,)).fetchone()[0]
    assert rows() == 1
    sqlite_env.wait_for(lambda: rows() == 0, timeout=15, interval=0.2)
