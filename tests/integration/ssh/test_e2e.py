"""ssh and sftp connections in a running Zato (2 workers) against sshd: the docs' SSH-commands-as-a-REST-API
example as written, SFTP from a service, ping, change-password, inactive and edits through the admin API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.e2e.harness import Env, docs_example
from tests.integration.ssh.helpers import known_hosts, private_key
from zato.admin_client import AdminCallError

API_PASSWORD = 'ssh-Api-Secret-42'

SFTP_SERVICE = '''
from zato.server.service import Service

class Files(Service):
    name = 'sftp.files'

    def handle(self):
        req = self.request.payload
        conn = self.out.sftp['files'].conn
        path = req['dir'] + '/' + req['name']
        conn.write(req['data'], path, overwrite=True)
        self.response.payload = {'read': conn.read(path).decode(), 'listed': [i.name for i in conn.list(req['dir'])],
                                 'info': conn.get_info(path).to_dict()}
        conn.delete(path)
'''


@pytest.fixture(scope='module')
def env(tmp_path_factory) -> Iterator[Env]:
    e = Env(str(tmp_path_factory.mktemp('ssh-e2e') / 'env'), workers=2)
    e.start()
    try:
        _, file_name, code = docs_example('outgoing-ssh.md')
        e.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': code})
        e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'sftp_files.py', 'source': SFTP_SERVICE})
        e.admin.call('POST', '/zato/admin/security', {'name': 'ssh.api', 'kind': 'basic_auth', 'username': 'api',
                                                      'password': API_PASSWORD})
        e.channel('ssh-api', '/api/ssh', 'ssh.command', security='ssh.api')
        e.channel('sftp-files', '/api/sftp', 'sftp.files')
        yield e
    finally:
        e.stop()


def ssh_call(env: Env, host: str, command: str) -> dict:
    # As the docs' curl "api:PASSWORD@localhost:PORT/api/ssh" -d '{"host":"localhost", "command":"uptime"}'
    r = requests.post(f'http://api:{API_PASSWORD}@localhost:{env.base_port}/api/ssh',
                      data=f'{{"host":"{host}", "command":"{command}"}}', headers={'Connection': 'close'}, timeout=15)
    assert r.status_code == 200, (r.text, env.log()[-3000:])
    body = r.json()
    assert body['cid'] == r.headers['X-Zato-CID']
    return body


@pytest.fixture(scope='module')
def ssh_conn(env, ssh_peer) -> dict:
    return env.admin.call('POST', '/zato/admin/outconns/ssh', {
        'name': 'My SSH Connection', 'hosts': ['localhost'], 'port': ssh_peer.port, 'username': ssh_peer.user,
        'secret': ssh_peer.password, 'known_hosts': known_hosts(ssh_peer), 'timeout': 5})


def test_the_docs_example_runs_ssh_commands_as_a_rest_api(env, ssh_peer, ssh_conn):
    assert 'secret' not in ssh_conn and ssh_conn['has_secret'] is True and ssh_conn['host_key_policy'] == 'strict'
    # Both workers built it
    env.wait_for(lambda: all(ssh_call(env, 'localhost', 'uptime')['is_ok'] for _ in range(4)), timeout=10)
    for _ in range(6):
        body = ssh_call(env, 'localhost', 'uptime')
        assert set(body) == {'is_ok', 'cid', 'stdout'} and 'load average' in body['stdout'], body

    body = ssh_call(env, 'localhost', 'ls /no/such/dir')
    assert body['is_ok'] is False and 'No such file' in body['stderr'] and 'stdout' not in body

    body = ssh_call(env, 'example.com', 'uptime')
    assert body == {'is_ok': False, 'cid': body['cid'], 'stderr': 'Outgoing ssh connection `My SSH Connection`: '
                                                                  '`example.com` is not one of its hosts (localhost)'}

    r = requests.post(env.url + '/api/ssh', json={'host': 'localhost', 'command': 'uptime'}, timeout=10)
    assert r.status_code == 401

    ping = env.admin.call('POST', f'/zato/admin/outconns/ssh/{ssh_conn["id"]}/ping')
    assert ping['ok'] is True and 0 < ping['time'] < 2, ping


def test_a_wrong_password_then_a_key_through_the_admin_api(env, ssh_peer, ssh_conn):
    env.wait_for(lambda: ssh_call(env, 'localhost', 'true')['is_ok'], timeout=10)
    env.admin.call('POST', f'/zato/admin/outconns/ssh/{ssh_conn["id"]}/change-password', {'secret': 'wrong'})

    def refused() -> bool:
        body = ssh_call(env, 'localhost', 'true')
        return body['is_ok'] is False and 'were refused' in body['stderr']
    env.wait_for(lambda: all(refused() for _ in range(4)), timeout=10)
    ping = env.admin.call('POST', f'/zato/admin/outconns/ssh/{ssh_conn["id"]}/ping')
    assert ping['ok'] is False and 'credentials of `zato-test-ssh` were refused' in ping['error'], ping

    env.admin.call('PUT', f'/zato/admin/outconns/ssh/{ssh_conn["id"]}',
                   {'auth_type': 'key', 'secret': private_key(ssh_peer)})
    env.wait_for(lambda: all(ssh_call(env, 'localhost', 'whoami').get('stdout') == f'{ssh_peer.user}\n'
                             for _ in range(4)), timeout=10)
    assert 'PRIVATE KEY' not in str(env.admin.call('GET', '/zato/admin/outconns/ssh'))
    assert 'PRIVATE KEY' not in env.log()


def test_an_inactive_connection_is_named_and_an_edit_brings_it_back(env, ssh_peer, ssh_conn):
    env.admin.call('PUT', f'/zato/admin/outconns/ssh/{ssh_conn["id"]}', {'is_active': False})
    env.wait_for(lambda: all(ssh_call(env, 'localhost', 'true').get('stderr') ==
                             'Outgoing ssh connection `My SSH Connection` is not active' for _ in range(4)), timeout=5)
    env.admin.call('PUT', f'/zato/admin/outconns/ssh/{ssh_conn["id"]}',
                   {'is_active': True, 'auth_type': 'password', 'secret': ssh_peer.password})
    env.wait_for(lambda: all(ssh_call(env, 'localhost', 'true')['is_ok'] for _ in range(4)), timeout=10)


def test_a_service_reads_and_writes_files_over_sftp(env, ssh_peer):
    created = env.admin.call('POST', '/zato/admin/outconns/sftp', {
        'name': 'files', 'host': '127.0.0.1', 'port': ssh_peer.port, 'username': ssh_peer.user,
        'secret': ssh_peer.password, 'known_hosts': known_hosts(ssh_peer)})
    assert created['pool_size'] == 2 and 'secret' not in created

    def call() -> dict:
        r = requests.post(env.url + '/api/sftp', json={'dir': ssh_peer.remote_dir, 'name': 'e2e.txt', 'data': 'hi'},
                          headers={'Connection': 'close'}, timeout=15)
        return r.json() if r.status_code == 200 else {}
    env.wait_for(lambda: all(call().get('read') == 'hi' for _ in range(4)), timeout=10)
    out = call()
    assert out['listed'] == ['e2e.txt'] and out['info']['type'] == 'file' and out['info']['size'] == 2
    ping = env.admin.call('POST', f'/zato/admin/outconns/sftp/{created["id"]}/ping')
    assert ping['ok'] is True, ping


@pytest.mark.parametrize('kind, body, field', [
    ('ssh', {'hosts': ['h'], 'username': 'u', 'port': 0}, 'port'),
    ('ssh', {'hosts': ['h'], 'username': 'u', 'host_key_policy': 'no-check', 'colour': 'red'}, 'colour'),
    ('ssh', {'hosts': ['h'], 'username': 'u'}, 'known_hosts'),
    ('ssh', {'hosts': 'h', 'username': 'u', 'host_key_policy': 'no-check'}, 'hosts'),
    ('sftp', {'host': 'h', 'username': 'u', 'host_key_policy': 'maybe'}, 'host_key_policy'),
    ('sftp', {'username': 'u', 'host_key_policy': 'no-check'}, 'host'),
])
def test_a_config_that_cannot_be_valid_is_refused_at_save_naming_the_field(env, kind, body, field):
    with pytest.raises(AdminCallError) as info:
        env.admin.call('POST', f'/zato/admin/outconns/{kind}', {'name': 'bad', **body})
    assert info.value.status == 400 and f'`{field}`' in str(info.value)
