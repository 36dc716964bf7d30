"""The guards of a channel whose security definition is linked to an SSO user: built with the step
that acts as the user (the SSO user's level between the channel's and the service's), never fused;
and a channel without a linked definition keeps exactly the chain it had."""

from __future__ import annotations

import base64
from types import SimpleNamespace

from zato.config.channel import ChannelInfo, SSOUserInfo
from zato.config.security import SecurityConfig
from zato.security.authenticate import Authenticator
from zato.security.passwords import hash_password
from zato.server import guards
from zato.server.channels import ChannelConfig
from zato.server.guards import ActingGuards, Caller
from zato.server.limits import DefRow, RateLimits

PASSWORD = 'a password of some length'
INFO = ChannelInfo(3, 'ch', 'http-soap')
USER = SSOUserInfo('zusr1', 'alice', 'CRM', 11)
HEADERS = {'authorization': 'Basic ' + base64.b64encode(f'joe:{PASSWORD}'.encode()).decode()}


def build(acting=None):
    rows = {def_id: DefRow(SimpleNamespace(id=def_id, name=f'd{def_id}', rules='* = 5/m', mode='approximate',
                                           parent_id=None, is_active=True, is_default=False, version=1))
            for def_id in (1, 2)}
    sec = SecurityConfig(id=7, name='api', kind='basic_auth', username='joe', password_hash=hash_password(PASSWORD))
    limits = RateLimits()
    limits.rebuild(rows, {3: ChannelConfig(id=3, name='ch', url_path='/ch', service_name='svc', rate_limit_id=1)},
                   {7: sec}, {'svc': 2})
    built = guards.build(info=INFO, limits=limits, authenticator=Authenticator(), security={7: sec}, channel_id=3,
                         security_id=7, service='svc', acting=acting)
    return built, limits


def test_a_linked_channel_acts_as_the_user_with_their_level_between_the_channels_and_the_services():
    seen = {}

    def acting(before, after):
        seen['levels'] = before, after

        def step(caller: Caller) -> None:
            caller.sso_user = USER
        return step

    built, limits = build(acting)
    assert type(built) is ActingGuards
    assert built.run == built._run_steps  # never fused: every request takes the step
    assert seen['levels'] == ([limits.by_channel[3]], [limits.by_service['svc']])
    info = built.run('10.0.0.1', HEADERS, ())
    assert info.sso_user is USER and info.security.username == 'joe'


def test_a_channel_without_a_linked_definition_keeps_its_fused_chain():
    built, _ = build()
    assert type(built) is guards.Guards and built.run != built._run_steps
    info = built.run('10.0.0.1', HEADERS, ())
    assert info.sso_user is None
