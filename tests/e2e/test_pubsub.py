"""Pub/sub through a running server (SQLite quickstart, 2 workers): the admin API of topics, endpoints
and subscriptions, and the REST API of publishers and subscribers with its errors."""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.harness import Env
from zato.admin_client import AdminCallError

PASSWORD = 'pubsub-e2e-secret-1'


def basic_auth(env: Env, name: str) -> tuple[str, str]:
    env.admin.call('POST', '/zato/admin/security', {'name': name, 'kind': 'basic_auth', 'username': name,
                                                    'password': PASSWORD})
    return name, PASSWORD


@pytest.fixture(scope='module')
def ps(env: Env):
    """Topics /e2e/orders and /e2e/limited (max_depth_gd 2); a publisher allowed /e2e/**, a subscriber
    allowed sub=/e2e/*, and a stranger allowed /other/** only."""
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e/orders'})
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e/limited', 'max_depth_gd': 2})
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e/off', 'is_active': False})
    users = {}
    for name, role, patterns in (('e2e-pub', 'pub-only', 'pub=/e2e/**'), ('e2e-sub', 'sub-only', 'sub=/e2e/*'),
                                 ('e2e-stranger', 'pub-sub', 'pub=/other/**\nsub=/other/**')):
        users[name] = basic_auth(env, name)
        env.admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': name, 'endpoint_type': 'rest', 'role': role,
                                                                 'topic_patterns': patterns, 'security': name})
    # Every worker knows the endpoints (each hears of them over the bus)
    env.wait_for(lambda: all(publish(env, users['e2e-pub'], '/e2e/nothing-yet', {'data': 'x'}).status_code == 404
                             for _ in range(6)), timeout=10)
    return users


def publish(env: Env, auth, topic: str, body) -> requests.Response:
    return requests.post(f'{env.url}/zato/pubsub/topic{topic}', json=body, auth=auth, timeout=10,
                         headers={'Connection': 'close'})


def subscribe(env: Env, auth, topic: str) -> requests.Response:
    return requests.post(f'{env.url}/zato/pubsub/subscribe/topic{topic}', auth=auth, timeout=10)


def pull(env: Env, auth, sub_key: str, **extra) -> requests.Response:
    return requests.post(f'{env.url}/zato/pubsub/msg/pull', json={'sub_key': sub_key, **extra}, auth=auth,
                         timeout=10)


def test_a_message_published_is_pulled_in_priority_order_and_acked_once(env, ps):
    r = subscribe(env, ps['e2e-sub'], '/e2e/orders')
    assert r.status_code == 200, r.text
    sub_key = r.json()['sub_key']
    assert sub_key.startswith('zpsk.rest.') and len(sub_key.rsplit('.', 1)[1]) == 32
    ids = {}
    for data, priority in (('low', 1), ('high', 9), ('mid', 5)):
        r = publish(env, ps['e2e-pub'], '/e2e/orders', {'data': data, 'priority': priority})
        assert r.status_code == 200, r.text
        ids[data] = r.json()['msg_id']
    r = pull(env, ps['e2e-sub'], sub_key, visibility_timeout=0.5)
    got = r.json()
    assert [m['data'] for m in got] == ['high', 'mid', 'low']
    assert all(m['delivery_count'] == 1 and m['topic_name'] == '/e2e/orders' for m in got)
    assert pull(env, ps['e2e-sub'], sub_key).json() == []  # invisible meanwhile
    r = requests.post(f'{env.url}/zato/pubsub/msg/ack', json={'sub_key': sub_key, 'msg_ids': [ids['high']]},
                      auth=ps['e2e-sub'], timeout=10)
    assert r.json() == {'acked': 1}
    time.sleep(0.7)
    again = pull(env, ps['e2e-sub'], sub_key).json()
    assert [(m['data'], m['delivery_count']) for m in again] == [('mid', 2), ('low', 2)]
    # 3.1's data_list: several messages in one publication, their msg_ids in order
    r = publish(env, ps['e2e-pub'], '/e2e/orders', {'data_list': [{'data': 'l1'}, {'data': 'l2', 'priority': 9}]})
    listed = r.json()['msg_id_list']
    got = pull(env, ps['e2e-sub'], sub_key).json()
    assert [(m['msg_id'], m['data']) for m in got] == [(listed[1], 'l2'), (listed[0], 'l1')]
    requests.post(f'{env.url}/zato/pubsub/msg/ack', json={'sub_key': sub_key, 'msg_ids': listed}, auth=ps['e2e-sub'],
                  timeout=10)
    # 3.1's get-messages deletes what it returns; a HEAD of it (no body to carry them) takes nothing
    publish(env, ps['e2e-pub'], '/e2e/orders', {'data': 'legacy'})
    r = requests.head(f'{env.url}/zato/pubsub/topic/e2e/orders', params={'sub_key': sub_key}, auth=ps['e2e-sub'],
                      timeout=10)
    assert r.status_code == 200
    r = requests.get(f'{env.url}/zato/pubsub/topic/e2e/orders', params={'sub_key': sub_key}, auth=ps['e2e-sub'],
                     timeout=10)
    assert [m['data'] for m in r.json()] == ['legacy']
    r = requests.delete(f'{env.url}/zato/pubsub/subscribe/topic/e2e/orders', params={'sub_key': sub_key},
                        auth=ps['e2e-sub'], timeout=10)
    assert (r.status_code, r.json()) == (200, {})
    assert pull(env, ps['e2e-sub'], sub_key).status_code == 404


def test_a_topic_the_endpoint_may_not_use_is_a_403_whether_it_exists_or_not(env, ps):
    for topic in ('/e2e/orders', '/e2e/no-such-topic'):
        r = publish(env, ps['e2e-stranger'], topic, {'data': 'x'})
        assert (r.status_code, r.json()['details'], r.json()['code']) == \
               (403, 'You are not allowed to access this resource', 'pubsub_not_allowed')
        assert subscribe(env, ps['e2e-stranger'], topic).status_code == 403
    # A sub-only endpoint may not publish; sub=/e2e/* does not reach two levels down
    assert publish(env, ps['e2e-sub'], '/e2e/orders', {'data': 'x'}).status_code == 403
    assert subscribe(env, ps['e2e-sub'], '/e2e/a/b').status_code == 403


def test_bad_credentials_and_unknown_users_get_the_same_401(env, ps):
    env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-realm', 'kind': 'basic_auth', 'username': 'e2e-realm',
                                                    'password': PASSWORD, 'realm': 'Own realm'})
    env.admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': 'e2e-realm', 'endpoint_type': 'rest',
                                                             'role': 'pub-only', 'topic_patterns': 'pub=/e2e/**',
                                                             'security': 'e2e-realm'})
    env.wait_for(lambda: all(publish(env, ('e2e-realm', PASSWORD), '/e2e/orders', {'data': 'x'}).status_code == 200
                             for _ in range(4)), timeout=10)
    answers = []
    for auth in (('e2e-pub', 'wrong'), ('e2e-realm', 'wrong'), ('no-such-user', PASSWORD), None):
        r = publish(env, auth, '/e2e/orders', {'data': 'x'})
        answers.append((r.status_code, r.json()['details'], r.headers.get('WWW-Authenticate')))
    assert answers == [(401, 'Invalid credentials', 'Basic realm="Zato pub/sub"')] * 4


def test_bad_input_is_a_clear_4xx(env, ps):
    auth = ps['e2e-pub']
    cases = [({'priority': 10}, 400, 'priority'), ({'priority': 0}, 400, 'priority'),
             ({'expiration': -1}, 400, 'expiration'), ({'priority': '5x'}, 400, 'priority'),
             ({'data': None}, 400, 'No data sent on input'), ({'data': 'x' * (1024 * 1024 + 1)}, 413, 'data')]
    for extra, status, words in cases:
        r = publish(env, auth, '/e2e/orders', {'data': 'x', **extra})
        assert r.status_code == status and words in r.json()['details'], (extra, r.status_code, r.text)
    r = requests.post(f'{env.url}/zato/pubsub/topic/e2e/orders', data=b'{not json', auth=auth, timeout=10)
    assert r.status_code == 400
    r = publish(env, auth, '/e2e/orders', {'data_list': [{'data': 'x'}, 'not an object']})
    assert r.status_code == 400 and '`data_list`' in r.json()['details']
    assert publish(env, auth, '/e2e/no-such-topic', {'data': 'x'}).status_code == 404
    r = publish(env, auth, '/e2e/off', {'data': 'x'})
    assert (r.status_code, r.json()['code']) == (503, 'pubsub_topic_inactive')


def test_max_depth_gd_is_a_503_with_a_stable_code(env, ps):
    r = subscribe(env, ps['e2e-sub'], '/e2e/limited')
    sub_key = r.json()['sub_key']
    for i in range(2):
        assert publish(env, ps['e2e-pub'], '/e2e/limited', {'data': str(i)}).status_code == 200
    r = publish(env, ps['e2e-pub'], '/e2e/limited', {'data': 'too many'})
    assert (r.status_code, r.json()['code']) == (503, 'pubsub_max_depth_gd')
    assert 'would exceed GD max depth for `/e2e/limited`' in r.json()['details']
    got = pull(env, ps['e2e-sub'], sub_key).json()
    requests.post(f'{env.url}/zato/pubsub/msg/ack', json={'sub_key': sub_key, 'msg_ids': [got[0]['msg_id']]},
                  auth=ps['e2e-sub'], timeout=10)
    assert publish(env, ps['e2e-pub'], '/e2e/limited', {'data': 'room again'}).status_code == 200


NOT_FOUND = (404, 'pubsub_sub_key_not_found', 'Subscription not found')


def _answer(r: requests.Response) -> tuple[int, str, str]:
    return r.status_code, r.json()['code'], r.json()['details']


def test_a_wrong_sub_key_is_one_404_that_does_not_tell_an_existing_one_from_a_missing_one(env, ps):
    sub_key = subscribe(env, ps['e2e-stranger'], '/other/x').json().get('sub_key')  # no such topic: 404
    assert sub_key is None
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/other/x'})
    sub_key = subscribe(env, ps['e2e-stranger'], '/other/x').json()['sub_key']
    own = subscribe(env, ps['e2e-sub'], '/e2e/orders').json()['sub_key']
    auth = ps['e2e-sub']
    # Another endpoint's, one that does not exist, malformed ones: the same answer, on every call that takes one
    for wrong in (sub_key, 'zpsk.rest.' + '0' * 32, 'x' * 81, '', 7, ['a']):
        assert _answer(pull(env, auth, wrong)) == NOT_FOUND, wrong
        r = requests.post(f'{env.url}/zato/pubsub/msg/ack', json={'sub_key': wrong, 'msg_ids': ['x']}, auth=auth,
                          timeout=10)
        assert _answer(r) == NOT_FOUND, wrong
        if isinstance(wrong, str) and wrong:
            for method, url in (('GET', '/zato/pubsub/topic/e2e/orders'), ('DELETE', '/zato/pubsub/msg/x'),
                                ('DELETE', '/zato/pubsub/subscribe/topic/e2e/orders')):
                r = requests.request(method, env.url + url, params={'sub_key': wrong}, auth=auth, timeout=10)
                assert _answer(r) == NOT_FOUND, (method, url, wrong)
    # The caller's own sub_key with another topic than its own is the same 404
    r = requests.get(f'{env.url}/zato/pubsub/topic/e2e/limited', params={'sub_key': own}, auth=auth, timeout=10)
    assert _answer(r) == NOT_FOUND
    r = requests.delete(f'{env.url}/zato/pubsub/subscribe/topic/e2e/limited', params={'sub_key': own}, auth=auth,
                        timeout=10)
    assert _answer(r) == NOT_FOUND
    assert pull(env, auth, own).status_code == 200  # still there
    requests.delete(f'{env.url}/zato/pubsub/subscribe/topic/e2e/orders', params={'sub_key': own}, auth=auth,
                    timeout=10)
    r = subscribe(env, ps['e2e-stranger'], '/other/x')
    assert (r.status_code, r.json()['details']) == (409, 'Subscription to topic `/other/x` already exists')


def test_admin_api_of_topics_endpoints_and_subscriptions(env, ps):
    topic = env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e/admin', 'on_no_subs_pub': 'drop'})
    assert (topic['has_gd'], topic['max_depth_gd'], topic['on_no_subs_pub']) == (True, 10_000, 'drop')
    for bad in ({'name': 'no-slash'}, {'name': '/a//b'}, {'name': '/a/*'}, {'name': '/x', 'on_no_subs_pub': 'keep'},
                {'name': '/x', 'max_depth_gd': 0}, {'name': '/x', 'no_such_field': 1}):
        with pytest.raises(AdminCallError) as e:
            env.admin.call('POST', '/zato/admin/pubsub/topics', bad)
        assert e.value.status == 400, bad
    with pytest.raises(AdminCallError) as e:
        env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e/admin'})
    assert e.value.status == 409
    sub = env.admin.call('POST', '/zato/admin/pubsub/subscriptions', {'endpoint': 'e2e-sub', 'topic': '/e2e/admin'})
    assert sub['sub_key'].startswith('zpsk.rest.') and sub['delivery_method'] == 'pull'
    listed = env.admin.call('GET', '/zato/admin/pubsub/subscriptions')
    assert all('sub_key' not in s for s in listed)  # a bearer secret: shown by create and get only
    with pytest.raises(AdminCallError) as e:
        env.admin.call('DELETE', f'/zato/admin/pubsub/topics/{topic["id"]}')
    assert e.value.status == 409 and 'delete them first' in e.value.details
    with pytest.raises(AdminCallError) as e:  # sub=/e2e/* only
        env.admin.call('POST', '/zato/admin/pubsub/subscriptions', {'endpoint': 'e2e-pub', 'topic': '/e2e/admin'})
    assert e.value.status == 400
    env.admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{sub["id"]}')
    env.admin.call('DELETE', f'/zato/admin/pubsub/topics/{topic["id"]}')
    with pytest.raises(AdminCallError) as e:
        env.admin.call('GET', f'/zato/admin/pubsub/topics/{topic["id"]}')
    assert e.value.status == 404


PYTHON_API = '''
from zato.server.service import Service

class PythonAPI(Service):
    name = 'e2e-pubsub.python-api'

    def handle(self):
        req = self.request.payload
        ps = self.pubsub
        sub_key = ps.subscribe('/e2e/python', endpoint_name='e2e-sub')
        try:
            first = ps.publish('/e2e/python', data='one', priority=1)
            second = ps.publish('/e2e/python', data={'n': 2}, priority=9, endpoint_name='e2e-pub')
            listed = ps.publish('/e2e/python', data_list=[{'data': 'l1'}, {'data': 'l2'}])
            ps.ack(sub_key, listed)
            out = {'listed': len(listed), 'legacy': [(m['data'], m['msg_id'] in (first, second)) for m in ps.get_messages('/e2e/python',
                                                                                                   sub_key)],
                   'after': ps.pull(sub_key)}
            try:
                ps.publish('/e2e/python', data='x', endpoint_name='e2e-sub')  # a sub-only endpoint
            except Exception as e:
                out['as_subscriber'] = getattr(e, 'status', None)
            try:
                ps.subscribe('/e2e/python', endpoint_name='e2e-sub')
            except Exception as e:
                out['twice'] = getattr(e, 'status', None)
            for wrong in ('zpsk.rest.' + '0' * 32, None):
                try:
                    ps.pull(wrong)
                except Exception as e:
                    out.setdefault('wrong_sub_key', []).append([e.status, e.code, e.details])
            try:
                ps.read_messages('/e2e/other', sub_key)
            except Exception as e:
                out['other_topic'] = [e.status, e.code, e.details]
        finally:
            ps.unsubscribe(sub_key)
        self.response.payload = out
'''


def test_the_python_api_publishes_subscribes_and_reads_in_delivery_order(env, ps):
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e/python'})
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'e2e_pubsub.py', 'source': PYTHON_API})
    answers = []

    def invoked() -> bool:  # each worker hears of the deployment over the bus
        try:
            answers.append(env.admin.call('POST', '/zato/admin/invoke', {'name': 'e2e-pubsub.python-api'}))
        except AdminCallError as e:
            assert e.status == 404, e.details  # not deployed on this worker yet; anything else is a failure
            return False
        return True

    env.wait_for(invoked, timeout=10)
    out = answers[-1]
    wrong = [404, 'pubsub_sub_key_not_found', 'Subscription not found']
    assert out == {'listed': 2, 'legacy': [[{'n': 2}, True], ['one', True]], 'after': [], 'as_subscriber': 403,
                   'twice': 409, 'wrong_sub_key': [wrong, wrong], 'other_topic': wrong}


def test_the_rate_limit_of_an_endpoints_security_definition_applies_to_its_calls(env, ps):
    env.admin.call('POST', '/zato/admin/rate-limits', {'name': 'e2e-ps-limit', 'rules': '* = 3/m'})
    env.admin.call('POST', '/zato/admin/security', {'name': 'e2e-limited', 'kind': 'basic_auth',
                                                    'username': 'e2e-limited', 'password': PASSWORD,
                                                    'rate_limit': 'e2e-ps-limit'})
    env.admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': 'e2e-limited', 'endpoint_type': 'rest',
                                                             'role': 'pub-only', 'topic_patterns': 'pub=/e2e/**',
                                                             'security': 'e2e-limited'})
    auth = ('e2e-limited', PASSWORD)
    with requests.Session() as s:  # one connection: one worker, which counts approximate limits on its own
        s.auth = auth
        env.wait_for(lambda: s.post(f'{env.url}/zato/pubsub/topic/e2e/orders', json={'data': 'x'}).status_code == 200,
                     timeout=10)
        codes = [s.post(f'{env.url}/zato/pubsub/topic/e2e/orders', json={'data': 'x'}).status_code for _ in range(3)]
    assert codes == [200, 200, 429], codes
    # Another endpoint's calls are not charged to it
    assert publish(env, ps['e2e-pub'], '/e2e/orders', {'data': 'x'}).status_code == 200


def test_a_topic_of_the_deepest_name_allowed_is_reached_through_the_url_and_one_deeper_is_not(env, ps):
    deepest = '/e2e' + ''.join(f'/s{i}' for i in range(15))  # 16 segments
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': deepest})
    assert publish(env, ps['e2e-pub'], deepest, {'data': 'deep'}).status_code == 200
    assert publish(env, ps['e2e-pub'], deepest + '/s15', {'data': 'deeper'}).status_code == 404
    with pytest.raises(AdminCallError) as e:
        env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': deepest + '/s15'})
    assert e.value.status == 400 and 'at most 16 segments' in e.value.details


def test_expired_messages_are_deleted_by_the_scheduler_job_zato_pubsub_cleanup(env, ps):
    env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/e2e/expiring', 'max_depth_gd': 3})
    sub_key = subscribe(env, ps['e2e-sub'], '/e2e/expiring').json()['sub_key']
    for i in range(3):
        assert publish(env, ps['e2e-pub'], '/e2e/expiring', {'data': str(i), 'expiration': 100}).status_code == 200
    time.sleep(0.2)
    assert pull(env, ps['e2e-sub'], sub_key).json() == []  # expired: never handed out
    r = publish(env, ps['e2e-pub'], '/e2e/expiring', {'data': 'full'})
    assert r.status_code == 503  # but they count towards max_depth_gd until deleted
    # The job each environment gets, every [pubsub] cleanup_interval seconds (300); run now
    [job] = [j for j in env.admin.call('GET', '/zato/admin/scheduler/jobs') if j['name'] == 'zato.pubsub.cleanup']
    assert (job['service'], job['job_type'], job['seconds'], job['is_active']) == \
        ('zato.pubsub.cleanup-service', 'interval_based', 300, True), job
    env.admin.call('POST', f'/zato/admin/scheduler/jobs/{job["id"]}/execute')
    env.wait_for(lambda: env.admin.call('GET', f'/zato/admin/scheduler/jobs/{job["id"]}')['last_result'] == 'ok',
                 timeout=10)
    assert publish(env, ps['e2e-pub'], '/e2e/expiring', {'data': 'room again'}).status_code == 200
    assert [m['data'] for m in pull(env, ps['e2e-sub'], sub_key).json()] == ['room again']
