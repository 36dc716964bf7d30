"""Outgoing WebSocket connections: Zato to Zato both ways (invoke, send, broadcasts arriving at an
on-message service), a generic remote end (the `websockets` package's server), the admin API."""

from __future__ import annotations

import json
import os
import threading

import pytest
import requests
from websockets.sync.server import serve

from zato.admin_client import AdminCallError

SERVICES = '''
import json
from zato.connectors.wsx import WSXInvokeError
from zato.server.service import Service

RECORD = %r

class Target(Service):
    name = 'wsxo.target'

    def handle(self):
        if self.request.payload == 'ask me back':
            # A request to the client that sent this message, answered by its on-message service
            answer = self.environ['web_socket'].invoke_client(self.cid, {'question': 'who are you?'}, timeout=5)
            self.response.payload = {'client said': answer}
            return
        self.response.payload = {'echo': self.request.payload, 'user': self.channel.security.username
                                 if self.channel.security else None}

class Upper(Service):
    name = 'wsxo.upper'

    def handle(self):
        self.response.payload = {'upper': str(self.request.payload).upper()}

class Collect(Service):
    name = 'wsxo.collect'

    def handle(self):
        with open(RECORD, 'a') as f:
            f.write(json.dumps(self.request.payload) + '\\n')
        if self.request.payload['type'] == 'message':
            self.response.payload = {'i am': self.request.payload['conn']}

class Call(Service):
    name = 'wsxo.call'

    def handle(self):
        req = self.request.payload
        conn = self.out.wsx[req['conn']].conn
        if req.get('send'):
            conn.send(req['data'])
            self.response.payload = {'sent': True}
        else:
            try:
                self.response.payload = {'reply': conn.invoke(req['data'], timeout=5)}
            except WSXInvokeError as e:
                self.response.payload = {'status': e.status, 'error': e.data}

class Broadcast(Service):
    name = 'wsxo.broadcast'

    def handle(self):
        self.wsx.channel['wsxo target'].broadcast(self.request.payload)
'''


@pytest.fixture(scope='module')
def setup(env):
    record = os.path.join(env.path, 'work', 'wsxo-record.jsonl')
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'wsxo_services.py', 'source': SERVICES % record})
    env.wait_for(lambda: 'wsxo.broadcast' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.admin.call('POST', '/zato/admin/security', {'name': 'wsxo.sec', 'kind': 'basic_auth', 'username': 'wsxo-user',
                                                    'password': 'wsxo-Secret-123'})
    env.admin.call('POST', '/zato/admin/channels/wsx', {
        'name': 'wsxo target', 'url_path': '/wsxo/target', 'service': 'wsxo.target', 'data_format': 'json',
        'security': 'wsxo.sec', 'services_allowed': ['wsxo.upper']})
    env.channel('wsxo-call', '/wsxo/call', 'wsxo.call')
    env.channel('wsxo-broadcast', '/wsxo/broadcast', 'wsxo.broadcast')
    return {'record': record}


def call(env, **req):
    r = requests.post(env.url + '/wsxo/call', json=req, headers={'Connection': 'close'}, timeout=15)
    return r.status_code, r.json()


def records(path: str) -> list:
    try:
        with open(path, encoding='utf-8') as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


def test_zato_talks_to_zato_over_websockets_both_ways(env, setup):
    created = env.admin.call('POST', '/zato/admin/outconns/wsx', {
        'name': 'to zato', 'address': f'ws://127.0.0.1:{env.base_port}/wsxo/target', 'is_zato': True,
        'username': 'wsxo-user', 'secret': 'wsxo-Secret-123', 'on_message_service': 'wsxo.collect',
        'on_connect_service': 'wsxo.collect'})
    assert 'secret' not in created and created['has_secret'] is True

    # Each worker opens its own connection; both show up as clients of the target channel, authenticated
    def connected():
        listed = env.admin.call('GET', '/zato/admin/channels/wsx/{}/clients'.format(
            next(c['id'] for c in env.admin.call('GET', '/zato/admin/channels/wsx') if c['name'] == 'wsxo target')))
        return len(listed) == 2 and all(c['authenticated_as'] == 'wsxo-user' for c in listed)
    env.wait_for(connected, timeout=10)

    # Request/response: the remote channel's service, and a service the channel allows by name
    assert call(env, conn='to zato', data={'a': 1}) == (200, {'reply': {'echo': {'a': 1}, 'user': 'wsxo-user'}})
    assert call(env, conn='to zato', data={'service': 'wsxo.upper', 'request': 'abc'}) == \
        (200, {'reply': {'upper': 'ABC'}})

    # A broadcast on the channel reaches both outgoing connections, whose on-message service records it
    requests.post(env.url + '/wsxo/broadcast', json={'news': 42}, timeout=10)
    env.wait_for(lambda: sum(1 for r in records(setup['record']) if r.get('data') == {'news': 42}) == 2, timeout=5)
    message = next(r for r in records(setup['record']) if r.get('data') == {'news': 42})
    assert message == {'type': 'message', 'conn': 'to zato', 'data': {'news': 42}}
    assert any(r == {'type': 'connect', 'conn': 'to zato'} for r in records(setup['record']))

    # The remote service asks its client back (invoke_client); our on-message service's answer returns
    assert call(env, conn='to zato', data='ask me back') == (200, {'reply': {'client said': {'i am': 'to zato'}}})

    # Ping through the admin API reports the round trip
    ping = env.admin.call('POST', f'/zato/admin/outconns/wsx/{created["id"]}/ping')
    assert ping['ok'] is True and 0 < ping['time'] < 1


def test_a_service_not_allowed_by_the_remote_channel_is_refused_with_403(env, setup):
    env.admin.call('POST', '/zato/admin/outconns/wsx', {
        'name': 'to zato 2', 'address': f'ws://127.0.0.1:{env.base_port}/wsxo/target', 'is_zato': True,
        'username': 'wsxo-user', 'secret': 'wsxo-Secret-123'})
    env.wait_for(lambda: call(env, conn='to zato 2', data=1)[0] == 200, timeout=10)
    assert call(env, conn='to zato 2', data={'service': 'zato.ping', 'request': None}) == \
        (200, {'status': 403, 'error': 'Service `zato.ping` is not allowed on this channel'})


def test_wrong_credentials_never_connect_and_ping_says_why(env, setup):
    created = env.admin.call('POST', '/zato/admin/outconns/wsx', {
        'name': 'bad creds', 'address': f'ws://127.0.0.1:{env.base_port}/wsxo/target', 'is_zato': True,
        'username': 'wsxo-user', 'secret': 'wrong', 'connect_timeout': 1})
    ping = env.admin.call('POST', f'/zato/admin/outconns/wsx/{created["id"]}/ping')
    assert ping['ok'] is False and ping['error']


@pytest.fixture
def generic_remote():
    seen = []

    def handler(conn):
        for message in conn:
            seen.append(message)
            conn.send(f'echo:{message}' if isinstance(message, str) else message)

    server = serve(handler, '127.0.0.1', 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.socket.getsockname()[1], seen
    server.shutdown()
    thread.join(5)


def test_a_generic_remote_end_is_invoked_and_sent_to_and_an_edit_takes_effect(env, setup, generic_remote):
    port, seen = generic_remote
    created = env.admin.call('POST', '/zato/admin/outconns/wsx', {
        'name': 'generic', 'address': f'ws://127.0.0.1:{port}/', 'ping_interval': 5})
    env.wait_for(lambda: call(env, conn='generic', data='hi')[0] == 200, timeout=10)
    assert call(env, conn='generic', data='hello') == (200, {'reply': 'echo:hello'})
    assert call(env, conn='generic', data={'k': 'v'}, send=True) == (200, {'sent': True})
    env.wait_for(lambda: '{"k":"v"}' in seen)

    # Deactivated: a clear error naming the connection; back on: served again
    env.admin.call('PUT', f'/zato/admin/outconns/wsx/{created["id"]}', {'is_active': False})
    env.wait_for(lambda: call(env, conn='generic', data='x')[0] == 503, timeout=5)  # inactive: a remote's failure
    env.admin.call('PUT', f'/zato/admin/outconns/wsx/{created["id"]}', {'is_active': True})
    env.wait_for(lambda: call(env, conn='generic', data='again') == (200, {'reply': 'echo:again'}), timeout=10)


def test_bad_outgoing_connection_input_is_refused_naming_the_field(env, setup):
    for body, field in (({'name': 'x', 'address': 'http://nope'}, 'address'),
                        ({'name': 'x', 'address': 'ws://h/', 'colour': 'red'}, 'colour'),
                        ({'name': 'x', 'address': 'ws://h/', 'ping_interval': 0}, 'ping_interval'),
                        ({'name': 'x', 'address': 'ws://h/', 'is_zato': 'yes'}, 'is_zato'),
                        ({'name': 'x'}, 'address')):
        with pytest.raises(AdminCallError) as info:
            env.admin.call('POST', '/zato/admin/outconns/wsx', body)
        assert info.value.status == 400 and f'`{field}`' in str(info.value)
    with pytest.raises(AdminCallError) as info:
        env.admin.call('GET', '/zato/admin/outconns/nosuchkind')
    assert info.value.status == 404
    listed = env.admin.call('GET', '/zato/admin/outconns/wsx')
    assert listed and all('secret' not in row for row in listed)
