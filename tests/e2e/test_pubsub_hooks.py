"""Pub/sub hooks, browsing queues and the per-worker subscription cache through a running environment:
the SQLite quickstart of tests/e2e/conftest.py (2 workers), and a PostgreSQL cluster (2 servers of 2
workers each)."""

from __future__ import annotations

import urllib.parse

import pytest
import requests

from tests.e2e.harness import Env, postgresql_cluster
from zato.admin_client import AdminCallError

PASSWORD = 'pubsub-hooks-e2e-secret-1'

HOOKS = '''
import os

from zato.pubsub.hook import before_delivery
from zato.server.service import NotFound, PubSubHook, Service

class E2EHook(PubSubHook):
    name = 'e2e.ps-hook'

    def before_publish(self):
        data = self.request.input.data
        if data == 'raise':
            raise ValueError('the hook failed')
        if data == 'skip':
            return 'skip'
        if data == 'bad':
            self.request.input.priority = 99
        self.request.input.data = f'hooked:{data}'

    def before_delivery(self):
        return {'hooked:skip-me': 'skip', 'hooked:delete-me': 'delete'}.get(self.request.input.data)

    def on_subscribed(self):
        self.logger.info('E2E-ON-SUBSCRIBED %s %s %s', self.topic_name, self.request.input.endpoint_name,
                         self.sub_key)

    def on_unsubscribed(self):
        self.logger.info('E2E-ON-UNSUBSCRIBED %s %s', self.topic_name, self.sub_key)

class Probe(Service):
    """The delivery code's call of before_delivery, for each message of the queue."""
    name = 'e2e.ps-hook-probe'

    def handle(self):
        req = self.request.payload
        sub = {'id': 0, 'sub_key': req['sub_key'], 'hook_service': req.get('hook_service')}
        page = self.pubsub.read_messages(req['topic'], req['sub_key'], paginate=False)
        self.response.payload = [[m['data'], before_delivery(self.server, req['topic'], sub, m)]
                                 for m in page['messages']]

class PullPid(Service):
    """Which worker answered, and whether it took the sub_key (a pull goes through its cache of sub_keys)."""
    name = 'e2e.ps-pull-pid'

    def handle(self):
        try:
            self.pubsub.pull(self.request.payload['sub_key'], visibility_timeout=0.1)
            known = True
        except NotFound:  # a wrong sub_key, a deleted one included
            known = False
        self.response.payload = {'pid': os.getpid(), 'known': known}
'''


def publish(env: Env, auth, topic: str, body) -> requests.Response:
    return requests.post(f'{env.url}/zato/pubsub/topic{topic}', json=body, auth=auth, timeout=10,
                         headers={'Connection': 'close'})


def pull(env: Env, auth, sub_key: str) -> requests.Response:
    return requests.post(f'{env.url}/zato/pubsub/msg/pull', json={'sub_key': sub_key, 'visibility_timeout': 0.1},
                         auth=auth, timeout=10, headers={'Connection': 'close'})


@pytest.fixture(scope='module', params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def ps_env(request, tmp_path_factory):
    if request.param == 'sqlite':
        yield request.getfixturevalue('env')
        return
    with postgresql_cluster(tmp_path_factory, 'pshooks') as cluster:
        yield cluster


@pytest.fixture(scope='module')
def hk(ps_env: Env):
    env = ps_env
    """The hook services deployed, topic /e2e-hk/hooked with the hook, /e2e-hk/plain without; endpoint
    e2e-hk (REST, pub-sub on /e2e-hk/**)."""
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'e2e_ps_hooks.py', 'source': HOOKS})
    env.channel('e2e-ps-hook-probe', '/e2e/ps-hook-probe', 'e2e.ps-hook-probe')
    env.channel('e2e-ps-pull-pid', '/e2e/ps-pull-pid', 'e2e.ps-pull-pid')
    hooked = env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e-hk/hooked',
                                                                   'hook_service': 'e2e.ps-hook'})
    plain = env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e-hk/plain'})
    env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-hk', 'kind': 'basic_auth', 'username': 'e2e-hk',
                                                    'password': PASSWORD})
    endpoint = env.admin.call('POST', '/zato/admin/pubsub/endpoints', {
        'name': 'e2e-hk', 'endpoint_type': 'rest', 'role': 'pub-sub', 'topic_patterns': 'pub=/e2e-hk/**\nsub=/e2e-hk/**',
        'security': 'e2e-hk'})
    auth = ('e2e-hk', PASSWORD)
    env.wait_for(lambda: all(publish(env, auth, '/e2e-hk/none', {'data': 'x'}).status_code == 404
                             for _ in range(6)), timeout=10)
    return {'auth': auth, 'hooked': hooked['id'], 'plain': plain['id'], 'endpoint': endpoint['name']}


def subscribe(env: Env, hk, topic: str) -> tuple[int, str]:
    sub = env.admin.call('POST', '/zato/admin/pubsub/subscriptions', {'endpoint': hk['endpoint'], 'topic': topic})
    return sub['id'], sub['sub_key']


def queued(env: Env, sub_id: int, **params) -> dict:
    query = f'?{urllib.parse.urlencode(params)}' if params else ''
    return env.admin.call('GET', f'/zato/admin/pubsub/subscriptions/{sub_id}/messages{query}')


def test_before_publish_changes_and_skips_messages_and_a_failing_hook_is_a_503(ps_env, hk):
    env = ps_env
    sub_id, _ = subscribe(env, hk, '/e2e-hk/hooked')
    try:
        r = publish(env, hk['auth'], '/e2e-hk/hooked', {'data_list': [{'data': 'a'}, {'data': 'skip'}, {'data': 'b'}]})
        assert r.status_code == 200, r.text
        msg_ids = r.json()['msg_id_list']
        assert len(set(msg_ids)) == 3  # the skipped one has its msg_id too
        page = queued(env, sub_id)
        assert [m['data'] for m in page['messages']] == ['hooked:a', 'hooked:b']
        assert [m['msg_id'] for m in page['messages']] == [msg_ids[0], msg_ids[2]]
        # A hook that raises: nothing of the publication is stored
        r = publish(env, hk['auth'], '/e2e-hk/hooked', {'data_list': [{'data': 'c'}, {'data': 'raise'}]})
        assert (r.status_code, r.json()['code']) == (503, 'pubsub_hook_failed'), r.text
        assert '/e2e-hk/hooked' in r.json()['details'] and 'Traceback' not in r.text
        # A field the hook made invalid is the publisher's 400, as if sent so
        r = publish(env, hk['auth'], '/e2e-hk/hooked', {'data': 'bad'})
        assert r.status_code == 400 and '`priority`' in r.json()['details']
        # Publishing from the admin side goes through the hook as well
        out = env.admin.call('POST', f'/zato/admin/pubsub/topics/{hk["hooked"]}/publish', {'data': 'admin'})
        assert out['msg_id'].startswith('zpsm')
        assert [m['data'] for m in queued(env, sub_id)['messages']] == ['hooked:a', 'hooked:b', 'hooked:admin']
        # No hook on the other topic: published as sent
        plain_id, _ = subscribe(env, hk, '/e2e-hk/plain')
        env.admin.call('POST', f'/zato/admin/pubsub/topics/{hk["plain"]}/publish', {'data': 'skip'})
        assert [m['data'] for m in queued(env, plain_id)['messages']] == ['skip']
        env.admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{plain_id}')
    finally:
        env.admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{sub_id}')


def test_a_hook_service_that_is_not_deployed_is_refused_when_the_topic_is_saved(ps_env, hk):
    env = ps_env
    with pytest.raises(AdminCallError) as e:
        env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e-hk/nohook', 'hook_service': 'e2e.no-such'})
    assert e.value.status == 400 and 'e2e.no-such' in str(e.value.details)
    with pytest.raises(AdminCallError) as e:
        env.admin.call('PUT', f'/zato/admin/pubsub/topics/{hk["plain"]}', {'hook_service': 'e2e.no-such'})
    assert e.value.status == 400


def test_before_delivery_decides_per_message(ps_env, hk):
    env = ps_env
    sub_id, sub_key = subscribe(env, hk, '/e2e-hk/hooked')
    try:
        for data in ('keep', 'skip-me', 'delete-me'):
            assert publish(env, hk['auth'], '/e2e-hk/hooked', {'data': data}).status_code == 200
        body = {'topic': '/e2e-hk/hooked', 'sub_key': sub_key}
        r = requests.post(f'{env.url}/e2e/ps-hook-probe', json=body, timeout=10)
        assert r.json() == [['hooked:keep', 'deliver'], ['hooked:skip-me', 'skip'], ['hooked:delete-me', 'delete']]
        # A subscription whose hook is not deployed: delivered (and logged), as 3.1
        r = requests.post(f'{env.url}/e2e/ps-hook-probe', json={**body, 'hook_service': 'e2e.no-such'}, timeout=10)
        assert [action for _, action in r.json()] == ['deliver'] * 3

        def actions() -> list:
            return [[a for _, a in requests.post(f'{env.url}/e2e/ps-hook-probe', json=body, timeout=10,
                                                 headers={'Connection': 'close'}).json()] for _ in range(6)]
        # Workers keep a topic's hook; taken off the topic, it is forgotten by every one
        assert actions() == [['deliver', 'skip', 'delete']] * 6
        env.admin.call('PUT', f'/zato/admin/pubsub/topics/{hk["hooked"]}', {'hook_service': None})
        try:
            env.wait_for(lambda: actions() == [['deliver'] * 3] * 6, timeout=5)
        finally:
            env.admin.call('PUT', f'/zato/admin/pubsub/topics/{hk["hooked"]}', {'hook_service': 'e2e.ps-hook'})
    finally:
        env.admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{sub_id}')


def test_on_subscribed_and_on_unsubscribed_run_for_rest_and_admin_subscriptions(ps_env, hk):
    env = ps_env
    r = requests.post(f'{env.url}/zato/pubsub/subscribe/topic/e2e-hk/hooked', auth=hk['auth'], timeout=10)
    sub_key = r.json()['sub_key']
    env.wait_for(lambda: f'E2E-ON-SUBSCRIBED /e2e-hk/hooked e2e-hk {sub_key}' in env.log(), timeout=5)
    r = requests.delete(f'{env.url}/zato/pubsub/subscribe/topic/e2e-hk/hooked', params={'sub_key': sub_key},
                        auth=hk['auth'], timeout=10)
    assert r.status_code == 200
    env.wait_for(lambda: f'E2E-ON-UNSUBSCRIBED /e2e-hk/hooked {sub_key}' in env.log(), timeout=5)
    sub_id, sub_key = subscribe(env, hk, '/e2e-hk/hooked')
    env.wait_for(lambda: f'E2E-ON-SUBSCRIBED /e2e-hk/hooked e2e-hk {sub_key}' in env.log(), timeout=5)
    env.admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{sub_id}')
    env.wait_for(lambda: f'E2E-ON-UNSUBSCRIBED /e2e-hk/hooked {sub_key}' in env.log(), timeout=5)


def test_the_admin_api_browses_reads_deletes_and_clears_a_queue(ps_env, hk):
    env = ps_env
    sub_id, sub_key = subscribe(env, hk, '/e2e-hk/plain')
    try:
        ids = [publish(env, hk['auth'], '/e2e-hk/plain', {'data': f'item-{i:02}', 'priority': 9 if i == 7 else 5})
               .json()['msg_id'] for i in range(60)]
        page = queued(env, sub_id)
        assert (page['total'], page['num_pages'], page['cur_page'], len(page['messages'])) == (60, 2, 1, 50)
        assert page['messages'][0]['msg_id'] == ids[7] and page['messages'][1]['msg_id'] == ids[0]
        page2 = queued(env, sub_id, page=2)
        assert [m['data'] for m in page2['messages']] == [f'item-{i:02}' for i in range(50, 60)]
        found = queued(env, sub_id, query='item-1')
        assert [m['data'] for m in found['messages']] == [f'item-{i:02}' for i in range(10, 20)]
        # Browsing took nothing and delivered nothing
        assert all(m['delivery_count'] == 0 for m in page['messages'])
        one = env.admin.call('GET', f'/zato/admin/pubsub/messages/{ids[3]}')
        assert (one['data'], one['topic_name']) == ('item-03', '/e2e-hk/plain')
        out = env.admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{sub_id}/messages/{ids[3]}')
        assert out['deleted'] is True
        for call in (('GET', f'/zato/admin/pubsub/messages/{ids[3]}'),
                     ('DELETE', f'/zato/admin/pubsub/subscriptions/{sub_id}/messages/{ids[3]}'),
                     ('GET', '/zato/admin/pubsub/subscriptions/999999/messages')):
            with pytest.raises(AdminCallError) as e:
                env.admin.call(*call)
            assert e.value.status == 404, call
        for params in ({'page': 0}, {'page': 'x'}, {'query': 'q' * 201}):
            with pytest.raises(AdminCallError) as e:
                queued(env, sub_id, **params)
            assert e.value.status == 400, params
        assert env.admin.call('POST', f'/zato/admin/pubsub/subscriptions/{sub_id}/clear') == \
            {'id': sub_id, 'cleared': 59}
        assert queued(env, sub_id)['total'] == 0 and pull(env, hk['auth'], sub_key).json() == []
    finally:
        env.admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{sub_id}')


def test_a_deleted_subscription_is_forgotten_by_every_worker_that_used_it(ps_env, hk):
    env = ps_env
    sub_id, sub_key = subscribe(env, hk, '/e2e-hk/plain')

    def on_both_workers(known: bool) -> None:
        seen: set[int] = set()

        def both() -> bool:
            answer = requests.post(f'{env.url}/e2e/ps-pull-pid', json={'sub_key': sub_key}, timeout=10,
                                   headers={'Connection': 'close'}).json()
            seen.update([answer['pid']] if answer['known'] is known else [])
            return len(seen) >= 2
        env.wait_for(both, timeout=10)

    # Each worker has looked the sub_key up, and keeps it
    on_both_workers(True)
    env.admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{sub_id}')
    # ... and each forgets it, the worker that deleted it and the other alike
    on_both_workers(False)
