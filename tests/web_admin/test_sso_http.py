"""The SSO pages over HTTP against a running environment with SSO on (SQLite): what the web-admin
does to a user is what the server's /zato/sso/... REST channels see right after — a locked user's
UST is dead and their login refused, a refused (CSRF-less) POST changes nothing — and the web-admin
reads server.conf's [component_enabled] sso and the environment's sso.conf and key as the servers do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html import unescape

import pytest
import requests

from tests import pg
from tests.e2e.harness import ROOT, Env, child_env, free_port_block, zato
from tests.web_admin.conftest import TIMEOUT, WebAdmin, csrf
from zato.sso.config import conf_path
from zato_web_admin.config import WebAdminConfig

WEB_ADMIN_ENV = {'ZATO_COMPONENT_ENABLED_SSO': 'true'}
PASSWORD = 'correct horse battery'  # noqa: S105 - a test user's


def sso_user(env: Env, username: str, *args: str) -> None:
    zato('sso', 'create-user', env.path, username, '--password-stdin', *args, input_text=PASSWORD + '\n', env=env.env)


def rest(env: Env, method: str, path: str, body: dict, url: str = '') -> requests.Response:
    """A call to the SSO REST API of the environment's first server, or of the server at `url`."""
    url = url or env.url
    if method == 'GET':
        return requests.get(url + path, params=body, timeout=TIMEOUT)
    return requests.request(method, url + path, json=body, timeout=TIMEOUT)


def rest_login(env: Env, username: str, password: str = PASSWORD) -> requests.Response:
    return rest(env, 'POST', '/zato/sso/user/login', {'username': username, 'password': password, 'current_app': 'CRM'})


def user_id_of(wa: WebAdmin, s: requests.Session, username: str) -> tuple[str, str]:
    """The user's id as the search page links to it, and the page's CSRF token."""
    page = s.get(wa.url + '/sso/users', params={'username': username}, timeout=TIMEOUT).text
    m = re.search(r'<a href="/sso/users/(zusr[0-9a-f]+)" class="sessions">', page)
    assert m, page[-3000:]
    return m.group(1), csrf(page)


def test_a_user_locked_in_the_web_admin_loses_their_session_and_cannot_log_in_over_rest(web_admin):
    wa, env = web_admin, web_admin.env
    sso_user(env, 'alice', '--display-name', 'Alice A.')
    ust = rest_login(env, 'alice').json()['ust']
    s = wa.session()
    user_id, token = user_id_of(wa, s, 'alice')

    # Without the session's CSRF token, or with another, the lock is refused and nothing changes
    for form in ({}, {'csrf_token': 'x' * 43}):
        r = s.post(f'{wa.url}/sso/users/{user_id}/lock', data=form, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 403, r.status_code
    assert rest(env, 'GET', '/zato/sso/user', {'ust': ust, 'current_app': 'CRM'}).status_code == 200

    r = s.post(f'{wa.url}/sso/users/{user_id}/lock', data={'csrf_token': token, 'next': '/sso/users?username=alice'},
               allow_redirects=False, timeout=TIMEOUT)
    assert (r.status_code, r.headers['Location']) == (303, '/sso/users?username=alice')
    r = rest(env, 'GET', '/zato/sso/user', {'ust': ust, 'current_app': 'CRM'})
    assert (r.status_code, r.json()['sub_status']) == (403, ['E007001'])
    r = rest_login(env, 'alice')
    assert (r.status_code, r.json()['sub_status']) == (403, ['E005002'])  # [login] inform_if_locked: 3.1's default

    s.post(f'{wa.url}/sso/users/{user_id}/unlock', data={'csrf_token': token}, timeout=TIMEOUT)
    assert rest_login(env, 'alice').status_code == 200

    audit = unescape(s.get(wa.url + '/audit', params={'q': 'sso-user'}, timeout=TIMEOUT).text)
    assert 'sso-user.lock' in audit and 'sso-user.unlock' in audit and 'sso-user alice' in audit


def test_a_user_created_in_the_web_admin_logs_in_over_rest_with_the_password_shown_once(web_admin):
    wa, env = web_admin, web_admin.env
    s = wa.session()
    token = csrf(s.get(wa.url + '/sso/users/new', timeout=TIMEOUT).text)
    r = s.post(wa.url + '/sso/users/new', data={'csrf_token': token, 'username': 'carol', 'email': 'carol@example.com'},
               timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers['Cache-Control'] == 'no-store'
    password = unescape(re.search(r'<code id="password">([^<]+)</code>', r.text).group(1))
    assert rest_login(env, 'carol', password).status_code == 200
    # The page is not to be had again: the user's page shows no password
    user_id, _ = user_id_of(wa, s, 'carol')
    assert password not in s.get(f'{wa.url}/sso/users/{user_id}', timeout=TIMEOUT).text


def test_sessions_opened_over_rest_are_listed_with_their_address_and_agent_and_end_all_ends_them(web_admin):
    wa, env = web_admin, web_admin.env
    sso_user(env, 'dave')
    usts = [requests.post(env.url + '/zato/sso/user/login', json={'username': 'dave', 'password': PASSWORD,
                                                                 'current_app': 'CRM'},
                          headers={'User-Agent': f'agent-{i}'}, timeout=TIMEOUT).json()['ust'] for i in range(2)]
    s = wa.session()
    user_id, token = user_id_of(wa, s, 'dave')
    page = s.get(f'{wa.url}/sso/users/{user_id}', timeout=TIMEOUT).text
    assert page.count('<tr data-session=') == 2 and 'agent-0' in page and 'agent-1' in page
    assert '<td>127.0.0.1</td>' in page and not any(ust in page for ust in usts)
    r = s.post(f'{wa.url}/sso/users/{user_id}/sessions/end-all', data={'csrf_token': token}, timeout=TIMEOUT)
    assert r.status_code == 200 and 'No live session.' in r.text
    for ust in usts:
        assert rest(env, 'GET', '/zato/sso/user', {'ust': ust, 'current_app': 'CRM'}).status_code == 403


def test_the_web_admin_builds_the_sso_core_from_server_conf_and_sso_conf_and_says_why_not(web_admin, tmp_path,
                                                                                         monkeypatch):
    copy = str(tmp_path / 'env')
    shutil.copytree(web_admin.env.path, copy, ignore=shutil.ignore_patterns('*.sock', 'run'))
    monkeypatch.delenv('ZATO_COMPONENT_ENABLED_SSO', raising=False)
    off = WebAdminConfig.load(copy)
    assert (off.sso, off.sso_error) == (None, '')

    monkeypatch.setenv('ZATO_COMPONENT_ENABLED_SSO', 'true')
    on = WebAdminConfig.load(copy)
    assert on.sso is not None and on.sso_error == ''
    assert on.sso.search({'username': 'alice'})['total'] == 1  # the user made in the running environment

    with open(conf_path(copy), 'w', encoding='utf-8') as f:
        f.write('[session]\nexpiry = soon\n')
    broken = WebAdminConfig.load(copy)
    assert broken.sso is None and 'expiry' in broken.sso_error and 'sso.conf' in broken.sso_error


def test_the_docs_sso_example_runs_as_written_and_the_web_admin_finds_and_lists_the_users_session(tmp_path):
    """docs/web-admin.md's SSO block, line by line in bash (on free ports, in a temporary directory),
    then what the text after it says: the user is found by display name, and a REST login of theirs
    is listed on their page."""
    with open(os.path.join(ROOT, 'docs', 'web-admin.md'), encoding='utf-8') as f:
        block = f.read().split('## SSO users', 1)[1].split('```bash\n', 1)[1].split('```', 1)[0]
    lines = block.strip().splitlines()
    assert lines[-1].startswith('zato stop')
    env_dir, base = str(tmp_path / 'sso-env'), free_port_block(2)
    outputs: dict[str, str] = {}

    def run(line: str) -> str:
        command = line.replace('/tmp/sso-env', env_dir).replace('zato ', f'{sys.executable} -m zato.cli.main ', 1)
        if ' quickstart create ' in command:
            command += f' --base-port {base} --web-admin-port {base + 1}'
        proc = subprocess.run(['bash', '-c', command], capture_output=True, text=True, env=child_env(), timeout=120,
                              cwd=str(tmp_path))
        assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
        return proc.stdout

    try:
        for line in lines[:-1]:
            outputs[line.split()[1]] = run(line)
        admin_password = re.search(r'user `admin`, password (\S+)', outputs['quickstart']).group(1)
        alice_password = re.search(r'Password: (\S+)', outputs['sso']).group(1)
        url, server = f'http://127.0.0.1:{base + 1}', f'http://127.0.0.1:{base}'
        s = requests.Session()
        token = csrf(s.get(url + '/login', timeout=TIMEOUT).text)
        r = s.post(url + '/login', data={'csrf_token': token, 'username': 'admin', 'password': admin_password},
                   allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 303
        page = s.get(url + '/sso/users', params={'display_name': 'smith'}, timeout=TIMEOUT).text
        assert re.findall(r'<tr data-name="([^"]+)"', page) == ['alice']
        r = requests.post(server + '/zato/sso/user/login', json={'username': 'alice', 'password': alice_password,
                                                                  'current_app': 'CRM'}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        user_id = re.search(r'<a href="/sso/users/(zusr[0-9a-f]+)" class="sessions">', page).group(1)
        assert s.get(f'{url}/sso/users/{user_id}', timeout=TIMEOUT).text.count('<tr data-session=') == 1
    finally:
        stopped = run(lines[-1]) if os.path.isdir(env_dir) else ''
    assert 'web-admin stopped' in stopped


@pytest.mark.postgresql
def test_on_a_postgresql_cluster_a_lock_and_end_all_in_the_web_admin_hold_on_every_server(tmp_path):
    with pg.scratch_database('zato_wa_sso_e2e_') as db:
        env = Env(str(tmp_path / 'env'), '--odb', 'postgresql', '--odb-host', pg.HOST, '--odb-port', str(pg.PORT),
                  '--odb-user', pg.USER, '--odb-db-name', db, servers=2, workers=2, web_admin=True,
                  env={'ZATO_ODB_PASSWORD': pg.PASSWORD, **WEB_ADMIN_ENV})
        env.start()
        try:
            wa = WebAdmin(env)
            sso_user(env, 'alice')
            sso_user(env, 'bob')
            # One session on each server
            alice = [rest(env, 'POST', '/zato/sso/user/login', {'username': 'alice', 'password': PASSWORD,
                                                                'current_app': 'CRM'}, url).json()['ust']
                     for url in env.urls]
            bob = [rest(env, 'POST', '/zato/sso/user/login', {'username': 'bob', 'password': PASSWORD,
                                                              'current_app': 'CRM'}, url).json()['ust']
                   for url in env.urls]
            s = wa.session()
            alice_id, token = user_id_of(wa, s, 'alice')
            bob_id, _ = user_id_of(wa, s, 'bob')
            assert s.get(f'{wa.url}/sso/users/{bob_id}', timeout=TIMEOUT).text.count('<tr data-session=') == 2

            s.post(f'{wa.url}/sso/users/{alice_id}/lock', data={'csrf_token': token}, timeout=TIMEOUT)
            s.post(f'{wa.url}/sso/users/{bob_id}/sessions/end-all', data={'csrf_token': token}, timeout=TIMEOUT)
            for url in env.urls:
                for ust in alice + bob:
                    r = rest(env, 'GET', '/zato/sso/user', {'ust': ust, 'current_app': 'CRM'}, url)
                    assert (r.status_code, r.json().get('sub_status')) == (403, ['E007001']), (url, r.text)
                r = rest(env, 'POST', '/zato/sso/user/login', {'username': 'alice', 'password': PASSWORD,
                                                               'current_app': 'CRM'}, url)
                assert (r.status_code, r.json().get('sub_status')) == (403, ['E005002']), (url, r.text)
                assert rest(env, 'POST', '/zato/sso/user/login', {'username': 'bob', 'password': PASSWORD,
                                                                  'current_app': 'CRM'}, url).status_code == 200
        finally:
            env.stop()


LINKED_SERVICE = '''
from zato.server.service import Service

class Me(Service):
    def handle(self):
        user = self.sso_user
        self.response.payload = {'username': None if user is None else user.username}
'''


def test_a_credential_linked_in_the_web_admin_acts_as_the_user_and_removing_it_stops_that(web_admin):
    wa, env = web_admin, web_admin.env
    sso_user(env, 'linda')
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'wa_linked.py', 'source': LINKED_SERVICE})
    env.admin.call('POST', '/zato/admin/security', {'name': 'linda-api', 'kind': 'basic_auth', 'username': 'linda-api',
                                                    'password': PASSWORD})
    env.channel('linda-api', '/wa/linked/me', 'wa-linked.me', security='linda-api')
    url, auth = env.url + '/wa/linked/me', ('linda-api', PASSWORD)
    env.wait_for(lambda: requests.get(url, auth=auth, timeout=TIMEOUT).json() == {'username': None}, timeout=10)

    s = wa.session()
    user_id, token = user_id_of(wa, s, 'linda')
    page = s.get(f'{wa.url}/sso/users/{user_id}', timeout=TIMEOUT).text
    assert '<option value="linda-api">linda-api (basic_auth, linda-api)</option>' in page
    r = s.post(f'{wa.url}/sso/users/{user_id}/linked', data={'csrf_token': token, 'sec_name': 'linda-api'},
               allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303
    # The web-admin is not on the bus: every worker reloads at its next config check (5 s)
    env.wait_for(lambda: all(requests.get(url, auth=auth, headers={'Connection': 'close'}, timeout=TIMEOUT).json()
                             == {'username': 'linda'} for _ in range(4)), timeout=15)
    page = s.get(f'{wa.url}/sso/users/{user_id}', timeout=TIMEOUT).text
    m = re.search(r'<tr data-sec="(\d+)">\s*<td>linda-api</td>', page)
    assert m, page[-3000:]
    assert 'basic_auth' in page and '(linda-api)' in page  # the session it opened, listed

    r = s.post(f'{wa.url}/sso/users/{user_id}/linked/{m.group(1)}/delete', data={'csrf_token': token},
               allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303
    for _ in range(4):  # at once: every worker reads the link from the ODB
        assert requests.get(url, auth=auth, headers={'Connection': 'close'}, timeout=TIMEOUT).json() == \
            {'username': None}
    audit = unescape(s.get(wa.url + '/audit', params={'q': 'sso-user'}, timeout=TIMEOUT).text)
    assert 'sso-user.link' in audit and 'sso-user.unlink' in audit


def test_the_web_admins_approval_is_the_cores_and_a_rejection_ends_the_sessions(web_admin):
    wa, env = web_admin, web_admin.env
    sso_user(env, 'rita')
    ust = rest_login(env, 'rita').json()['ust']
    s = wa.session()
    user_id, token = user_id_of(wa, s, 'rita')
    s.post(f'{wa.url}/sso/users/{user_id}/reject', data={'csrf_token': token}, timeout=TIMEOUT)
    r = rest(env, 'GET', '/zato/sso/user', {'ust': ust, 'current_app': 'CRM'})
    assert (r.status_code, r.json()['sub_status']) == (403, ['E007001'])
    s.post(f'{wa.url}/sso/users/{user_id}/approve', data={'csrf_token': token}, timeout=TIMEOUT)
    assert rest_login(env, 'rita').status_code == 200
    page = s.get(f'{wa.url}/sso/users/{user_id}', timeout=TIMEOUT).text
    assert 'approved (by web-admin:admin)' in page
