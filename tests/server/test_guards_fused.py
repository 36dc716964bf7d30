"""`Guards.run`, the fused chain, decides exactly what the chain's steps decide: both are run here on
the same generated requests, each with its own counters on one injected clock, and every answer
(the caller's ChannelInfo, or the refusal's class, status and headers) must be the same."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zato.config.channel import ChannelInfo
from zato.config.security import SecurityConfig
from zato.errors import ClientError
from zato.security.authenticate import Authenticator
from zato.security.passwords import hash_password
from zato.security.ratelimit import Counters
from zato.server import guards
from zato.server.channels import ChannelConfig
from zato.server.client_address import parse_networks
from zato.server.guards import Caller, Guards
from zato.server.limits import DefRow, RateLimits

PASSWORD = 'a password of some length'
KEY = 'an API key of some length'
HASHES = {PASSWORD: hash_password(PASSWORD), KEY: hash_password(KEY)}
INFO = ChannelInfo(3, 'ch', 'http-soap')
PROXIES = tuple(parse_networks('127.0.0.0/8'))

# name: (security kind, {def id: (rules, parent id)}, channel's def, security definition's def, default def)
SHAPES: dict[str, tuple[str, dict[int, tuple[str, int | None]], int | None, int | None, int | None]] = {
    'basic, no limits': ('basic_auth', {}, None, None, None),
    'basic, one level': ('basic_auth', {1: ('* = 4/m', None)}, 1, None, None),
    'apikey, one level': ('apikey', {1: ('* = 4/m', None)}, 1, None, None),
    'basic, per-network and per-address rules': ('basic_auth', {1: ('10.0.0.0/8 = 3/m\n* = 5/m', None)}, 1, None, None),
    'basic, two levels': ('basic_auth', {1: ('* = 6/m', None), 2: ('* = 3/m', None)}, 1, 2, None),
    'basic, a level with a parent': ('basic_auth', {1: ('* = 6/m', 2), 2: ('* = 4/m', None)}, 1, None, None),
    'basic, unlimited': ('basic_auth', {1: ('* = *', None)}, 1, None, None),
    'basic, per-second rule': ('basic_auth', {1: ('* = 2/s', None)}, 1, None, None),
}
# Rules that do not start with `*` are an allow-list as well, checked before authentication: steps
FUSED = set(SHAPES) - {'basic, per-network and per-address rules'}


def build_chain(shape: str, now: list[float]) -> Guards:
    kind, defs, channel_def, sec_def, default_def = SHAPES[shape]
    rows = {def_id: DefRow(SimpleNamespace(id=def_id, name=f'd{def_id}', rules=rules, mode='approximate',
                                           parent_id=parent, is_active=True, is_default=def_id == default_def,
                                           version=1))
            for def_id, (rules, parent) in defs.items()}
    secret = PASSWORD if kind == 'basic_auth' else KEY
    sec = SecurityConfig(id=7, name='api', kind=kind, username='joe' if kind == 'basic_auth' else 'X-API-Key',
                         password_hash=HASHES[secret], rate_limit_id=sec_def)
    limits = RateLimits()
    limits.limiter.counters = Counters(clock=lambda: now[0])
    channel = ChannelConfig(id=3, name='ch', url_path='/ch', service_name='svc', rate_limit_id=channel_def)
    limits.rebuild(rows, {3: channel}, {7: sec}, {})
    return guards.build(info=INFO, limits=limits, authenticator=Authenticator(), security={7: sec}, channel_id=3,
                        security_id=7, service='svc')


def basic(user: str, password: str) -> str:
    return 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()


AUTH_HEADERS = [
    {'authorization': basic('joe', PASSWORD)}, {'authorization': basic('joe', 'wrong')},
    {'authorization': basic('ann', PASSWORD)}, {'authorization': 'Basic !!!'}, {},
    {'x-api-key': KEY}, {'x-api-key': 'wrong'}, {'x-api-key': KEY, 'authorization': basic('joe', PASSWORD)},
]
requests = st.lists(st.tuples(
    st.sampled_from([0, 0, 0, 5, 5, 5, *range(len(AUTH_HEADERS))]),  # mostly good credentials, to reach the limits
    st.sampled_from(['10.0.0.1', '10.0.0.1', '10.0.0.2', '192.0.2.1', '2001:db8::1', '127.0.0.1']),
    st.sampled_from([None, '10.9.9.9', '192.0.2.7, 10.0.0.1', 'garbage']),
    st.booleans(),  # behind the trusted proxies or not
    st.sampled_from([0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 1.1, 20.0]),  # time passing before the request
), min_size=1, max_size=40)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 is not what is compared here and would make every wrong password cost ~50 ms: the
    hashes above are checked by a dictionary (the real verification is tests/security's)."""
    by_hash = {hashed: clear for clear, hashed in HASHES.items()}
    monkeypatch.setattr('zato.security.basic_auth.verify_password',
                        lambda hashed, password: by_hash.get(hashed) == password)


def by_steps(chain: Guards, peer: str, headers: dict[str, str], proxies: tuple[Any, ...]) -> Any:
    return chain.check(Caller(peer, headers, proxies))


def answer(call: Any, *args: Any) -> tuple[Any, ...]:
    try:
        info = call(*args)
    except ClientError as e:
        return type(e).__name__, e.status, e.headers
    return 'ok', repr(info)


@pytest.mark.parametrize('shape', sorted(SHAPES))
def test_the_shapes_are_fused(shape: str) -> None:
    chain = build_chain(shape, [0.0])
    assert (chain.run != chain._run_steps) == (shape in FUSED)


@pytest.mark.parametrize('shape', sorted(SHAPES))
@settings(max_examples=150, deadline=None)
@given(sequence=requests)
def test_the_fused_chain_answers_as_the_steps_do(shape: str, sequence: list[tuple[Any, ...]]) -> None:
    now = [1000.0]
    fused, steps = build_chain(shape, now), build_chain(shape, now)
    for header_index, peer, forwarded, proxied, elapsed in sequence:
        now[0] += elapsed
        headers = dict(AUTH_HEADERS[header_index])
        if forwarded is not None:
            headers['x-forwarded-for'] = forwarded
        proxies = PROXIES if proxied else ()
        got = answer(fused.run, peer, dict(headers), proxies)
        expected = answer(by_steps, steps, peer, dict(headers), proxies)
        assert got == expected, (peer, headers, proxied)


def test_an_allow_list_or_optional_credentials_keep_the_steps() -> None:
    now = [0.0]
    limits = RateLimits()
    limits.limiter.counters = Counters(clock=lambda: now[0])
    sec = SecurityConfig(id=7, name='api', kind='basic_auth', username='joe', password_hash=HASHES[PASSWORD])
    row = DefRow(SimpleNamespace(id=1, name='d1', rules='10.0.0.0/8 = *', mode='approximate', parent_id=None,
                                 is_active=True, is_default=True, version=1))
    channel = ChannelConfig(id=3, name='ch', url_path='/ch', service_name='svc')
    limits.rebuild({1: row}, {3: channel}, {7: sec}, {})
    allow_listed = guards.build(info=INFO, limits=limits, authenticator=Authenticator(), security={7: sec},
                                channel_id=3, security_id=7, service='svc')
    assert allow_listed.run == allow_listed._run_steps
    optional = guards.build(info=INFO, limits=RateLimits(), authenticator=Authenticator(), security={7: sec},
                            channel_id=3, security_id=7, service='svc', credentials_optional=True)
    assert optional.run == optional._run_steps
    jwt = SecurityConfig(id=7, name='api', kind='jwt', username='', password_hash='')
    assert guards.build(info=INFO, limits=RateLimits(), authenticator=Authenticator(), security={7: jwt},
                        channel_id=3, security_id=7, service='svc').run.__name__ == '_run_steps'


def test_a_credential_is_remembered_only_by_its_own_chain() -> None:
    """What the fused chain remembers goes with it: the chain built after a change of password
    verifies the old header value again, and refuses it."""
    now = [0.0]
    old = build_chain('basic, one level', now)
    header = {'authorization': basic('joe', PASSWORD)}
    assert old.run('10.0.0.1', dict(header), ()).security.username == 'joe'
    limits = RateLimits()
    changed = SecurityConfig(id=7, name='api', kind='basic_auth', username='joe', version=2,
                             password_hash=hash_password('the new password'))
    limits.rebuild({}, {3: ChannelConfig(id=3, name='ch', url_path='/ch', service_name='svc')}, {7: changed}, {})
    new = guards.build(info=INFO, limits=limits, authenticator=Authenticator(), security={7: changed},
                       channel_id=3, security_id=7, service='svc')
    assert answer(lambda: new.run('10.0.0.1', dict(header), ()))[:2] == ('Unauthorized', 401)


@pytest.mark.parametrize('shape', sorted(s for s in SHAPES if SHAPES[s][2] is not None and s != 'basic, unlimited'))
def test_a_burst_reaches_the_limit_alike(shape: str) -> None:
    """Ten requests at one moment from one address with good credentials: both refuse from the same
    request on, with the same Retry-After; and then, a minute later, both let the next one in."""
    now = [1000.0]
    fused, steps = build_chain(shape, now), build_chain(shape, now)
    headers = AUTH_HEADERS[0] if SHAPES[shape][0] == 'basic_auth' else AUTH_HEADERS[5]
    answers = []
    for _ in range(10):
        got = answer(lambda: fused.run('10.0.0.1', dict(headers), ()))
        assert got == answer(lambda: steps.check(Caller('10.0.0.1', dict(headers), ())))
        answers.append(got[0])
    assert answers[0] == 'ok' and answers[-1] == 'TooManyRequests'
    now[0] += 61
    assert answer(lambda: fused.run('10.0.0.1', dict(headers), ()))[0] == 'ok'
