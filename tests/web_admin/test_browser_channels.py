"""WebSocket, JSON-RPC and Kafka channels and rate-limit definitions in the web-admin, in headless
Chromium against a running environment: a WebSocket channel made through its form, a real client
connected to it, seen on the channel's clients page, broadcast to and disconnected from there; a
JSON-RPC channel made and called; a rate-limit definition whose bad rule text is flagged as it is
typed and on save, then fixed, attached to a REST channel through that channel's form and enforced
(429); a Kafka channel read from a real broker (Tansu), with each worker's consumer on its status page.
Every page is saved as a screenshot (tests/chromium.py)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.chromium import screenshot
from tests.web_admin.conftest import TIMEOUT, WebAdmin, csrf, sign_in
from zato_web_admin.views.channels import broadcast_data

SERVICES = '''
from zato.server.service import Service

class Echo(Service):
    name = 'wac.echo'

    def handle(self):
        self.response.payload = self.request.payload

class Add(Service):
    name = 'wac.add'

    def handle(self):
        self.response.payload = {'sum': sum(self.request.payload)}

class Ok(Service):
    name = 'wac.ok'

    def handle(self):
        self.response.payload = {'ok': True}

class Consume(Service):
    name = 'wac.consume'

    def handle(self):
        pass
'''

NAMES = ('wac.echo', 'wac.add', 'wac.ok', 'wac.consume')


@pytest.fixture(scope='module')
def wa(web_admin: WebAdmin) -> WebAdmin:
    env = web_admin.env
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'wac_services.py', 'source': SERVICES})
    env.wait_for(lambda: set(NAMES) <= {s['name'] for s in env.admin.call('GET', '/zato/admin/services')},
                 timeout=TIMEOUT)
    return web_admin


@pytest.fixture
def signed_in(wa: WebAdmin, page: Any) -> Any:
    sign_in(page, wa)
    page.on('dialog', lambda dialog: dialog.accept())  # the data-confirm of Delete and Disconnect
    return page


def fill(page: Any, **values: str) -> None:
    """Fills form fields #f-<name>: typed in, or chosen in a select."""
    for name, value in values.items():
        field = page.locator(f'#f-{name}')
        if field.evaluate('e => e.tagName') == 'SELECT':
            field.select_option(value)
        else:
            field.fill(value)


def flash(page: Any) -> str:
    return str(page.locator('.flash').inner_text())


def row(page: Any, name: str) -> Any:
    return page.locator(f'tr[data-name="{name}"]')


def served(wa: WebAdmin, path: str, status: int, method: str = 'GET') -> None:
    """Until every worker routes `path` (fresh connections spread over the workers)."""
    wa.env.wait_for(lambda: all(requests.request(method, wa.env.url + path, headers={'Connection': 'close'},
                                                 timeout=TIMEOUT).status_code == status for _ in range(4)),
                    timeout=TIMEOUT)


def audited(wa: WebAdmin, *actions: str) -> None:
    text = wa.session().get(wa.url + '/audit', timeout=TIMEOUT).text
    for action in actions:
        assert action in text, action


# ################################################################################################ WebSockets

def test_a_websocket_channel_made_in_the_form_shows_its_client_broadcasts_to_it_and_disconnects_it(wa, signed_in):
    page = signed_in
    page.goto(wa.url + '/channels/wsx')
    page.click('#create')
    fill(page, name='wac ws', url_path='/zato/wac', service='wac.echo', data_format='',
           origins='https://example.com\n*', send_queue_max='50')
    screenshot(page, 'web-admin/channels-wsx-form')
    page.click('#save')
    # Refused by the server, the message next to the field, what was typed kept
    assert 'reserved' in page.locator('#error-url_path').inner_text()
    assert page.input_value('#f-send_queue_max') == '50'
    assert page.input_value('#f-origins') == 'https://example.com\n*'
    screenshot(page, 'web-admin/channels-wsx-form-refused')
    fill(page, url_path='/wac/ws')
    page.click('#save')
    assert flash(page) == 'Created WebSocket channel `wac ws`.'
    assert row(page, 'wac ws').locator('td.col-url_path').inner_text() == '/wac/ws'
    screenshot(page, 'web-admin/channels-wsx-list')
    created = [c for c in wa.env.admin.call('GET', '/zato/admin/channels/wsx') if c['name'] == 'wac ws'][0]
    assert created['send_queue_max'] == 50 and created['origins'] == ['https://example.com', '*']
    assert created['ping_interval'] == 30  # the form's default

    served(wa, '/wac/ws', 426)
    with connect(f'ws://127.0.0.1:{wa.env.base_port}/wac/ws', open_timeout=TIMEOUT) as ws:
        ws.send('hello')
        assert ws.recv(timeout=TIMEOUT) == 'hello'

        row(page, 'wac ws').locator('a', has_text='Clients').click()
        assert page.locator('h1').inner_text() == 'Clients of WebSocket channel wac ws'
        clients = page.locator('#clients tr[data-client]')
        assert clients.count() == 1
        client_id = clients.first.get_attribute('data-client')
        assert re.fullmatch(r'wsx\.[0-9a-f]+', client_id or '')
        assert '127.0.0.1' in clients.first.inner_text()
        screenshot(page, 'web-admin/channels-wsx-clients')

        # JSON that does not parse: refused next to the field, the text kept
        fill(page, data='{"hello": ', format='json')
        page.click('#broadcast-send')
        assert 'not valid JSON' in page.locator('#error-data').inner_text()
        assert page.input_value('#f-data') == '{"hello": '
        assert page.input_value('#f-format') == 'json'
        screenshot(page, 'web-admin/channels-wsx-broadcast-refused')

        fill(page, data='{"hello": "from the web-admin", "n": [1, 2]}')
        page.click('#broadcast-send')
        assert flash(page) == 'Broadcast to the clients of `wac ws`.'
        assert json.loads(ws.recv(timeout=TIMEOUT)) == {'hello': 'from the web-admin', 'n': [1, 2]}

        fill(page, data='plain\ntext', format='text')
        page.click('#broadcast-send')
        assert flash(page) == 'Broadcast to the clients of `wac ws`.'
        assert ws.recv(timeout=TIMEOUT) == 'plain\ntext'

        page.locator(f'tr[data-client="{client_id}"] button', has_text='Disconnect').click()
        assert flash(page) == f'Disconnected client `{client_id}`.'
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000

    # Gone from the page once the server let it go
    deadline = time.monotonic() + TIMEOUT
    while page.locator('#clients tr[data-client]').count() and time.monotonic() < deadline:
        page.reload()
    assert page.locator('#clients tr[data-client]').count() == 0
    assert 'No client is connected.' in page.locator('#clients').inner_text()
    screenshot(page, 'web-admin/channels-wsx-clients-none')
    audited(wa, 'channels/wsx.create', 'channels/wsx.broadcast', 'channels/wsx.disconnect')


def test_a_broadcast_form_sends_its_text_as_is_or_json_only_when_it_parses():
    assert broadcast_data('one\r\ntwo', 'text') == 'one\ntwo'
    assert broadcast_data('[1, {"a": null}]', 'json') == [1, {'a': None}]
    for text, data_format, error in (('', 'text', 'required'), ('NaN', 'json', 'not valid JSON'),
                                     ('{"a": ', 'json', 'not valid JSON'), ('<a/>', 'xml', 'expected text or JSON')):
        with pytest.raises(ValueError, match=error):
            broadcast_data(text, data_format)


def test_a_client_that_is_gone_is_a_message_not_an_error_page(wa):
    s = wa.session()
    wsx = [c for c in wa.env.admin.call('GET', '/zato/admin/channels/wsx') if c['name'] == 'wac ws']
    channel_id = wsx[0]['id'] if wsx else wa.env.admin.call(
        'POST', '/zato/admin/channels/wsx', {'name': 'wac ws', 'url_path': '/wac/ws', 'service': 'wac.echo'})['id']
    page_html = s.get(f'{wa.url}/channels/wsx/{channel_id}/clients', timeout=TIMEOUT).text
    r = s.post(f'{wa.url}/channels/wsx/{channel_id}/clients/wsx.0000/disconnect', data={'csrf_token': csrf(page_html)},
               timeout=TIMEOUT)
    assert r.status_code == 200 and 'is not connected' in r.text and 'flash error' in r.text
    # No CSRF token, no disconnect
    r = s.post(f'{wa.url}/channels/wsx/{channel_id}/clients/wsx.0000/disconnect', timeout=TIMEOUT)
    assert r.status_code == 403
    assert s.get(f'{wa.url}/channels/wsx/999999/clients', timeout=TIMEOUT).status_code == 404


# ################################################################################################ JSON-RPC

def test_a_json_rpc_channel_made_in_the_form_is_called(wa, signed_in):
    page = signed_in
    page.goto(wa.url + '/channels/jsonrpc/new')
    fill(page, name='wac rpc', url_path='/wac/rpc', service_whitelist='wac.add\nzato.ping')
    page.click('#save')
    assert 'internal service' in page.locator('#error-service_whitelist').inner_text()
    assert page.input_value('#f-service_whitelist') == 'wac.add\nzato.ping'
    fill(page, service_whitelist='wac.add\nwac.ok')
    screenshot(page, 'web-admin/channels-jsonrpc-form')
    page.click('#save')
    assert flash(page) == 'Created JSON-RPC channel `wac rpc`.'
    assert row(page, 'wac rpc').locator('td.col-service_whitelist').inner_text() == 'wac.add, wac.ok'
    screenshot(page, 'web-admin/channels-jsonrpc-list')

    call = {'jsonrpc': '2.0', 'method': 'wac.add', 'params': [1, 2, 39], 'id': 7}
    wa.env.wait_for(lambda: all(requests.post(wa.env.url + '/wac/rpc', json=call, headers={'Connection': 'close'},
                                              timeout=TIMEOUT).status_code == 200 for _ in range(4)), timeout=TIMEOUT)
    r = requests.post(wa.env.url + '/wac/rpc', json=call, timeout=TIMEOUT)
    assert r.json() == {'jsonrpc': '2.0', 'id': 7, 'result': {'sum': 42}}

    # A JSON-RPC channel is not listed among REST channels, though the server keeps it as one
    page.goto(wa.url + '/channels/rest')
    assert 'wac rpc' not in page.locator('table.list').inner_text()

    # Edited: a method taken off the list is no longer found
    page.goto(wa.url + '/channels/jsonrpc')
    row(page, 'wac rpc').locator('a', has_text='Edit').click()
    assert page.input_value('#f-service_whitelist') == 'wac.add\nwac.ok'
    fill(page, service_whitelist='wac.ok')
    page.click('#save')
    assert flash(page) == 'Saved JSON-RPC channel `wac rpc`.'
    wa.env.wait_for(lambda: all(requests.post(wa.env.url + '/wac/rpc', json=call, headers={'Connection': 'close'},
                                              timeout=TIMEOUT).json().get('error', {}).get('code') == -32601
                                for _ in range(4)), timeout=TIMEOUT)
    audited(wa, 'channels/jsonrpc.create', 'channels/jsonrpc.edit')


# ################################################################################################ rate limits

def check_note(page: Any, pattern: str, kind: str) -> str:
    """The as-you-type verdict on the rules, once the server's answer is shown."""
    note = page.locator('#check-rules')
    page.wait_for_function('([sel, re, kind]) => { const n = document.querySelector(sel);'
                           ' return n && n.className === kind && new RegExp(re).test(n.textContent); }',
                           arg=['#check-rules', pattern, kind])
    return str(note.inner_text())


def test_a_rate_limit_checked_as_typed_and_on_save_then_attached_to_a_rest_channel_gives_429(wa, signed_in):
    page = signed_in
    page.goto(wa.url + '/security/rate-limits')
    page.click('#create')
    bad = '# partners\n* = 2/h\n10.0.0.1 = 5/x'
    fill(page, name='wac-limit', rules=bad)
    assert check_note(page, 'line 3', 'error') == "line 3: invalid limit '5/x': expected N/s, N/m, N/h, N/d or *"
    screenshot(page, 'web-admin/rate-limits-form-checked')
    page.click('#save')
    assert page.locator('#error-rules').inner_text() == \
        "Invalid input `rules`: line 3: invalid limit '5/x': expected N/s, N/m, N/h, N/d or *"
    assert page.input_value('#f-rules') == bad
    assert page.input_value('#f-name') == 'wac-limit'
    screenshot(page, 'web-admin/rate-limits-form-refused')

    fill(page, rules='# partners\n* = 2/h')
    assert check_note(page, '^OK', 'help') == 'OK: 1 rule'
    page.click('#save')
    assert flash(page) == 'Created rate-limit definition `wac-limit`.'
    assert row(page, 'wac-limit').locator('td.col-mode').inner_text() == 'approximate'
    screenshot(page, 'web-admin/rate-limits-list')

    # The security forms offer it too
    page.goto(wa.url + '/security/basic_auth/new')
    assert 'wac-limit' in page.locator('#f-rate_limit option').all_inner_texts()

    # Attached to a REST channel through the channel's own form
    page.goto(wa.url + '/channels/rest/new')
    fill(page, name='wac limited', url_path='/wac/limited', service='wac.ok', method='GET', rate_limit='wac-limit')
    page.click('#save')
    assert flash(page) == 'Created REST channel `wac limited`.'
    row(page, 'wac limited').locator('a', has_text='Edit').click()
    assert page.input_value('#f-rate_limit') == 'wac-limit'

    # Probed with POST (405, decided before any limit), so that the probes use up no quota
    served(wa, '/wac/limited', 405, 'POST')
    s = requests.Session()  # one connection, so one worker and its count
    statuses = []
    for _ in range(8):
        r = s.get(wa.env.url + '/wac/limited', timeout=TIMEOUT)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers['Retry-After']) >= 1
            break
    # Two an hour: the third is refused (a new hour starting meanwhile would allow two more)
    assert statuses[0] == 200 and statuses[-1] == 429 and 3 <= len(statuses) <= 5, statuses
    audited(wa, 'security/rate-limits.create', 'channels/rest.create')


def test_the_rule_check_needs_a_csrf_token_and_answers_json(wa):
    s = wa.session()
    token = csrf(s.get(wa.url + '/security/rate-limits/new', timeout=TIMEOUT).text)
    r = s.post(wa.url + '/security/rate-limits/check', data={'text': '* = 1/m'}, timeout=TIMEOUT)
    assert r.status_code == 403
    r = s.post(wa.url + '/security/rate-limits/check', data={'csrf_token': token, 'text': '* = 1/m\n2001:db8::/32 = 2/s'},
               timeout=TIMEOUT)
    assert r.json() == {'ok': True, 'error': '', 'note': 'OK: 2 rules'}
    r = s.post(wa.url + '/security/rate-limits/check', data={'csrf_token': token, 'text': 'nonsense'},
               timeout=TIMEOUT)
    assert r.json() == {'ok': False, 'error': "line 1: expected 'source = limit', got 'nonsense'"}
    # Without a session: no answer about the rules
    r = requests.post(wa.url + '/security/rate-limits/check', data={'csrf_token': token, 'text': '* = 1/m'},
                      timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code == 403


def test_a_rate_limit_is_edited_and_deleted_and_one_in_use_is_not_deleted(wa, signed_in):
    page = signed_in
    page.goto(wa.url + '/security/rate-limits/new')
    fill(page, name='wac-parent', rules='127.0.0.1 = *')
    page.click('#save')
    page.goto(wa.url + '/security/rate-limits/new')
    fill(page, name='wac-child', rules='* = 10/m', parent='wac-parent')
    page.click('#save')
    assert flash(page) == 'Created rate-limit definition `wac-child`.'
    assert row(page, 'wac-child').locator('td.col-parent').inner_text() == 'wac-parent'

    row(page, 'wac-parent').locator('button', has_text='Delete').click()
    assert 'is used by: wac-child' in flash(page)
    row(page, 'wac-child').locator('a', has_text='Edit').click()
    assert page.input_value('#f-parent') == 'wac-parent'
    fill(page, rules='* = 10/m\n10.0.0.0/8 = 5/s burst=2', parent='')
    page.click('#save')
    assert flash(page) == 'Saved rate-limit definition `wac-child`.'
    item = [i for i in wa.env.admin.call('GET', '/zato/admin/rate-limits') if i['name'] == 'wac-child'][0]
    # Kept as typed, with LF line ends though the browser sent CRLF
    assert item['parent'] is None and item['rules'] == '* = 10/m\n10.0.0.0/8 = 5/s burst=2'
    for name in ('wac-child', 'wac-parent'):
        row(page, name).locator('button', has_text='Delete').click()
        assert flash(page) == f'Deleted rate-limit definition `{name}`.'
    audited(wa, 'security/rate-limits.edit', 'security/rate-limits.delete')


# ################################################################################################ Kafka

@pytest.fixture(scope='module')
def kafka_peer() -> Iterator[Any]:
    from tests.integration.conftest import started
    from tests.integration.peers import KafkaPeer
    yield from started(KafkaPeer(), 'kafka')


def test_a_kafka_channel_made_in_the_form_consumes_and_its_status_page_shows_each_worker(wa, signed_in, kafka_peer):
    from confluent_kafka import Producer

    env, page = wa.env, signed_in
    env.admin.call('POST', '/zato/admin/outconns/kafka', {'name': 'wac kafka', 'server_list': kafka_peer.bootstrap})
    topic = f'wac-{uuid.uuid4().hex[:8]}'
    page.goto(wa.url + '/channels/kafka/new')
    fill(page, name='wac orders', out_conn='wac kafka', topics=f'{topic}\nbad topic', service='wac.consume')
    page.click('#save')
    assert 'is not a Kafka topic name' in page.locator('#error-topics').inner_text()
    fill(page, topics=topic)
    screenshot(page, 'web-admin/channels-kafka-form')
    page.click('#save')
    assert flash(page) == 'Created Kafka channel `wac orders`.'
    created = [c for c in env.admin.call('GET', '/zato/admin/channels/kafka') if c['name'] == 'wac orders'][0]
    assert created['group_id'] == 'wac orders'  # the server's default for an empty field
    screenshot(page, 'web-admin/channels-kafka-list')

    producer = Producer({'bootstrap.servers': kafka_peer.bootstrap})
    producer.produce(topic, json.dumps({'order': 1}).encode())
    assert producer.flush(TIMEOUT) == 0

    row(page, 'wac orders').locator('a', has_text='Status').click()
    assert page.locator('h1').inner_text() == 'Status of Kafka channel wac orders'
    workers = page.locator('#workers tbody tr')

    def processed() -> int:
        return sum(int(cells[4] or 0) for cells in (r.locator('td').all_inner_texts() for r in workers.all())
                   if len(cells) == 8)

    # One consumer per worker, each answering; a group takes a few seconds to form
    deadline = time.monotonic() + 60
    while (processed() < 1 or workers.count() != 2) and time.monotonic() < deadline:
        page.reload()
    assert processed() == 1 and workers.count() == 2
    assert 'consuming' in page.locator('#workers').inner_text()
    screenshot(page, 'web-admin/channels-kafka-status')
    audited(wa, 'channels/kafka.create')
