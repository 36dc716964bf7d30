"""sso.conf: 3.1's sections, keys and defaults; a bad value stops the start with one line naming the key."""

from __future__ import annotations

import pytest

from zato.errors import ConfigError
from zato.sso.config import KEYS, SECTIONS, parse_text, render_template


def test_without_a_file_every_key_has_its_31_default():
    conf = parse_text('', 'sso.conf')
    assert conf.get('apps', 'all') == ('CRM',)
    assert conf.get('apps', 'http_header') == 'X-Zato-SSO-Current-App'
    assert conf.get('session', 'expiry') == 60
    assert conf.get('password', 'expiry') == 730
    assert conf.get('password', 'min_length') == 8 and conf.get('password', 'max_length') == 256
    assert 'qwerty' in conf.get('password', 'reject_list')
    assert conf.get('search', 'default_page_size') == 50 and conf.get('search', 'max_page_size') == 100
    assert conf.get('user_validation', 'reject_username') == ('zato', 'admin', 'root', 'system', 'sso')
    assert conf.get('login', 'inform_if_locked') is True


def test_every_31_section_is_known():
    assert set(SECTIONS) == {'apps', 'login', 'session', 'password', 'signup', 'user_validation', 'search',
                             'user_address_list', 'password_reset'}
    # [main] is 3.1's too, but of its keys only smtp_conn means something here; the others are let be
    assert {k.section for k in KEYS} | {'user_address_list'} == set(SECTIONS) | {'main'}


def test_main_smtp_conn_names_the_email_connection_and_31s_other_main_keys_are_let_be():
    conf = parse_text('[main]\nsmtp_conn = My SMTP\nencrypt_email = True\n', 'sso.conf')
    assert conf.get('main', 'smtp_conn') == 'My SMTP'
    assert parse_text('', 'sso.conf').get('main', 'smtp_conn') == ''
    assert conf.get('password_reset', 'valid_for') == 60 and conf.get('signup', 'confirm_token_expiry') == 1440


@pytest.mark.parametrize('text, message', [
    ('[session]\nexpiry = soon\n', 'sso.conf [session] expiry: invalid value `soon`'),
    ('[password]\nmin_length = 0\n', 'sso.conf [password] min_length: invalid value `0`'),
    ('[login]\ninform_if_locked = perhaps\n', 'sso.conf [login] inform_if_locked: invalid value `perhaps`'),
    ('[apps]\nlogin_allowed = ERP\n', 'sso.conf [apps] login_allowed: `ERP` is not in [apps] all'),
    ('[session]\nexpiri = 5\n', 'sso.conf [session] expiri: unknown key'),
    ('[sessions]\nexpiry = 5\n', 'sso.conf: unknown section [sessions]'),
    ('[user_address_list]\nalice = 10.0.0.300\n', 'sso.conf [user_address_list] alice: `10.0.0.300`'),
])
def test_a_bad_value_is_one_line_naming_the_key(text, message):
    with pytest.raises(ConfigError) as e:
        parse_text(text, 'sso.conf')
    assert str(e.value).startswith(message)
    assert '\n' not in str(e.value)


def test_the_template_quickstart_writes_parses_to_the_defaults():
    assert parse_text(render_template(), 'sso.conf') == parse_text('', 'sso.conf')


def test_user_address_lists_are_read_per_case_folded_username():
    conf = parse_text('[user_address_list]\nAlice = 10.0.0.0/8, 192.168.1.10\n', 'sso.conf')
    assert [str(n) for n in conf.user_address_list['alice']] == ['10.0.0.0/8', '192.168.1.10/32']
