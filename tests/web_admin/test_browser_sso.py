"""The SSO pages in headless Chromium, on a running environment with SSO on: search users, lock one
(their REST session dies and their login is refused), open another's sessions (opened over REST,
with their user agents) and end them all. Screenshots go to the artifacts directory."""

from __future__ import annotations

import requests

from tests.chromium import screenshot
from tests.e2e.harness import zato
from tests.web_admin.conftest import TIMEOUT, sign_in

WEB_ADMIN_ENV = {'ZATO_COMPONENT_ENABLED_SSO': 'true'}
PASSWORD = 'correct horse battery'  # noqa: S105 - a test user's


def rest_login(url: str, username: str, agent: str = 'test') -> requests.Response:
    return requests.post(url + '/zato/sso/user/login', json={'username': username, 'password': PASSWORD,
                                                             'current_app': 'CRM'},
                         headers={'User-Agent': agent}, timeout=TIMEOUT)


def is_live(url: str, ust: str) -> bool:
    return requests.get(url + '/zato/sso/user', params={'ust': ust, 'current_app': 'CRM'},
                        timeout=TIMEOUT).status_code == 200


def test_search_lock_a_user_then_end_all_sessions_of_another(web_admin, page):
    wa, env = web_admin, web_admin.env
    for username, display_name in (('alice', 'Team Blue Alice'), ('bob', 'Team Blue Bob'), ('carol', 'Other')):
        zato('sso', 'create-user', env.path, username, '--password-stdin', '--display-name', display_name,
             input_text=PASSWORD + '\n', env=env.env)
    alice_ust = rest_login(env.url, 'alice').json()['ust']
    bob_usts = [rest_login(env.url, 'bob', f'Mozilla/5.0 bob-device-{i}').json()['ust'] for i in range(2)]

    sign_in(page, wa)
    page.click('#menu-sso-users')
    assert page.locator('h1').inner_text() == 'SSO users'
    page.fill('input[name=display_name]', 'blue')
    page.click('#sso-search button[type=submit]')
    rows = page.locator('#sso-users tbody tr')
    assert [rows.nth(i).get_attribute('data-name') for i in range(rows.count())] == ['alice', 'bob']
    assert page.locator('tr[data-name=alice] .col-approval_status').inner_text() == 'approved'
    screenshot(page, 'web-admin/sso-users')

    # Lock alice (confirmations are for destructive actions only; this one has none)
    page.click('tr[data-name=alice] button:text("Lock")')
    assert 'Locked SSO user `alice`' in page.locator('.flash').inner_text()
    assert page.locator('tr[data-name=alice] .col-is_locked').inner_text().startswith('Yes')
    assert page.locator('input[name=display_name]').input_value() == 'blue'  # back to the same search
    assert not is_live(env.url, alice_ust)
    assert rest_login(env.url, 'alice').status_code == 403

    # Bob's sessions, then End all (a confirmation dialog, accepted)
    page.click('tr[data-name=bob] a.sessions')
    assert page.locator('h1').inner_text() == 'SSO user bob'
    sessions = page.locator('#sso-sessions tbody tr[data-session]')
    assert sessions.count() == 2
    assert 'bob-device-0' in page.locator('#sso-sessions').inner_text()
    assert all(ust not in page.content() for ust in bob_usts)
    screenshot(page, 'web-admin/sso-user-sessions')
    page.once('dialog', lambda dialog: dialog.accept())
    page.click('button:text("End all sessions")')
    assert 'Ended 2 sessions of SSO user `bob`' in page.locator('.flash').inner_text()
    assert page.locator('#sso-sessions tbody tr[data-session]').count() == 0
    assert not any(is_live(env.url, ust) for ust in bob_usts)
    assert rest_login(env.url, 'bob').status_code == 200  # ending sessions is not a lock
