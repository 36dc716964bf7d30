"""Zato 3.1's blog example that exposes SSH commands over REST with the `sh` library runs as written:
deployed unchanged to a server with one worker, behind a REST channel with Basic Auth, called with
curl, running OpenSSH's `ssh` against the test sshd. The command answers, the worker serves other
requests meanwhile, no child process is left behind, `subprocess` works the same, and `zato stop`
does not wait out its grace period afterwards.

`ssh` finds the test sshd through a Host alias in /etc/ssh/ssh_config.d/: OpenSSH reads the
user's ~/.ssh/config from the home directory in the passwd database (not $HOME), and these tests
run as root, whose own ~/.ssh/config is not ours to change.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.harness import ROOT, Env
from tests.integration.peers import SSHPeer, process_tree

# Exactly as the blog has it (docs/subprocess.md shows it too)
BLOG_EXAMPLE = '''from traceback import format_exc
from sh import ssh
from zato.server.service import Service

class SSHInvoker(Service):
    class SimpleIO:
        input_required = 'host', 'command'
        output_required = 'is_ok', 'cid'
        output_optional = 'stdout', 'stderr'
        skip_empty_keys = True
        response_elem = None

    def handle(self):
        host = self.request.input.host
        command = self.request.input.command
        self.response.payload.cid = self.cid
        try:
            output = ssh(host, command)
            self.response.payload.stdout = output.stdout
            self.response.payload.stderr = output.stderr
        except Exception:
            self.logger.warn('Exception caught (%s), e:`%s', self.cid, format_exc())
            self.response.payload.is_ok = False
        else:
            self.response.payload.is_ok = True
'''

SUBPROCESS_SERVICE = '''
import subprocess
from zato.server.service import Service

class Run(Service):
    name = 'test.subprocess.run'

    def handle(self):
        proc = subprocess.run(self.request.payload['argv'], capture_output=True)
        self.response.payload = {'returncode': proc.returncode, 'stdout': proc.stdout.decode()}
'''

USER, PASSWORD = 'ssh.api', 'Blog-ssh-Secret-7'
CONFIG_DIR = '/etc/ssh/ssh_config.d'


@pytest.fixture(scope='module')
def ssh_host(ssh_peer: SSHPeer) -> Iterator[str]:
    """A Host alias for the test sshd, as an admin would configure the ssh client: key, port, user and
    the peer's host key, non-interactive."""
    alias = f'zato-test-{os.path.basename(ssh_peer.dir)}'
    path = os.path.join(CONFIG_DIR, f'{alias}.conf')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(f'''Host {alias}
    HostName 127.0.0.1
    Port {ssh_peer.port}
    User {ssh_peer.user}
    IdentityFile {ssh_peer.key_path}
    IdentitiesOnly yes
    UserKnownHostsFile {ssh_peer.known_hosts}
    StrictHostKeyChecking yes
    BatchMode yes
''')
    try:
        resolved = subprocess.run(['ssh', '-G', alias], capture_output=True, text=True, check=True).stdout
        assert 'hostname 127.0.0.1' in resolved.splitlines(), \
            f'ssh does not read {CONFIG_DIR} (is it Included by /etc/ssh/ssh_config?)'
        check = subprocess.run(['ssh', alias, 'true'], capture_output=True, text=True, timeout=20)
        assert check.returncode == 0, check.stderr
        yield alias
    finally:
        os.unlink(path)


@pytest.fixture(scope='module')
def env(tmp_path_factory, ssh_host) -> Iterator[Env]:
    e = Env(str(tmp_path_factory.mktemp('sh-example') / 'env'), workers=1)
    e.start()
    try:
        deployed = e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'ssh_invoker.py', 'source': BLOG_EXAMPLE})
        e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'run_subprocess.py', 'source': SUBPROCESS_SERVICE})
        e.admin.call('POST', '/zato/admin/security', {'name': 'ssh.api', 'kind': 'basic_auth', 'username': USER,
                                                      'password': PASSWORD})
        e.channel('ssh', '/ssh', deployed['services'][0], security='ssh.api')
        e.channel('run', '/test/subprocess/run', 'test.subprocess.run')
        yield e
    finally:
        e.stop()


def curl(env: Env, host: str, command: str) -> subprocess.Popen[bytes]:
    """The blog's call: curl -u user:pass http://127.0.0.1:PORT/ssh -d '{"host": ..., "command": ...}'."""
    body = json.dumps({'host': host, 'command': command})
    return subprocess.Popen(['curl', '-sS', '--max-time', '20', '-D', '-', '-u', f'{USER}:{PASSWORD}',
                             f'http://127.0.0.1:{env.base_port}/ssh', '-d', body], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def answer(proc: subprocess.Popen[bytes]) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of a finished curl."""
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    head, _, body = out.decode().partition('\r\n\r\n')
    status_line, *lines = head.split('\r\n')
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(':') for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def worker_pid(env: Env) -> int:
    with open(os.path.join(env.path, 'run', 'server1.pid'), encoding='ascii') as f:
        master = int(f.read())
    workers = [pid for pid in process_tree(master) if pid != master and parent_of(pid) == master]
    assert len(workers) == 1, workers
    return workers[0]


def parent_of(pid: int) -> int:
    with open(f'/proc/{pid}/stat', encoding='ascii', errors='replace') as f:
        return int(f.read().rsplit(')', 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    """Every process below pid, zombies included (a zombie keeps its /proc entry until reaped)."""
    return sorted(child for child in process_tree(pid) if child != pid)


def test_the_blog_example_runs_uname_over_ssh_behind_basic_auth(env, ssh_host):
    status, headers, body = answer(curl(env, ssh_host, 'uname -a'))
    local = subprocess.run(['uname', '-a'], capture_output=True, text=True, check=True).stdout
    assert status == 200, body
    # stdout as text; stderr was empty bytes, left out by skip_empty_keys
    assert body == {'is_ok': True, 'cid': headers['x-zato-cid'], 'stdout': local}


def test_a_failing_command_answers_is_ok_false(env, ssh_host):
    status, headers, body = answer(curl(env, ssh_host, 'false'))
    assert status == 200 and body == {'is_ok': False, 'cid': headers['x-zato-cid']}
    env.wait_for(lambda: f'Exception caught ({headers["x-zato-cid"]})' in env.log())
    assert 'ErrorReturnCode_1' in env.log()


def test_the_worker_serves_other_requests_while_a_command_runs_and_leaves_no_child(env, ssh_host):
    worker = worker_pid(env)
    started = time.monotonic()
    slow = curl(env, ssh_host, 'sleep 2')
    time.sleep(0.3)
    pings = []
    for _ in range(5):
        t0 = time.monotonic()
        r = requests.get(env.url + '/zato/ping', headers={'Connection': 'close'}, timeout=5)
        assert r.status_code == 200
        pings.append(time.monotonic() - t0)
    assert slow.poll() is None, 'the command finished before the pings: nothing was proved'
    assert max(pings) < 1.0, pings  # the one worker answered while it ran the command
    status, headers, body = answer(slow)
    assert status == 200 and body == {'is_ok': True, 'cid': headers['x-zato-cid']}
    assert time.monotonic() - started >= 2
    # ssh exited and was reaped: the worker has no child, zombie or otherwise
    env.wait_for(lambda: descendants(worker) == [], timeout=5)


def test_subprocess_run_in_a_service_answers_without_blocking_the_worker(env):
    worker = worker_pid(env)
    r = requests.post(env.url + '/test/subprocess/run', json={'argv': ['uname', '-a']}, timeout=10)
    local = subprocess.run(['uname', '-a'], capture_output=True, text=True, check=True).stdout
    assert r.status_code == 200 and r.json() == {'returncode': 0, 'stdout': local}

    started = time.monotonic()
    slow = subprocess.Popen(['curl', '-sS', '--max-time', '20', f'{env.url}/test/subprocess/run', '-d',
                             json.dumps({'argv': ['sleep', '2']})], stdout=subprocess.PIPE)
    time.sleep(0.3)
    t0 = time.monotonic()
    assert requests.get(env.url + '/zato/ping', headers={'Connection': 'close'}, timeout=5).status_code == 200
    assert time.monotonic() - t0 < 1.0 and slow.poll() is None
    out, _ = slow.communicate(timeout=30)
    assert json.loads(out) == {'returncode': 0, 'stdout': ''} and time.monotonic() - started >= 2
    env.wait_for(lambda: descendants(worker) == [], timeout=5)


def test_zato_stop_after_such_calls_does_not_wait_out_the_grace_period(env, ssh_host):
    assert answer(curl(env, ssh_host, 'true'))[2]['is_ok'] is True
    r = requests.post(env.url + '/test/subprocess/run', json={'argv': ['true']}, timeout=10)
    assert r.status_code == 200
    started = time.monotonic()
    env.stop()
    took = time.monotonic() - started
    assert took < 10, f'zato stop took {took:.1f} s (graceful_timeout is 30 s)'
    assert 'Graceful timeout reached' not in env.log()


def test_the_docs_show_the_blog_example_as_it_is_tested():
    with open(os.path.join(ROOT, 'docs', 'subprocess.md'), encoding='utf-8') as f:
        assert f'```python\n{BLOG_EXAMPLE}```' in f.read()
