"""The SSO pages called alone, over a real ODB (SQLite, and PostgreSQL), with the SSO core: what each
page does to users and sessions is checked through the core's own login and session calls, the way
the /zato/sso/... REST channels see them."""

from __future__ import annotations

import base64
import io
import json
import re
import weakref
from collections.abc import Iterator
from typing import Any

from urllib.parse import urlencode

import pyotp
import pytest
from sqlalchemy import select

from tests import pg
from tests.web_admin.views.standalone import REMOTE_ADDR, header, request, signed_in, text, web_admin
from zato.odb.models import SSOSession, WebAdminAudit
from zato.sso.api import SSO
from zato.sso.status import SSOError
from zato_web_admin import flash, sessions, users
from zato_web_admin.app import WebAdmin
from zato_web_admin.http import HTTPError
from zato_web_admin.sessions import Current
from zato_web_admin.views import sso as views

PASSWORD = 'correct horse battery'  # noqa: S105 - a test user's
APP = 'CRM'


@pytest.fixture(params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def app(request, tmp_path) -> Iterator[WebAdmin]:
    """The web-admin with SSO on, over SQLite or a scratch PostgreSQL database."""
    if request.param == 'sqlite':
        out, engine = web_admin(str(tmp_path / 'odb.sqlite3'), sso=True)
        yield out
        engine.dispose()
        return
    with pg.scratch_database('zato_wa_sso_') as db:
        out, engine = web_admin('', sso=True, url=pg.dsn(db).replace('postgresql://', 'postgresql+psycopg2://'))
        yield out
        engine.dispose()


def core(app: WebAdmin) -> SSO:
    """The SSO API over the same ODB, as a server's REST channels call it."""
    assert app.config.sso is not None
    return SSO(app.config.sso.ctx)


def make_user(app: WebAdmin, username: str, **extra: Any) -> str:
    """A user made with the core (as `zato sso create-user` makes them); their user_id."""
    return core(app).admin.create_user({'username': username, 'password': PASSWORD, **extra})['user_id']


def login(app: WebAdmin, username: str, password: str = PASSWORD, **extra: Any) -> str:
    return core(app).user.login('cid', username, password, APP, **extra).ust


def is_live(app: WebAdmin, ust: str) -> bool:
    try:
        core(app).user.session.renew('cid', ust, APP)
    except SSOError:
        return False
    return True


# The signed-in web-admin user of each app, made on first use
_CURRENT: weakref.WeakKeyDictionary[WebAdmin, Current] = weakref.WeakKeyDictionary()


def current_of(app: WebAdmin) -> Current:
    if app not in _CURRENT:
        _CURRENT[app] = signed_in(app)
    return _CURRENT[app]


def post(app: WebAdmin, path: str, form: dict[str, str] | None = None) -> Any:
    """POSTs through the router, as the app does once the CSRF token has been checked."""
    view, params, _ = app.router.match('POST', path)
    return view(app, request('POST', path, form or {}, current=current_of(app)), **params)


def get(app: WebAdmin, path: str, query: str = '') -> Any:
    view, params, _ = app.router.match('GET', path)
    return view(app, request('GET', path, query=query, current=current_of(app)), **params)


def flash_of(response: Any) -> list[str]:
    """The message a POST's redirect carries to the next page."""
    cookie = next(c for c in header(response, 'Set-Cookie') if c.startswith(flash.COOKIE + '='))
    return json.loads(base64.urlsafe_b64decode(cookie.split(';')[0].split('=', 1)[1]))


def audit_actions(app: WebAdmin) -> list[tuple[str, str, str, str]]:
    with app.db() as db:
        rows = db.scalars(select(WebAdminAudit).where(WebAdminAudit.object_kind == 'sso-user')
                          .order_by(WebAdminAudit.id)).all()
        return [(r.username, r.action, r.object_name, r.remote_addr) for r in rows]


# ################################################################################################ users

def test_search_finds_a_username_exactly_and_display_names_partially_page_by_page_with_31s_statuses(app):
    for i in range(30):
        make_user(app, f'user{i:02}', display_name=f'Team Blue {i:02}' if i % 2 else f'Team Red {i:02}')
    make_user(app, 'waiting', display_name='Someone', approval_status='before_decision')

    page1 = text(get(app, '/sso/users', 'display_name=blue'))
    assert '15 found' in page1 and page1.count('<tr data-name=') == 15
    page1 = text(get(app, '/sso/users', 'display_name=team'))
    assert '30 found' in page1 and page1.count('<tr data-name=') == views.PAGE_SIZE
    assert 'href="/sso/users?display_name=team&amp;page=2" rel="next"' in page1
    page2 = text(get(app, '/sso/users', 'display_name=team&page=2'))
    assert page2.count('<tr data-name=') == 5 and 'Page 2 of 2' in page2

    exact = text(get(app, '/sso/users', 'username=USER07'))
    assert re.findall(r'<tr data-name="([^"]+)"', exact) == ['user07']
    assert re.findall(r'<tr data-name="([^"]+)"', text(get(app, '/sso/users', 'username=user0'))) == []

    waiting = text(get(app, '/sso/users', 'approval_status=before_decision'))
    assert re.findall(r'<tr data-name="([^"]+)"', waiting) == ['waiting']
    assert '<td class="col-approval_status">before_decision</td>' in waiting
    assert '<td class="col-sign_up_status">final</td>' in waiting


def test_a_search_with_a_bad_page_or_status_is_the_first_page_of_everyone_never_an_error(app):
    make_user(app, 'alice')
    for query in ('page=abc', 'page=-1', 'page=99999999999', 'approval_status=maybe', 'sign_up_status=%00',
                  'username=a%00', 'display_name=%00'):
        response = get(app, '/sso/users', query)
        assert response.status == 200, query
        assert '<tr data-name="alice"' in text(response) or 'No SSO user matches' in text(response)


def test_a_new_user_gets_a_generated_password_shown_once_that_logs_in_and_the_audit_log_never_has_it(app):
    response = post(app, '/sso/users/new', {'username': 'alice', 'display_name': 'Alice A.',
                                            'email': 'alice@example.com'})
    assert response.status == 200
    password = re.search(r'<code id="password">([^<]+)</code>', text(response)).group(1)
    assert login(app, 'alice', password)
    assert audit_actions(app) == [('jane', 'sso-user.create', 'alice', REMOTE_ADDR)]
    with app.db() as db:
        details = db.scalars(select(WebAdminAudit.details).where(WebAdminAudit.object_kind == 'sso-user')).one()
    assert password not in str(details) and details['display_name'] == 'Alice A.'


def test_a_new_user_with_totp_gets_the_key_and_uri_once_and_logs_in_with_a_code_only(app):
    response = post(app, '/sso/users/new', {'username': 'bob', 'password': PASSWORD, 'password_again': PASSWORD,
                                            'totp': 'on'})
    page = text(response)
    key = re.search(r'<code id="totp-key">([A-Z2-7]+)</code>', page).group(1)
    assert 'otpauth://totp/' in page and '<svg' in page and 'id="password"' not in page  # typed, so not shown
    with pytest.raises(SSOError):
        login(app, 'bob')
    assert login(app, 'bob', totp_code=pyotp.TOTP(key).now())


@pytest.mark.parametrize('form, field, message', [
    ({'username': 'carol', 'password': 'short', 'password_again': 'short'}, 'password', 'too short'),
    ({'username': 'carol', 'password': PASSWORD, 'password_again': 'other'}, 'password_again', 'differ'),
    ({'username': 'has space'}, 'username', 'whitespace'),
    ({'username': ''}, 'username', 'required'),
    ({'username': 'carol', 'display_name': 'Carol\x00'}, 'display_name', 'NUL'),
    ({'username': 'carol', 'email': 'carol\x00@example.com'}, 'email', 'NUL'),
    ({'username': 'carol', 'email': 'not an email'}, 'email', 'email'),
])
def test_a_refused_new_user_is_the_form_again_with_the_cores_reason_next_to_its_field(app, form, field, message):
    response = post(app, '/sso/users/new', form)
    assert response.status == 400
    error = re.search(rf'<span class="error" id="error-{field}">([^<]+)</span>', text(response))
    assert error and message in error.group(1)
    assert core(app).admin.user.get_user_by_username('cid', 'carol') is None


def test_a_taken_username_is_refused_case_insensitively(app):
    make_user(app, 'Alice')
    response = post(app, '/sso/users/new', {'username': 'alice'})
    assert response.status == 400 and 'This username is taken.' in text(response)


def test_locking_ends_the_users_sessions_and_refuses_logins_until_unlocked(app):
    user_id = make_user(app, 'alice')
    ust = login(app, 'alice')
    response = post(app, f'/sso/users/{user_id}/lock', {'next': '/sso/users?username=alice'})
    assert (response.status, header(response, 'Location')) == (303, ['/sso/users?username=alice'])
    assert flash_of(response) == ['ok', 'Locked SSO user `alice`; their sessions were ended.']
    assert not is_live(app, ust)
    with pytest.raises(SSOError):
        login(app, 'alice')
    page = text(get(app, '/sso/users', 'username=alice'))
    assert '<td class="col-is_locked">Yes (by web-admin:jane)</td>' in page and '>Unlock</button>' in page

    post(app, f'/sso/users/{user_id}/unlock')
    assert login(app, 'alice')
    assert [a[1] for a in audit_actions(app)] == ['sso-user.lock', 'sso-user.unlock']


def test_rejecting_ends_the_users_sessions_and_refuses_logins_until_approved(app):
    user_id = make_user(app, 'alice')
    ust = login(app, 'alice')
    post(app, f'/sso/users/{user_id}/reject')
    assert not is_live(app, ust)
    with pytest.raises(SSOError):
        login(app, 'alice')
    assert 'rejected (by web-admin:jane)' in text(get(app, f'/sso/users/{user_id}'))
    post(app, f'/sso/users/{user_id}/approve')
    assert login(app, 'alice')
    assert [a[1] for a in audit_actions(app)] == ['sso-user.reject', 'sso-user.approve']


def test_a_new_totp_key_is_shown_once_ends_the_sessions_and_is_needed_at_login(app):
    user_id = make_user(app, 'alice')
    ust = login(app, 'alice')
    response = post(app, f'/sso/users/{user_id}/totp')
    page = text(response)
    key = re.search(r'<code id="totp-key">([A-Z2-7]+)</code>', page).group(1)
    assert re.search(r'<code id="totp-uri">otpauth://totp/[^<]*secret=' + key, page)
    assert not is_live(app, ust)
    with pytest.raises(SSOError):
        login(app, 'alice')
    assert login(app, 'alice', totp_code=pyotp.TOTP(key).now())
    assert audit_actions(app) == [('jane', 'sso-user.reset-totp-key', 'alice', REMOTE_ADDR)]
    with app.db() as db:
        assert key not in str(db.scalars(select(WebAdminAudit.details)).all())


def test_a_new_password_ends_every_session_and_the_old_one_stops_working(app):
    user_id = make_user(app, 'alice')
    old = [login(app, 'alice'), login(app, 'alice')]
    new = 'another correct horse'
    response = post(app, f'/sso/users/{user_id}/password', {'password': new, 'password_again': new})
    assert (response.status, header(response, 'Location')) == (303, [f'/sso/users/{user_id}'])
    assert not any(is_live(app, ust) for ust in old)
    with pytest.raises(SSOError):
        login(app, 'alice')
    assert login(app, 'alice', new)
    assert [a[1] for a in audit_actions(app)] == ['sso-user.change-password']
    with app.db() as db:
        assert new not in str(db.scalars(select(WebAdminAudit.details)).all())


def test_an_empty_new_password_is_generated_shown_once_and_works(app):
    user_id = make_user(app, 'alice')
    page = text(post(app, f'/sso/users/{user_id}/password', {'password': '', 'password_again': ''}))
    password = re.search(r'<code id="password">([^<]+)</code>', page).group(1)
    assert login(app, 'alice', password)


def test_a_new_password_against_the_policy_is_refused_and_the_old_one_kept(app):
    user_id = make_user(app, 'alice')
    ust = login(app, 'alice')
    response = post(app, f'/sso/users/{user_id}/password', {'password': 'password', 'password_again': 'password'})
    assert response.status == 400 and 'id="error-password"' in text(response)
    assert is_live(app, ust) and login(app, 'alice')


def test_a_deleted_user_is_gone_with_their_sessions(app):
    user_id = make_user(app, 'alice')
    ust = login(app, 'alice')
    response = post(app, f'/sso/users/{user_id}/delete', {'next': f'/sso/users/{user_id}'})
    assert header(response, 'Location') == ['/sso/users']
    assert not is_live(app, ust)
    assert core(app).admin.user.get_user_by_username('cid', 'alice') is None
    assert get_status(app, f'/sso/users/{user_id}') == 404
    assert [a[1] for a in audit_actions(app)] == ['sso-user.delete']


def get_status(app: WebAdmin, path: str) -> int:
    try:
        return get(app, path).status
    except HTTPError as e:
        return e.status


def test_an_unknown_user_is_a_404_page_for_every_action(app):
    assert get_status(app, '/sso/users/zusr0000') == 404
    for action in ('lock', 'unlock', 'approve', 'reject', 'totp', 'password', 'delete', 'sessions/end-all',
                   'sessions/1/end'):
        with pytest.raises(HTTPError) as info:
            post(app, f'/sso/users/zusr0000/{action}')
        assert info.value.status == 404, action


# ################################################################################################ sessions

def test_a_users_page_lists_their_live_sessions_never_a_ust_and_ends_one_or_all(app):
    user_id = make_user(app, 'alice')
    ust1 = login(app, 'alice')
    ust2 = core(app).user.login('cid', 'alice', PASSWORD, APP, remote_addr='198.51.100.9', user_agent='Firefox/99',
                                has_remote_addr=False, has_user_agent=False).ust
    other = login(app, make_user(app, 'bob') and 'bob')
    page = text(get(app, f'/sso/users/{user_id}'))
    assert page.count('<tr data-session=') == 2
    assert ust1 not in page and ust2 not in page
    assert '<td>198.51.100.9</td>' in page and '<td class="col-user_agent">Firefox/99</td>' in page
    assert page.count(f'<td>{APP}</td>') == 2
    with app.db() as db:
        hashes = db.scalars(select(SSOSession.ust_hash)).all()
    assert not any(h in page for h in hashes)
    assert 'Linked credentials' in page

    first = re.findall(r'<tr data-session="(\d+)"', page)[0]
    response = post(app, f'/sso/users/{user_id}/sessions/{first}/end')
    assert header(response, 'Location') == [f'/sso/users/{user_id}']
    assert not is_live(app, ust1) and is_live(app, ust2)
    again = post(app, f'/sso/users/{user_id}/sessions/{first}/end')
    assert flash_of(again) == ['error', 'That session had ended already.']

    response = post(app, f'/sso/users/{user_id}/sessions/end-all')
    assert not is_live(app, ust2) and is_live(app, other)
    assert 'No live session.' in text(get(app, f'/sso/users/{user_id}'))
    assert [a[1] for a in audit_actions(app)] == ['sso-user.end-session', 'sso-user.end-all-sessions']


def test_a_session_of_another_user_is_not_ended_through_this_users_page(app):
    alice, _ = make_user(app, 'alice'), make_user(app, 'bob')
    bob_ust = login(app, 'bob')
    with app.db() as db:
        bob_session = db.scalars(select(SSOSession.id)).one()
    post(app, f'/sso/users/{alice}/sessions/{bob_session}/end')
    assert is_live(app, bob_ust)


def test_a_session_id_that_is_not_a_number_names_no_session(app):
    user_id = make_user(app, 'alice')
    for bad in ('abc', '-1', '1' * 40, '١'):
        with pytest.raises(HTTPError) as info:
            post(app, f'/sso/users/{user_id}/sessions/{bad}/end')
        assert info.value.status == 404


# ################################################################################################ off, CSRF

def test_with_sso_off_every_page_says_so_instead_of_failing(tmp_path):
    app, engine = web_admin(str(tmp_path / 'odb.sqlite3'))
    try:
        current = signed_in(app)
        for method, pattern, view, _ in views.ROUTES:
            params = dict.fromkeys(re.findall(r'\{(\w+)\}', pattern), '1')
            response = view(app, request(method, pattern, {}, current=current), **params)
            assert response.status == (200 if method == 'GET' else 409), pattern
            assert 'Single Sign-On is not enabled in this environment' in text(response)
    finally:
        engine.dispose()


def wsgi(app: WebAdmin, method: str, path: str, cookie: str, form: dict[str, str] | None = None) -> tuple[str, str]:
    body = urlencode(form or {}).encode()
    status: list[str] = []
    out = app({'REQUEST_METHOD': method, 'PATH_INFO': path, 'QUERY_STRING': '', 'HTTP_COOKIE': cookie,
               'CONTENT_TYPE': 'application/x-www-form-urlencoded', 'CONTENT_LENGTH': str(len(body)),
               'wsgi.input': io.BytesIO(body), 'REMOTE_ADDR': REMOTE_ADDR},
              lambda s, headers: status.append(s))
    return status[0], b''.join(out).decode()


def test_an_action_posted_without_the_sessions_csrf_token_is_refused_and_changes_nothing(app):
    user_id = make_user(app, 'alice')
    ust = login(app, 'alice')
    with app.db() as db:
        user = users.create(db, 'jane', 'a long enough password 1')
        db.commit()
        token = sessions.start(db, user)
        current = sessions.load(db, token, 1800, 43200)
    cookie = f'{sessions.COOKIE}={token}'
    for path in (f'/sso/users/{user_id}/lock', f'/sso/users/{user_id}/sessions/end-all',
                 f'/sso/users/{user_id}/delete'):
        for form in ({}, {'csrf_token': 'forged'}):
            status, body = wsgi(app, 'POST', path, cookie, form)
            assert status.startswith('403'), (path, status)
    assert is_live(app, ust) and login(app, 'alice')
    assert audit_actions(app) == []
    status, _ = wsgi(app, 'POST', f'/sso/users/{user_id}/lock', cookie, {'csrf_token': current.csrf_token})
    assert status.startswith('303') and not is_live(app, ust)


def test_without_a_web_admin_session_the_pages_send_to_sign_in_and_actions_are_refused(app):
    user_id = make_user(app, 'alice')
    status, _ = wsgi(app, 'GET', '/sso/users', '')
    assert status.startswith('303')
    status, _ = wsgi(app, 'POST', f'/sso/users/{user_id}/lock', '', {'csrf_token': 'x'})
    assert status.startswith('403')
    assert login(app, 'alice')


def test_an_action_leads_back_only_to_an_sso_page_of_this_site(app):
    user_id = make_user(app, 'alice')
    for target, expected in (('//evil.example/sso/users', '/sso/users'), ('https://evil.example/', '/sso/users'),
                             ('/services', '/sso/users'), (f'/sso/users/{user_id}', f'/sso/users/{user_id}')):
        response = post(app, f'/sso/users/{user_id}/unlock', {'next': target})
        assert header(response, 'Location') == [expected], target


def test_a_brute_force_lockout_is_shown_with_its_end_and_unlock_ends_it(app):
    user_id = make_user(app, 'alice')
    failures = app.config.sso.config.get('login', 'lockout_failures')
    for _ in range(failures):
        with pytest.raises(SSOError):
            login(app, 'alice', 'wrong password')
    with pytest.raises(SSOError):
        login(app, 'alice')  # the right password, refused while locked out
    page = text(get(app, '/sso/users', 'username=alice'))
    assert re.search(r'<td class="col-is_locked">Locked out until \d\d:\d\d:\d\d</td>', page) and '>Unlock<' in page
    assert 'Locked out after failed logins until' in text(get(app, f'/sso/users/{user_id}'))
    post(app, f'/sso/users/{user_id}/unlock')
    assert login(app, 'alice')
    assert '<td class="col-is_locked">No</td>' in text(get(app, '/sso/users', 'username=alice'))
