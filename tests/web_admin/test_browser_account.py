"""The web-admin in headless Chromium: signing in, turning TOTP on from "My settings" and signing in
with a code computed here, the code refused the second time; sign-out. Screenshots of each page go
to the artifacts directory (tests/chromium.py)."""

from __future__ import annotations

import re

from tests.chromium import screenshot
from tests.web_admin.conftest import sign_in


def test_sign_in_turn_totp_on_and_sign_in_with_a_code_that_works_once(web_admin, page):
    wa = web_admin
    page.goto(wa.url + '/')
    assert page.url.startswith(wa.url + '/login')  # no page without a session
    screenshot(page, 'web-admin/login')

    sign_in(page, wa)
    assert page.locator('h1').inner_text() == 'Dashboard'
    screenshot(page, 'web-admin/dashboard')

    # My settings: set up TOTP, scan (read) the key, confirm with a code
    page.click('text=My settings')
    assert page.locator('#totp-status').inner_text() == 'off'
    page.click('#totp-start')
    key = page.locator('#totp-key').inner_text().strip()
    assert re.fullmatch(r'[A-Z2-7]{32}', key)
    assert page.locator('.qr svg').count() == 1
    screenshot(page, 'web-admin/settings-totp-setup')
    wa.totp_key = key
    confirm_code = wa.code()
    page.fill('.totp-setup input[name=totp_code]', confirm_code)
    page.click('.totp-setup button[type=submit]')
    assert page.locator('#totp-status').inner_text() == 'on'
    assert 'TOTP is on' in page.locator('.flash').inner_text()
    screenshot(page, 'web-admin/settings-totp-on')

    page.click('#sign-out')
    page.wait_for_url(wa.url + '/login')

    # Without a code, or with the one used to confirm (same step): refused, with one message for all
    for code in ('', confirm_code):
        page.fill('input[name=username]', wa.username)
        page.fill('input[name=password]', wa.password)
        page.fill('input[name=totp_code]', code)
        page.click('button[type=submit]')
        assert 'Invalid credentials' in page.locator('.flash.error').inner_text()
    screenshot(page, 'web-admin/login-refused')

    # The next step's code works, once
    code = wa.code(offset=1)
    sign_in(page, wa, code)
    assert page.locator('h1').inner_text() == 'Dashboard'
    page.click('#sign-out')
    page.wait_for_url(wa.url + '/login')
    page.fill('input[name=username]', wa.username)
    page.fill('input[name=password]', wa.password)
    page.fill('input[name=totp_code]', code)
    page.click('button[type=submit]')
    assert 'Invalid credentials' in page.locator('.flash.error').inner_text()
