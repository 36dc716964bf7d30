"""POST /zato/admin/rate-limits/check (zato.rate-limit.check): rule text checked by the limiter's own
parser, as a save would check it, without saving anything."""

from __future__ import annotations

import pytest

from zato.admin_client import AdminCallError

CHECK = '/zato/admin/rate-limits/check'


def test_good_rules_are_ok_and_come_back_normalised(env):
    out = env.admin.call('POST', CHECK, {'rules': '# the office\n10.0.0.0/8 = 0005/s   burst=2\n\n::ffff:127.0.0.1 = *\n'
                                                  '* = 100/m'})
    assert out == {'ok': True, 'rules': ['10.0.0.0/8 = 5/s burst=2', '127.0.0.1 = *', '* = 100/m']}


def test_an_empty_text_is_ok_it_refuses_everyone(env):
    assert env.admin.call('POST', CHECK, {'rules': '  # nothing yet\n'}) == {'ok': True, 'rules': []}


@pytest.mark.parametrize(('rules', 'error'), [
    ('* = 10/m\n10.0.0.1 = 10/x', "line 2: invalid limit '10/x': expected N/s, N/m, N/h, N/d or *"),
    ('10.0.0.1/8 = *', "line 1: invalid source '10.0.0.1/8': host bits are set in the network address"),
    ('* = 10/m\n\n# fine so far\n10.0.0.1 10/m', "line 4: expected 'source = limit', got '10.0.0.1 10/m'"),
    ('x' * (64 * 1024 + 1), 'longer than 64 KiB'),
])
def test_bad_rules_name_the_line_and_why_exactly_as_a_save_is_refused(env, rules, error):
    before = env.admin.call('GET', '/zato/admin/rate-limits')
    assert env.admin.call('POST', CHECK, {'rules': rules}) == {'ok': False, 'error': error}
    with pytest.raises(AdminCallError) as e:
        env.admin.call('POST', '/zato/admin/rate-limits', {'name': 'check-refused', 'rules': rules})
    assert e.value.status == 400 and e.value.details == f'Invalid input `rules`: {error}'
    assert env.admin.call('GET', '/zato/admin/rate-limits') == before  # nothing saved by either


@pytest.mark.parametrize(('payload', 'details'), [
    ({}, 'Missing input `rules`'),
    ({'rules': ['* = 1/m']}, 'Invalid input `rules`: expected str'),
])
def test_input_without_rule_text_is_a_400(env, payload, details):
    with pytest.raises(AdminCallError) as e:
        env.admin.call('POST', CHECK, payload)
    assert (e.value.status, e.value.details) == (400, details)
