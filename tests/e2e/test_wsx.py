"""WebSocket channels as a service sees them: broadcast to every client on every worker, one
client's operations, hooks, a stalled client among a thousand, a client that cannot keep up."""

from __future__ import annotations

import json
import os
import time

import pytest
import requests
from websockets.sync.client import connect

from tests.e2e.wsx_many import Crowd, handshake

SERVICES = '''
import json
from zato.server.service import Service

HOOKS_FILE = %r

class Echo(Service):
    name = 'wsxt.echo'

    def handle(self):
        self.response.payload = self.request.payload

    def on_connected(self):
        with open(HOOKS_FILE, 'a') as f:
            f.write(json.dumps({'hook': 'connected', 'id': self.environ['pub_client_id'],
                                'peer': self.environ['peer_host'], 'type': self.channel.type}) + '\\n')

    def on_disconnected(self):
        with open(HOOKS_FILE, 'a') as f:
            f.write(json.dumps({'hook': 'disconnected', 'id': self.environ['pub_client_id']}) + '\\n')

class Ops(Service):
    name = 'wsxt.ops'

    def handle(self):
        req = self.request.payload
        op = req['op']
        if op == 'missing':
            try:
                self.wsx.channel[req['channel']]
            except KeyError as e:
                self.response.payload = {'error': str(e), 'get': self.wsx.channel.get(req['channel'])}
            return
        channel = self.wsx.channel[req['channel']]
        if op == 'broadcast':
            started = __import__('time').monotonic()
            channel.broadcast(req['data'])
            self.response.payload = {'took': __import__('time').monotonic() - started}
        elif op == 'clients':
            self.response.payload = channel.clients()
        elif op == 'send':
            self.response.payload = {'sent': channel.send(req['client_id'], req['data'])}
        elif op == 'disconnect':
            self.response.payload = {'disconnected': channel.disconnect(req['client_id'])}
'''


@pytest.fixture(scope='module')
def wsx(env):
    hooks_file = os.path.join(env.path, 'work', 'wsxt-hooks.jsonl')
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'wsxt_services.py', 'source': SERVICES % hooks_file})
    env.wait_for(lambda: all(name in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')]
                             for name in ('wsxt.echo', 'wsxt.ops')))
    env.channel('wsxt-ops', '/wsxt/ops', 'wsxt.ops')
    chans = {}
    for name, path, extra in (('wsxt main', '/wsxt/main', {}),
                              ('wsxt crowd', '/wsxt/crowd', {}),
                              ('wsxt small queue', '/wsxt/small', {'send_queue_max': 4, 'ping_interval': 5})):
        chans[name] = env.admin.call('POST', '/zato/admin/channels/wsx',
                                     {'name': name, 'url_path': path, 'service': 'wsxt.echo', 'data_format': '',
                                      **extra})
    for path in ('/wsxt/main', '/wsxt/crowd', '/wsxt/small'):
        ready(env, path)
    return {'hooks': hooks_file, 'channels': chans}


def ready(env, path: str) -> None:
    """Until every worker serves the channel (fresh connections spread across workers)."""
    env.wait_for(lambda: all(env.fresh_get(env.url + path).status_code == 426 for _ in range(6)), timeout=5)


def ops(env, **req):
    r = requests.post(env.url + '/wsxt/ops', json=req, headers={'Connection': 'close'}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_broadcast_from_a_service_reaches_every_client_on_every_worker(env, wsx):
    # 30 clients connecting 10 at a time; again (up to 5 times) until both workers hold some
    for _ in range(5):
        crowd = Crowd(env.base_port, '/wsxt/main', 30, parallel=10)
        clients = ops(env, op='clients', channel='wsxt main')
        if len({c['pid'] for c in clients}) == 2:
            break
        crowd.close()
        env.wait_for(lambda: not ops(env, op='clients', channel='wsxt main'), timeout=10)
    try:
        assert len(clients) == 30
        assert len({c['pid'] for c in clients}) == 2, 'both workers should hold some clients'
        took = ops(env, op='broadcast', channel='wsxt main', data={'hello': 'everyone'})['took']
        assert took < 0.05  # the service does not wait for the clients
        crowd.collect(1, timeout=5)
        assert all(m and json.loads(m[0][1]) == {'hello': 'everyone'} for m in crowd.messages.values())
        # Text stays text, bytes go out as a binary frame
        ops(env, op='broadcast', channel='wsxt main', data='plain text')
        crowd.collect(2, timeout=5)
        assert all(m[1][1] == b'plain text' for m in crowd.messages.values())
    finally:
        crowd.close()


def test_one_client_is_sent_to_and_disconnected_by_id_wherever_it_is(env, wsx):
    with connect(f'ws://127.0.0.1:{env.base_port}/wsxt/main', open_timeout=5) as a, \
            connect(f'ws://127.0.0.1:{env.base_port}/wsxt/main', open_timeout=5) as b:
        a.send('who am i')
        assert a.recv(timeout=5) == 'who am i'
        clients = ops(env, op='clients', channel='wsxt main')
        assert len(clients) == 2
        assert all(c['peer'] == '127.0.0.1' and c['connected_at'] and c['authenticated_as'] is None for c in clients)
        # Whichever worker serves the REST call, each client is found through the bus
        for client in clients:
            assert ops(env, op='send', channel='wsxt main', client_id=client['id'], data={'to': client['id']}) == \
                {'sent': True}
        got = {json.loads(a.recv(timeout=5))['to'], json.loads(b.recv(timeout=5))['to']}
        assert got == {c['id'] for c in clients}

        assert ops(env, op='send', channel='wsxt main', client_id='wsx.nosuch', data='x') == {'sent': False}
        victim = clients[0]['id']
        assert ops(env, op='disconnect', channel='wsxt main', client_id=victim) == {'disconnected': True}
        env.wait_for(lambda: [c['id'] for c in ops(env, op='clients', channel='wsxt main')] == [clients[1]['id']])


def test_an_unknown_channel_raises_key_error_naming_close_matches(env, wsx):
    out = ops(env, op='missing', channel='wsxt mian')
    assert 'No such WebSocket channel `wsxt mian`' in out['error'] and '`wsxt main`' in out['error']
    assert out['get'] is None


def test_the_admin_api_lists_broadcasts_sends_and_disconnects(env, wsx):
    chan_id = wsx['channels']['wsxt main']['id']
    with connect(f'ws://127.0.0.1:{env.base_port}/wsxt/main', open_timeout=5) as c:
        listed = env.admin.call('GET', f'/zato/admin/channels/wsx/{chan_id}/clients')
        assert len(listed) == 1
        client_id = listed[0]['id']
        assert env.admin.call('POST', f'/zato/admin/channels/wsx/{chan_id}/broadcast', {'data': {'n': 1}}) == \
            {'channel': 'wsxt main', 'broadcast': True}
        assert json.loads(c.recv(timeout=5)) == {'n': 1}
        env.admin.call('POST', f'/zato/admin/wsx/clients/{client_id}/send', {'data': 'just you'})
        assert c.recv(timeout=5) == 'just you'
        env.admin.call('DELETE', f'/zato/admin/wsx/clients/{client_id}')
        with pytest.raises(Exception) as info:
            c.recv(timeout=5)
        assert getattr(getattr(info.value, 'rcvd', None), 'code', None) == 1000
    missing = requests.delete(f'{env.url}/zato/admin/wsx/clients/wsx.nosuch', headers=env.admin.headers, timeout=10)
    assert missing.status_code == 404 and missing.json()['result'] == 'ZATO_ERROR'
    assert 'wsx.nosuch' in missing.json()['details']


def test_hooks_run_on_connect_and_disconnect_with_the_client_in_environ(env, wsx):
    with connect(f'ws://127.0.0.1:{env.base_port}/wsxt/main', open_timeout=5) as c:
        c.send('hi')
        c.recv(timeout=5)
        client_id = ops(env, op='clients', channel='wsxt main')[0]['id']

    def records():
        with open(wsx['hooks'], encoding='utf-8') as f:
            return [json.loads(line) for line in f if client_id in line]
    env.wait_for(lambda: len(records()) == 2)
    connected, disconnected = records()
    assert connected == {'hook': 'connected', 'id': client_id, 'peer': '127.0.0.1', 'type': 'web-socket'}
    assert disconnected == {'hook': 'disconnected', 'id': client_id}


def test_a_broadcast_to_a_thousand_clients_with_one_stalled_reaches_the_other_999(env, wsx):
    # The stalled client connects first, reads nothing, and has a backlog queued for it that its
    # tiny receive buffer will never take
    stalled = handshake(env.base_port, '/wsxt/crowd', rcvbuf=4096)
    stalled_id = ops(env, op='clients', channel='wsxt crowd')[0]['id']
    for _ in range(40):
        ops(env, op='send', channel='wsxt crowd', client_id=stalled_id, data='x' * 60000)
    crowd = Crowd(env.base_port, '/wsxt/crowd', 999)
    try:
        assert len(ops(env, op='clients', channel='wsxt crowd')) == 1000
        sent_at = time.time()
        for i in range(5):
            ops(env, op='broadcast', channel='wsxt crowd', data={'i': i})
        crowd.collect(5, timeout=10)
        counts = [len(m) for m in crowd.messages.values()]
        assert counts == [5] * 999 and not crowd.closed
        latest = max(m[-1][0] for m in crowd.messages.values())
        assert latest - sent_at < 3.0
    finally:
        crowd.close()
        stalled.close()


def test_a_client_that_cannot_keep_up_is_disconnected_with_1008_and_logged(env, wsx):
    slow = handshake(env.base_port, '/wsxt/small', rcvbuf=4096)
    client_id = ops(env, op='clients', channel='wsxt small queue')[0]['id']
    sent = []
    for _ in range(60):
        sent.append(ops(env, op='send', channel='wsxt small queue', client_id=client_id, data='y' * 200_000)['sent'])
        if not sent[-1]:
            break
    assert sent[0] and not sent[-1]  # refused once the queue overflowed and the client was dropped
    env.wait_for(lambda: ops(env, op='clients', channel='wsxt small queue') == [])
    # What reached the socket ends with the connection closed (a close frame may not fit in)
    slow.settimeout(5)
    ended = False
    while not ended:
        try:
            ended = not slow.recv(1 << 20)
        except ConnectionResetError:
            ended = True
    slow.close()
    assert 'does not keep up' in env.log('server1') and client_id in env.log('server1')


def test_deleting_a_channel_disconnects_its_clients_with_1001(env, wsx):
    chan = env.admin.call('POST', '/zato/admin/channels/wsx',
                          {'name': 'wsxt doomed', 'url_path': '/wsxt/doomed', 'service': 'wsxt.echo', 'data_format': ''})
    ready(env, '/wsxt/doomed')
    with connect(f'ws://127.0.0.1:{env.base_port}/wsxt/doomed', open_timeout=5) as c:
        c.send('ok?')
        assert c.recv(timeout=5) == 'ok?'
        env.admin.call('DELETE', f'/zato/admin/channels/wsx/{chan["id"]}')
        with pytest.raises(Exception) as info:
            c.recv(timeout=5)
        assert getattr(getattr(info.value, 'rcvd', None), 'code', None) == 1001
    env.wait_for(lambda: all(env.fresh_get(f'{env.url}/wsxt/doomed').status_code == 404 for _ in range(6)))


def test_a_subprotocol_the_channel_speaks_is_chosen_and_data_format_none_is_raw(env, wsx):
    env.admin.call('POST', '/zato/admin/channels/wsx', {
        'name': 'wsxt proto', 'url_path': '/wsxt/proto', 'service': 'wsxt.echo', 'data_format': 'none',
        'subprotocols': ['v2.chat', 'v1.chat']})
    ready(env, '/wsxt/proto')
    url = f'ws://127.0.0.1:{env.base_port}/wsxt/proto'
    with connect(url, subprotocols=['v1.chat', 'v3.chat'], open_timeout=5) as c:
        assert c.subprotocol == 'v1.chat'
        c.send('{not json')
        assert c.recv(timeout=5) == '{not json'
    with connect(url, open_timeout=5) as c:
        assert c.subprotocol is None


def test_a_rest_channel_cannot_take_a_websocket_channels_path_nor_the_other_way_round(env, wsx):
    from zato.admin_client import AdminCallError
    with pytest.raises(AdminCallError) as info:
        env.channel('wsxt clash', '/wsxt/main', 'wsxt.echo')
    assert info.value.status == 409 and 'wsxt main' in str(info.value)
    env.channel('wsxt rest', '/wsxt/rest-only', 'wsxt.echo')
    with pytest.raises(AdminCallError) as info:
        env.admin.call('POST', '/zato/admin/channels/wsx', {'name': 'wsxt clash 2', 'url_path': '/wsxt/rest-only',
                                                            'service': 'wsxt.echo'})
    assert info.value.status == 409
    with pytest.raises(AdminCallError) as info:
        env.admin.call('POST', '/zato/admin/channels/wsx', {'name': 'wsxt clash 3', 'url_path': '/wsxt/x',
                                                            'service': 'wsxt.echo', 'security': 'no such def'})
    assert info.value.status == 400 and '`security`' in str(info.value)

    # An edit onto another WebSocket channel's name or path: 409, not a 500
    moved = env.admin.call('POST', '/zato/admin/channels/wsx', {'name': 'wsxt mover', 'url_path': '/wsxt/mover',
                                                                'service': 'wsxt.echo'})
    for change in ({'name': 'wsxt main'}, {'url_path': '/wsxt/main'}):
        with pytest.raises(AdminCallError) as info:
            env.admin.call('PUT', f'/zato/admin/channels/wsx/{moved["id"]}', change)
        assert info.value.status == 409, change
