"""The pub/sub pages over HTTP, against a running environment and its web-admin: a topic, an endpoint
and a subscription made in the forms are what the admin API and a REST publisher see; a refused form
names the field; a topic with a subscription is not deleted."""

from __future__ import annotations

import re

import requests

from tests.web_admin.conftest import TIMEOUT, csrf


def post_form(s: requests.Session, url: str, data: dict) -> requests.Response:
    token = csrf(s.get(url, timeout=TIMEOUT).text)
    return s.post(url, data={'csrf_token': token, **data}, allow_redirects=False, timeout=TIMEOUT)


def test_topic_endpoint_and_subscription_made_in_the_forms_carry_a_publication(web_admin):
    wa = web_admin
    s = wa.session()
    wa.env.admin.call('POST', '/zato/admin/security', {'name': 'wa-ps', 'kind': 'basic_auth', 'username': 'wa-ps',
                                                       'password': 'wa-ps-secret-1'})
    r = post_form(s, wa.url + '/pubsub/topics/new', {'name': 'no-slash', 'max_depth_gd': '10', 'is_active': 'on'})
    assert r.status_code == 400 and 'expected a name starting with /' in r.text
    r = post_form(s, wa.url + '/pubsub/topics/new', {'name': '/wa/orders', 'max_depth_gd': '10', 'is_active': 'on',
                                                     'has_gd': 'on', 'on_no_subs_pub': 'accept',
                                                     'max_depth_non_gd': '1000', 'is_api_sub_allowed': 'on'})
    assert r.status_code == 303, r.text[:500]
    r = post_form(s, wa.url + '/pubsub/endpoints/new', {
        'name': 'wa-ps', 'is_active': 'on', 'endpoint_type': 'rest', 'role': 'pub-sub',
        'topic_patterns': 'pub=/wa/**\r\nsub=/wa/**', 'security': 'wa-ps'})
    assert r.status_code == 303, r.text[:500]
    r = post_form(s, wa.url + '/pubsub/subscriptions/new', {
        'endpoint': 'wa-ps', 'topic': '/wa/orders', 'is_active': 'on', 'delivery_method': 'pull',
        'delivery_batch_size': '100', 'wrap_one_msg_in_list': 'on', 'delivery_max_retry': '10',
        'delivery_err_should_block': 'on', 'wait_sock_err': '10', 'wait_non_sock_err': '30'})
    assert r.status_code == 303, r.text[:500]
    [sub] = wa.env.admin.call('GET', '/zato/admin/pubsub/subscriptions')
    assert (sub['endpoint'], sub['topic'], sub['delivery_batch_size']) == ('wa-ps', '/wa/orders', 100)
    sub_key = wa.env.admin.call('GET', f'/zato/admin/pubsub/subscriptions/{sub["id"]}')['sub_key']
    r = requests.post(f'{wa.env.url}/zato/pubsub/topic/wa/orders', json={'data': 'from the form'},
                      auth=('wa-ps', 'wa-ps-secret-1'), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    page = s.get(wa.url + '/pubsub/subscriptions', timeout=TIMEOUT).text
    assert '/wa/orders' in page and sub_key not in page  # the list never shows the bearer secret
    topics = s.get(wa.url + '/pubsub/topics', timeout=TIMEOUT).text
    assert re.search(r'/wa/orders', topics)
    [topic] = [t for t in wa.env.admin.call('GET', '/zato/admin/pubsub/topics') if t['name'] == '/wa/orders']
    token = csrf(s.get(wa.url + '/pubsub/topics', timeout=TIMEOUT).text)
    s.post(wa.url + f'/pubsub/topics/{topic["id"]}/delete', data={'csrf_token': token}, timeout=TIMEOUT)
    assert wa.env.admin.call('GET', f'/zato/admin/pubsub/topics/{topic["id"]}')['name'] == '/wa/orders'
    r = post_form(s, wa.url + f'/pubsub/topics/{topic["id"]}/edit', {'name': '/wa/orders', 'max_depth_gd': '0',
                                                                     'max_depth_non_gd': '1000',
                                                                     'on_no_subs_pub': 'accept'})
    assert r.status_code == 400 and 'max_depth_gd' in r.text


def test_a_push_subscription_made_in_the_form_shows_the_worker_whose_task_delivers_it(web_admin):
    wa = web_admin
    s = wa.session()
    admin = wa.env.admin
    admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/wa/pushed'})
    admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': 'wa-srv', 'endpoint_type': 'srv', 'role': 'sub-only',
                                                        'topic_patterns': 'sub=/wa/**', 'service': 'zato.ping'})
    admin.call('POST', '/zato/admin/security', {'name': 'wa-push', 'kind': 'basic_auth', 'username': 'wa-push',
                                                'password': 'wa-push-secret-1'})
    admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': 'wa-push', 'endpoint_type': 'rest',
                                                        'role': 'sub-only', 'topic_patterns': 'sub=/wa/**',
                                                        'security': 'wa-push'})
    form = {'is_active': 'on', 'delivery_method': 'notify', 'delivery_batch_size': '100', 'wrap_one_msg_in_list': 'on',
            'delivery_max_retry': '10', 'delivery_err_should_block': 'on', 'wait_sock_err': '10',
            'wait_non_sock_err': '30', 'out_rest': '', 'out_http_method': 'PUT', 'hook_service': ''}
    # A REST endpoint's push subscription without the connection to push through is refused, naming it
    r = post_form(s, wa.url + '/pubsub/subscriptions/new', {'endpoint': 'wa-push', 'topic': '/wa/pushed', **form})
    assert r.status_code == 400 and 'out_rest' in r.text, r.text[:500]
    r = post_form(s, wa.url + '/pubsub/subscriptions/new', {'endpoint': 'wa-srv', 'topic': '/wa/pushed', **form})
    assert r.status_code == 303, r.text[:500]
    [sub] = [x for x in admin.call('GET', '/zato/admin/pubsub/subscriptions') if x['topic'] == '/wa/pushed']
    assert (sub['delivery_method'], sub['out_http_method'], sub['out_rest']) == ('notify', 'PUT', None)
    # One worker takes its delivery lease; the list says which (server:pid)
    holder = re.compile(r'<td class="col-delivery_task">server1:\d+</td>')
    wa.env.wait_for(lambda: holder.search(s.get(wa.url + '/pubsub/subscriptions', timeout=TIMEOUT).text),
                    timeout=10)
