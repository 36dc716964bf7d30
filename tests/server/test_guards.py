"""The guard chain a channel gets at config load, run alike by every entry point."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from zato.errors import Forbidden, ServiceUnavailable, TooManyRequests, Unauthorized
from zato.security.authenticate import Authenticator
from zato.security.passwords import hash_password
from zato.server import guards
from zato.config.security import SecurityConfig
from zato.server.channels import ChannelConfig
from zato.server.guards import Caller, Guards
from zato.server.limits import DefRow, RateLimits
from zato.config.channel import ChannelInfo

PASSWORD = 'a password of some length'
SEC = SecurityConfig(id=7, name='api', kind='basic_auth', username='joe', password_hash=hash_password(PASSWORD))
INFO = ChannelInfo(3, 'ch', 'http-soap')


def limit_def(def_id: int, rules: str, is_default: bool = False) -> DefRow:
    return DefRow(SimpleNamespace(id=def_id, name=f'd{def_id}', rules=rules, mode='approximate', parent_id=None,
                                  is_active=True, is_default=is_default, version=1))


def limits_with(defs: dict[int, DefRow], channel_limit: int | None = None, sec_limit: int | None = None) -> RateLimits:
    limits = RateLimits()
    channel = ChannelConfig(id=3, name='ch', url_path='/ch', service_name='svc', rate_limit_id=channel_limit)
    sec = SecurityConfig(id=7, name='api', kind='basic_auth', username='joe', password_hash='',
                         rate_limit_id=sec_limit)
    limits.rebuild(defs, {3: channel}, {7: sec}, {})
    return limits


def chain(limits: RateLimits, authenticator: Authenticator, security_id: int | None = 7, **kwargs) -> Guards:
    return guards.build(info=INFO, limits=limits, authenticator=authenticator, security={7: SEC}, channel_id=3,
                        security_id=security_id, service='svc', **kwargs)


def basic(password: str = PASSWORD) -> dict[str, str]:
    return {'authorization': 'Basic ' + base64.b64encode(f'joe:{password}'.encode()).decode()}


class CountingAuthenticator(Authenticator):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def authenticate(self, sec, headers):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().authenticate(sec, headers)


def test_an_open_channel_without_limits_has_no_steps_at_all():
    g = chain(limits_with({}), Authenticator(), security_id=None)
    assert g.steps == ()
    assert g.check(Caller('10.0.0.1', {}, ())) is INFO


def test_a_channel_whose_guards_are_not_built_lets_nobody_in():
    chan = ChannelConfig(id=3, name='ch', url_path='/ch', service_name='svc')
    with pytest.raises(ServiceUnavailable):
        chan.guards.check(Caller('127.0.0.1', {}, ()))


def test_an_address_the_allow_list_refuses_is_403_before_its_credentials_are_looked_at():
    auth = CountingAuthenticator()
    g = chain(limits_with({1: limit_def(1, '10.0.0.0/8 = *', is_default=True)}), auth)
    with pytest.raises(Forbidden):
        g.check(Caller('192.0.2.1', basic(), ()))
    assert auth.calls == 0
    assert g.check(Caller('10.1.2.3', basic(), ())).security.username == 'joe'


def test_credentials_are_required_and_each_caller_gets_one_channel_info():
    g = chain(limits_with({}), Authenticator())
    with pytest.raises(Unauthorized):
        g.check(Caller('10.0.0.1', {}, ()))
    with pytest.raises(Unauthorized):
        g.check(Caller('10.0.0.1', basic('wrong'), ()))
    first = g.check(Caller('10.0.0.1', basic(), ()))
    assert first.id == 3 and first.security.name == 'api'
    assert g.check(Caller('10.0.0.2', basic(), ())) is first


def test_optional_credentials_let_a_caller_without_any_through_unauthenticated_but_check_those_sent():
    g = chain(limits_with({}), Authenticator(), credentials_optional=True)
    assert g.check(Caller('10.0.0.1', {}, ())) is INFO
    with pytest.raises(Unauthorized):
        g.check(Caller('10.0.0.1', basic('wrong'), ()))


def test_the_security_definitions_level_counts_only_callers_who_authenticated():
    limits = limits_with({2: limit_def(2, '* = 1/m')}, sec_limit=2)
    g = chain(limits, Authenticator(), credentials_optional=True)
    for _ in range(3):
        g.check(Caller('10.0.0.1', {}, ()))  # anonymous: no level applies
    g.check(Caller('10.0.0.1', basic(), ()))
    with pytest.raises(TooManyRequests):
        g.check(Caller('10.0.0.1', basic(), ()))


def test_an_internal_channel_is_not_allow_listed_or_rate_limited():
    limits = limits_with({1: limit_def(1, '10.0.0.0/8 = 1/m', is_default=True)})
    g = chain(limits, Authenticator(), is_internal=True)
    for _ in range(3):
        assert g.check(Caller('192.0.2.1', basic(), ())).security.username == 'joe'


def test_the_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy():
    from zato.server.client_address import parse_networks
    proxies = parse_networks('127.0.0.1')
    headers = {'x-forwarded-for': '203.0.113.9'}
    assert Caller('127.0.0.1', headers, proxies).address == '203.0.113.9'
    assert Caller('192.0.2.1', headers, proxies).address == '192.0.2.1'
    assert Caller('127.0.0.1', headers, ()).address == '127.0.0.1'
