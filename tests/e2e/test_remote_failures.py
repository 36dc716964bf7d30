"""A remote end that fails is answered as the remote's failure on every entry point, not as our bug:
503 (with Retry-After when the connection knows when it tries again), 504, and the JSON-RPC and
WebSocket forms of the same; logged as a warning naming the connection, without a traceback."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests
from websockets.sync.client import connect

SERVICES = '''
from zato.server.service import Service

class UseConn(Service):
    """Calls the REST connection named in the request, or the LDAP one, and lets any error out."""

    def handle(self):
        req = self.request.payload
        if req.get('kind') == 'ldap':
            with self.out.ldap[req['conn']].conn.client() as client:
                with client.get() as c:
                    c.search('dc=example,dc=com', '(uid=x)')
        else:
            self.out.rest[req['conn']].conn.get(self.cid)
        self.response.payload = {'ok': True}
'''


@pytest.fixture(scope='module')
def silent_port():
    """A listener that accepts and never answers: a remote end that is too slow."""
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join()
    for s in held:
        s.close()
    srv.close()


@pytest.fixture(scope='module')
def setup(env, silent_port):
    admin = env.admin
    admin.call('POST', '/zato/admin/deploy', {'file_name': 'remote_failures.py', 'source': SERVICES})
    env.wait_for(lambda: 'remote-failures.use-conn' in [s['name'] for s in admin.call('GET', '/zato/admin/services')])
    admin.call('POST', '/zato/admin/outconns/rest', {'name': 'rf down', 'address_host': 'http://127.0.0.1:1'})
    admin.call('POST', '/zato/admin/outconns/rest', {'name': 'rf slow', 'timeout': 0.5,
                                                     'address_host': f'http://127.0.0.1:{silent_port}'})
    admin.call('POST', '/zato/admin/outconns/rest', {'name': 'rf off', 'is_active': False,
                                                     'address_host': 'http://127.0.0.1:1'})
    admin.call('POST', '/zato/admin/outconns/ldap', {'name': 'rf ldap', 'server_list': ['ldap://127.0.0.1:1']})
    env.channel('rf', '/rf/use-conn', 'remote-failures.use-conn')
    admin.call('POST', '/zato/admin/channels/jsonrpc', {'name': 'rf-rpc', 'url_path': '/rf/rpc',
                                                        'service_whitelist': ['remote-failures.use-conn']})
    admin.call('POST', '/zato/admin/channels/wsx', {'name': 'rf-wsx', 'url_path': '/rf/wsx',
                                                    'service': 'remote-failures.use-conn'})
    env.wait_for(lambda: requests.post(env.url + '/rf/use-conn', json={'conn': 'rf down'}).status_code == 503)


def post(env, body):
    return requests.post(env.url + '/rf/use-conn', json=body, headers={'Connection': 'close'}, timeout=10)


@pytest.mark.parametrize('conn, status, code', [('rf down', 503, 'remote_unavailable'),
                                                ('rf off', 503, 'connection_inactive'),
                                                ('rf slow', 504, 'remote_timeout')])
def test_rest_answers_a_remote_ends_failure_with_its_status_and_code(env, setup, conn, status, code):
    r = post(env, {'conn': conn})
    body = r.json()
    assert r.status_code == status and body['code'] == code, body
    assert body['cid'] == r.headers['X-Zato-CID'] and body['cid'] in body['details']
    assert conn not in body['details'] and '127.0.0.1' not in body['details']  # internals stay in the log
    log = env.log()
    assert f'failed, cid `{body["cid"]}`: Outgoing rest connection `{conn}`' in log
    line = next(line for line in log.splitlines() if body['cid'] in line)
    assert 'WARNING' in line and 'Traceback' not in log.split(line, 1)[1][:200]


def test_a_connection_not_connected_yet_says_when_it_tries_again(env, setup):
    r = post(env, {'kind': 'ldap', 'conn': 'rf ldap'})
    assert r.status_code == 503 and r.json()['code'] == 'remote_unavailable', r.text
    assert 1 <= int(r.headers['Retry-After']) <= 30


def test_json_rpc_answers_the_same_failures_with_its_own_codes(env, setup):
    calls = [{'jsonrpc': '2.0', 'method': 'remote-failures.use-conn', 'params': {'conn': conn}, 'id': i}
             for i, conn in enumerate(('rf down', 'rf slow'))]
    r = requests.post(env.url + '/rf/rpc', json=calls, timeout=10)
    codes = {item['id']: item['error']['code'] for item in r.json()}
    assert r.status_code == 200 and codes == {0: -32503, 1: -32504}, r.text


def test_a_websocket_client_gets_the_status_in_its_reply(env, setup):
    with connect(f'ws://127.0.0.1:{env.base_port}/rf/wsx', open_timeout=5) as ws:
        ws.send(json.dumps({'meta': {'action': 'invoke-service', 'id': 'm1'}, 'data': {'conn': 'rf slow'}}))
        reply = json.loads(ws.recv(timeout=10))
    assert reply['meta']['status'] == 504 and reply['meta']['in_reply_to'] == 'm1'
