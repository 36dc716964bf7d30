"""Every docs page's example runs: each ```python block that starts with `# docs-example: FILE`
is deployed through the admin API, and the `<!-- docs-test: {...} -->` comment before it says
which channels to create and which calls to make, with the status and body to expect."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import subprocess
import sys

import pytest
import requests

from tests.e2e.harness import DOCS_EXAMPLE, ROOT, zato
from zato.admin_client import AdminCallError

DOCS = os.path.join(ROOT, 'docs')


def examples() -> list[tuple[str, str, str, dict]]:
    found = []
    for name in sorted(os.listdir(DOCS)):
        if name.endswith('.md'):
            with open(os.path.join(DOCS, name), encoding='utf-8') as f:
                text = f.read()
            for m in DOCS_EXAMPLE.finditer(text):
                spec = json.loads(m.group('spec')) if m.group('spec') else {}
                found.append((name, m.group('file'), m.group('code'), spec))
    return found


EXAMPLES = examples()


def test_every_feature_page_has_a_runnable_example():
    pages = {page for page, *_ in EXAMPLES}
    for page in ('getting-started.md', 'services.md', 'simpleio.md', 'rest-channels.md', 'hot-deploy.md',
                 'admin-api.md', 'security.md', 'json-schema.md', 'rate-limits.md', 'websockets.md',
                 'outgoing-wsx.md', 'outgoing-rest.md', 'jsonrpc.md', 'outgoing-ldap.md',
                 'outgoing-mongodb.md', 'outgoing-ssh.md', 'outgoing-sftp.md', 'outgoing-kafka.md',
                 'outgoing-slack.md', 'outgoing-telegram.md', 'outgoing-smtp.md', 'outgoing-imap.md', 'monitoring.md',
                 'kafka-channels.md', 'locks.md', 'crypto.md', 'invoking.md', 'user-config.md', 'cache.md',
                 'scheduler.md', 'pubsub.md'):
        assert page in pages, f'{page} has no docs-example block'


@pytest.mark.parametrize('page, file_name, code, spec', EXAMPLES, ids=[f'{p}:{f}' for p, f, *_ in EXAMPLES])
def test_a_docs_example_deploys_and_answers_as_documented(env, page, file_name, code, spec):
    # Order: admin calls (say, a schema or a security definition the code needs), the code, channels,
    # admin calls that need the code (a WebSocket channel of its service), calls
    admin_calls(env, page, spec.get('admin', []))
    for name, text in spec.get('user_conf', {}).items():
        # A user config file the example reads, dropped into the pickup directory as a user would
        folder = os.path.join(env.path, 'pickup', 'incoming', 'user-conf')
        with open(os.path.join(folder, name + '.tmp'), 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(os.path.join(folder, name + '.tmp'), os.path.join(folder, name))
    result = env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': code})
    services = result['services']
    for chan in spec.get('channels', []):
        try:
            env.channel(**chan)
        except AdminCallError as e:
            assert e.status == 409  # created by an earlier run in this session
    admin_calls(env, page, spec.get('admin_after', []), settle=5.0)
    for call in spec.get('calls', []):
        def answered(call=call) -> bool:
            r = requests.request(call['method'], env.url + call['path'], json=call.get('body'), timeout=10,
                                 auth=tuple(call['auth']) if 'auth' in call else None,
                                 headers=call.get('headers'))
            if r.status_code != call['status']:
                return False
            if 'json' in call:
                expected = json.loads(json.dumps(call['json']).replace('<cid>', r.headers['X-Zato-CID']))
                return r.json() == expected
            return True
        env.wait_for(answered, timeout=3.0)
    for session in spec.get('wsx', []):
        run_wsx(env, session)
    for script in spec.get('client_scripts', []):
        run_client_script(env, page, script)
    if spec.get('invoke'):
        for inv in spec['invoke']:
            out = zato('service', 'invoke', env.path, inv['name'], '--payload', json.dumps(inv.get('payload')))
            assert json.loads(out.stdout) == inv['json'], (page, inv)
    assert isinstance(services, list)


def admin_calls(env, page: str, calls: list, settle: float = 0.0) -> None:
    """Makes each call; with `settle`, a GET answered otherwise than documented is made again for up to
    that many seconds (a service deployed just before reaches the other worker over the bus)."""
    for call in calls:
        # ${PORT}: the server's port, for examples that connect the environment to itself
        body = json.loads(json.dumps(call.get('body')).replace('${PORT}', str(env.base_port)))
        deadline = time.monotonic() + (settle if call['method'] == 'GET' else 0.0)
        while True:
            try:
                out = env.admin.call(call['method'], call['path'], body)
                creates = call['method'] == 'POST' and (
                    call['path'].endswith(('/channels/rest', '/channels/wsx', '/channels/jsonrpc', '/channels/kafka',
                                            '/security', '/rate-limits', '/scheduler/jobs'))
                    or re.fullmatch(r'/zato/admin/outconns/[a-z]+', call['path']) is not None)
                status = 201 if creates else 200
            except AdminCallError as e:
                out, status = e.details, e.status
            if status == call['status'] or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if status == 409:
            continue
        assert status == call['status'], (page, call, out)
        if 'json' in call:
            assert out == call['json'], (page, call)


def run_client_script(env, page: str, script: dict) -> None:
    """A client script of the page (a ```python block starting with `# docs-client: FILE`), run with the
    URL of `path` in the environment variable `url_env`; its last line of output is `stdout_json`. Run
    until it matches (every worker may not have heard yet of what the admin calls made)."""
    with open(os.path.join(DOCS, page), encoding='utf-8') as f:
        m = re.search(r'```python\n# docs-client: ' + re.escape(script['file']) + r'\n(.*?)```', f.read(), re.S)
    assert m is not None, (page, script['file'])
    path = os.path.join(env.path, 'work', script['file'])
    with open(path, 'w', encoding='utf-8') as f:
        f.write(m.group(1))
    run_env = {**os.environ, script['url_env']: f'ws://127.0.0.1:{env.base_port}{script["path"]}'}
    outcome: list[subprocess.CompletedProcess] = []

    def ran() -> bool:
        proc = subprocess.run([sys.executable, path], capture_output=True, text=True, env=run_env, timeout=60)
        outcome[:] = [proc]
        lines = proc.stdout.strip().splitlines()
        try:
            return proc.returncode == 0 and bool(lines) and json.loads(lines[-1]) == script['stdout_json']
        except ValueError:
            return False
    try:
        env.wait_for(ran, timeout=10, interval=0.5)
    except AssertionError:
        raise AssertionError(f'{script["file"]}: {outcome[0].stdout!r} {outcome[0].stderr[-2000:]!r}') from None


def run_wsx(env, session: dict) -> None:
    """WebSocket steps: clients connect to `path`; `send` then `expect` (on the first client), or an
    HTTP `call` then `expect_all` (every client). Expected values other than strings compare as JSON."""
    from websockets.sync.client import connect

    def same(got, expected) -> bool:
        return got == expected if isinstance(expected, str) else json.loads(got) == expected

    url = f'ws://127.0.0.1:{env.base_port}{session["path"]}'
    env.wait_for(lambda: requests.get(env.url + session['path'], timeout=5).status_code == 426, timeout=3.0)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(url, open_timeout=5)) for _ in range(session.get('clients', 1))]
        for step in session['steps']:
            if 'send' in step:
                data = step['send']
                clients[0].send(data if isinstance(data, str) else json.dumps(data))
                assert same(clients[0].recv(timeout=5), step['expect']), (session, step)
            else:
                call = step['call']
                r = requests.request(call['method'], env.url + call['path'], json=call.get('body'), timeout=10)
                assert r.status_code == call.get('status', 200), r.text
                for client in clients:
                    assert same(client.recv(timeout=5), step['expect_all']), (session, step)


def test_the_settings_page_is_generated_from_the_declared_settings():
    from zato.config.settings import render_docs
    with open(os.path.join(DOCS, 'settings.md'), encoding='utf-8') as f:
        assert f.read() == render_docs(), 'run: python -m zato.config.settings > docs/settings.md'


def test_every_image_a_page_shows_exists():
    """Screenshots and figures referenced as ![...](path) are in the repository."""
    for name in sorted(os.listdir(DOCS)):
        if name.endswith('.md'):
            with open(os.path.join(DOCS, name), encoding='utf-8') as f:
                for target in re.findall(r'!\[[^\]]*\]\(([^)]+)\)', f.read()):
                    assert os.path.isfile(os.path.join(DOCS, target)), f'{name}: {target} is missing'
