"""The per-worker authenticator: what it remembers of verified credentials, and what it forgets."""

from __future__ import annotations

import base64
import time

import jwt
import pytest

from zato.errors import Unauthorized
from zato.security.authenticate import Authenticator
from zato.security.jwt_auth import JWTManager
from zato.security.passwords import hash_password
from zato.config.security import SecurityConfig


def basic(user: str, password: str) -> dict[str, str]:
    return {'authorization': 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()}


def basic_def(password: str, sec_id: int = 2, version: int = 1) -> SecurityConfig:
    return SecurityConfig(id=sec_id, name='api', kind='basic_auth', username='joe',
                          password_hash=hash_password(password), version=version)


def test_forgetting_a_definition_drops_every_credential_verified_against_it():
    auth = Authenticator()
    old = basic_def('the old password')
    assert auth.authenticate(old, basic('joe', 'the old password')).username == 'joe'

    # A definition created in its place under the same id and version (what an id reused by the ODB
    # would give): only forgetting the old one keeps its password from opening the new one
    new = basic_def('the new password')
    auth.forget(2)
    with pytest.raises(Unauthorized):
        auth.authenticate(new, basic('joe', 'the old password'))
    assert auth.authenticate(new, basic('joe', 'the new password')).username == 'joe'


def test_forgetting_one_definition_keeps_what_was_verified_for_the_others():
    auth = Authenticator()
    one, other = basic_def('first secret pw', sec_id=2), basic_def('second secret pw', sec_id=3)
    auth.authenticate(one, basic('joe', 'first secret pw'))
    auth.authenticate(other, basic('joe', 'second secret pw'))
    auth.forget(2)
    assert [key[0] for key in auth.verified] == [3]
    assert [key[0] for key in auth.cache._ok] == [3]


class _Tokens:
    """The part of JWTManager the authenticator calls: each bearer token names its user."""

    def verify_request(self, sec: SecurityConfig, authorization: str | None) -> str | None:
        return authorization.split()[1].split('.')[0] if authorization else None


def test_every_token_of_one_jwt_user_is_the_same_caller_object():
    # The request path keeps one ChannelInfo per (channel, caller) keyed by this object: a new object
    # per request would miss every time and fill that cache to its bound, again and again
    auth = Authenticator(jwt=_Tokens())
    sec = SecurityConfig(id=7, name='jwt', kind='jwt', username='ann', password_hash='')
    first = auth.authenticate(sec, {'authorization': 'Bearer ann.token-1'})
    second = auth.authenticate(sec, {'authorization': 'Bearer ann.token-2'})
    other = auth.authenticate(sec, {'authorization': 'Bearer bob.token-3'})
    assert first is second
    assert other is not first and other.username == 'bob'


KEY = b'k' * 32


def token(**claims) -> str:
    now = int(time.time())
    return jwt.encode({'sub': 'ann', 'jti': 'j1', 'iat': now, 'nbf': now, 'exp': now + 60, **claims}, KEY,
                      algorithm='HS256')


@pytest.mark.parametrize('tail', ['=', '==', '===', '%3D', ' x'])
def test_a_jwt_with_anything_after_its_unpadded_base64url_signature_is_refused(tail):
    manager = JWTManager(None, KEY)  # type: ignore[arg-type] - decoding needs no runtime
    good = token()
    assert manager._decode(f'Bearer {good}', None) is not None
    assert manager._decode(f'Bearer {good}{tail}', None) is None


@pytest.mark.parametrize('mangle', [
    lambda t: t.replace('.', '=.', 1),                  # padding in the header part
    lambda t: t.replace('-', '+').replace('_', '/'),    # base64, not base64url
    lambda t: t + '.',                                  # a fourth, empty part
    lambda t: t.rsplit('.', 1)[0] + '.',                # no signature
])
def test_a_jwt_in_any_but_the_compact_unpadded_base64url_form_is_refused(mangle):
    manager = JWTManager(None, KEY)  # type: ignore[arg-type]
    good = token(pad='a~b?c>d')  # claims whose base64url has - or _ in it
    mangled = mangle(good)
    assert mangled != good
    assert manager._decode(f'Bearer {mangled}', None) is None


def test_forgetting_a_jwt_definition_ends_its_sessions_in_this_worker():
    manager = JWTManager(None, KEY)  # type: ignore[arg-type]
    manager.sessions = {'a': (time.time() + 60, 5), 'b': (time.time() + 60, 6)}
    manager.dirty = {'a': 1.0}
    manager.forget_definition(5)
    assert list(manager.sessions) == ['b'] and manager.dirty == {}


def test_a_renewal_announced_before_a_log_out_and_heard_after_it_does_not_bring_the_token_back():
    # Worker B renews the token and tells the cluster; worker A logs it out and tells the cluster; the
    # bus orders no two publishers, so A may hear B's renewal after its own revocation
    from types import SimpleNamespace
    announced: list = []
    bus = SimpleNamespace(publish=lambda subject, msg: announced.append(msg))
    manager = JWTManager(SimpleNamespace(bus=bus), KEY)  # type: ignore[arg-type] - nothing here reads the ODB
    sec = SecurityConfig(id=5, name='mobile', kind='jwt', username='ann', password_hash='', ttl=60)
    good = f'Bearer {token()}'
    manager.sessions = {'j1': (time.time() + 60, 5)}
    assert manager.verify_request(sec, good) == 'ann' and announced  # the renewal told to the cluster
    manager.on_message({'action': 'revoke', 'jti': 'j1', 'exp': time.time() + 60})
    manager.on_message({'action': 'session', 'jti': 'j1', 'expires_at': time.time() + 120, 'sec_def_id': 5})
    assert 'j1' not in manager.sessions
    assert manager.verify_request(sec, good) is None
