"""Starting, stopping and checking an environment with the CLI, as a user would."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pytest
import requests

from tests.e2e.harness import Clone, Env, zato

SLOW = '''
import gevent
from zato.server.service import Service

class Slow(Service):
    def handle(self):
        gevent.sleep(2)
        self.response.payload = {'finished': True}
'''


@pytest.fixture
def own_env(tmp_path):
    e = Env(str(tmp_path / 'env'), workers=1)
    yield e
    e.stop()


def test_sigterm_lets_an_in_flight_request_finish_and_refuses_new_ones(own_env):
    env = own_env
    env.start()
    env.drop('lifecycle.py', SLOW)
    env.wait_for(lambda: 'lifecycle.slow' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.channel('slow', '/slow', 'lifecycle.slow')
    env.wait_for(lambda: env.fresh_get(env.url + '/zato/ping').status_code == 200)
    time.sleep(0.3)

    result = {}

    def call() -> None:
        r = requests.get(env.url + '/slow', timeout=10)
        result['status'], result['body'] = r.status_code, r.json()

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)
    out = zato('stop', env.path)
    t.join()
    assert result == {'status': 200, 'body': {'finished': True}}
    assert 'server1 stopped' in out.stdout
    with pytest.raises(requests.ConnectionError):
        requests.get(env.url + '/zato/ping', timeout=2)


def test_info_check_config_and_a_second_start(own_env):
    env = own_env
    out = zato('check-config', env.path)
    assert out.stdout.startswith('OK:')
    env.start()
    data = json.loads(zato('info', env.path, '--format', 'json').stdout)
    assert data['servers'][0]['running'] and data['servers'][0]['answers_ping']
    out = zato('start', env.path, check=False)
    assert out.returncode == 1 and 'already running' in out.stderr and 'Traceback' not in out.stderr


def test_the_cli_reports_bad_arguments_and_broken_config_in_one_line(tmp_path, own_env):
    out = zato('quickstart', 'create', str(tmp_path / 'x'), '--odb', 'oracle', check=False)
    assert out.returncode == 2 and out.stderr.count('\n') == 1 and 'invalid choice' in out.stderr

    out = zato('start', str(tmp_path / 'nowhere'), check=False)
    assert out.returncode == 1 and 'is not a Zato environment' in out.stderr

    out = zato('quickstart', 'create', own_env.path, check=False)
    assert out.returncode == 1 and 'not an empty directory' in out.stderr

    conf = os.path.join(own_env.path, 'config', 'repo', 'server.conf')
    with open(conf, encoding='utf-8') as f:
        text = f.read()
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(text.replace('workers = 1', 'workers = many'))
    out = zato('check-config', own_env.path, check=False)
    assert out.returncode == 1
    assert out.stderr.count('\n') == 1
    assert '[main] workers: invalid value `many`' in out.stderr
    assert 'Traceback' not in out.stderr

    with open(conf, 'w', encoding='utf-8') as f:
        f.write('[main\nbroken')
    out = zato('start', own_env.path, check=False)
    assert out.returncode == 1 and 'cannot parse' in out.stderr and out.stderr.count('\n') == 1


def test_the_quickstart_admin_password_is_random_and_shown_once(tmp_path):
    first = Env(str(tmp_path / 'a'))
    second = Env(str(tmp_path / 'b'))
    pw1 = [line for line in first.create_output.splitlines() if 'password' in line][0].split()[3]
    pw2 = [line for line in second.create_output.splitlines() if 'password' in line][0].split()[3]
    assert pw1 != pw2 and len(pw1) >= 24
    secrets = open(os.path.join(first.path, 'config', 'repo', 'secrets.conf'), encoding='utf-8').read()
    assert pw1 not in secrets
    assert oct(os.stat(os.path.join(first.path, 'config', 'repo', 'secrets.conf')).st_mode & 0o777) == '0o600'


def test_start_in_the_foreground_stops_gracefully_on_sigterm(own_env):
    import signal
    import subprocess
    import sys

    from tests.e2e.harness import ROOT
    env = own_env
    proc = subprocess.Popen([sys.executable, '-m', 'zato.cli.main', 'start', env.path, '--fg'], cwd=ROOT,
                            env={**os.environ, 'PYTHONPATH': ROOT}, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert 'server1 listening on' in line
        assert requests.get(env.url + '/zato/ping', timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(env.url + '/zato/ping', timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stop_sends_websocket_clients_going_away_and_returns_promptly(own_env):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    env = own_env
    env.start()
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'lifecycle_wsx.py', 'source': ECHO})
    env.wait_for(lambda: 'lifecycle-wsx.echo' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.admin.call('POST', '/zato/admin/channels/wsx', {'name': 'lc', 'url_path': '/lc', 'service': 'lifecycle-wsx.echo'})
    env.wait_for(lambda: env.fresh_get(env.url + '/lc').status_code == 426)
    codes = []

    def client() -> None:
        with connect(f'ws://127.0.0.1:{env.base_port}/lc', open_timeout=5) as ws:
            ws.send('1')
            ws.recv(timeout=5)
            try:
                ws.recv(timeout=15)
            except ConnectionClosed as e:
                codes.append(e.rcvd.code if e.rcvd else None)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    env.wait_for(lambda: len(env.admin.call('GET', '/zato/admin/channels/wsx/1/clients')) == 3)
    started = time.monotonic()
    zato('stop', env.path)
    for t in threads:
        t.join(10)
    assert codes == [1001, 1001, 1001]
    assert time.monotonic() - started < 8


ECHO = '''
from zato.server.service import Service

class Echo(Service):
    def handle(self):
        self.response.payload = self.request.payload
'''


NEEDS_DEP = '''
import os
import lc_dep_pkg
from zato.server.service import Service

class Answer(Service):
    def handle(self):
        self.response.payload = {'value': lc_dep_pkg.VALUE, 'pid': os.getpid()}
'''


def test_a_module_that_failed_to_import_at_start_is_loaded_by_a_redeploy_of_the_same_source(tmp_path):
    # A package on the servers' PYTHONPATH, there when the modules are first deployed, gone when the
    # servers start again (its directory on the path too, so the import system remembers there is
    # none), installed once more while they run
    lib = tmp_path / 'lib'
    package = lib / 'lc_dep_pkg'

    def install() -> None:
        package.mkdir(parents=True)
        (package / '__init__.py').write_text("VALUE = 'installed'\n")

    install()
    env = Env(str(tmp_path / 'env'), workers=2, env={'PYTHONPATH': str(lib)})
    module = tmp_path / 'lc_dep_cli.py'
    module.write_text(NEEDS_DEP)
    try:
        env.start()
        zato('deploy', str(module), env.path)
        env.drop('lc_dep_pickup.py', NEEDS_DEP)
        env.wait_for(lambda: {'lc-dep-cli.answer', 'lc-dep-pickup.answer'} <=
                     {s['name'] for s in env.admin.call('GET', '/zato/admin/services')})
        env.channel('lc-dep-cli', '/lc/dep/cli', 'lc-dep-cli.answer')
        env.channel('lc-dep-pickup', '/lc/dep/pickup', 'lc-dep-pickup.answer')
        env.wait_for(lambda: env.fresh_get(env.url + '/lc/dep/pickup').status_code == 200)
        env.stop()

        shutil.rmtree(lib)
        env.start()
        for _ in range(6):
            assert env.fresh_get(env.url + '/lc/dep/cli').status_code == 404
            assert env.fresh_get(env.url + '/lc/dep/pickup').status_code == 404
        assert 'Could not deploy lc_dep_cli.py (version 1)' in env.log()
        # The pickup directory's files are deployed again at start, and this one says why it is not
        env.wait_for(lambda: "lc_dep_pickup.py, line 3: ModuleNotFoundError: No module named 'lc_dep_pkg'"
                     in env.log())

        # Still missing: the deploy says why, in one line, and fails
        out = zato('deploy', str(module), env.path, check=False)
        assert out.returncode == 1 and out.stderr.count('\n') == 1
        assert "lc_dep_cli.py, line 3: ModuleNotFoundError: No module named 'lc_dep_pkg'" in out.stderr
        assert 'Deployed' not in out.stdout

        def answered_by_every_worker(url: str) -> bool:
            replies = [env.fresh_get(url) for _ in range(12)]
            return all(r.status_code == 200 for r in replies) and len({r.json()['pid'] for r in replies}) == 2

        # Installed: the same source deployed again is loaded by every worker, with no restart
        install()
        out = zato('deploy', str(module), env.path)
        assert 'Deployed lc_dep_cli.py (version 1): lc-dep-cli.answer' in out.stdout
        env.wait_for(lambda: answered_by_every_worker(env.url + '/lc/dep/cli'), timeout=10)
        assert env.fresh_get(env.url + '/lc/dep/cli').json()['value'] == 'installed'

        # The pickup directory likewise: the module still 404s until its file is dropped again, unchanged
        assert env.fresh_get(env.url + '/lc/dep/pickup').status_code == 404
        env.drop('lc_dep_pickup.py', NEEDS_DEP)
        env.wait_for(lambda: answered_by_every_worker(env.url + '/lc/dep/pickup'), timeout=10)
        assert 'Deployed lc_dep_pickup.py (version 1, unchanged)' in env.log()
    finally:
        env.stop()


def test_the_quickstart_script_says_what_it_did_on_a_first_a_second_and_a_third_run(tmp_path):
    clone = Clone(str(tmp_path))
    env_dir, link = clone.env_dir, os.path.join(clone.home, '.local', 'bin', 'zato')
    target = os.path.join(clone.root, '.venv', 'bin', 'zato')
    try:
        # First: created with its passwords, started, and `zato` linked; ~/.local/bin not on PATH yet
        first = clone.sh('scripts/quickstart.sh', local_bin_on_path=False)
        assert first.returncode == 0, first.stderr
        out = first.stdout
        assert f'Environment created in {env_dir}' in out and 'Admin API password: ' in out
        assert f'server1 listening on http://127.0.0.1:{clone.ports[17010]}' in out
        assert f'web-admin listening on http://127.0.0.1:{clone.ports[8183]}' in out
        assert 'Start it with' not in out and 'quickstart: already' not in out
        assert "The web-admin's user is admin; its password was printed above, once" in out
        assert os.readlink(link) == target
        assert 'is not on your PATH yet' in out and 'export PATH="$HOME/.local/bin:$PATH"' in out
        assert f'Stop it with:\n  {target} stop {env_dir}' in out
        assert f'curl http://127.0.0.1:{clone.ports[17010]}/zato/ping' in out

        # Second, in a shell whose PATH has ~/.local/bin: nothing made, nothing started, nothing printed twice
        second = clone.sh('scripts/quickstart.sh')
        assert second.returncode == 0, second.stderr
        out = second.stdout
        assert f'quickstart: already created in {env_dir} (its passwords were printed when it was created;' in out
        assert 'the CLI keeps its own credential' in out and 'quickstart: already running' in out
        assert 'Environment created' not in out and 'password: ' not in out and 'printed above' not in out
        assert f'for a new one: zato update password {env_dir} admin' in out
        assert f'The zato command: {link} (a link to {target})' in out and 'not on your PATH' not in out
        assert f'Stop it with:\n  zato stop {env_dir}' in out
        assert clone.sh(f'zato update password {env_dir} admin').returncode == 0  # what it says, works

        # Third, stopped: started again; a `zato` of another program in ~/.local/bin is left alone
        assert clone.sh(f'zato stop {env_dir}').returncode == 0
        os.remove(link)
        with open(link, 'w', encoding='utf-8') as f:
            f.write('#!/bin/sh\n')
        third = clone.sh('scripts/quickstart.sh')
        assert third.returncode == 0, third.stderr
        out = third.stdout
        assert 'quickstart: starting it' in out and 'server1 listening on' in out and 'already running' not in out
        assert f'{link} is not ours and was left alone: run Zato as {target}' in out
        assert not os.path.islink(link)
    finally:
        clone.stop_all()
