"""Outgoing JSON-RPC connections against our own JSON-RPC channel: invoke, notify, batch, errors
raised with their codes, Basic Auth, and the admin API."""

from __future__ import annotations

import requests

SERVICES = '''
from zato.connectors.jsonrpc import JSONRPCError
from zato.server.service import Service

class Add(Service):
    name = 'ojr.add'

    def handle(self):
        self.response.payload = {'sum': sum(self.request.payload)}

class Fail(Service):
    name = 'ojr.fail'

    def handle(self):
        raise ValueError('broken on purpose')

class Call(Service):
    name = 'ojr.call'

    def handle(self):
        req = self.request.payload
        conn = self.out.jsonrpc[req['conn']].conn
        try:
            if req['how'] == 'invoke':
                self.response.payload = {'result': conn.invoke(req['method'], req.get('params'), cid=self.cid)}
            elif req['how'] == 'notify':
                conn.notify(req['method'], req.get('params'))
                self.response.payload = {'notified': True}
            else:
                out = conn.batch([(c['method'], c.get('params')) for c in req['calls']])
                self.response.payload = {'batch': [{'code': r.code} if isinstance(r, JSONRPCError) else r
                                                   for r in out]}
        except JSONRPCError as e:
            self.response.payload = {'code': e.code, 'message': e.message}
        except Exception as e:
            self.response.payload = {'type': type(e).__name__, 'error': str(e)}
'''


def call(env, **req):
    r = requests.post(env.url + '/ojr/call', json=req, headers={'Connection': 'close'}, timeout=15)
    assert r.status_code == 200, r.text
    return r.json()


def call_when_ready(env, **req):
    """`call`, or None while the channel just created has not reached the worker that answers (404)."""
    r = requests.post(env.url + '/ojr/call', json=req, headers={'Connection': 'close'}, timeout=15)
    return r.json() if r.status_code == 200 else None


def test_a_service_invokes_our_own_json_rpc_channel_through_an_outgoing_connection(env):
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'ojr_services.py', 'source': SERVICES})
    env.wait_for(lambda: 'ojr.call' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.admin.call('POST', '/zato/admin/security', {'name': 'ojr.sec', 'kind': 'basic_auth', 'username': 'ojr-user',
                                                    'password': 'Ojr-Secret-2468'})
    env.admin.call('POST', '/zato/admin/channels/jsonrpc', {'name': 'ojr', 'url_path': '/ojr/rpc', 'security': 'ojr.sec',
                                                            'service_whitelist': ['ojr.add', 'ojr.fail']})
    env.channel('ojr-call', '/ojr/call', 'ojr.call')
    created = env.admin.call('POST', '/zato/admin/outconns/jsonrpc', {
        'name': 'own rpc', 'address_host': env.url, 'address_url_path': '/ojr/rpc', 'auth_type': 'basic_auth',
        'username': 'ojr-user', 'secret': 'Ojr-Secret-2468'})
    assert 'secret' not in created and 'data_format' not in created
    # The channel and the connection reach the other worker over the bus: a busy machine may take a while
    env.wait_for(lambda: all(call_when_ready(env, conn='own rpc', how='invoke', method='ojr.add', params=[1, 2]) ==
                             {'result': {'sum': 3}} for _ in range(4)), timeout=15)

    # Errors come back raised, with their JSON-RPC codes
    assert call(env, conn='own rpc', how='invoke', method='ojr.nope') == {'code': -32601,
                                                                          'message': 'Method not found'}
    assert call(env, conn='own rpc', how='invoke', method='ojr.fail')['code'] == -32603
    assert call(env, conn='own rpc', how='invoke', method='ojr.add', params='x') == \
        {'type': 'TypeError', 'error': 'params must be a dict, a list or None, not str'}

    # Notifications and batches
    assert call(env, conn='own rpc', how='notify', method='ojr.add', params=[5]) == {'notified': True}
    assert call(env, conn='own rpc', how='batch', calls=[{'method': 'ojr.add', 'params': [1, 1]},
                                                         {'method': 'ojr.nope'},
                                                         {'method': 'ojr.add', 'params': [2, 2]}]) == \
        {'batch': [{'sum': 2}, {'code': -32601}, {'sum': 4}]}

    # A wrong password: the channel's 401 arrives as a JSON-RPC error (-32001)
    env.admin.call('POST', f'/zato/admin/outconns/jsonrpc/{created["id"]}/change-password', {'secret': 'wrong'})
    env.wait_for(lambda: all(call(env, conn='own rpc', how='invoke', method='ojr.add', params=[1]).get('code') ==
                             -32001 for _ in range(4)), timeout=5)

    # The admin ping reaches the channel
    assert env.admin.call('POST', f'/zato/admin/outconns/jsonrpc/{created["id"]}/ping')['ok'] is True
