"""Endpoints' last publication and delivery times and the delivery tasks by server, through a running
environment: the admin API, the CLI and the web-admin's pages (escaped)."""

from __future__ import annotations

import json
import re
import time

import requests

from tests.e2e.harness import zato
from tests.web_admin.conftest import TIMEOUT

# The times reach the ODB within half a second, not the default 5 s
WEB_ADMIN_ENV = {'ZATO_PUBSUB_META_FLUSH_INTERVAL': '0.5'}

API = '/zato/admin/pubsub'
XSS = '<script>alert(1)</script>'


def endpoint_of(admin, name: str) -> dict:
    [endpoint] = [e for e in admin.call('GET', f'{API}/endpoints') if e['name'] == name]
    return endpoint


def test_an_endpoints_last_publication_and_delivery_reach_the_admin_api_and_its_page(web_admin):
    wa = web_admin
    admin = wa.env.admin
    admin.call('POST', f'{API}/topics', {'name': '/meta/orders'})
    admin.call('POST', '/zato/admin/security', {'name': 'meta-rest', 'kind': 'basic_auth', 'username': 'meta-rest',
                                                'password': 'meta-rest-secret-1'})
    created = admin.call('POST', f'{API}/endpoints', {'name': 'meta-rest', 'endpoint_type': 'rest',
                                                      'role': 'pub-sub', 'topic_patterns': 'pub=/meta/**\nsub=/meta/**',
                                                      'security': 'meta-rest'})
    assert (created['last_pub_time'], created['last_delivery_time']) == (None, None)
    auth = ('meta-rest', 'meta-rest-secret-1')
    url = wa.env.url + '/zato/pubsub'

    keys: list[str] = []

    def subscribed() -> bool:
        r = requests.post(f'{url}/subscribe/topic/meta/orders', auth=auth, timeout=TIMEOUT)
        keys.extend([r.json()['sub_key']] if r.status_code == 200 else [])
        return bool(keys)
    wa.env.wait_for(subscribed, timeout=10)  # the worker has heard of the endpoint
    [sub_key] = keys
    before = time.time()
    r = requests.post(f'{url}/topic/meta/orders', json={'data': 'x'}, auth=auth, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    wa.env.wait_for(lambda: endpoint_of(admin, 'meta-rest')['last_pub_time'] is not None, timeout=5)
    endpoint = admin.call('GET', f'{API}/endpoints/{created["id"]}')
    assert before - 1 <= endpoint['last_pub_time'] <= time.time() + 1
    assert endpoint['last_delivery_time'] is None  # pulled, not yet acknowledged: not delivered
    [msg] = requests.post(f'{url}/msg/pull', json={'sub_key': sub_key}, auth=auth, timeout=TIMEOUT).json()
    assert endpoint_of(admin, 'meta-rest')['last_delivery_time'] is None
    r = requests.post(f'{url}/msg/ack', json={'sub_key': sub_key, 'msg_ids': [msg['msg_id']]}, auth=auth,
                      timeout=TIMEOUT)
    assert r.json() == {'acked': 1}
    wa.env.wait_for(lambda: endpoint_of(admin, 'meta-rest')['last_delivery_time'] is not None, timeout=5)
    endpoint = admin.call('GET', f'{API}/endpoints/{created["id"]}')
    assert endpoint['last_pub_time'] <= endpoint['last_delivery_time'] <= time.time() + 1
    # The endpoints page shows both, as ISO 8601
    page = wa.session().get(wa.url + '/pubsub/endpoints', timeout=TIMEOUT).text
    row = page.split('data-name="meta-rest"', 1)[1].split('</tr>', 1)[0]
    for column in ('last_pub_time', 'last_delivery_time'):
        assert re.search(rf'<td class="col-{column}">\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d', row), (column, row)


def test_the_delivery_tasks_of_push_subscriptions_are_listed_by_server_escaped(web_admin):
    wa = web_admin
    admin = wa.env.admin
    admin.call('POST', f'{API}/topics', {'name': '/meta/pushed'})
    admin.call('POST', f'{API}/endpoints', {'name': XSS, 'endpoint_type': 'srv', 'role': 'sub-only',
                                            'topic_patterns': 'sub=/meta/**', 'service': 'zato.ping'})
    sub = admin.call('POST', f'{API}/subscriptions', {'endpoint': XSS, 'topic': '/meta/pushed',
                                                      'delivery_method': 'notify'})

    outs: list[dict] = []

    def listed() -> bool:
        out = admin.call('GET', f'{API}/delivery-tasks')
        outs.append(out)
        return any(t['sub_id'] == sub['id'] for s in out['servers'] for t in s['tasks'])
    wa.env.wait_for(listed, timeout=10)
    out = outs[-1]
    [server] = [s for s in out['servers'] if any(t['sub_id'] == sub['id'] for t in s['tasks'])]
    [task] = [t for t in server['tasks'] if t['sub_id'] == sub['id']]
    assert server['server_name'] == 'server1'
    assert re.fullmatch(r'server1:\d+', task['holder']) and task['holder'] == f'server1:{task["server_pid"]}'
    assert (task['topic'], task['endpoint'], task['queue_depth']) == ('/meta/pushed', XSS, 0)
    assert 0 < task['lease_expires_in'] <= 5
    assert all(t['sub_id'] != sub['id'] for t in out['without_task'])
    # Pushed: the task's subscription and its endpoint say when
    admin.call('POST', f'{API}/topics/{_topic_id(admin)}/publish', {'data': 'pushed'})
    wa.env.wait_for(lambda: endpoint_of(admin, XSS)['last_delivery_time'] is not None, timeout=10)
    # Only one server's, and no server's
    only = admin.call('GET', f'{API}/delivery-tasks?server=server1')
    assert [s['server_name'] for s in only['servers']] == ['server1'] and only['without_task'] == []
    assert sub['id'] in [t['sub_id'] for t in only['servers'][0]['tasks']]
    assert admin.call('GET', f'{API}/delivery-tasks', {'server': 'no-such-server'}) == \
        {'servers': [], 'without_task': []}
    # The CLI's command of the route
    cli = json.loads(zato('pubsub', 'delivery-task', 'list', wa.env.path).stdout)
    assert any(t['sub_id'] == sub['id'] for s in cli['servers'] for t in s['tasks'])
    # The page, linked from the menu of every page, the endpoint's name escaped
    s = wa.session()
    assert 'href="/pubsub/delivery-tasks"' in s.get(wa.url + '/pubsub/topics', timeout=TIMEOUT).text
    page = s.get(wa.url + '/pubsub/delivery-tasks', timeout=TIMEOUT).text
    assert '<h2 class="server" id="server-1">server1</h2>' in page
    assert re.search(r'<td class="col-holder">server1:\d+</td><td class="col-topic">/meta/pushed</td>'
                     r'<td class="col-endpoint">&lt;script&gt;alert\(1\)&lt;/script&gt;</td>', page), page
    assert XSS not in page
    # Deactivated, the subscription has no task: it leaves the page
    admin.call('PUT', f'{API}/subscriptions/{sub["id"]}', {'is_active': False})
    wa.env.wait_for(lambda: all(t['sub_id'] != sub['id'] for s in admin.call('GET', f'{API}/delivery-tasks')['servers']
                                for t in s['tasks']), timeout=10)


def _topic_id(admin) -> int:
    [topic] = [t for t in admin.call('GET', f'{API}/topics') if t['name'] == '/meta/pushed']
    return int(topic['id'])
