"""Push delivery through a running server (SQLite quickstart, 2 workers): a notify subscription of a
service endpoint gets every message published, in order, pushed to its service."""

from __future__ import annotations

import sqlite3

import pytest
import requests

from tests.e2e.harness import Env
from zato.admin_client import AdminCallError

PASSWORD = 'pubsub-push-secret-1'

SERVICE = '''
import os
import sqlite3

from zato.server.service import Service


class Receive(Service):
    """Records every message pushed to it in the SQLite file its messages name."""
    name = 'ps-push.receive'

    def handle(self):
        request = self.request.payload
        for message in request if isinstance(request, list) else [request]:
            db = sqlite3.connect(message['data']['db'], timeout=30, isolation_level=None)
            db.execute('INSERT INTO got (msg_id, n, sub_key) VALUES (?, ?, ?)',
                       (message['msg_id'], message['data']['n'], message['sub_key']))
            db.close()
'''


def rest_endpoint(env: Env, name: str, role: str, patterns: str) -> None:
    """A REST pub/sub endpoint identified by a Basic Auth definition of the same name (password PASSWORD)."""
    env.admin.call('POST', '/zato/admin/security', {'name': name, 'kind': 'basic_auth', 'username': name,
                                                    'password': PASSWORD})
    env.admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': name, 'endpoint_type': 'rest', 'role': role,
                                                             'topic_patterns': patterns, 'security': name})


def test_messages_published_are_pushed_to_the_service_in_order(env: Env, tmp_path):
    db = str(tmp_path / 'got.sqlite3')
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE got (msg_id TEXT, n INTEGER, sub_key TEXT)')
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'ps_push.py', 'source': SERVICE})
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/push/orders'})
    rest_endpoint(env, 'push-pub', 'pub-only', 'pub=/push/**')
    env.admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': 'push-srv', 'endpoint_type': 'srv',
                                                             'role': 'sub-only', 'topic_patterns': 'sub=/push/**',
                                                             'service': 'ps-push.receive'})
    sub = env.admin.call('POST', '/zato/admin/pubsub/subscriptions', {'endpoint': 'push-srv', 'topic': '/push/orders',
                                                                       'delivery_method': 'notify'})
    sent = []
    for n in range(20):
        def published(n=n):
            r = requests.post(f'{env.url}/zato/pubsub/topic/push/orders', json={'data': {'db': db, 'n': n}},
                              auth=('push-pub', PASSWORD), timeout=10, headers={'Connection': 'close'})
            if r.status_code == 200:
                sent.append(r.json()['msg_id'])
            return r.status_code == 200
        env.wait_for(published, timeout=10)  # every worker learns of the endpoint over the bus

    def got():
        with sqlite3.connect(db) as conn:
            return conn.execute('SELECT msg_id, n, sub_key FROM got ORDER BY rowid').fetchall()
    env.wait_for(lambda: len(got()) >= 20, timeout=30)
    rows = got()
    assert [r[0] for r in rows] == sent  # all of them, once, in order
    assert [r[1] for r in rows] == list(range(20))
    assert {r[2] for r in rows} == {sub['sub_key']}


class Receiver:
    """A real HTTP receiver in a thread: answers 503 while `failing`, else records the messages POSTed."""

    def __init__(self) -> None:
        import json
        import threading
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        self.failing = True
        self.failures = 0
        self.got: list[dict] = []
        self.methods: set[str] = set()

        def app(environ, start_response):
            self.methods.add(environ['REQUEST_METHOD'])
            body = environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
            if self.failing:
                self.failures += 1
                start_response('503 Service Unavailable', [('Content-Type', 'text/plain')])
                return [b'down']
            payload = json.loads(body)
            self.got += payload if isinstance(payload, list) else [payload]
            start_response('200 OK', [('Content-Type', 'application/json')])
            return [b'{}']

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args) -> None:
                pass
        self.server = make_server('127.0.0.1', 0, app, handler_class=Quiet)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_failing_http_receiver_gets_everything_in_order_once_it_recovers(env: Env):
    receiver = Receiver()
    try:
        env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/push/http'})
        rest_endpoint(env, 'push-pub2', 'pub-only', 'pub=/push/**')
        rest_endpoint(env, 'push-rest', 'sub-only', 'sub=/push/**')
        out = env.admin.call('POST', '/zato/admin/outconns/rest', {'name': 'push-receiver',
                                                                   'address_host': f'http://127.0.0.1:{receiver.port}',
                                                                   'address_url_path': '/got'})
        # A REST endpoint's push subscription needs the outgoing connection it pushes through
        with pytest.raises(AdminCallError) as refused:
            env.admin.call('POST', '/zato/admin/pubsub/subscriptions', {
                'endpoint': 'push-rest', 'topic': '/push/http', 'delivery_method': 'notify'})
        assert refused.value.status == 400 and '`out_rest`' in str(refused.value)
        sub = env.admin.call('POST', '/zato/admin/pubsub/subscriptions', {
            'endpoint': 'push-rest', 'topic': '/push/http', 'delivery_method': 'notify', 'wait_non_sock_err': 1,
            'delivery_batch_size': 3, 'out_rest': out['name'], 'out_http_method': 'put'})
        assert (sub['out_rest'], sub['out_http_method']) == ('push-receiver', 'PUT')
        sent = []
        for n in range(10):
            def published(n=n):
                r = requests.post(f'{env.url}/zato/pubsub/topic/push/http', json={'data': n},
                                  auth=('push-pub2', PASSWORD), timeout=10, headers={'Connection': 'close'})
                if r.status_code == 200:
                    sent.append(r.json()['msg_id'])
                return r.status_code == 200
            env.wait_for(published, timeout=10)
        env.wait_for(lambda: receiver.failures >= 2, timeout=30)
        assert receiver.got == []
        receiver.failing = False
        env.wait_for(lambda: len(receiver.got) >= 10, timeout=30)
        assert [m['msg_id'] for m in receiver.got] == sent  # nothing lost, none twice, in order
        assert [m['data'] for m in receiver.got] == list(range(10))
        assert receiver.methods == {'PUT'}  # the subscription's out_http_method
    finally:
        receiver.server.shutdown()
