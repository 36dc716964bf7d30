"""Outgoing Slack connections, the connector itself, driven through the real slack_sdk `WebClient`
against a loopback Slack Web API (fakes.py): posting and paging, a refused token, Slack down at start
and back, the connection dying mid-call, no retries of a call, and configs refused at save."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.integration.im.fakes import FakeSlack
from tests.integration.im.helpers import free_port, wait
from zato.connectors import registry
from zato.connectors.base import (
    ConnectorAuthError, ConnectorTimeout, ConnectorUnavailable, FieldError, validate)
from zato.connectors.slack import SLACK_FIELDS, SlackConnector


def connector(address: str, token: str, name: str = 'team', **extra: Any) -> SlackConnector:
    config, secret = validate(SLACK_FIELDS, {'address': address, 'token': token, 'timeout': 1.0, **extra})
    c = SlackConnector(name, config, secret or '')
    c.retry_min = c.retry_max = 0.1  # type: ignore[misc]  # quick retries, for the tests that wait for them
    return c


@pytest.fixture
def started(slack: FakeSlack) -> Iterator[SlackConnector]:
    c = connector(slack.base_url, slack.token)
    c.start()
    assert c.wait_attempted(5), c.last_error
    yield c
    c.stop()


def test_the_kind_is_registered_and_its_client_is_a_web_client_that_knows_the_bot(started):
    assert registry.get('slack') is SlackConnector
    assert isinstance(started.conn.client, WebClient)
    assert started.identity['user'] == 'zato-bot' and started.identity['team_id'] == 'T0001'
    assert started.ping() >= 0


def test_ping_is_api_test_then_auth_test(started, slack):
    before = len(slack.calls)
    started.ping()
    assert slack.methods()[before:] == ['api.test', 'auth.test']


def test_a_message_is_posted_with_the_bearer_token_and_channels_are_paged(started, slack):
    client = started.conn.client
    response = client.chat_postMessage(channel='#zato', text='Hello from Zato')
    assert response['ok'] is True and response['channel'] == 'C0003'
    assert slack.messages[-1]['text'] == 'Hello from Zato'
    assert slack.calls[-1] == ('chat.postMessage', {'channel': '#zato', 'text': 'Hello from Zato'})

    names = [c['name'] for page in client.conversations_list(limit=2) for c in page['channels']]
    assert names == ['general', 'random', 'zato']
    assert [p.get('cursor') for m, p in slack.calls[-2:] if m == 'conversations.list'] == [None, '2']


def test_a_json_body_is_understood_too(started, slack):
    response = started.conn.client.api_call('chat.postMessage', json={'channel': 'C0001', 'text': 'as JSON'})
    assert response['ok'] is True and slack.messages[-1]['text'] == 'as JSON'


def test_an_error_about_the_call_is_slacks_own_and_passes_mapped_errors_untouched(started):
    with pytest.raises(SlackApiError) as info, started.mapped_errors():
        started.conn.client.chat_postMessage(channel='#no-such-channel', text='x')
    assert info.value.response['error'] == 'channel_not_found'


def test_a_wrong_token_is_an_auth_error_that_ping_and_last_error_explain(slack):
    c = connector(slack.base_url, 'xoxb-wrong')
    c.start()
    try:
        assert c.wait_attempted(5) is False
        assert c.last_error == f'ConnectorAuthError: {slack.base_url}: SlackApiError: invalid_auth'
        with pytest.raises(ConnectorAuthError, match='invalid_auth'):
            c.ping()
        assert 'xoxb-wrong' not in c.last_error
    finally:
        c.stop()


def test_a_token_revoked_later_is_an_auth_error_in_calls_and_ping(started, slack):
    slack.token = 'xoxb-rotated'
    try:
        with pytest.raises(ConnectorAuthError, match='invalid_auth') as info, started.mapped_errors():
            started.conn.client.auth_test()
        assert info.value.name == 'team' and info.value.kind == 'slack'
        with pytest.raises(ConnectorAuthError):
            started.ping()
    finally:
        slack.token = 'xoxb-zato-test'


def test_no_token_at_all_is_not_authed(slack):
    c = connector(slack.base_url, '')
    c.start()
    try:
        assert c.wait_attempted(5) is False and 'not_authed' in c.last_error
    finally:
        c.stop()


def test_slack_down_at_start_then_back_builds_the_client_in_the_background():
    fake = FakeSlack()
    port = free_port()
    c = connector(f'http://127.0.0.1:{port}/api/', fake.token)
    try:
        c.start()  # returns at once, nothing listens yet
        assert c.wait_attempted(5) is False
        assert 'Connection refused' in c.last_error
        with pytest.raises(ConnectorUnavailable, match='not connected yet.*Connection refused'):
            c.ping()
        with pytest.raises(ConnectorUnavailable):
            c.conn.client  # noqa: B018
        fake.start(port)
        wait(lambda: c.is_built)
        assert c.ping() >= 0

        # Down again: the next call is a mapped error; back on the same port, the next call works
        fake.stop()
        with pytest.raises(ConnectorUnavailable, match='Connection refused'), c.mapped_errors():
            c.conn.client.chat_postMessage(channel='#general', text='lost')
        with pytest.raises(ConnectorUnavailable):
            c.ping()
        fake.start(port)
        assert c.conn.client.chat_postMessage(channel='#general', text='back')['ok'] is True
    finally:
        c.stop()
        fake.stop()


def test_the_connection_dying_mid_call_is_unavailable_and_the_call_is_not_sent_twice(started, slack):
    slack.fault = 'drop'
    before = slack.received
    with pytest.raises(ConnectorUnavailable, match='RemoteDisconnected') as info, started.mapped_errors():
        started.conn.client.chat_postMessage(channel='#general', text='once')
    assert '`team`' in str(info.value)
    assert slack.received == before + 1  # sent once: slack_sdk's own retry is off
    slack.fault = None
    assert started.conn.client.chat_postMessage(channel='#general', text='next')['ok'] is True


def test_a_slow_slack_is_a_timeout(started, slack):
    slack.fault, slack.delay = 'slow', 1.5
    with pytest.raises(ConnectorTimeout, match='within 1.0s'), started.mapped_errors():
        started.conn.client.api_test()
    with pytest.raises(ConnectorTimeout):
        started.ping()


def test_a_bad_gateway_in_front_of_slack_is_unavailable(started, slack):
    slack.fault = 'bad-gateway'
    with pytest.raises(ConnectorUnavailable, match='HTTP 502'), started.mapped_errors():
        started.conn.client.chat_postMessage(channel='#general', text='x')


def test_a_stopped_connector_says_so():
    c = connector('http://127.0.0.1:1/api/', 'x')
    c.start()
    c.stop()
    with pytest.raises(ConnectorUnavailable, match='stopped'):
        c.conn.client  # noqa: B018


@pytest.mark.parametrize(('data', 'field', 'message'), [
    ({'address': 'slack.com/api/'}, 'address', 'http'),
    ({'address': 'ftp://slack.com/api/'}, 'address', 'http'),
    ({'address': 'https://slack.com:99999/api/'}, 'address', 'Port out of range'),
    ({'address': 'https://u:p@slack.com/api/'}, 'address', 'token'),
    ({'timeout': 0}, 'timeout', 'above 0'),
    ({'timeout': '5'}, 'timeout', 'number'),
    ({'https_proxy': 'proxy:3128'}, 'https_proxy', 'http'),
    ({'channel': '#general'}, 'channel', 'not a field'),
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(data, field, message):
    with pytest.raises(FieldError, match=message) as info:
        validate(SLACK_FIELDS, data)
    assert info.value.field == field


def test_defaults_point_at_slack_and_the_token_is_the_secret():
    config, secret = validate(SLACK_FIELDS, {'token': 'xoxb-1', 'https_proxy': 'http://proxy:3128'})
    assert config == {'address': 'https://slack.com/api/', 'timeout': 10.0, 'http_proxy': '',
                      'https_proxy': 'http://proxy:3128'}
    assert secret == 'xoxb-1'
    assert SlackConnector('p', config, secret).proxy == 'http://proxy:3128'
