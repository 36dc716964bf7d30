"""SSO's emails end to end: a running Zato (two workers) with SSO on and `[main] smtp_conn` naming an
outgoing SMTP connection to the real aiosmtpd peer. The tests read the sign-up confirmation and the
password-reset tokens from the messages the SMTP server received, and use them over 3.1's REST channels."""

from __future__ import annotations

import email
import email.policy
import os
import random
import re
import sqlite3
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests import pg
from tests.e2e.harness import Env, zato
from tests.integration.conftest import started
from tests.integration.peers_mail import SMTPPeer

PASSWORD = 'correct horse battery'
NEW_PASSWORD = 'a brand new passphrase'
APP = 'CRM'


@pytest.fixture(scope='module')
def smtp() -> Iterator[SMTPPeer]:
    yield from started(SMTPPeer(), 'smtp (sso)')


def make_env(path: str, smtp: SMTPPeer, *args: str, servers: int = 1, env: dict[str, str] | None = None) -> Env:
    e = Env(path, *args, servers=servers, workers=2, env={'ZATO_COMPONENT_ENABLED_SSO': 'true', **(env or {})})
    conf_path = f'{e.path}/config/repo/sso.conf'
    with open(conf_path, encoding='utf-8') as f:
        conf = f.read()
    conf = re.sub(r'^smtp_conn = $', 'smtp_conn = SSO SMTP', conf, count=1, flags=re.M)
    conf = re.sub(r'^signup_allowed = $', 'signup_allowed = CRM', conf, count=1, flags=re.M)
    conf = re.sub(r'^purge_interval = 300$', 'purge_interval = 1', conf, count=1, flags=re.M)
    with open(conf_path, 'w', encoding='utf-8') as f:
        f.write(conf)
    zato('sso', 'create-super-user', e.path, 'root1', '--password-stdin', input_text=PASSWORD + '\n', env=e.env)
    e.start()
    try:
        created = e.admin.call('POST', '/zato/admin/outconns/smtp', {
            'name': 'SSO SMTP', 'host': '127.0.0.1', 'port': smtp.port, 'username': smtp.user,
            'secret': smtp.password, 'tls_ca_file': smtp.ca_file, 'timeout': 5.0, 'is_active': True})
        e.wait_for(lambda: e.admin.call('POST', f'/zato/admin/outconns/smtp/{created["id"]}/ping')['ok'], timeout=20)
    except BaseException:
        e.stop()
        raise
    return e


@pytest.fixture(scope='module')
def sqlite_env(tmp_path_factory, smtp: SMTPPeer) -> Iterator[Env]:
    e = make_env(str(tmp_path_factory.mktemp('sso-email') / 'env'), smtp)
    e.decoys = lambda: _sqlite_decoys(e)  # type: ignore[attr-defined]
    yield e
    e.stop()


@pytest.fixture(scope='module')
def pg_cluster(tmp_path_factory, smtp: SMTPPeer) -> Iterator[Env]:
    """Two servers of two workers each on one PostgreSQL ODB: confirmations and resets go to the second."""
    with pg.scratch_database('zato_sso_email_') as db:
        e = make_env(str(tmp_path_factory.mktemp('sso-email-pg') / 'env'), smtp, '--odb', 'postgresql',
                     '--odb-host', pg.HOST, '--odb-port', str(pg.PORT), '--odb-user', pg.USER, '--odb-db-name', db,
                     servers=2, env={'ZATO_ODB_PASSWORD': pg.PASSWORD})
        e.decoys = lambda: _pg_decoys(db)  # type: ignore[attr-defined]
        yield e
        e.stop()


@pytest.fixture(scope='module', params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def env(request) -> Env:
    return request.getfixturevalue('sqlite_env' if request.param == 'sqlite' else 'pg_cluster')


DECOYS = "SELECT count(*) FROM zato_sso_token WHERE kind = 'decoy'"


def _sqlite_decoys(e: Env) -> int:
    with sqlite3.connect(os.path.join(e.path, 'data', 'odb.sqlite3'), timeout=10) as db:
        return db.execute(DECOYS).fetchone()[0]


def _pg_decoys(db: str) -> int:
    import psycopg2
    with psycopg2.connect(**pg.connect_kwargs(db)) as conn, conn.cursor() as cur:
        cur.execute(DECOYS)
        return cur.fetchone()[0]


def call(env: Env, method: str, path: str, body: Any) -> requests.Response:
    """To the first server, except confirmations and resets, which go to the last (the other one of a cluster)."""
    url = env.urls[-1] if path in ('/zato/sso/user/confirm', '/zato/sso/user/password/reset/complete') or \
        method == 'PATCH' and path == '/zato/sso/user/signup' else env.url
    if method == 'GET':
        return requests.get(url + path, params=body, timeout=30)
    return requests.request(method, url + path, json=body, timeout=30)


def ok(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body['status'] == 'ok' and body['cid'] == resp.headers['X-Zato-CID']
    return body


def refused(resp: requests.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json() == {'cid': resp.headers['X-Zato-CID'], 'status': 'error', 'sub_status': [code]}


def mail_to(smtp: SMTPPeer, address: str, before: int, count: int = 1,
            subject: str | None = None) -> list[email.message.EmailMessage]:
    """The messages for `address` (with `subject`, if given) the SMTP server took after the first `before`,
    once there are `count`."""
    deadline = time.monotonic() + 15
    while True:
        found = [message for message in (email.message_from_string(m['data'], policy=email.policy.default)
                                         for m in smtp.messages()[before:] if address in m['rcpt_tos'])
                 if subject is None or message['Subject'] == subject]
        if len(found) >= count or time.monotonic() > deadline:
            return found  # type: ignore[return-value]
        time.sleep(0.05)


def token_of(message: email.message.EmailMessage) -> str:
    body = message.get_content()
    [token] = [line for line in body.splitlines() if re.fullmatch(r'[A-Za-z0-9_-]{43}', line)]
    return token


def login(env: Env, username: str, password: str) -> requests.Response:
    return call(env, 'POST', '/zato/sso/user/login', {'username': username, 'password': password, 'current_app': APP})


def root_ust(env: Env) -> str:
    return ok(login(env, 'root1', PASSWORD))['ust']


def signed_up(env: Env, smtp: SMTPPeer, username: str) -> tuple[str, dict[str, Any]]:
    """(the token from the email, the sign-up's answer)."""
    before = len(smtp.messages())
    out = ok(call(env, 'POST', '/zato/sso/user/signup', {
        'username': username, 'password': PASSWORD, 'email': f'{username}@example.org',
        'display_name': username.title(), 'current_app': APP}))
    [message] = mail_to(smtp, f'{username}@example.org', before, subject='Confirm your account')
    assert message['From'] == 'confirm@example.com'
    assert message.get_content().startswith(f'Hello {username.title()},')
    return token_of(message), out


def approved(env: Env, smtp: SMTPPeer, username: str) -> None:
    token, _ = signed_up(env, smtp, username)
    ok(call(env, 'POST', '/zato/sso/user/confirm', {'confirm_token': token, 'current_app': APP}))
    root = root_ust(env)
    user_id = ok(call(env, 'GET', '/zato/sso/user/search', {'ust': root, 'current_app': APP,
                                                            'username': username}))['result'][0]['user_id']
    ok(call(env, 'POST', '/zato/sso/user/approve', {'ust': root, 'current_app': APP, 'user_id': user_id}))


def test_a_user_signs_up_confirms_with_the_emailed_token_and_logs_in_once_approved(env, smtp):
    start = len(smtp.messages())
    token, out = signed_up(env, smtp, 'alice')
    assert out['confirm_token'] == token  # [signup] always_return_confirm_token, 3.1's default
    refused(login(env, 'alice', PASSWORD), 403, 'E005003')
    ok(call(env, 'POST', '/zato/sso/user/confirm', {'confirm_token': token, 'current_app': APP}))
    refused(login(env, 'alice', PASSWORD), 403, 'E005004')
    root = root_ust(env)
    found = ok(call(env, 'GET', '/zato/sso/user/search', {'ust': root, 'current_app': APP, 'username': 'alice'}))
    [user] = found['result']
    assert (user['sign_up_status'], user['approval_status']) == ('final', 'before_decision')
    ok(call(env, 'POST', '/zato/sso/user/approve', {'ust': root, 'current_app': APP, 'user_id': user['user_id']}))
    assert len(ok(login(env, 'alice', PASSWORD))['ust']) >= 43
    [welcome] = mail_to(smtp, 'alice@example.org', start, subject='Welcome')  # [signup] email_welcome_enabled
    assert welcome['From'] == 'welcome@example.com'
    assert welcome.get_content().replace('\r\n', '\n') == 'Hello Alice,\n\nyour account is confirmed. Welcome!\n'


def test_a_confirmation_token_is_accepted_once_through_either_path(env, smtp):
    token, _ = signed_up(env, smtp, 'bob')
    ok(call(env, 'PATCH', '/zato/sso/user/signup', {'confirm_token': token, 'current_app': APP}))  # 3.1's path
    refused(call(env, 'POST', '/zato/sso/user/confirm', {'confirm_token': token, 'current_app': APP}), 403, 'E005007')
    refused(call(env, 'POST', '/zato/sso/user/confirm', {'confirm_token': 'x' * 43, 'current_app': APP}),
            403, 'E005006')


def test_a_rejected_user_is_refused_and_only_super_users_decide(env, smtp):
    approved(env, smtp, 'carol')
    token, _ = signed_up(env, smtp, 'dave')
    ok(call(env, 'POST', '/zato/sso/user/confirm', {'confirm_token': token, 'current_app': APP}))
    carol = ok(login(env, 'carol', PASSWORD))['ust']
    root = root_ust(env)
    dave_id = ok(call(env, 'GET', '/zato/sso/user/search', {'ust': root, 'current_app': APP,
                                                            'username': 'dave'}))['result'][0]['user_id']
    refused(call(env, 'POST', '/zato/sso/user/approve', {'ust': carol, 'current_app': APP, 'user_id': dave_id}),
            403, 'E005005')
    ok(call(env, 'POST', '/zato/sso/user/reject', {'ust': root, 'current_app': APP, 'user_id': dave_id}))
    refused(login(env, 'dave', PASSWORD), 403, 'E005004')


def test_a_taken_username_is_answered_as_a_new_one_and_no_email_goes_out(env, smtp):
    approved(env, smtp, 'erin')
    before = len(smtp.messages())
    again = ok(call(env, 'POST', '/zato/sso/user/signup', {'username': 'erin', 'password': PASSWORD,
                                                           'email': 'erin2@example.org', 'current_app': APP}))
    assert set(again) == {'cid', 'status', 'confirm_token'}
    time.sleep(0.5)
    assert mail_to(smtp, 'erin2@example.org', before, count=0) == []


@pytest.mark.parametrize('path, body, status, code', [
    ('/zato/sso/user/signup', b'[1, 2]', 400, 'E008002'),
    ('/zato/sso/user/signup', {'username': 'x1', 'password': PASSWORD, 'email': 'x1@example.org'}, 400, 'E008003'),
    ('/zato/sso/user/signup', {'username': 'x1', 'password': PASSWORD, 'current_app': 'Nope'}, 403, 'E004001'),
    ('/zato/sso/user/signup', {'username': 'x1', 'password': 'short', 'email': 'x1@example.org',
                               'current_app': APP}, 400, 'E003002'),
    ('/zato/sso/user/confirm', {'current_app': APP}, 400, 'E008003'),
    ('/zato/sso/user/confirm', {'confirm_token': 5, 'current_app': APP}, 400, 'E008002'),
    ('/zato/sso/user/password/reset/begin', {'current_app': APP}, 400, 'E008003'),
    ('/zato/sso/user/password/reset/begin', {'username': ['a'], 'current_app': APP}, 400, 'E008002'),
    ('/zato/sso/user/password/reset/complete', {'token': 'x' * 43, 'current_app': APP}, 400, 'E008003'),
    ('/zato/sso/user/password/reset/complete', {'token': 'x' * 43, 'new_password': NEW_PASSWORD,
                                                'current_app': APP}, 403, 'E005001'),
])
def test_bad_input_is_a_clear_31_status_never_a_500(env, path, body, status, code):
    if isinstance(body, bytes):
        resp = requests.post(env.url + path, data=body, timeout=10)
    else:
        resp = call(env, 'POST', path, body)
    refused(resp, status, code)


def test_a_password_reset_by_email_sets_the_password_once_and_ends_every_session(env, smtp):
    approved(env, smtp, 'frank')
    old_ust = ok(login(env, 'frank', PASSWORD))['ust']
    before = len(smtp.messages())
    ok(call(env, 'POST', '/zato/sso/user/password/reset/begin', {'username': 'frank', 'current_app': APP}))
    [message] = mail_to(smtp, 'frank@example.org', before, subject='Password reset')
    assert message['From'] == 'hello@example.com'
    token = token_of(message)
    refused(call(env, 'POST', '/zato/sso/user/password/reset/complete',
                 {'token': token, 'new_password': 'short', 'current_app': APP}), 400, 'E003002')
    ok(call(env, 'POST', '/zato/sso/user/password/reset/complete',
            {'token': token, 'new_password': NEW_PASSWORD, 'current_app': APP}))
    refused(call(env, 'GET', '/zato/sso/user', {'ust': old_ust, 'current_app': APP}), 403, 'E007001')
    refused(login(env, 'frank', PASSWORD), 403, 'E005001')
    ok(login(env, 'frank', NEW_PASSWORD))
    refused(call(env, 'POST', '/zato/sso/user/password/reset/complete',
                 {'token': token, 'new_password': 'yet another passphrase', 'current_app': APP}), 403, 'E005001')
    ok(login(env, 'frank', NEW_PASSWORD))


def test_reset_begin_is_answered_alike_for_a_user_and_a_stranger_and_mails_only_the_user_once(env, smtp):
    approved(env, smtp, 'grace')
    before = len(smtp.messages())
    times: dict[str, list[float]] = {'grace': [], 'nobody-here': []}
    answers = set()
    order = ['grace', 'nobody-here'] * 40
    random.Random(12).shuffle(order)
    session = requests.Session()
    for username in order:
        start = time.perf_counter()
        resp = session.post(env.url + '/zato/sso/user/password/reset/begin',
                            json={'username': username, 'current_app': APP}, timeout=10)
        times[username].append(time.perf_counter() - start)
        body = resp.json()
        body.pop('cid')
        answers.add((resp.status_code, tuple(sorted(body.items())), len(resp.content)))
        time.sleep(0.03)  # the deferred work of one call is done before the next
    assert answers == {(200, (('status', 'ok'),), len(resp.content))}
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    assert abs(medians['grace'] - medians['nobody-here']) < 3, medians
    # One email: the others came within [password_reset] min_interval (60 s) of it
    assert len(mail_to(smtp, 'grace@example.org', before, subject='Password reset')) == 1
    time.sleep(0.5)
    assert len(mail_to(smtp, 'grace@example.org', before, count=0, subject='Password reset')) == 1
    assert all('nobody-here' not in ' '.join(m['rcpt_tos']) for m in smtp.messages()[before:])



def test_expired_tokens_are_purged_in_the_background(env, smtp):
    """[session] purge_interval is 1 s here. A sign-up with a taken username writes a token that is
    expired from the start (zato.sso.signup): it is gone from the ODB soon after."""
    approved(env, smtp, 'ivan')
    env.wait_for(lambda: env.decoys() == 0, timeout=10, interval=0.2)
    ok(call(env, 'POST', '/zato/sso/user/signup', {'username': 'ivan', 'password': PASSWORD,
                                                   'email': 'ivan2@example.org', 'current_app': APP}))
    assert env.decoys() == 1
    env.wait_for(lambda: env.decoys() == 0, timeout=10, interval=0.2)
    assert any('SSO purge: 1 expired sessions, tokens and attributes deleted' in env.log(f'server{i + 1}')
               for i in range(env.servers))
