"""Pub/sub over WebSockets through a running server (SQLite quickstart, 2 workers), with a real
WebSocket client: subscribe, publications pushed and acknowledged, redelivery of what is not
acknowledged, resuming after a disconnect, the endpoint's patterns and sub_keys, both workers."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
import requests
from websockets.sync.client import connect

from tests.e2e.harness import Env

PASSWORD = 'pubsub-wsx-e2e-secret'
PATH = '/pswsx/main'

SERVICES = '''
import os
from zato.server.service import Service

class Main(Service):
    """The channel's service: plain messages ask for the worker's pid or use self.pubsub."""
    name = 'pswsx.main'

    def handle(self):
        req = self.request.payload
        op = req.get('op')
        if op == 'pid':
            self.response.payload = {'pid': os.getpid()}
        elif op == 'subscribe':
            self.response.payload = {'sub_key': self.pubsub.subscribe(req['topic'], use_current_wsx=True,
                                                                      service=self)}
        elif op == 'resume':
            self.pubsub.resume_wsx_subscription(req['sub_key'], self)
            self.response.payload = {'resumed': True}
'''


class Client:
    """A WebSocket client speaking 3.1's envelope; pushed messages are kept in `pushed`."""

    ids = itertools.count()

    def __init__(self, env: Env) -> None:
        self.ws = connect(f'ws://127.0.0.1:{env.base_port}{PATH}', open_timeout=10).__enter__()
        self.pushed: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []

    def close(self) -> None:
        self.ws.close()

    def _read(self, timeout: float) -> Any:
        msg = json.loads(self.ws.recv(timeout=timeout))
        if isinstance(msg, dict) and isinstance(msg.get('meta'), dict) and msg['meta'].get('action') == 'zwsx.psrq':
            self.requests.append(msg)
            self.pushed.extend(msg['data'])
            return None
        return msg

    def call(self, service: str, request: Any) -> dict[str, Any]:
        """The whole reply: {"meta": {"status": ...}, "data": ...}."""
        msg_id = f'm{next(self.ids)}'
        self.ws.send(json.dumps({'meta': {'action': 'invoke-service', 'id': msg_id},
                                 'data': {'service': service, 'request': request}}))
        deadline = time.monotonic() + 10
        while True:
            msg = self._read(max(0.1, deadline - time.monotonic()))
            if msg is not None and msg.get('meta', {}).get('in_reply_to') == msg_id:
                return msg

    def plain(self, request: Any) -> Any:
        self.ws.send(json.dumps(request))
        deadline = time.monotonic() + 10
        while True:
            msg = self._read(max(0.1, deadline - time.monotonic()))
            if msg is not None:
                return msg

    def ok(self, service: str, request: Any) -> Any:
        reply = self.call(service, request)
        assert reply['meta']['status'] == 200, reply
        return reply['data']

    def wait_pushed(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.pushed) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f'{len(self.pushed)} of {count} messages pushed: {self.pushed[-3:]}')
            try:
                self._read(left)
            except TimeoutError:
                pass
        return self.pushed

    def quiet_for(self, seconds: float) -> None:
        """Reads whatever is pushed for `seconds` (for checking that nothing more comes)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._read(left)
            except TimeoutError:
                return


@pytest.fixture(scope='module')
def ps(env: Env):
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'pswsx_services.py', 'source': SERVICES})
    env.wait_for(lambda: 'pswsx.main' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    for name in ('/wsx/orders', '/wsx/redelivery', '/wsx/resume', '/wsx/python', '/wsx/other-workers',
                 '/wsx/close', '/other/secret'):
        env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': name})
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/wsx/no-api', 'is_api_sub_allowed': False})
    env.admin.call('POST', '/zato/admin/security', {'name': 'pswsx-pub', 'kind': 'basic_auth',
                                                    'username': 'pswsx-pub', 'password': PASSWORD})
    env.admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': 'pswsx-pub', 'endpoint_type': 'rest',
                                                             'role': 'pub-sub', 'security': 'pswsx-pub',
                                                             'topic_patterns': 'pub=/**\nsub=/**'})
    env.admin.call('POST', '/zato/admin/channels/wsx', {'name': 'pswsx main', 'url_path': PATH,
                                                        'service': 'pswsx.main'})
    env.admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': 'pswsx-wsx', 'endpoint_type': 'wsx',
                                                             'role': 'pub-sub', 'ws_channel': 'pswsx main',
                                                             'topic_patterns': 'pub=/wsx/**\nsub=/wsx/**'})
    auth = ('pswsx-pub', PASSWORD)
    # Every worker serves the channel and knows both endpoints
    env.wait_for(lambda: all(env.fresh_get(env.url + PATH).status_code == 426 for _ in range(6)), timeout=10)
    env.wait_for(lambda: all(publish(env, auth, '/wsx/nothing', 'x').status_code == 404 for _ in range(6)),
                 timeout=10)

    def known() -> bool:
        c = Client(env)
        try:
            # 404: the channel's endpoint is known (a channel without one is 403 for everything)
            return c.call('zato.pubsub.pubapi.get-messages', {'sub_key': 'x'})['meta']['status'] == 404 and \
                c.call('zato.pubsub.pubapi.publish-message', {'topic_name': '/wsx/nothing', 'data': 'x'}
                       )['meta']['status'] == 404
        finally:
            c.close()
    env.wait_for(lambda: all(known() for _ in range(6)), timeout=10)
    return auth


def publish(env: Env, auth, topic: str, data: Any) -> requests.Response:
    return requests.post(f'{env.url}/zato/pubsub/topic{topic}', json={'data': data}, auth=auth, timeout=10,
                         headers={'Connection': 'close'})


def test_a_message_published_over_rest_is_pushed_and_acked(env, ps):
    c = Client(env)
    try:
        out = c.ok('zato.pubsub.pubapi.subscribe', {'topic_name': '/wsx/orders'})
        sub_key = out['sub_key']
        assert sub_key.startswith('zpsk.wsx.')
        r = publish(env, ps, '/wsx/orders', {'order': 1})
        assert r.status_code == 200, r.text
        [msg] = c.wait_pushed(1, timeout=3)  # woken by the publication, well before the poll
        assert msg['msg_id'] == r.json()['msg_id'] and msg['data'] == {'order': 1} and msg['delivery_count'] == 1
        assert c.requests[0]['meta']['sub_key'] == sub_key
        assert c.ok('zato.pubsub.pubapi.ack', {'sub_key': sub_key, 'msg_ids': [msg['msg_id']]}) == {'acked': 1}
        # The acknowledgement is the endpoint's last delivery, written within [pubsub] meta_flush_interval (5 s)
        env.wait_for(lambda: [e['last_delivery_time'] for e in env.admin.call('GET', '/zato/admin/pubsub/endpoints')
                              if e['name'] == 'pswsx-wsx'] != [None], timeout=8)
        # A WSX client publishes too, under its endpoint's patterns
        c.ok('zato.pubsub.pubapi.publish-message', {'topic_name': '/wsx/orders', 'data': 'from the client'})
        assert c.wait_pushed(2)[1]['data'] == 'from the client'
        c.ok('zato.pubsub.pubapi.ack', {'sub_key': sub_key, 'msg_ids': [c.pushed[1]['msg_id']]})
        c.ok('zato.pubsub.pubapi.unsubscribe', {'sub_key': sub_key})
        assert c.call('zato.pubsub.pubapi.ack', {'sub_key': sub_key, 'msg_ids': ['x']})['meta']['status'] == 404
    finally:
        c.close()


def test_a_message_not_acked_is_pushed_again_with_a_higher_delivery_count(env, ps):
    c = Client(env)
    try:
        sub_key = c.ok('zato.pubsub.pubapi.subscribe-wsx', {'topic_name': '/wsx/redelivery',
                                                           'visibility_timeout': 1})['sub_key']
        msg_id = publish(env, ps, '/wsx/redelivery', 'again').json()['msg_id']
        first, second = c.wait_pushed(2, timeout=8)
        assert (first['msg_id'], first['delivery_count']) == (msg_id, 1)
        assert (second['msg_id'], second['delivery_count']) == (msg_id, 2)
        c.ok('zato.pubsub.pubapi.ack', {'sub_key': sub_key, 'msg_ids': [msg_id]})
        c.quiet_for(2.5)  # past two visibility timeouts: acknowledged, it does not come back
        assert len(c.pushed) == 2
        c.ok('zato.pubsub.pubapi.unsubscribe', {'sub_key': sub_key})
    finally:
        c.close()


def test_a_subscription_keeps_queuing_while_disconnected_and_resumes_with_nothing_lost(env, ps):
    c = Client(env)
    sub_key = c.ok('zato.pubsub.pubapi.subscribe', {'topic_name': '/wsx/resume'})['sub_key']
    c.close()
    sent = [publish(env, ps, '/wsx/resume', i).json()['msg_id'] for i in range(100)]
    c = Client(env)
    try:
        assert c.pushed == []
        assert c.ok('zato.pubsub.resume-wsx-subscription', {'sub_key': sub_key})['topic_name'] == '/wsx/resume'
        got = c.wait_pushed(100)
        assert [m['data'] for m in got] == list(range(100)) and [m['msg_id'] for m in got] == sent
        for i in range(0, 100, 50):
            c.ok('zato.pubsub.pubapi.ack', {'sub_key': sub_key, 'msg_ids': sent[i:i + 50]})
        c.ok('zato.pubsub.pubapi.unsubscribe', {'sub_key': sub_key})
    finally:
        c.close()


def test_a_wrong_or_foreign_sub_key_is_one_404_and_a_topic_the_patterns_refuse_is_403(env, ps):
    rest_sub = requests.post(f'{env.url}/zato/pubsub/subscribe/topic/other/secret', auth=ps, timeout=10).json()
    c = Client(env)
    try:
        # Unknown, malformed, another endpoint's: the same status, code and details for each, on every call
        for sub_key in ('zpsk.wsx.' + '0' * 32, rest_sub['sub_key'], 'x' * 81, 7):
            for service, request in (('zato.pubsub.resume-wsx-subscription', {}),
                                     ('zato.pubsub.pubapi.ack', {'msg_ids': ['x']}),
                                     ('zato.pubsub.pubapi.get-messages', {}),
                                     ('zato.pubsub.pubapi.unsubscribe', {})):
                reply = c.call(service, {**request, 'sub_key': sub_key})
                assert (reply['meta']['status'], reply['meta']['code'], reply['data']) == \
                       (404, 'pubsub_sub_key_not_found', 'Subscription not found'), (service, sub_key, reply)
        for service, request in (('zato.pubsub.pubapi.subscribe', {'topic_name': '/other/secret'}),
                                 ('zato.pubsub.pubapi.publish-message', {'topic_name': '/other/secret', 'data': 1})):
            reply = c.call(service, request)
            assert reply['meta']['status'] == 403 and reply['meta']['code'] == 'pubsub_not_allowed', reply
        reply = c.call('zato.pubsub.pubapi.subscribe', {})
        assert reply['meta']['status'] == 400 and 'topic_name' in reply['data'], reply
    finally:
        c.close()


def test_the_push_comes_from_whichever_worker_holds_the_socket(env, ps):
    clients: dict[int, Client] = {}
    spare: list[Client] = []
    try:
        for _ in range(40):
            c = Client(env)
            pid = c.plain({'op': 'pid'})['pid']
            if pid not in clients:
                clients[pid] = c
            elif len(spare) < 1 and pid == next(iter(clients)):
                spare.append(c)
            else:
                c.close()
            if len(clients) == 2 and spare:
                break
        assert len(clients) == 2 and spare, 'both workers should hold a client, and the first worker two'
        # The subscription is made on one worker, its client goes away, and a client of the other worker
        # resumes it; a publication on the first worker reaches it through the bus, well before the poll
        (pid_a, first), (pid_b, second) = clients.items()
        publisher = spare[0]
        sub_key = first.ok('zato.pubsub.pubapi.subscribe', {'topic_name': '/wsx/other-workers'})['sub_key']
        first.close()
        second.ok('zato.pubsub.resume-wsx-subscription', {'sub_key': sub_key})
        sent = [publisher.ok('zato.pubsub.pubapi.publish-message', {'topic_name': '/wsx/other-workers', 'data': i}
                             )['msg_id'] for i in range(10)]
        assert publisher.plain({'op': 'pid'})['pid'] == pid_a != pid_b
        got = second.wait_pushed(10, timeout=3)
        assert [m['msg_id'] for m in got] == sent
        # And over REST, answered by either worker
        sent.append(publish(env, ps, '/wsx/other-workers', 'rest').json()['msg_id'])
        assert second.wait_pushed(11, timeout=3)[-1]['msg_id'] == sent[-1]
        second.ok('zato.pubsub.pubapi.unsubscribe', {'sub_key': sub_key})
    finally:
        for c in [*clients.values(), *spare]:
            c.close()


def test_the_python_api_subscribes_the_current_client_and_resumes(env, ps):
    c = Client(env)
    sub_key = c.plain({'op': 'subscribe', 'topic': '/wsx/python'})['sub_key']
    msg_id = publish(env, ps, '/wsx/python', 'py').json()['msg_id']
    assert c.wait_pushed(1)[0]['msg_id'] == msg_id
    c.close()
    second = publish(env, ps, '/wsx/python', 'py2').json()['msg_id']
    c = Client(env)
    try:
        assert c.plain({'op': 'resume', 'sub_key': sub_key}) == {'resumed': True}
        # The first was pushed and not acked: it comes back after the visibility timeout; the second at once
        assert c.wait_pushed(1)[0]['msg_id'] == second
        c.ok('zato.pubsub.pubapi.unsubscribe', {'sub_key': sub_key})
    finally:
        c.close()


def test_is_api_sub_allowed_refuses_the_client_but_not_the_channels_service(env, ps):
    c = Client(env)
    try:
        reply = c.call('zato.pubsub.pubapi.subscribe', {'topic_name': '/wsx/no-api'})
        assert reply['meta']['status'] == 403 and reply['meta']['code'] == 'pubsub_not_allowed', reply
        sub_key = c.plain({'op': 'subscribe', 'topic': '/wsx/no-api'})['sub_key']
        c.ok('zato.pubsub.pubapi.unsubscribe', {'sub_key': sub_key})
    finally:
        c.close()


def test_unsub_on_wsx_close_deletes_the_subscription_when_the_client_goes(env, ps):
    c = Client(env)
    sub_key = c.ok('zato.pubsub.pubapi.subscribe', {'topic_name': '/wsx/close', 'unsub_on_wsx_close': True})['sub_key']
    c.close()

    def gone() -> bool:
        probe = Client(env)
        try:
            return probe.call('zato.pubsub.resume-wsx-subscription', {'sub_key': sub_key})['meta']['status'] == 404
        finally:
            probe.close()
    env.wait_for(gone, timeout=5)
    # Without the flag the subscription outlives its client (the test above resumes one)
