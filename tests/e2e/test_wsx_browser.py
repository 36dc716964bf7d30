"""WebSocket channels against a real browser: headless Chromium, driven by Playwright, opens a page
served by a REST channel of the server and talks to WebSocket channels of the same server. What
Chromium does is the reference: its handshake (Origin, permessage-deflate offer), its masking, its
close handshake and what its WebSocket API reports.

Needs /usr/bin/chromium (Debian's chromium; scripts/peers.sh installs it) and the playwright
package (the `test` extra); Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

import pytest
import requests

from tests.chromium import launch

TIMEOUT = 10.0  # seconds, for anything the browser or the server is waited for

# The page: connects on request, records what each socket sees and renders every message into the DOM
PAGE = '''<!doctype html>
<html><head><meta charset="utf-8"><title>Zato WSX browser test</title>
<style>body{font:14px monospace;margin:16px} li{margin:2px 0;white-space:pre-wrap;word-break:break-all}
.in{color:#064} .out{color:#036} .ev{color:#777}</style></head>
<body><h3>Zato WebSocket channel, seen from Chromium</h3><ul id="log"></ul>
<script>
window.__msgs = [];
window.__socks = {};
function log(cls, text) {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = text.length > 160 ? text.slice(0, 160) + '... (' + text.length + ' characters)' : text;
  document.getElementById('log').appendChild(li);
}
// Resolves when the socket opens or fails, with what the browser reports either way
window.zatoOpen = (key, url) => new Promise((resolve) => {
  const state = {opened: false, errored: false, closed: null, msgs: [], ws: null};
  window.__socks[key] = state;
  const ws = state.ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => { state.opened = true; log('ev', key + ': open, extensions=' + ws.extensions);
                      resolve({opened: true, extensions: ws.extensions}); };
  ws.onerror = () => { state.errored = true; log('ev', key + ': error'); };
  ws.onclose = (e) => { state.closed = {code: e.code, reason: e.reason, wasClean: e.wasClean};
                        log('ev', key + ': close ' + e.code + ' clean=' + e.wasClean);
                        resolve({opened: state.opened, errored: state.errored, closed: state.closed}); };
  ws.onmessage = (e) => {
    const text = typeof e.data === 'string' ? e.data : '<binary ' + e.data.byteLength + ' bytes>';
    state.msgs.push(text);
    window.__msgs.push(text);
    log('in', key + ' <- ' + text);
  };
});
// Page.evaluate waits for a promise without a time limit: every wait of the test goes through this
window.zatoWithin = (promise, ms) => Promise.race(
  [promise, new Promise((resolve) => setTimeout(() => resolve({timedOut: ms}), ms))]);
window.zatoSend = (key, text, binary) => {
  const ws = window.__socks[key].ws;
  ws.send(binary ? new TextEncoder().encode(text).buffer : text);
  log('out', key + ' -> ' + (binary ? '(ArrayBuffer) ' : '') + text);
};
</script></body></html>
'''

SERVICES = '''
from zato.server.service import Service

class Echo(Service):
    def handle(self):
        self.response.payload = {'echo': self.request.payload}

class Broadcaster(Service):
    def handle(self):
        self.wsx.channel[%(channel)r].broadcast({'hello': 'browser'})
        self.response.payload = {'sent': True}

class Page(Service):
    def handle(self):
        self.response.content_type = 'text/html; charset=utf-8'
        self.response.payload = %(page)r
'''


@pytest.fixture(scope='module')
def browser():
    with launch(TIMEOUT * 3) as b:
        yield b


def _all_workers_answer(url: str, status: int, times: int = 8) -> bool:
    """`times` requests over new connections (so that they reach every worker) all answer `status`."""
    for _ in range(times):
        r = requests.get(url, headers={'Connection': 'close'}, timeout=TIMEOUT)
        if r.status_code != status:
            return False
    return True


@pytest.fixture(scope='module')
def wsx(env):
    """An echo service on WebSocket channels that differ in their origins allow-list (same origin only, any
    origin, a foreign origin only) and one that pings every second, a broadcaster behind a REST channel
    and the test page behind another."""
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f'e2e-wsx-browser-{kind}-{suffix}' for kind in ('same', 'any', 'foreign', 'ping')}
    paths = {kind: f'/ws/browser-{kind}-{suffix}' for kind in names}
    source = SERVICES % {'channel': names['same'], 'page': PAGE}
    module = f'wsx_browser_{suffix}'
    out = env.admin.call('POST', '/zato/admin/deploy', {'file_name': module + '.py', 'source': source})
    services = {name.rsplit('.', 1)[1]: name for name in out['services']}
    assert set(services) == {'echo', 'broadcaster', 'page'}, out
    extra = {'same': {'origins': []}, 'any': {'origins': ['*']}, 'foreign': {'origins': ['http://example.invalid']},
             'ping': {'origins': [], 'ping_interval': 1, 'pings_missed_threshold': 1}}
    ids = {}
    for kind, name in names.items():
        created = env.admin.call('POST', '/zato/admin/channels/wsx',
                                 {'name': name, 'url_path': paths[kind], 'service': services['echo'],
                                  'data_format': 'json', **extra[kind]})
        assert created['origins'] == extra[kind]['origins'] and created['data_format'] == 'json', created
        ids[kind] = created['id']
    env.channel(f'e2e-wsx-browser-page-{suffix}', f'/e2e/wsx-browser/page-{suffix}', services['page'])
    env.channel(f'e2e-wsx-browser-bc-{suffix}', f'/e2e/wsx-browser/broadcast-{suffix}', services['broadcaster'])
    page_url = f'{env.url}/e2e/wsx-browser/page-{suffix}'
    # Channels reach every worker through the cluster bus; a plain GET of a WebSocket channel answers 426
    for kind in names:
        env.wait_for(lambda kind=kind: _all_workers_answer(env.url + paths[kind], 426), timeout=TIMEOUT)
    env.wait_for(lambda: _all_workers_answer(page_url, 200), timeout=TIMEOUT)
    ws_base = env.url.replace('http://', 'ws://')
    return {'ws': {kind: ws_base + path for kind, path in paths.items()}, 'page': page_url, 'ids': ids,
            'broadcast': f'{env.url}/e2e/wsx-browser/broadcast-{suffix}', 'names': names,
            'cross_origin_page': page_url.replace('://127.0.0.1:', '://localhost:')}


@pytest.fixture
def page(browser, wsx):
    context = browser.new_context(viewport={'width': 1000, 'height': 700})
    context.set_default_timeout(TIMEOUT * 1000)
    pg = context.new_page()
    pg.goto(wsx['page'])
    assert pg.title() == 'Zato WSX browser test'
    try:
        yield pg
    finally:
        context.close()


def _open(page, key: str, url: str) -> dict:
    """What the browser reports when the socket opens or fails."""
    out = page.evaluate('([key, url, ms]) => window.zatoWithin(window.zatoOpen(key, url), ms)',
                        [key, url, TIMEOUT * 1000])
    assert 'timedOut' not in out, f'{url} neither opened nor failed within {TIMEOUT} s'
    return out


def _wait_close(page, script: str) -> dict:
    """Runs `script` (the body of a function given `resolve`) and returns the close event it resolves with."""
    out = page.evaluate(f'(ms) => window.zatoWithin(new Promise((resolve) => {{ {script} }}), ms)', TIMEOUT * 1000)
    assert 'timedOut' not in out, f'no close event within {TIMEOUT} s'
    return out


def _send(page, key: str, text: str, binary: bool = False) -> None:
    page.evaluate('([key, text, binary]) => window.zatoSend(key, text, binary)', [key, text, binary])


def _next_message(page, key: str, index: int) -> str:
    """Message number `index` (0-based) that socket `key` received, waiting for it."""
    page.wait_for_function('([key, i]) => window.__socks[key].msgs.length > i', arg=[key, index],
                           timeout=TIMEOUT * 1000)
    return page.evaluate('([key, i]) => window.__socks[key].msgs[i]', [key, index])


def _save_screenshot(page, tmp_path, name: str = 'wsx-browser.png') -> str:
    """Into the test's tmp dir and, when ZATO_TEST_ARTIFACTS is set, into that dir too."""
    path = str(tmp_path / name)
    page.screenshot(path=path, full_page=True, timeout=TIMEOUT * 1000)
    artifacts = os.environ.get('ZATO_TEST_ARTIFACTS')
    if artifacts:
        os.makedirs(artifacts, exist_ok=True)
        shutil.copyfile(path, os.path.join(artifacts, name))
    return path


def test_chromium_exchanges_json_text_binary_broadcasts_and_compressed_messages_then_closes_with_4000(
        page, wsx, tmp_path):
    opened = _open(page, 'main', wsx['ws']['same'])
    assert opened['opened'] is True
    # Chromium always offers permessage-deflate; the extensions property is what the server accepted
    assert opened['extensions'].split(';')[0].strip() == 'permessage-deflate', opened

    _send(page, 'main', '{"a": 1}')
    assert json.loads(_next_message(page, 'main', 0)) == {'echo': {'a': 1}}

    # A binary message that is valid JSON is parsed too on a JSON channel
    _send(page, 'main', '{"b": [2, "zwei"]}', binary=True)
    assert json.loads(_next_message(page, 'main', 1)) == {'echo': {'b': [2, 'zwei']}}

    # A broadcast started by a REST call reaches the browser, whichever worker serves either side
    r = requests.post(wsx['broadcast'], json={}, headers={'Connection': 'close'}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {'sent': True}, r.text
    assert json.loads(_next_message(page, 'main', 2)) == {'hello': 'browser'}

    # Large and repetitive both ways: compressed by Chromium and by the server, echoed intact
    big = {'big': 'zato websocket ' * 40_000, 'n': list(range(1000))}
    _send(page, 'main', json.dumps(big))
    assert json.loads(_next_message(page, 'main', 3)) == {'echo': big}

    # Still usable after the large message: the compression context carried over (no_context_takeover not asked)
    _send(page, 'main', '{"after": "big"}')
    assert json.loads(_next_message(page, 'main', 4)) == {'echo': {'after': 'big'}}

    started = time.monotonic()
    closed = _wait_close(page, '''
        const s = window.__socks.main;
        s.ws.addEventListener('close', (e) => resolve({code: e.code, reason: e.reason, wasClean: e.wasClean}));
        s.ws.close(4000, 'bye from the browser');''')
    # The server answers the close frame with the same code; Chromium reports that code and a clean close
    assert closed['code'] == 4000 and closed['wasClean'] is True, closed
    assert time.monotonic() - started < TIMEOUT
    assert page.evaluate("window.__socks.main.errored") is False
    _save_screenshot(page, tmp_path)


def test_the_origin_allow_list_is_what_chromium_is_let_in_by(page, browser, wsx, tmp_path):
    # The page is served by the same server, so its origin is the channel's own
    same = _open(page, 'same', wsx['ws']['same'])
    any_ = _open(page, 'any', wsx['ws']['any'])
    foreign = _open(page, 'foreign', wsx['ws']['foreign'])
    assert same['opened'] is True and any_['opened'] is True
    # Refused at the handshake (403): 'open' never fires, 'error' does and the close is abnormal
    assert foreign == {'opened': False, 'errored': True, 'closed': {'code': 1006, 'reason': '', 'wasClean': False}}

    _send(page, 'same', '{"ok": "same"}')
    assert json.loads(_next_message(page, 'same', 0)) == {'echo': {'ok': 'same'}}
    _save_screenshot(page, tmp_path, 'wsx-browser-origins.png')

    # The same page from another origin (localhost instead of 127.0.0.1): the same-origin channel
    # refuses it, the channel open to any origin lets it in
    cross = page.context.new_page()
    cross.goto(wsx['cross_origin_page'])
    assert cross.evaluate('location.origin').startswith('http://localhost:')
    refused = _open(cross, 'same', wsx['ws']['same'])
    assert refused['opened'] is False and refused['closed']['code'] == 1006, refused
    assert _open(cross, 'foreign', wsx['ws']['foreign'])['opened'] is False
    allowed = _open(cross, 'any', wsx['ws']['any'])
    assert allowed['opened'] is True, allowed
    _send(cross, 'any', '[1, 2, 3]')
    assert json.loads(_next_message(cross, 'any', 0)) == {'echo': [1, 2, 3]}



def test_chromium_answers_the_servers_pings_and_sees_its_errors_and_its_disconnect(page, env, wsx, tmp_path):
    # The channel pings every second and drops a client after one missed pong: Chromium's pongs keep it
    assert _open(page, 'ping', wsx['ws']['ping'])['opened'] is True
    page.wait_for_timeout(3500)
    assert page.evaluate('window.__socks.ping.closed') is None
    _send(page, 'ping', '{"still": "here"}')
    assert json.loads(_next_message(page, 'ping', 0)) == {'echo': {'still': 'here'}}

    # Text that is not JSON on a JSON channel: an error message to this client, the connection stays
    _send(page, 'ping', 'not json')
    error = json.loads(_next_message(page, 'ping', 1))
    assert error['result'] == 'ZATO_ERROR' and 'Invalid JSON' in error['details'], error
    _send(page, 'ping', '{"after": "error"}')
    assert json.loads(_next_message(page, 'ping', 2)) == {'echo': {'after': 'error'}}

    # Disconnected through the admin API: a close handshake that Chromium sees as clean
    clients = env.admin.call('GET', f"/zato/admin/channels/wsx/{wsx['ids']['ping']}/clients")
    assert len(clients) == 1 and clients[0]['channel'] == wsx['names']['ping'], clients
    page.evaluate('''() => { window.__closed = new Promise((resolve) => window.__socks.ping.ws.addEventListener(
        'close', (e) => resolve({code: e.code, reason: e.reason, wasClean: e.wasClean}))); }''')
    env.admin.call('DELETE', f"/zato/admin/wsx/clients/{clients[0]['id']}")
    closed = _wait_close(page, 'window.__closed.then(resolve);')
    assert closed == {'code': 1000, 'reason': 'Disconnected by the server', 'wasClean': True}, closed
    assert page.evaluate('window.__socks.ping.errored') is False
    _save_screenshot(page, tmp_path, 'wsx-browser-ping.png')
