"""The services pages and the dashboard over HTTP, against a running environment: the admin API's
service details (source, SimpleIO, rate limit), the list with usage, search and pagination, a
service's page with its channels, options and Invoke form, the upload of a module, the audit log, and a
service the ODB has but no server has loaded yet."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import unescape
from typing import Any

import requests

from tests.web_admin.conftest import TIMEOUT, csrf
from zato.admin_client import AdminCallError
from zato.odb.models import DeployedCode, Service
from zato_web_admin.config import WebAdminConfig

WEB_ADMIN_ENV = {'ZATO_STATS_FLUSH_INTERVAL': '0.5'}

MODULE = '''
from zato.server.service import Service, Int, Text, BadRequest


class Greet(Service):
    name = 'wa-http.greet'

    class SimpleIO:
        input_required = Text('name'),
        input_optional = Int('times', default=1),
        output_required = 'greeting',

    def handle(self):
        self.response.payload.greeting = ' '.join(['Hello ' + self.request.input.name] * self.request.input.times)


class Fails(Service):
    name = 'wa-http.fails'

    def handle(self):
        raise ValueError('secret internal detail')


class Refuses(Service):
    name = 'wa-http.refuses'

    def handle(self):
        raise BadRequest('Customer <b>closed</b>')


class Silent(Service):
    name = 'wa-http.silent'

    def handle(self):
        pass
'''


def text_of(html: str) -> str:
    """The page's visible text, tags dropped, entities decoded, spaces folded."""
    return ' '.join(unescape(re.sub(r'<[^>]+>', ' ', html)).split())


def eventually(wa: Any, method: str, path: str, payload: Any = None) -> Any:
    """An admin call that may reach a worker that has not loaded a service deployed a moment ago."""
    out: list[Any] = []

    def call() -> bool:
        try:
            out.append(wa.env.admin.call(method, path, payload))
        except AdminCallError as e:
            if e.status != 404:
                raise
            return False
        return True

    wa.env.wait_for(call, timeout=TIMEOUT)
    return out[-1]


def deploy(wa: Any, file_name: str, source: str) -> list[str]:
    out = wa.env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': source})
    wa.env.wait_for(lambda: all(s in [x['name'] for x in wa.env.admin.call('GET', '/zato/admin/services')]
                                for s in out['services']), timeout=TIMEOUT)
    return out['services']


def post(s: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    """A form POST with the session's CSRF token, read from the page the form is on."""
    token = csrf(s.get(url.rsplit('/', 1)[0], timeout=TIMEOUT).text)
    return s.post(url, data={'csrf_token': token, **data}, timeout=TIMEOUT, allow_redirects=False)


def call_until_ok(wa: Any, path: str, times: int) -> None:
    """Calls a new channel `times` times successfully (a worker may not know the channel for a moment;
    its 404 runs no service, so it is not counted in the statistics)."""
    done = []

    def call() -> bool:
        r = requests.post(wa.env.url + path, json={'name': 'Ann'}, headers={'Connection': 'close'}, timeout=TIMEOUT)
        if r.status_code == 200:
            done.append(r)
        return len(done) == times

    wa.env.wait_for(call, timeout=TIMEOUT)


def audit_text(wa: Any, s: requests.Session, query: str) -> str:
    return text_of(s.get(wa.url + '/audit', params={'q': query}, timeout=TIMEOUT).text)


def test_the_admin_api_gives_a_services_source_simple_io_and_rate_limit(web_admin):
    wa = web_admin
    deploy(wa, 'wa_http.py', MODULE)
    info = eventually(wa, 'GET', '/zato/admin/services/wa-http.greet')
    assert info['source'] == MODULE
    assert info['file_name'] == 'wa_http.py'
    sio = info['simple_io']
    assert sio['input_required'] == [{'name': 'name', 'type': 'Text', 'default': None}]
    assert sio['input_optional'] == [{'name': 'times', 'type': 'Int', 'default': '1'}]
    assert [e['name'] for e in sio['output_required']] == ['greeting']
    assert info['rate_limit'] is None
    assert eventually(wa, 'GET', '/zato/admin/services/wa-http.fails')['simple_io'] is None

    wa.env.admin.call('POST', '/zato/admin/rate-limits', {'name': 'wa-http-limit', 'rules': '* = 100/m'})
    wa.env.admin.call('PUT', '/zato/admin/services/wa-http.greet', {'rate_limit': 'wa-http-limit'})
    try:
        wa.env.wait_for(lambda: wa.env.admin.call('GET', '/zato/admin/services/wa-http.greet')['rate_limit']
                        == 'wa-http-limit', timeout=TIMEOUT)
    finally:
        wa.env.admin.call('PUT', '/zato/admin/services/wa-http.greet', {'rate_limit': None})


def test_the_services_list_shows_user_services_with_their_usage_not_internal_ones(web_admin):
    wa = web_admin
    deploy(wa, 'wa_http.py', MODULE)
    wa.env.channel('wa-http-greet', '/wa-http/greet', 'wa-http.greet')
    call_until_ok(wa, '/wa-http/greet', 3)
    s = wa.session()

    def row() -> str:
        html = s.get(wa.url + '/services', params={'q': 'wa-http.greet'}, timeout=TIMEOUT).text
        m = re.search(r'<tr data-name="wa-http.greet">(.*?)</tr>', html, re.S)
        assert m, html
        return m.group(1)

    wa.env.wait_for(lambda: re.search(r'class="num calls">3<', row()), timeout=TIMEOUT)
    cells = re.findall(r'<td[^>]*>(.*?)</td>', row(), re.S)
    assert 'href="/services/wa-http.greet"' in cells[0]
    assert cells[1] == 'wa_http.py'
    assert re.fullmatch(r'\d+\.\d+', cells[4]) and re.fullmatch(r'\d+\.\d+', cells[5])  # mean and p99 ms
    assert re.fullmatch(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d', cells[6])         # last call
    assert cells[7] == 'Yes'                                                   # active

    everything = s.get(wa.url + '/services', timeout=TIMEOUT).text
    assert 'data-name="wa-http.fails"' in everything
    assert 'data-name="zato.' not in everything and 'data-name="pub.zato.' not in everything


def test_the_services_list_is_searched_and_paginated(web_admin):
    wa = web_admin
    many = 'from zato.server.service import Service\n' + ''.join(
        f'\nclass S{i:02}(Service):\n    name = "wa-many.s{i:02}"\n    def handle(self):\n        pass\n'
        for i in range(30))
    deploy(wa, 'wa_many.py', many)
    s = wa.session()

    def names(**params: Any) -> list[str]:
        html = s.get(wa.url + '/services', params=params, timeout=TIMEOUT).text
        return re.findall(r'<tr data-name="([^"]+)">', html)

    first, second = names(q='wa-many'), names(q='wa-many', page=2)
    assert first == [f'wa-many.s{i:02}' for i in range(25)]
    assert second == [f'wa-many.s{i:02}' for i in range(25, 30)]
    html = s.get(wa.url + '/services', params={'q': 'wa-many'}, timeout=TIMEOUT).text
    assert '30 found' in html and 'Page 1 of 2' in html and 'href="?q=wa-many&amp;page=2"' in html
    assert names(q='wa-many s07') == ['wa-many.s07']           # every word must match
    assert names(q='wa_many.py') == first                     # the module's name is searched too
    assert names(q='no-such-thing-at-all') == []


def test_a_service_page_shows_its_source_simple_io_channels_options_and_charts(web_admin):
    wa = web_admin
    deploy(wa, 'wa_http.py', MODULE)
    rest = wa.env.channel('wa-http-page', '/wa-http/page', 'wa-http.greet', method='POST')
    jsonrpc = wa.env.admin.call('POST', '/zato/admin/channels/jsonrpc', {
        'name': 'wa-http-rpc', 'url_path': '/wa-http/rpc', 'service_whitelist': ['wa-http.greet']})
    s = wa.session()
    r = s.get(wa.url + '/services/wa-http.greet', timeout=TIMEOUT)
    assert r.status_code == 200
    html, text = r.text, text_of(r.text)
    assert 'class Greet(Service):' in text and 'raise BadRequest(&#39;Customer &lt;b&gt;closed&lt;/b&gt;&#39;)' in html
    assert 'Input name Text Yes' in text and 'Input times Int No 1' in text and 'Output greeting' in text
    assert f'href="/channels/rest/{rest["id"]}/edit">wa-http-page</a>' in html
    assert f'href="/channels/jsonrpc/{jsonrpc["id"]}/edit">wa-http-rpc</a>' in html
    assert 'name="is_json_schema_enabled" checked' in html
    assert 'name="needs_json_schema_err_details" >' in html
    for chart in ('svc-requests', 'svc-error-rate', 'svc-latency'):
        svg = re.search(rf'<svg [^>]*id="chart-{chart}".*?</svg>', html, re.S)
        assert svg, chart
        ET.fromstring(svg.group(0))  # well-formed
    assert 'This service declares no SimpleIO' in s.get(wa.url + '/services/wa-http.fails', timeout=TIMEOUT).text

    assert s.get(wa.url + '/services/no.such.service', timeout=TIMEOUT).status_code == 404
    assert s.get(wa.url + '/services/zato.ping', timeout=TIMEOUT).status_code == 404
    assert requests.get(wa.url + '/services/wa-http.greet', timeout=TIMEOUT, allow_redirects=False).status_code \
        == 303  # no session, no page


def test_invoking_shows_the_response_or_the_error_and_keeps_the_payload(web_admin):
    wa = web_admin
    deploy(wa, 'wa_http.py', MODULE)
    s = wa.session()
    url = wa.url + '/services/wa-http.greet/invoke'

    r = post(s, url, {'payload': '{"name": "Bob", "times": 2}'})
    assert r.status_code == 200
    assert 'id="invoke-result"' in r.text and 'class="invoke-result ok"' in r.text
    assert '&#34;greeting&#34;: &#34;Hello Bob Hello Bob&#34;' in r.text
    assert '{&#34;name&#34;: &#34;Bob&#34;, &#34;times&#34;: 2}</textarea>' in r.text  # kept

    r = post(s, url, {'payload': '{"name": '})
    assert r.status_code == 400
    assert re.search(r'id="error-payload"[^>]*>Not valid JSON', r.text)
    assert '{&#34;name&#34;: </textarea>' in r.text and 'id="invoke-result"' not in r.text

    r = post(s, url, {'payload': '{}'})  # SimpleIO refuses: the server's 400 is shown
    assert 'class="invoke-result failed"' in r.text and 'HTTP 400' in r.text and 'name' in text_of(r.text)

    r = post(s, wa.url + '/services/wa-http.silent/invoke', {'payload': ''})  # it returns nothing: says so
    assert 'class="invoke-result ok"' in r.text and 'HTTP 204' in r.text
    assert re.search(r'<pre id="invoke-response">\(no response\)</pre>', r.text)

    r = post(s, wa.url + '/services/wa-http.refuses/invoke', {'payload': ''})
    assert 'HTTP 400' in r.text and 'Customer &lt;b&gt;closed&lt;/b&gt;' in r.text  # escaped, never markup
    r = post(s, wa.url + '/services/wa-http.fails/invoke', {'payload': '{"a": 1}'})
    assert 'class="invoke-result failed"' in r.text and 'HTTP 500' in r.text
    response = re.search(r'<pre id="invoke-response">(.*?)</pre>', r.text, re.S)
    assert response and 'secret internal detail' not in response.group(1)

    r = s.post(url, data={'payload': '{}'}, timeout=TIMEOUT)  # no CSRF token
    assert r.status_code == 403
    assert 'service.invoke' in audit_text(wa, s, 'wa-http.fails')


def test_options_are_edited_through_the_admin_api_and_audited(web_admin):
    wa = web_admin
    deploy(wa, 'wa_http.py', MODULE)
    wa.env.admin.call('POST', '/zato/admin/rate-limits', {'name': 'wa-http-opts', 'rules': '* = 50/m'})
    s = wa.session()
    url = wa.url + '/services/wa-http.greet/edit'

    r = post(s, url, {'is_active': 'on', 'needs_json_schema_err_details': 'on', 'rate_limit': 'wa-http-opts'})
    assert r.status_code == 303 and r.headers['Location'] == '/services/wa-http.greet'
    page = s.get(wa.url + r.headers['Location'], timeout=TIMEOUT).text
    assert 'Saved the options of service' in page
    assert 'name="is_json_schema_enabled" >' in page and 'name="needs_json_schema_err_details" checked' in page
    assert '<option value="wa-http-opts" selected>' in page and '* = 50/m' in page
    wa.env.wait_for(lambda: wa.env.admin.call('GET', '/zato/admin/services/wa-http.greet')
                    ['is_json_schema_enabled'] is False, timeout=TIMEOUT)
    assert 'service.edit' in audit_text(wa, s, 'wa-http.greet')

    # A definition deleted meanwhile: the server's message next to the field, the choices kept
    r = post(s, url, {'is_active': 'on', 'is_json_schema_enabled': 'on', 'rate_limit': 'wa-http-gone'})
    assert r.status_code == 400
    assert re.search(r'id="error-rate_limit">Invalid input `rate_limit`: no rate-limit definition named', r.text)
    assert 'name="is_json_schema_enabled" checked' in r.text

    r = post(s, url, {'is_active': 'on', 'is_json_schema_enabled': 'on', 'rate_limit': ''})
    assert r.status_code == 303
    assert wa.env.admin.call('GET', '/zato/admin/services/wa-http.greet')['rate_limit'] is None


def test_uploading_a_module_deploys_it_or_shows_the_servers_error(web_admin):
    wa = web_admin
    s = wa.session()
    token = csrf(s.get(wa.url + '/deploy', timeout=TIMEOUT).text)
    source = 'from zato.server.service import Service\n\nclass Up(Service):\n    name = "wa-up.one"\n' \
             '    def handle(self):\n        self.response.payload = {"up": 1}\n'

    def upload(file_name: str, data: bytes) -> requests.Response:
        return s.post(wa.url + '/deploy', data={'csrf_token': token}, files={'module': (file_name, data)},
                      timeout=TIMEOUT)

    r = upload('some/dir/wa_up.py', source.encode())  # the base name only
    assert r.status_code == 200, r.text
    assert 'Deployed <code>wa_up.py</code>, version 1' in r.text
    assert '<a href="/services/wa-up.one">wa-up.one</a>' in r.text
    assert eventually(wa, 'GET', '/zato/admin/services/wa-up.one')['source'] == source
    assert 'is unchanged' in upload('wa_up.py', source.encode()).text

    r = upload('wa_up.py', b'def broken(:\n')
    assert r.status_code == 400
    assert re.search(r'id="deploy-error">wa_up.py, line 1: SyntaxError', r.text), r.text
    assert eventually(wa, 'POST', '/zato/admin/invoke', {'name': 'wa-up.one'}) == {'up': 1}  # still served

    # A JSON Schema: deployed, with the services that name it (none yet, then one)
    schema = b'{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}'
    r = upload('wa_up.json', schema)
    assert r.status_code == 200, r.text
    assert 'Deployed JSON Schema <code>wa_up.json</code>, version 1' in r.text and 'No service names it yet' in r.text
    checked = source.replace('"wa-up.one"', '"wa-up.checked"\n    schema = "wa_up.json"').replace('class Up', 'class Checked')
    assert upload('wa_up_checked.py', checked.encode()).status_code == 200
    r = upload('wa_up.json', schema.replace(b'"n"]', b'"n", "m"]'))
    assert r.status_code == 200 and 'version 2' in r.text
    assert '<a href="/services/wa-up.checked">wa-up.checked</a>' in r.text
    r = upload('wa_up.json', b'{"type": 12}')
    assert r.status_code == 400 and 'id="deploy-error"' in r.text
    assert 'schema.deploy' in audit_text(wa, s, 'wa_up.json')

    assert upload('notes.txt', b'hi').status_code == 400
    assert upload('bad.py', b'\xff\xfe').status_code == 400
    assert s.post(wa.url + '/deploy', data={'csrf_token': token}, timeout=TIMEOUT).status_code == 400
    assert s.post(wa.url + '/deploy', files={'module': ('x.py', b'')}, timeout=TIMEOUT).status_code == 403
    assert 'service.deploy' in audit_text(wa, s, 'wa_up.py')


def test_the_dashboard_charts_the_last_hour_and_lists_servers_and_workers(web_admin):
    wa = web_admin
    deploy(wa, 'wa_http.py', MODULE)
    wa.env.channel('wa-http-dash', '/wa-http/dash', 'wa-http.greet')
    call_until_ok(wa, '/wa-http/dash', 2)
    requests.post(wa.env.url + '/wa-http/dash', json={}, timeout=TIMEOUT)  # refused by SimpleIO: a 4xx, no error
    s = wa.session()

    def dashboard() -> str:
        return s.get(wa.url + '/', timeout=TIMEOUT).text

    # All calls counted and both workers up (one may miss a heartbeat for a moment on a loaded machine)
    pages: list[str] = []
    wa.env.wait_for(lambda: pages.append(dashboard()) or (
        int(re.search(r'id="total-calls">(\d+)<', pages[-1]).group(1)) >= 3 and 'id="workers-up">2<' in pages[-1]),
        timeout=TIMEOUT)
    html = pages[-1]
    for chart in ('all-requests', 'all-error-rate', 'all-latency'):
        svg = re.search(rf'<svg [^>]*id="chart-{chart}".*?</svg>', html, re.S)
        assert svg, chart
        root = ET.fromstring(svg.group(0))
        assert root.find('{http://www.w3.org/2000/svg}title').text.startswith('All services: ')
    requests_chart = ET.fromstring(re.search(r'<svg [^>]*id="chart-all-requests".*?</svg>', html, re.S).group(0))
    assert 'Requests: highest' in requests_chart.find('{http://www.w3.org/2000/svg}desc').text
    assert 'data-name="wa-http.greet"' in html
    workers = re.findall(r'<tr data-server="server1" data-pid="\d+">(.*?)</tr>', html, re.S)
    assert len(workers) == 2 and all('<td class="status-up">up</td>' in row for row in workers), workers
    assert 'server1</strong> <span class="status-up">up</span>' in workers[0]


def test_a_service_in_the_odb_that_no_server_has_loaded_yet_is_shown_from_the_odb(web_admin):
    # As the ODB is for a moment after another server's deploy, before the bus reaches this one
    config = WebAdminConfig.load(web_admin.env.path)
    source = 'class Ghost:\n    """<not loaded>"""\n'
    with config.session_factory() as db:
        code = DeployedCode(cluster_id=config.cluster_id, file_name='wa_ghost.py', source=source, source_hash='x',
                            version=1)
        db.add(code)
        db.flush()
        db.add(Service(cluster_id=config.cluster_id, name='wa-ghost.svc', impl_name='wa_ghost.Ghost', code_id=code.id,
                       opaque={'needs_json_schema_err_details': True}))
        db.commit()
    s = web_admin.session()
    r = s.get(web_admin.url + '/services/wa-ghost.svc', timeout=TIMEOUT)
    assert r.status_code == 200
    assert 'has not loaded this service yet' in r.text
    assert '&#34;&#34;&#34;&lt;not loaded&gt;&#34;&#34;&#34;' in r.text
    assert 'Not known until a server has loaded the service' in r.text
    assert 'name="needs_json_schema_err_details" checked' in r.text and 'name="is_json_schema_enabled" checked' in r.text
    assert 'data-name="wa-ghost.svc"' in s.get(web_admin.url + '/services', params={'q': 'ghost'}, timeout=TIMEOUT).text


DELETABLE = '''
from zato.server.service import Service


class Keep(Service):
    name = 'wa-del.keep'

    def handle(self):
        self.response.payload = {'kept': True}


class Drop(Service):
    name = 'wa-del.drop'

    def handle(self):
        self.response.payload = {'dropped': False}
'''


def test_a_service_is_switched_off_and_on_and_deleted_from_its_page(web_admin):
    wa = web_admin
    deploy(wa, 'wa_del.py', DELETABLE)
    s = wa.session()
    url = wa.url + '/services/wa-del.drop'

    # Unticked: inactive on every worker, shown so in the list
    r = post(s, url + '/edit', {'is_json_schema_enabled': 'on', 'rate_limit': ''})
    assert r.status_code == 303
    wa.env.wait_for(lambda: all(_invoke_status(wa, 'wa-del.drop') == 404 for _ in range(4)), timeout=TIMEOUT)
    listing = s.get(wa.url + '/services?q=wa-del', timeout=TIMEOUT).text
    assert re.search(r'data-name="wa-del.drop">.*?<td class="active">No</td>', listing, re.S)
    assert 'name="is_active" >' in s.get(url, timeout=TIMEOUT).text

    r = post(s, url + '/edit', {'is_active': 'on', 'is_json_schema_enabled': 'on', 'rate_limit': ''})
    assert r.status_code == 303
    wa.env.wait_for(lambda: all(_invoke_status(wa, 'wa-del.drop') == 200 for _ in range(4)), timeout=TIMEOUT)

    # Deleted: gone from the list and from every worker; its module stays for the other service
    r = post(s, url + '/delete', {})
    assert r.status_code == 303 and r.headers['Location'] == '/services'
    assert 'Deleted service `wa-del.drop` from every server.' in s.get(wa.url + '/services', timeout=TIMEOUT).text
    assert 'wa-del.drop' not in s.get(wa.url + '/services?q=wa-del', timeout=TIMEOUT).text
    wa.env.wait_for(lambda: all(_invoke_status(wa, 'wa-del.drop') == 404 for _ in range(4)), timeout=TIMEOUT)
    assert _invoke_status(wa, 'wa-del.keep') == 200
    assert s.get(url, timeout=TIMEOUT).status_code == 404
    assert 'service.delete' in audit_text(wa, s, 'wa-del.drop')


def _invoke_status(wa: Any, name: str) -> int:
    try:
        wa.env.admin.call('POST', '/zato/admin/invoke', {'name': name})
    except AdminCallError as e:
        return e.status
    return 200
