"""The services pages and the dashboard in Chromium, as a user goes through them: upload a module, expose
a service on a REST channel secured by a new Basic Auth definition (both made through the web-admin's
forms), call it over HTTP with the generated password, see the calls on the service's page, the
services list and the dashboard's chart; invoke the service from its page; turn its JSON Schema
validation off and on and see the channel's answers change; search and page through the list.
Screenshots of each page go to the artifacts directory (tests/chromium.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.chromium import screenshot
from tests.web_admin.conftest import TIMEOUT, sign_in

WEB_ADMIN_ENV = {'ZATO_STATS_FLUSH_INTERVAL': '0.5'}

SCHEMA = {'type': 'object', 'properties': {'order_id': {'type': 'integer'}}, 'required': ['order_id']}

MODULE = '''
from zato.server.service import Bool, Int, List, Service


class PlaceOrder(Service):
    """Accepts an order; its input is checked against wa_order.json."""
    name = 'wa-browser.place-order'
    schema = 'wa_order.json'

    def handle(self):
        payload = self.request.payload or {}
        self.response.payload = {'order_id': payload.get('order_id'), 'status': 'accepted'}


class GetOrder(Service):
    name = 'wa-browser.get-order'

    class SimpleIO:
        input_required = Int('order_id'),
        input_optional = Bool('with_lines', default=False),
        output_required = 'order_id', 'status'
        output_optional = List('lines'),

    def handle(self):
        self.response.payload = {'order_id': self.request.input.order_id, 'status': 'accepted'}
'''

SERVICE = 'wa-browser.place-order'
CALLS = 4

expect = pytest.importorskip('playwright.sync_api', reason='playwright is not installed').expect


def submit(page: Any, selector: str) -> None:
    """Clicks a form's button and waits for the page it leads to, so no assertion reads the old one."""
    with page.expect_navigation():
        page.click(selector)


def wait_until(wa: Any, page: Any, condition: Any) -> None:
    """Reloads the page until condition(page) holds: statistics arrive with the next flush."""
    def check() -> bool:
        page.reload()
        return bool(condition(page))
    wa.env.wait_for(check, timeout=TIMEOUT * 2, interval=0.3)


def call_order(wa: Any, auth: tuple[str, str] | None, body: dict[str, Any]) -> requests.Response:
    return requests.post(wa.env.url + '/wa-browser/orders', json=body, auth=auth, headers={'Connection': 'close'},
                         timeout=TIMEOUT)


def test_a_service_is_deployed_exposed_called_watched_invoked_and_switched_from_the_browser(web_admin, page):
    wa = web_admin
    wa.env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'wa_order.json', 'source': json.dumps(SCHEMA)})
    sign_in(page, wa)

    # Upload the module through the form: first a broken one, refused with the server's reason
    page.click('nav.menu >> text=Services')
    page.click('#deploy')
    page.set_input_files('#f-module', files=[{'name': 'wa_browser.py', 'mimeType': 'text/x-python',
                                              'buffer': b'class Broken(:\n'}])
    submit(page, '#upload')
    assert 'wa_browser.py, line 1: SyntaxError' in page.locator('#deploy-error').inner_text()
    screenshot(page, 'web-admin/services-deploy-refused')
    page.set_input_files('#f-module', files=[{'name': 'wa_browser.py', 'mimeType': 'text/x-python',
                                              'buffer': MODULE.encode()}])
    submit(page, '#upload')
    assert 'Deployed wa_browser.py, version 1' in page.locator('#deploy-result').inner_text()
    assert page.locator('#deployed-services a').all_inner_texts() == [SERVICE, 'wa-browser.get-order']
    screenshot(page, 'web-admin/services-deploy')

    # A service's SimpleIO, as declared
    page.click('#deployed-services >> text=wa-browser.get-order')
    rows = page.locator('#simple-io tbody tr').all_inner_texts()
    assert [r.split('\t') for r in rows] == [['Input', 'order_id', 'Int', 'Yes', ''],
                                             ['Input', 'with_lines', 'Bool', 'No', 'False'],
                                             ['Output', 'order_id', 'Int', 'Yes', ''],
                                             ['Output', 'status', 'AsIs', 'Yes', ''],
                                             ['Output', 'lines', 'List', 'No', '']], rows
    screenshot(page, 'web-admin/service-simple-io')

    # A Basic Auth definition: the generated password is shown once
    page.goto(wa.url + '/security/basic_auth/new')
    page.fill('#f-name', 'wa-browser-client')
    page.fill('#f-username', 'orders-client')
    submit(page, '#save')
    password = page.locator('#secret').inner_text().strip()
    assert len(password) >= 16
    screenshot(page, 'web-admin/services-basic-auth-created')

    # A REST channel for the service, secured by it
    page.goto(wa.url + '/channels/rest/new')
    page.fill('#f-name', 'wa-browser-orders')
    page.fill('#f-url_path', '/wa-browser/orders')
    page.select_option('#f-service', SERVICE)
    page.select_option('#f-method', 'POST')
    page.select_option('#f-security', 'wa-browser-client')
    submit(page, '#save')
    assert 'Created REST channel `wa-browser-orders`' in page.locator('.flash').inner_text()

    # Called over HTTP with that password (once every worker has the channel); without it, refused
    auth = ('orders-client', password)
    ok: list[requests.Response] = []

    def call() -> bool:
        r = call_order(wa, auth, {'order_id': len(ok)})
        if r.status_code == 200:  # a 404 from a worker without the channel yet runs no service
            ok.append(r)
        return len(ok) == CALLS

    wa.env.wait_for(call, timeout=TIMEOUT)
    assert ok[-1].json() == {'order_id': CALLS - 1, 'status': 'accepted'}
    assert call_order(wa, None, {'order_id': 1}).status_code == 401
    assert call_order(wa, ('orders-client', 'wrong'), {'order_id': 1}).status_code == 401

    # The service's page: its calls, charts, source, channel
    page.goto(wa.url + '/services')
    page.click(f'tr[data-name="{SERVICE}"] a')
    assert page.locator('#service-name').inner_text() == SERVICE
    wait_until(wa, page, lambda p: p.locator('#usage-count').inner_text() == str(CALLS))
    assert page.locator('#usage-errors').inner_text() == '0'
    assert page.locator('#chart-svc-requests circle').count() >= 1  # a point for the minute(s) with calls
    assert page.locator('#chart-svc-requests > title').text_content().startswith(f'{SERVICE}: requests')
    assert "schema = 'wa_order.json'" in page.locator('pre.source').inner_text()
    assert page.locator('#channels tr[data-name="wa-browser-orders"]').count() == 1
    assert page.is_checked('#f-is_json_schema_enabled')
    screenshot(page, 'web-admin/service')

    # The services list and the dashboard count them too
    page.goto(wa.url + '/services')
    wait_until(wa, page, lambda p: p.locator(f'tr[data-name="{SERVICE}"] td.calls').inner_text() == str(CALLS))
    screenshot(page, 'web-admin/services')
    page.goto(wa.url + '/')
    # (a worker is down after three missed heartbeats: on a loaded machine, one may be late for a moment)
    wait_until(wa, page, lambda p: int(p.locator('#total-calls').inner_text()) >= CALLS
               and p.locator('#workers td.status-up').count() == 2)
    assert page.locator('#chart-all-requests circle').count() >= 1
    assert page.locator(f'#services tr[data-name="{SERVICE}"]').count() == 1
    screenshot(page, 'web-admin/dashboard-charts')

    # Invoke from the page: the response shown, the payload kept; bad JSON refused next to the field
    page.goto(wa.url + f'/services/{SERVICE}')
    page.fill('#f-payload', '{"order_id": 42}')
    submit(page, '#invoke-button')
    assert json.loads(page.locator('#invoke-response').inner_text()) == {'order_id': 42, 'status': 'accepted'}
    assert page.locator('#invoke-status').inner_text().startswith('OK · HTTP 200')
    assert page.input_value('#f-payload') == '{"order_id": 42}'
    screenshot(page, 'web-admin/service-invoked')
    page.fill('#f-payload', '{"order_id": ')
    submit(page, '#invoke-button')
    assert page.locator('#error-payload').inner_text().startswith('Not valid JSON')
    assert page.input_value('#f-payload') == '{"order_id": '
    page.fill('#f-payload', '{"order_id": "not a number"}')
    submit(page, '#invoke-button')
    assert page.locator('#invoke-status').inner_text().startswith('Failed · HTTP 400')
    screenshot(page, 'web-admin/service-invoke-failed')

    # JSON Schema validation off: the channel takes what the schema refuses; back on, refused again
    bad = {'order_id': 'not a number'}
    assert call_order(wa, auth, bad).status_code == 400
    page.uncheck('#f-is_json_schema_enabled')
    submit(page, '#save-options')
    assert f'Saved the options of service `{SERVICE}`' in page.locator('.flash').inner_text()
    assert not page.is_checked('#f-is_json_schema_enabled')
    wa.env.wait_for(lambda: all(call_order(wa, auth, bad).status_code == 200 for _ in range(4)), timeout=TIMEOUT)
    screenshot(page, 'web-admin/service-schema-off')
    page.check('#f-is_json_schema_enabled')
    submit(page, '#save-options')
    assert page.is_checked('#f-is_json_schema_enabled')
    wa.env.wait_for(lambda: all(call_order(wa, auth, bad).status_code == 400 for _ in range(4)), timeout=TIMEOUT)

    page.goto(wa.url + '/audit?q=' + SERVICE)
    actions = page.locator('table.list tbody tr td:nth-child(3)').all_inner_texts()
    assert {'service.edit', 'service.invoke'} <= set(actions), actions


def test_the_services_list_is_searched_and_paged_in_the_browser(web_admin, page):
    wa = web_admin
    source = 'from zato.server.service import Service\n' + ''.join(
        f'\nclass P{i:02}(Service):\n    name = "wa-paged.p{i:02}"\n    def handle(self):\n        pass\n'
        for i in range(32))
    wa.env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'wa_paged.py', 'source': source})
    sign_in(page, wa)
    page.goto(wa.url + '/services')
    page.fill('input[name=q]', 'wa-paged')
    submit(page, 'form.search button')
    rows = page.locator('#service-list tbody tr')
    expect(rows).to_have_count(25)
    assert page.locator('.count').inner_text() == '32 found'
    assert page.locator('.pager span').inner_text() == 'Page 1 of 2'
    screenshot(page, 'web-admin/services-search')
    submit(page, '.pager a[rel=next]')
    assert page.locator('.pager span').inner_text() == 'Page 2 of 2'
    assert rows.all_inner_texts()[0].startswith('wa-paged.p25')
    expect(rows).to_have_count(7)
    assert page.input_value('input[name=q]') == 'wa-paged'
    screenshot(page, 'web-admin/services-page-2')
    page.fill('input[name=q]', 'wa-paged p31')
    submit(page, 'form.search button')
    expect(rows).to_have_count(1)
    assert page.locator('.count').inner_text() == '1 found'
    page.click('#service-list tbody a')
    assert page.locator('#service-name').inner_text() == 'wa-paged.p31'
    assert page.locator('#no-sio').count() == 1
