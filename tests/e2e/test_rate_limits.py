"""Rate limits and IP allow-lists on REST channels, with their hierarchy, end to end."""

from __future__ import annotations

import time

import requests

from zato.admin_client import AdminCallError

SERVICE = '''
from zato.server.service import Service

class Ok(Service):
    def handle(self):
        self.response.payload = {'ok': True}
'''

_ready = {}


def _setup(env):
    if env.path not in _ready:
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'rl_svc.py', 'source': SERVICE})
        _ready[env.path] = 0
    _ready[env.path] += 1
    return f'rl{_ready[env.path]}'


def limit(env, name, rules, **extra):
    return env.admin.call('POST', '/zato/admin/rate-limits', {'name': name, 'rules': rules, **extra})


def channel(env, name, **extra):
    """A GET channel, probed with POST until every worker routes it: a 405 is decided before any
    limit is checked, so the probes use up no quota."""
    env.channel(name, f'/rl/{name}', 'rl-svc.ok', method='GET', **extra)
    url = env.url + f'/rl/{name}'
    env.wait_for(lambda: all(requests.post(url, headers={'Connection': 'close'}).status_code == 405
                             for _ in range(4)))
    return url


def test_an_address_no_rule_matches_is_refused_with_403_and_an_edit_applies_live(env):
    p = _setup(env)
    created = limit(env, f'{p}-allow', '# only the office\n10.0.0.0/8 = *\n')
    url = channel(env, f'{p}-allow', rate_limit=f'{p}-allow')
    r = requests.get(url)
    assert r.status_code == 403 and r.headers['Cache-Control'] == 'no-store'
    assert r.json()['result'] == 'ZATO_ERROR'
    env.admin.call('PUT', f'/zato/admin/rate-limits/{created["id"]}', {'rules': '10.0.0.0/8 = *\n127.0.0.1 = *'})
    took = env.wait_for(lambda: all(env.fresh_get(url).status_code == 200 for _ in range(4)))
    assert took < 1.0


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(env):
    # The e2e environment trusts 127.0.0.1 as a proxy (ZATO_HTTP_TRUSTED_PROXIES)
    p = _setup(env)
    limit(env, f'{p}-xff', '203.0.113.7 = *')
    url = channel(env, f'{p}-xff', rate_limit=f'{p}-xff')
    assert requests.get(url).status_code == 403
    assert requests.get(url, headers={'X-Forwarded-For': '203.0.113.7'}).status_code == 200
    assert requests.get(url, headers={'X-Forwarded-For': '203.0.113.7, 198.51.100.1'}).status_code == 403


def test_the_request_over_the_limit_gets_429_with_retry_after_and_no_store(env):
    p = _setup(env)
    limit(env, f'{p}-3m', '* = 3/m')
    url = channel(env, f'{p}-3m', rate_limit=f'{p}-3m')
    with requests.Session() as s:   # one connection, so one worker and its approximate counters
        assert [s.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
        r = s.get(url)
    assert r.status_code == 429 and r.headers['Cache-Control'] == 'no-store'
    assert 1 <= int(r.headers['Retry-After']) <= 60
    assert r.json()['details'] == 'Too Many Requests'


def test_a_per_second_limit_with_a_burst(env):
    p = _setup(env)
    limit(env, f'{p}-burst', '* = 1/s burst=2')
    url = channel(env, f'{p}-burst', rate_limit=f'{p}-burst')
    with requests.Session() as s:
        statuses = [s.get(url).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        time.sleep(1.1)
        assert s.get(url).status_code == 200


def test_a_parent_definition_is_enforced_too(env):
    p = _setup(env)
    limit(env, f'{p}-parent', '* = 2/m')
    limit(env, f'{p}-child', '* = 100/m', parent=f'{p}-parent')
    url = channel(env, f'{p}-child', rate_limit=f'{p}-child')
    with requests.Session() as s:
        assert [s.get(url).status_code for _ in range(3)] == [200, 200, 429]


def test_a_request_refused_at_the_channel_level_is_not_charged_at_the_security_level(env):
    p = _setup(env)
    limit(env, f'{p}-sec', '* = 5/m')
    limit(env, f'{p}-chan', '* = 2/m')
    sec = env.admin.call('POST', '/zato/admin/security', {'name': f'{p}-sec', 'kind': 'basic_auth',
                                                          'username': f'{p}-user', 'rate_limit': f'{p}-sec'})
    auth = (f'{p}-user', sec['password'])
    tight = channel(env, f'{p}-tight', security=f'{p}-sec', rate_limit=f'{p}-chan')
    loose = channel(env, f'{p}-loose', security=f'{p}-sec')
    with requests.Session() as s:
        s.auth = auth
        assert [s.get(tight).status_code for _ in range(6)] == [200, 200, 429, 429, 429, 429]
        # Only the 2 allowed requests used the security definition's 5/m
        assert [s.get(loose).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_rule_text_that_does_not_parse_is_refused_naming_the_line(env):
    p = _setup(env)
    for rules, text in (('* = 10/m\n10.0.0.1 = 10/x', 'line 2'), ('10.0.0.1/8 = *', 'line 1'),
                        ('nonsense', 'line 1')):
        try:
            limit(env, f'{p}-bad', rules)
        except AdminCallError as e:
            assert e.status == 400 and text in e.details and '`rules`' in e.details, e.details
        else:
            raise AssertionError(f'accepted {rules!r}')


def test_exact_mode_needs_postgresql(env):
    p = _setup(env)
    try:
        limit(env, f'{p}-exact', '* = 1/m', mode='exact')
    except AdminCallError as e:
        assert e.status == 400 and 'PostgreSQL' in e.details
    else:
        raise AssertionError('exact mode accepted on SQLite')


def test_parents_may_not_form_a_cycle_and_a_used_definition_may_not_be_deleted(env):
    p = _setup(env)
    a = limit(env, f'{p}-a', '* = 1/m')
    limit(env, f'{p}-b', '* = 1/m', parent=f'{p}-a')
    try:
        env.admin.call('PUT', f'/zato/admin/rate-limits/{a["id"]}', {'parent': f'{p}-b'})
    except AdminCallError as e:
        assert e.status == 400 and 'cycle' in e.details
    else:
        raise AssertionError('cycle accepted')
    try:
        env.admin.call('DELETE', f'/zato/admin/rate-limits/{a["id"]}')
    except AdminCallError as e:
        assert e.status == 409 and f'{p}-b' in e.details
    else:
        raise AssertionError('deleted a parent in use')


def test_an_address_outside_the_allow_list_gets_403_before_its_credentials_are_looked_at(env):
    p = _setup(env)
    limit(env, f'{p}-office', '10.0.0.0/8 = *')
    env.admin.call('POST', '/zato/admin/security', {'name': f'{p}-office-sec', 'kind': 'basic_auth',
                                                    'username': f'{p}-u'})
    url = channel(env, f'{p}-office', security=f'{p}-office-sec', rate_limit=f'{p}-office')
    for auth in (None, (f'{p}-u', 'wrong')):
        r = requests.get(url, auth=auth)
        assert r.status_code == 403 and 'WWW-Authenticate' not in r.headers
