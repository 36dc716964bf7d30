"""The pub/sub message pages over HTTP, against a running environment and its web-admin: a topic's page
with its message count and last publication, the endpoints' list with theirs, a subscription's queue
read from the ODB (delivery order, a search by a part of the data, pages, a message's every field with
its delivery count and visibility) with message data escaped; and the changes made through the admin
API: publishing from the topic's page, deleting one message, clearing a queue and clearing a topic.

The changes need admin API routes another branch adds (zato/server/admin/pubsub.py); while the server
answers 404 for one, the test that needs it is skipped with the route's name."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
import requests

from tests.web_admin.conftest import TIMEOUT, WebAdmin, csrf
from zato.admin_client import AdminCallError

API = '/zato/admin/pubsub'
PASSWORD = 'wa-psm-secret-1'
XSS = '<script>alert("psm")</script>'


def post(s: requests.Session, page: str, url: str, data: dict[str, str]) -> requests.Response:
    """POSTs a form of `page` (its CSRF token) to `url`, without following the redirect."""
    token = csrf(s.get(page, timeout=TIMEOUT).text)
    return s.post(url, data={'csrf_token': token, **data}, allow_redirects=False, timeout=TIMEOUT)


def route(wa: WebAdmin, method: str, path: str, payload: Any = None) -> Any:
    """Calls an admin API route the pages use; a 404 means the server does not have it yet: the test is skipped."""
    try:
        return wa.env.admin.call(method, path, payload)
    except AdminCallError as e:
        if e.status == 404:
            pytest.skip(f'admin API route {method} {re.sub(r"/[0-9]+", "/{id}", path)} answers 404: not on this '
                        f'server yet ({e.details})')
        raise


def publish(wa: WebAdmin, topic: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f'{wa.env.url}/zato/pubsub/topic{topic}', json=body, auth=('wa-psm', PASSWORD),
                         timeout=TIMEOUT, headers={'Connection': 'close'})


def rows(html: str) -> list[str]:
    """The msg_ids of a queue page's rows, in their order."""
    return re.findall(r'<tr data-msg-id="([^"]+)"', html)


@pytest.fixture(scope='module')
def ps(web_admin: WebAdmin) -> dict[str, Any]:
    """Topics /wa/psm/a (subscribed to) and /wa/psm/b (not), a REST endpoint that may publish and subscribe
    to /wa/psm/**, and its subscription to /wa/psm/a: {'topic': id, 'other': id, 'sub': id, 'sub_key': ...}."""
    wa = web_admin
    wa.env.admin.call('POST', '/zato/admin/security', {'name': 'wa-psm', 'kind': 'basic_auth', 'username': 'wa-psm',
                                                       'password': PASSWORD})
    topic = wa.env.admin.call('POST', f'{API}/topics', {'name': '/wa/psm/a'})
    other = wa.env.admin.call('POST', f'{API}/topics', {'name': '/wa/psm/b'})
    wa.env.admin.call('POST', f'{API}/endpoints', {'name': 'wa-psm', 'endpoint_type': 'rest', 'role': 'pub-sub',
                                                   'topic_patterns': 'pub=/wa/psm/**\nsub=/wa/psm/**',
                                                   'security': 'wa-psm'})
    # Every worker knows the endpoint (each hears of it over the bus): a topic it may use but not there is a 404
    wa.env.wait_for(lambda: all(publish(wa, '/wa/psm/none', {'data': 'x'}).status_code == 404 for _ in range(6)),
                    timeout=10)
    r = requests.post(f'{wa.env.url}/zato/pubsub/subscribe/topic/wa/psm/a', auth=('wa-psm', PASSWORD),
                      timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    [sub] = [s for s in wa.env.admin.call('GET', f'{API}/subscriptions') if s['topic'] == '/wa/psm/a']
    return {'topic': topic['id'], 'other': other['id'], 'sub': sub['id'], 'sub_key': r.json()['sub_key']}


def test_the_queue_is_browsed_from_the_odb_in_delivery_order_searched_paged_and_escaped(web_admin, ps):
    wa = web_admin
    s = wa.session()
    queue = f'{wa.url}/pubsub/subscriptions/{ps["sub"]}/messages'
    assert rows(s.get(queue, timeout=TIMEOUT).text) == []
    topic_page = s.get(f'{wa.url}/pubsub/topics/{ps["topic"]}', timeout=TIMEOUT).text
    assert re.search(r'id="gd-depth">0<', topic_page) and re.search(r'id="last-pub-time">never<', topic_page)

    ids = {}
    for data, priority in (('low one', 1), ('high one', 9), (XSS, 5), ('{"order": 12, "Sku": "ABC"}', 5)):
        r = publish(wa, '/wa/psm/a', {'data': data, 'priority': priority, 'correl_id': f'c-{priority}'})
        assert r.status_code == 200, r.text
        ids[data] = r.json()['msg_id']
    # 27 more, so that the queue has two pages of 25
    r = publish(wa, '/wa/psm/a', {'data_list': [{'data': f'bulk {n:02}', 'priority': 2} for n in range(27)]})
    assert r.status_code == 200, r.text
    bulk = r.json()['msg_id_list']

    page = s.get(queue, timeout=TIMEOUT)
    assert page.status_code == 200
    first = rows(page.text)
    # Delivery order: priority 9 first, then publication time
    assert first[:3] == [ids['high one'], ids[XSS], ids['{"order": 12, "Sku": "ABC"}']] and first[3:] == bulk[:22]
    assert '31 found' in page.text and 'Page 1 of 2' in page.text
    # Message data is text on the page, never markup
    assert XSS not in page.text and '&lt;script&gt;alert(&#34;psm&#34;)&lt;/script&gt;' in page.text
    second = s.get(queue + '?page=2', timeout=TIMEOUT).text
    assert rows(second) == [*bulk[22:], ids['low one']]

    # A search matches a part of the data, in any case; a JSON message by its JSON text
    found = s.get(queue, params={'q': 'sku'}, timeout=TIMEOUT).text
    assert rows(found) == [ids['{"order": 12, "Sku": "ABC"}']] and '1 found' in found
    assert rows(s.get(queue, params={'q': 'ONE'}, timeout=TIMEOUT).text) == [ids['high one'], ids['low one']]
    nothing = s.get(queue, params={'q': 'h_gh%'}, timeout=TIMEOUT).text  # LIKE's wildcards are plain characters
    assert rows(nothing) == [] and 'whose data contains “h_gh%”' in nothing

    # A message's page: every field; a pull raises its delivery count and hides it until its visibility ends
    r = requests.post(f'{wa.env.url}/zato/pubsub/msg/pull', json={'sub_key': ps['sub_key'], 'max_messages': 1,
                                                                  'visibility_timeout': 600},
                      auth=('wa-psm', PASSWORD), timeout=TIMEOUT)
    assert [m['msg_id'] for m in r.json()] == [ids['high one']]
    detail = s.get(f'{queue}/{ids["high one"]}', timeout=TIMEOUT).text
    assert 'id="delivery-count">1<' in detail and 'pulled, not acknowledged yet' in detail
    assert '<pre id="data">high one</pre>' in detail and 'c-9' in detail and '/wa/psm/a' in detail
    assert 'wa-psm' in detail and '/wa/psm/**' in unescape(detail)
    xss_detail = s.get(f'{queue}/{ids[XSS]}', timeout=TIMEOUT).text
    assert XSS not in xss_detail and 'id="delivery-count">0<' in xss_detail and 'id="visible-after">at once' in xss_detail
    assert s.get(f'{queue}/zpsm0000', timeout=TIMEOUT).status_code == 404
    assert s.get(f'{queue}/..%3Cx%3E', timeout=TIMEOUT).status_code == 404
    assert s.get(f'{wa.url}/pubsub/subscriptions/999999/messages', timeout=TIMEOUT).status_code == 404
    assert s.get(f'{wa.url}/pubsub/topics/999999', timeout=TIMEOUT).status_code == 404

    # The topic's page and list: how many messages it holds and when it was last published to
    topic_page = s.get(f'{wa.url}/pubsub/topics/{ps["topic"]}', timeout=TIMEOUT).text
    assert re.search(r'id="gd-depth">31<', topic_page)
    assert re.search(r'id="last-pub-time">20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z<', topic_page)
    assert re.search(r'<td>wa-psm</td><td>pull</td><td class="col-queue_depth">31</td>', topic_page)
    listed = s.get(f'{wa.url}/pubsub/topics', params={'q': '/wa/psm/a'}, timeout=TIMEOUT).text
    assert re.search(r'class="col-last_pub_time">20\d\d-\d\d-\d\dT', listed)
    # The endpoint's: its subscriptions and when it last published and subscribed
    endpoints = s.get(f'{wa.url}/pubsub/endpoints', params={'q': 'wa-psm'}, timeout=TIMEOUT).text
    assert 'class="col-subscriptions">1<' in endpoints
    assert re.search(r'class="col-last_pub_time">20\d\d-\d\d-\d\dT', endpoints)
    assert re.search(r'class="col-last_sub_time">20\d\d-\d\d-\d\dT', endpoints)


def test_a_refused_publication_form_says_why_next_to_the_field(web_admin, ps):
    wa = web_admin
    s = wa.session()
    page = f'{wa.url}/pubsub/topics/{ps["topic"]}'
    before = wa.env.admin.call('GET', f'{API}/topics/{ps["topic"]}')['gd_depth']
    for form, name, error in (({'data': '', 'priority': '5'}, 'data', 'required'),
                              ({'data': 'x', 'priority': '10'}, 'priority', 'expected a number from 1 to 9'),
                              ({'data': 'x', 'priority': 'high'}, 'priority', 'expected a number'),
                              ({'data': 'x', 'priority': '5', 'expiration': '-1'}, 'expiration',
                               'expected 0 or more milliseconds')):
        r = post(s, page, page + '/publish', form)
        assert r.status_code == 400, (form, r.status_code)
        assert f'<span class="error" id="error-{name}">{error}</span>' in r.text, form
        assert 'Traceback' not in r.text
    # What was typed is shown again, escaped
    r = post(s, page, page + '/publish', {'data': XSS, 'priority': '0'})
    assert r.status_code == 400 and XSS not in r.text and '&lt;script&gt;' in r.text
    # A form without its CSRF token changes nothing
    r = s.post(page + '/publish', data={'data': 'x', 'priority': '5'}, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 403
    r = s.post(page + '/clear', data={}, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 403
    assert wa.env.admin.call('GET', f'{API}/topics/{ps["topic"]}')['gd_depth'] == before


def test_publish_delete_and_clear_go_through_the_admin_api(web_admin, ps):
    wa = web_admin
    s = wa.session()
    topic_page = f'{wa.url}/pubsub/topics/{ps["topic"]}'
    queue = f'{wa.url}/pubsub/subscriptions/{ps["sub"]}/messages'
    # Each route the pages use answers (the queue left by the other tests is cleared by the way)
    route(wa, 'POST', f'{API}/subscriptions/{ps["sub"]}/clear')
    probe = route(wa, 'POST', f'{API}/topics/{ps["topic"]}/publish', {'data': 'from the admin API', 'priority': 1})
    route(wa, 'DELETE', f'{API}/subscriptions/{ps["sub"]}/messages/{probe["msg_id"]}')
    assert rows(s.get(queue, timeout=TIMEOUT).text) == []

    # Publish from the topic's page: each field reaches the message
    r = post(s, topic_page, topic_page + '/publish', {'data': XSS, 'priority': '8', 'expiration': '3600000',
                                                      'mime_type': 'text/html', 'correl_id': 'wa-form-1'})
    assert r.status_code == 303, r.text[:500]
    shown = s.get(wa.url + r.headers['Location'], timeout=TIMEOUT).text
    m = re.search(r'Published message (\S+) to', shown)
    assert m, shown[:2000]
    msg_id = m.group(1)
    detail = s.get(f'{queue}/{msg_id}', timeout=TIMEOUT).text
    assert XSS not in detail and '&lt;script&gt;alert(&#34;psm&#34;)&lt;/script&gt;' in detail
    assert 'text/html' in detail and 'wa-form-1' in detail and '<td>3600000</td>' in detail and '<td>8</td>' in detail

    # Delete one message: gone from the queue, the others stay
    before = rows(s.get(queue, timeout=TIMEOUT).text)
    assert msg_id in before
    r = post(s, queue, f'{queue}/{msg_id}/delete', {})
    assert r.status_code == 303
    assert 'Deleted message' in s.get(wa.url + r.headers['Location'], timeout=TIMEOUT).text
    after = rows(s.get(queue, timeout=TIMEOUT).text)
    assert msg_id not in after and len(after) == len(before) - 1
    assert s.get(f'{queue}/{msg_id}', timeout=TIMEOUT).status_code == 404

    # Clear the queue: empty, and the topic holds none of its messages any longer
    r = post(s, queue, wa.url + f'/pubsub/subscriptions/{ps["sub"]}/clear', {})
    assert r.status_code == 303
    assert 'Cleared the queue' in s.get(wa.url + r.headers['Location'], timeout=TIMEOUT).text
    assert rows(s.get(queue, timeout=TIMEOUT).text) == []
    assert wa.env.admin.call('GET', f'{API}/topics/{ps["topic"]}')['gd_depth'] == 0

    # Clear topic: every subscription's queue
    for n in range(3):
        assert publish(wa, '/wa/psm/a', {'data': f'again {n}'}).status_code == 200
    assert len(rows(s.get(queue, timeout=TIMEOUT).text)) == 3
    r = post(s, topic_page, topic_page + '/clear', {})
    assert r.status_code == 303
    assert 'Cleared topic' in s.get(wa.url + r.headers['Location'], timeout=TIMEOUT).text
    assert rows(s.get(queue, timeout=TIMEOUT).text) == []
    # A topic without subscriptions has no queue to clear: said so
    other = f'{wa.url}/pubsub/topics/{ps["other"]}'
    r = post(s, other, other + '/clear', {})
    assert 'has no subscription' in s.get(wa.url + r.headers['Location'], timeout=TIMEOUT).text
    # Every change is in the audit log, by whom
    audit = s.get(wa.url + '/audit', timeout=TIMEOUT).text
    assert all(action in audit for action in ('pubsub/topics.publish', 'pubsub/subscriptions.message.delete',
                                              'pubsub/subscriptions.clear', 'pubsub/topics.clear'))
