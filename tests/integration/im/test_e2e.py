"""Outgoing Slack and Telegram connections in a running Zato (two workers) against the loopback
fakes: the examples of docs/outgoing-slack.md and docs/outgoing-telegram.md as written, reached
through ``self.im``; ping, a token changed through the admin API, inactive, edits reaching every
worker, the remote end down and back, delete, and definitions refused at save."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.e2e.harness import docs_example
from tests.integration.im.helpers import free_port
from zato.admin_client import AdminCallError


SERVICES = '''
import os
from zato.connectors.base import ConnectorError
from zato.server.service import Service

class Call(Service):
    """Posts or sends one message through a Slack or Telegram connection, errors as data."""
    name = 'im.call'

    def handle(self):
        req = self.request.payload
        try:
            conn = getattr(self.im, req['kind'])[req['conn']].conn
            if req['kind'] == 'slack':
                with conn.mapped_errors():
                    out = conn.client.chat_postMessage(channel='#zato', text=req['text'])['ts']
            else:
                out = conn.client.invoke('sendMessage', {'chat_id': 1001, 'text': req['text']})['message_id']
        except ConnectorError as e:
            self.response.payload = {'error': str(e), 'type': type(e).__name__}
            return
        except KeyError as e:
            self.response.payload = {'error': e.args[0], 'type': 'KeyError'}
            return
        self.response.payload = {'out': out, 'pid': os.getpid()}
'''


@pytest.fixture(scope='module')
def deployed(env) -> dict[str, dict[str, Any]]:
    """The docs pages' examples, deployed as written with their channels, and im.call."""
    specs = {}
    for kind in ('slack', 'telegram'):
        spec, file_name, code = docs_example(f'outgoing-{kind}.md')
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': code})
        for channel in spec['channels']:
            env.channel(channel['name'], channel['url_path'], channel['service'])
        specs[kind] = spec
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'im_services.py', 'source': SERVICES})
    env.channel('im-call', '/im/call', 'im.call')
    return specs


def post(env, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(env.url + path, json=body, headers={'Connection': 'close'}, timeout=15)


def call(env, **req: Any) -> dict[str, Any]:
    r = post(env, '/im/call', req)
    assert r.status_code == 200, r.text
    return r.json()


def create(env, kind: str, name: str, address: str, token: str, **config: Any) -> dict[str, Any]:
    return env.admin.call('POST', f'/zato/admin/outconns/{kind}', {'name': name, 'address': address, 'token': token,
                                                                   **config})


def ping(env, kind: str, conn_id: int) -> dict[str, Any]:
    return env.admin.call('POST', f'/zato/admin/outconns/{kind}/{conn_id}/ping')


def test_the_slack_docs_example_posts_through_self_im_on_every_worker(env, deployed, slack):
    body = dict(deployed['slack']['admin_after'][0]['body'], address=slack.base_url, token=slack.token)
    created = env.admin.call('POST', '/zato/admin/outconns/slack', body)
    assert created['has_secret'] is True and 'token' not in created and 'secret' not in created
    path = deployed['slack']['channels'][0]['url_path']

    env.wait_for(lambda: post(env, path, {'text': 'probe'}).status_code == 200, timeout=10)
    before = len(slack.messages)
    for i in range(6):
        r = post(env, path, {'channel': '#zato', 'text': f'docs {i}'})
        assert r.status_code == 200, r.text
        assert r.json()['channel'] == 'C0003' and r.json()['ts']
    assert [m['text'] for m in slack.messages[before:]] == [f'docs {i}' for i in range(6)]
    assert ping(env, 'slack', created['id'])['ok'] is True


def test_the_telegram_docs_example_sends_and_reports_telegrams_own_errors(env, deployed, telegram):
    body = dict(deployed['telegram']['admin_after'][0]['body'], address=telegram.address, token=telegram.token)
    created = env.admin.call('POST', '/zato/admin/outconns/telegram', body)
    path = deployed['telegram']['channels'][0]['url_path']

    env.wait_for(lambda: 'message_id' in post(env, path, {'chat_id': 1001, 'text': 'probe'}).json(), timeout=10)
    for i in range(4):
        r = post(env, path, {'chat_id': 1001, 'text': f'docs {i}'})
        assert r.status_code == 200 and r.json()['message_id'] >= 1, r.text
    assert [m['text'] for m in telegram.messages[-4:]] == [f'docs {i}' for i in range(4)]
    assert post(env, path, {'chat_id': 7, 'text': 'x'}).json() == {'error': 'Bad Request: chat not found', 'code': 400}
    assert ping(env, 'telegram', created['id'])['ok'] is True


@pytest.mark.parametrize('kind', ['slack', 'telegram'])
def test_a_wrong_token_is_an_auth_error_that_ping_explains_and_no_log_shows(env, deployed, slack, telegram, kind):
    fake = slack if kind == 'slack' else telegram
    address = slack.base_url if kind == 'slack' else telegram.address
    name = f'{kind} auth'
    created = create(env, kind, name, address, fake.token)
    env.wait_for(lambda: 'out' in call(env, kind=kind, conn=name, text='ok'), timeout=10)

    wrong = f'{kind}-Wrong-Token-42'
    env.admin.call('POST', f'/zato/admin/outconns/{kind}/{created["id"]}/change-password', {'token': wrong})
    why = 'invalid_auth' if kind == 'slack' else '401 Unauthorized'

    def refused() -> bool:  # on whichever worker answers: the client is not built, and the reason is the token
        out = call(env, kind=kind, conn=name, text='x')
        return out.get('type') == 'ConnectorAuthError' and f'`{name}`' in out['error'] and why in out['error']
    env.wait_for(lambda: all(refused() for _ in range(4)), timeout=10)
    result = ping(env, kind, created['id'])
    assert result['ok'] is False and 'ConnectorAuthError' in result['error'], result
    listed = env.admin.call('GET', f'/zato/admin/outconns/{kind}')
    assert wrong not in json.dumps(listed) and fake.token not in json.dumps(listed)
    assert wrong not in env.log() and fake.token not in env.log()

    # `secret` is the generic name of the same field
    env.admin.call('POST', f'/zato/admin/outconns/{kind}/{created["id"]}/change-password', {'secret': fake.token})
    env.wait_for(lambda: 'out' in call(env, kind=kind, conn=name, text='back'), timeout=10)


@pytest.mark.parametrize('kind', ['slack', 'telegram'])
def test_inactive_edited_to_a_remote_that_is_down_and_back_and_deleted(env, deployed, kind):
    from tests.integration.im.fakes import FakeSlack, FakeTelegram

    fake = FakeSlack() if kind == 'slack' else FakeTelegram()
    port = free_port()
    address = (f'http://127.0.0.1:{port}/api/' if kind == 'slack'
               else f'http://127.0.0.1:{port}/bot{{token}}/{{method}}')
    name = f'{kind} edit'
    try:
        # Down at start: created anyway, ping and calls say why
        created = create(env, kind, name, address, fake.token)
        result = ping(env, kind, created['id'])
        assert result['ok'] is False and 'Connection refused' in result['error'], result
        assert call(env, kind=kind, conn=name, text='x')['type'] == 'ConnectorUnavailable'

        # Back: built in the background on every worker
        fake.start(port)
        env.wait_for(lambda: all('out' in call(env, kind=kind, conn=name, text='up') for _ in range(4)), timeout=10)

        env.admin.call('PUT', f'/zato/admin/outconns/{kind}/{created["id"]}', {'is_active': False})
        env.wait_for(lambda: call(env, kind=kind, conn=name, text='x').get('type') == 'ConnectorInactive', timeout=2)
        assert call(env, kind=kind, conn=name, text='x')['error'] == f'Outgoing {kind} connection `{name}` is not active'

        env.admin.call('PUT', f'/zato/admin/outconns/{kind}/{created["id"]}', {'is_active': True})
        env.wait_for(lambda: all('out' in call(env, kind=kind, conn=name, text='again') for _ in range(4)),
                     timeout=10)

        # The remote end dies: the next calls are mapped errors; it comes back on the same port, they work
        fake.stop()
        out = call(env, kind=kind, conn=name, text='lost')
        assert out['type'] == 'ConnectorUnavailable' and 'refused' in out['error'], out
        fake.start(port)
        assert 'out' in call(env, kind=kind, conn=name, text='found')

        env.admin.call('DELETE', f'/zato/admin/outconns/{kind}/{created["id"]}')
        env.wait_for(lambda: call(env, kind=kind, conn=name, text='x').get('type') == 'KeyError', timeout=2)
    finally:
        fake.stop()


@pytest.mark.parametrize(('kind', 'body', 'field'), [
    ('slack', {'address': 'slack.com/api'}, 'address'),
    ('slack', {'timeout': 0}, 'timeout'),
    ('slack', {'channel': '#general'}, 'channel'),
    ('telegram', {'address': 'https://api.telegram.org/bot{token}'}, 'address'),
    ('telegram', {'connect_timeout': 'soon'}, 'connect_timeout'),
    ('telegram', {'https_proxy': 'proxy:3128'}, 'https_proxy'),
])
def test_a_definition_that_cannot_be_valid_is_refused_at_save_naming_the_field(env, kind, body, field):
    with pytest.raises(AdminCallError) as info:
        env.admin.call('POST', f'/zato/admin/outconns/{kind}', {'name': f'{kind} bad', **body})
    assert f'`{field}`' in str(info.value)
    names = [c['name'] for c in env.admin.call('GET', f'/zato/admin/outconns/{kind}')]
    assert f'{kind} bad' not in names
