"""The web-admin's security, over HTTP: no page without a session, CSRF on every form, one message
for every refused sign-in, lockout, TOTP codes usable once, cookie flags, session expiry, headers,
and the audit log. Against a running environment and its web-admin."""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import requests

from tests.e2e.harness import ROOT, free_port_block, zato
from tests.web_admin.conftest import TIMEOUT, csrf


def test_no_page_is_reachable_without_a_session(web_admin):
    wa = web_admin
    for path in ('/', '/services', '/channels/rest', '/channels/rest/new', '/security/basic_auth', '/outgoing/rest',
                 '/settings', '/audit', '/channels/rest/1/edit'):
        r = requests.get(wa.url + path, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 303 and r.headers['Location'].startswith('/login?next='), (path, r.status_code)
    # A POST without a session is refused, whatever it carries
    for path in ('/channels/rest/new', '/logout', '/settings/password', '/channels/rest/1/delete'):
        r = requests.post(wa.url + path, data={'csrf_token': 'x', 'name': 'x'}, allow_redirects=False,
                          timeout=TIMEOUT)
        assert r.status_code == 403, (path, r.status_code)
    # Static files are public, and nothing else is
    assert requests.get(wa.url + '/static/app.css', timeout=TIMEOUT).status_code == 200
    for path in ('/static/%2e%2e/app.py', '/static/%2e%2e/%2e%2e/config.py', '/static/'):
        r = requests.get(wa.url + path, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 404 and 'import' not in r.text, (path, r.status_code)


def test_csrf_is_required_on_every_form_signed_in_or_not(web_admin):
    wa = web_admin
    s = requests.Session()
    s.get(wa.url + '/login', timeout=TIMEOUT)
    for token in (None, '', 'forged'):
        data = {'username': wa.username, 'password': wa.password}
        if token is not None:
            data['csrf_token'] = token
        r = s.post(wa.url + '/login', data=data, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 403 and 'CSRF' in r.text, r.status_code

    signed_in = wa.session()
    page = signed_in.get(wa.url + '/channels/rest/new', timeout=TIMEOUT).text
    body = {'name': 'csrf-test', 'url_path': '/csrf-test', 'service': 'zato.ping'}
    r = signed_in.post(wa.url + '/channels/rest/new', data=body, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 403
    # Another session's token is no token
    other = wa.session()
    other_token = csrf(other.get(wa.url + '/settings', timeout=TIMEOUT).text)
    r = signed_in.post(wa.url + '/channels/rest/new', data={**body, 'csrf_token': other_token},
                       allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 403
    assert csrf(page) != other_token


def test_a_refused_sign_in_says_the_same_whatever_was_wrong_and_keeps_no_password(web_admin):
    wa = web_admin
    wa.user('carol', 'carol-password-1234')
    answers = []
    for username, password in (('carol', 'wrong-password-1234'), ('nobody-at-all', 'whatever-password'),
                               ('carol', '')):
        r = wa.sign_in(requests.Session(), username, password)
        assert r.status_code == 401
        assert 'Invalid credentials, or the account is locked.' in r.text
        assert 'wrong-password-1234' not in r.text
        answers.append(r.text.replace(username, ''))
    assert wa.sign_in(requests.Session(), 'carol', 'carol-password-1234').status_code == 303


def test_repeated_failures_lock_the_account_even_for_the_right_password(web_admin):
    wa = web_admin
    wa.user('dave', 'dave-password-12345')
    for _ in range(5):
        assert wa.sign_in(requests.Session(), 'dave', 'not-his-password').status_code == 401
    r = wa.sign_in(requests.Session(), 'dave', 'dave-password-12345')
    assert r.status_code == 401 and 'locked' in r.text
    # The CLI unlocks it with a new password
    out = zato('update', 'password', wa.env.path, 'dave', '--password-stdin', input_text='dave-new-password-123\n')
    assert 'changed' in out.stdout
    assert wa.sign_in(requests.Session(), 'dave', 'dave-new-password-123').status_code == 303


def test_a_totp_code_works_once_and_the_cli_resets_the_key(web_admin):
    wa = web_admin
    wa.user('erin', 'erin-password-12345')
    out = zato('reset-totp-key', wa.env.path, 'erin').stdout
    key = out.split('erin`: ', 1)[1].split()[0]
    assert 'otpauth://totp/' in out

    # Without the code, or with a wrong one: refused
    assert wa.sign_in(requests.Session(), 'erin', 'erin-password-12345').status_code == 401
    assert wa.sign_in(requests.Session(), 'erin', 'erin-password-12345', '000000').status_code in (401,)
    code = wa.code(key)
    assert wa.sign_in(requests.Session(), 'erin', 'erin-password-12345', code).status_code == 303
    # Replayed: refused, even within its 30 seconds
    r = wa.sign_in(requests.Session(), 'erin', 'erin-password-12345', code)
    assert r.status_code == 401
    # A code for a step before the one used is refused too; the next one works
    assert wa.sign_in(requests.Session(), 'erin', 'erin-password-12345', wa.code(key, -1)).status_code == 401
    assert wa.sign_in(requests.Session(), 'erin', 'erin-password-12345', wa.code(key, 1)).status_code == 303


def test_the_session_cookie_is_httponly_samesite_and_secure_behind_tls(web_admin):
    wa = web_admin
    s = requests.Session()
    r = wa.sign_in(s, wa.username, wa.password)
    cookie = r.headers['Set-Cookie']
    assert 'zato_web_admin=' in cookie and 'HttpOnly' in cookie and 'SameSite=Strict' in cookie
    assert 'Secure' not in cookie  # plain http here

    # Behind a TLS-terminating load balancer
    token = csrf(s.get(wa.url + '/login', timeout=TIMEOUT).text)
    r = s.post(wa.url + '/login', data={'csrf_token': token, 'username': wa.username, 'password': wa.password},
               headers={'X-Forwarded-Proto': 'https'}, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303 and 'Secure' in r.headers['Set-Cookie']


def test_security_headers_on_every_page(web_admin):
    r = requests.get(web_admin.url + '/login', timeout=TIMEOUT)
    assert "script-src 'self'" in r.headers['Content-Security-Policy']
    assert "frame-ancestors 'none'" in r.headers['Content-Security-Policy']
    assert r.headers['X-Frame-Options'] == 'DENY' and r.headers['X-Content-Type-Options'] == 'nosniff'
    assert r.headers['Cache-Control'] == 'no-store'


def _odb(wa) -> sqlite3.Connection:
    return sqlite3.connect(os.path.join(wa.env.path, 'data', 'odb.sqlite3'))


@pytest.mark.parametrize('column', ['last_seen', 'created_at'])
def test_an_idle_or_too_old_session_ends(web_admin, column):
    wa = web_admin
    s = wa.session()
    assert s.get(wa.url + '/settings', allow_redirects=False, timeout=TIMEOUT).status_code == 200
    # Age the session in the ODB past the idle time (30 min) or the absolute one (12 h)
    past = (datetime.now(UTC) - timedelta(hours=13)).strftime('%Y-%m-%d %H:%M:%S.%f')
    with _odb(wa) as db:
        db.execute(f'UPDATE web_admin_session SET {column} = ?', (past,))  # noqa: S608 - a fixed column name
    r = s.get(wa.url + '/settings', allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303 and r.headers['Location'].startswith('/login')


def test_sign_out_ends_the_session_and_changes_are_audited(web_admin):
    wa = web_admin
    s = wa.session()
    token = csrf(s.get(wa.url + '/settings', timeout=TIMEOUT).text)
    r = s.post(wa.url + '/settings/password', data={'csrf_token': token, 'current_password': wa.password,
                                                    'new_password': 'short', 'new_password_again': 'short'},
               timeout=TIMEOUT)
    assert r.status_code == 400 and 'at least 12 characters' in r.text
    r = s.post(wa.url + '/logout', data={'csrf_token': token}, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303
    assert s.get(wa.url + '/settings', allow_redirects=False, timeout=TIMEOUT).status_code == 303

    audit = wa.session().get(wa.url + '/audit?q=sign-in', timeout=TIMEOUT).text
    assert 'sign-in' in audit and wa.username in audit
    assert 'web-admin-user.create' in wa.session().get(wa.url + '/audit', timeout=TIMEOUT).text


def test_the_docs_example_runs_as_written_and_its_user_signs_in_with_a_code(tmp_path):
    """docs/web-admin.md's `## Example` block, line by line, on free ports, then the user it made signs in."""
    with open(os.path.join(ROOT, 'docs', 'web-admin.md'), encoding='utf-8') as f:
        block = f.read().split('## Example', 1)[1].split('```bash\n', 1)[1].split('```', 1)[0]
    commands = [line.split() for line in block.strip().splitlines()]
    env_dir = str(tmp_path / 'env')
    base = free_port_block(2)
    outputs = {}
    try:
        for words in commands[:-1]:
            args = [env_dir if word == '/tmp/env' else word for word in words[1:]]
            if args[:2] == ['quickstart', 'create']:
                args += ['--base-port', str(base), '--web-admin-port', str(base + 1)]
            outputs[args[0]] = zato(*args).stdout
        password = re.search(r'Password: (\S+)', outputs['create']).group(1)
        key = re.search(r'jane`: (\S+)', outputs['reset-totp-key']).group(1)
        s = requests.Session()
        url = f'http://127.0.0.1:{base + 1}'
        token = csrf(s.get(url + '/login', timeout=TIMEOUT).text)
        r = s.post(url + '/login', data={'csrf_token': token, 'username': 'jane', 'password': password,
                                         'totp_code': pyotp.TOTP(key).now()}, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 303
        assert 'Dashboard' in s.get(url + '/', timeout=TIMEOUT).text
    finally:
        out = zato(*[env_dir if w == '/tmp/env' else w for w in commands[-1][1:]], check=False)
    assert 'web-admin stopped' in out.stdout
