"""Outgoing Telegram connections, the connector and its client, against a loopback Bot API
(fakes.py): getMe, sendMessage and getUpdates through `invoke`, Telegram's errors mapped, a refused
token, Telegram down at start and back, the connection dying mid-call, and configs refused at save."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.im.fakes import FakeTelegram
from tests.integration.im.helpers import free_port, wait
from zato.connectors import registry
from zato.connectors.base import (
    ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, FieldError, validate)
from zato.connectors.telegram import TELEGRAM_FIELDS, TelegramClient, TelegramConnector, TelegramError


def connector(address: str, token: str, name: str = 'bot', **extra: Any) -> TelegramConnector:
    data = {'address': address, 'token': token, 'connect_timeout': 1.0, 'invoke_timeout': 1.0, **extra}
    config, secret = validate(TELEGRAM_FIELDS, data)
    c = TelegramConnector(name, config, secret or '')
    c.retry_min = c.retry_max = 0.1  # type: ignore[misc]  # quick retries, for the tests that wait for them
    return c


@pytest.fixture
def started(telegram: FakeTelegram) -> Iterator[TelegramConnector]:
    c = connector(telegram.address, telegram.token)
    c.start()
    assert c.wait_attempted(5), c.last_error
    yield c
    c.stop()


def test_the_kind_is_registered_and_its_client_knows_the_bot(started, telegram):
    assert registry.get('telegram') is TelegramConnector
    client = started.conn.client
    assert isinstance(client, TelegramClient)
    assert client.me['username'] == 'zato_test_bot'
    before = len(telegram.calls)
    assert started.ping() >= 0
    assert telegram.methods()[before:] == ['getMe']


def test_invoke_sends_json_parameters_and_returns_the_result(started, telegram):
    result = started.conn.client.invoke('sendMessage', {'chat_id': 1001, 'text': 'Hello from Zato'})
    assert result['message_id'] >= 1 and result['chat'] == {'id': 1001, 'type': 'private'}
    assert telegram.calls[-1] == ('sendMessage', {'chat_id': 1001, 'text': 'Hello from Zato'})
    assert telegram.messages[-1]['text'] == 'Hello from Zato'


def test_updates_are_read_and_confirmed_by_offset(started, telegram):
    client = started.conn.client
    first = telegram.add_update(1001, 'one')
    telegram.add_update(-2002, 'two')
    updates = client.invoke('getUpdates', {'timeout': 0})
    assert [u['message']['text'] for u in updates] == ['one', 'two'] and updates[0]['update_id'] == first
    assert client.invoke('getUpdates', {'offset': updates[-1]['update_id'] + 1}) == []


def test_a_bad_request_is_a_telegram_error_with_its_code_and_description(started):
    with pytest.raises(TelegramError) as info:
        started.conn.client.invoke('sendMessage', {'chat_id': 42, 'text': 'x'})
    e = info.value
    assert isinstance(e, ConnectorError) and e.name == 'bot' and e.kind == 'telegram'
    assert e.error_code == 400 and e.description == 'Bad Request: chat not found' and e.retry_after is None
    assert str(e) == 'Outgoing telegram connection `bot`: `sendMessage` failed: 400 Bad Request: chat not found'

    with pytest.raises(TelegramError, match='404 Not Found'):
        started.conn.client.invoke('noSuchMethod')
    with pytest.raises(ValueError, match='not a Bot API method name'):
        started.conn.client.invoke('../getMe')


def test_a_wrong_token_is_an_auth_error_and_never_shown(telegram):
    c = connector(telegram.address, '999:wrong-secret-token')
    c.start()
    try:
        assert c.wait_attempted(5) is False
        assert c.last_error == f'ConnectorAuthError: http://127.0.0.1:{telegram.port}: `getMe` failed: 401 Unauthorized'
        with pytest.raises(ConnectorAuthError, match='401 Unauthorized'):
            c.ping()
    finally:
        c.stop()


def test_a_token_revoked_later_is_an_auth_error_in_calls_and_ping(started, telegram):
    telegram.token = '123456:revoked'
    try:
        with pytest.raises(ConnectorAuthError, match='401 Unauthorized'):
            started.conn.client.invoke('sendMessage', {'chat_id': 1001, 'text': 'x'})
        with pytest.raises(ConnectorAuthError):
            started.ping()
    finally:
        telegram.token = '123456:zato-test-token'


def test_telegram_down_at_start_then_back_builds_the_client_in_the_background():
    fake = FakeTelegram()
    port = free_port()
    c = connector(f'http://127.0.0.1:{port}/bot{{token}}/{{method}}', fake.token)
    try:
        c.start()
        assert c.wait_attempted(5) is False
        assert 'Connection refused' in c.last_error and fake.token not in c.last_error
        with pytest.raises(ConnectorUnavailable, match='not connected yet.*Connection refused'):
            c.ping()
        fake.start(port)
        wait(lambda: c.is_built)
        assert c.conn.client.me['is_bot'] is True

        fake.stop()
        with pytest.raises(ConnectorUnavailable, match='Connection refused') as info:
            c.conn.client.invoke('sendMessage', {'chat_id': 1001, 'text': 'lost'})
        assert fake.token not in str(info.value)
        fake.start(port)
        assert c.conn.client.invoke('sendMessage', {'chat_id': 1001, 'text': 'back'})['text'] == 'back'
    finally:
        c.stop()
        fake.stop()


def test_the_connection_dying_mid_call_is_unavailable_sent_once_and_the_next_call_works(started, telegram):
    telegram.fault = 'drop'
    before = telegram.received
    with pytest.raises(ConnectorUnavailable, match='RemoteDisconnected') as info:
        started.conn.client.invoke('sendMessage', {'chat_id': 1001, 'text': 'once'})
    assert telegram.received == before + 1 and telegram.token not in str(info.value)
    telegram.fault = None
    assert started.conn.client.invoke('sendMessage', {'chat_id': 1001, 'text': 'next'})['text'] == 'next'


def test_a_slow_telegram_is_a_timeout(started, telegram):
    telegram.fault, telegram.delay = 'slow', 1.5
    with pytest.raises(ConnectorTimeout, match='within 1.0s/1.0s'):
        started.conn.client.invoke('getMe')


def test_an_answer_that_is_not_the_bot_api_is_unavailable(started, telegram):
    telegram.fault = 'bad-gateway'
    with pytest.raises(ConnectorUnavailable, match='HTTP 502 to `getMe` is not a Bot API response'):
        started.conn.client.invoke('getMe')


@pytest.mark.parametrize(('data', 'field', 'message'), [
    ({'address': 'https://api.telegram.org/bot{token}'}, 'address', r'\{method\}'),
    ({'address': 'https://api.telegram.org/bot{token}/{method}/{chat}'}, 'address', 'unknown placeholder'),
    ({'address': 'https://api.telegram.org/bot{token/{method}'}, 'address', 'not a valid template'),
    ({'address': 'api.telegram.org/bot{token}/{method}'}, 'address', 'http'),
    ({'address': 'https://api.telegram.org:0x50/bot{token}/{method}'}, 'address', 'not a valid URL'),
    ({'connect_timeout': -1}, 'connect_timeout', 'above 0'),
    ({'invoke_timeout': True}, 'invoke_timeout', 'number'),
    ({'http_proxy': 'socks'}, 'http_proxy', 'http'),
    ({'chat_id': 1}, 'chat_id', 'not a field'),
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(data, field, message):
    with pytest.raises(FieldError, match=message) as info:
        validate(TELEGRAM_FIELDS, data)
    assert info.value.field == field


def test_defaults_are_3_1s():
    config, secret = validate(TELEGRAM_FIELDS, {'token': '1:a'})
    assert config == {'address': 'https://api.telegram.org/bot{token}/{method}', 'connect_timeout': 5.0,
                      'invoke_timeout': 10.0, 'http_proxy': '', 'https_proxy': ''}
    assert secret == '1:a'
    c = TelegramConnector('p', {**config, 'https_proxy': 'http://proxy:3128'}, secret)
    assert c.host == 'https://api.telegram.org' and c.proxies == {'https': 'http://proxy:3128'}
