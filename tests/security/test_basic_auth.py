from __future__ import annotations

import pytest

from zato.security.basic_auth import CredentialCache, parse_basic_auth
from zato.security.password_policy import check_password
from zato.security.passwords import hash_password


@pytest.mark.parametrize('header, expected', [
    ('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==', ('Aladdin', 'open sesame')),  # RFC 7617 section 2
    ('Basic dGVzdDoxMjPCow==', ('test', '123\u00a3')),                     # RFC 7617 section 2.1, UTF-8
    ('basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==', ('Aladdin', 'open sesame')),  # the scheme is case-insensitive
    ('Basic dXNlcjo=', ('user', '')),
    ('Basic dXNlcjpwYTpzcw==', ('user', 'pa:ss')),                        # the password may hold colons
])
def test_rfc_7617_credentials_are_decoded(header, expected):
    assert parse_basic_auth(header) == expected


@pytest.mark.parametrize('header', [
    None, '', 'Basic', 'Basic ', 'Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==',
    'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ',      # bad padding
    'Basic QWxh!GRpbjpvcGVuIHNlc2FtZQ==',   # not base64: strict decoding refuses it
    'Basic dXNlcg==',                        # no colon
    'Basic //79',                            # not UTF-8
])
def test_malformed_basic_credentials_are_refused(header):
    assert parse_basic_auth(header) is None


def test_the_cache_spares_argon2_but_a_new_version_of_the_definition_drops_the_entry():
    h = hash_password('correct horse battery')
    cache = CredentialCache()
    assert cache.check(1, 1, 'joe', 'correct horse battery', 'joe', h)
    assert cache.check(1, 1, 'joe', 'correct horse battery', 'joe', h)
    assert not cache.check(1, 1, 'joe', 'wrong', 'joe', h)
    new_hash = hash_password('a brand new secret')
    assert not cache.check(1, 2, 'joe', 'correct horse battery', 'joe', new_hash)
    assert cache.check(1, 2, 'joe', 'a brand new secret', 'joe', new_hash)


def test_a_wrong_user_name_is_refused_even_with_the_right_password():
    h = hash_password('correct horse battery')
    assert not CredentialCache().check(1, 1, 'ann', 'correct horse battery', 'joe', h)


@pytest.mark.parametrize('password, ok', [
    ('short', False), ('password', False), ('Password', False), ('zato', False),
    ('correct horse battery staple', True), ('x' * 200, True), ('x' * 2000, False),
])
def test_the_password_policy_wants_length_and_refuses_common_passwords(password, ok):
    assert (check_password(password) is None) is ok
