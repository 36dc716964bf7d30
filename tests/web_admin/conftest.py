"""A running environment with its web-admin, and ways in: a signed-in `requests` session for the
HTTP-level tests and a signed-in Chromium page for the browser tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
import requests

from tests.chromium import launch
from tests.e2e.harness import Env, zato

TIMEOUT = 15.0


class WebAdmin:
    """The web-admin of `env`: its URL and the `admin` user's password printed by the quickstart."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.url = env.web_admin_url
        m = re.search(r'user `admin`, password (\S+)', env.create_output)
        assert m, env.create_output
        self.username = 'admin'
        self.password = m.group(1)
        self.totp_key = ''  # set by a test that turns TOTP on for `admin`

    def code(self, key: str = '', offset: int = 0) -> str:
        """The TOTP code of `key` (admin's by default) for the current 30-second step, or one next to it."""
        totp = pyotp.TOTP(key or self.totp_key)
        import time
        return totp.at(time.time() + offset * 30)

    def session(self, username: str = '', password: str = '', code: str = '') -> requests.Session:
        """A requests session signed in (asserted)."""
        s = requests.Session()
        r = self.sign_in(s, username or self.username, password or self.password, code)
        assert r.status_code == 303, (r.status_code, r.text[:500])
        return s

    def sign_in(self, s: requests.Session, username: str, password: str, code: str = '') -> requests.Response:
        token = csrf(s.get(self.url + '/login', timeout=TIMEOUT).text)
        return s.post(self.url + '/login', data={'csrf_token': token, 'username': username, 'password': password,
                                                 'totp_code': code, 'next': '/'},
                      allow_redirects=False, timeout=TIMEOUT)

    def user(self, username: str, password: str) -> None:
        """Creates a web-admin user with the CLI, the password from stdin."""
        zato('create', 'web-admin-user', self.env.path, username, '--password-stdin', input_text=password + '\n')


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


@pytest.fixture(scope='module')
def web_admin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebAdmin]:
    # A test module may set WEB_ADMIN_ENV, e.g. {'ZATO_STATS_FLUSH_INTERVAL': '0.5'} for statistics in time
    env = Env(str(tmp_path_factory.mktemp('zato') / 'env'), web_admin=True,
              env=getattr(request.module, 'WEB_ADMIN_ENV', None))
    env.start()
    try:
        yield WebAdmin(env)
    finally:
        env.stop()


@pytest.fixture(scope='module')
def browser() -> Iterator[Any]:
    with launch() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={'width': 1360, 'height': 900})
    context.set_default_timeout(TIMEOUT * 1000)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def sign_in(page: Any, wa: WebAdmin, code: str = '') -> None:
    """Signs in through the form, as a user would."""
    page.goto(wa.url + '/login')
    page.fill('input[name=username]', wa.username)
    page.fill('input[name=password]', wa.password)
    if code:
        page.fill('input[name=totp_code]', code)
    page.click('button[type=submit]')
    page.wait_for_url(wa.url + '/')
