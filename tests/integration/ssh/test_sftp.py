"""The sftp connector against OpenSSH's internal-sftp: the 3.1 file API, scripts, password and key
logins, a wrong password, and sshd down at start or dying between calls."""

from __future__ import annotations

import os
import time

import gevent
import pytest

from tests.integration.ssh.helpers import start_connector, private_key, restart, sftp_config
from zato.connectors.base import ConnectorAuthError, ConnectorUnavailable, FieldError, validate
from zato.connectors.sftp import SFTPConnector


def start(started: list, config: dict, secret: str, wait: bool = True) -> SFTPConnector:
    return start_connector(started, SFTPConnector, 'sftp test', config, secret, wait)


def test_files_are_written_read_listed_moved_and_deleted(ssh_peer, started, tmp_path):
    conn = start(started, sftp_config(ssh_peer), ssh_peer.password)
    d = ssh_peer.remote_dir + '/api'
    conn.create_directory(d)
    conn.write(b'hello', f'{d}/a.txt')
    assert conn.read(f'{d}/a.txt') == b'hello'
    with pytest.raises(FileExistsError):
        conn.write('again', f'{d}/a.txt')
    conn.write('again', f'{d}/a.txt', overwrite=True)
    assert conn.read(f'{d}/a.txt') == b'again'

    assert conn.exists(f'{d}/a.txt') and conn.is_file(f'{d}/a.txt') and conn.is_directory(d)
    assert not conn.exists(f'{d}/nope') and not conn.is_file(d) and not conn.is_directory(f'{d}/nope')
    with pytest.raises(FileNotFoundError):
        conn.read(f'{d}/nope')

    conn.chmod('640', f'{d}/a.txt')
    conn.move(f'{d}/a.txt', f'{d}/b.txt')
    [info] = conn.list(d)
    assert (info.name, info.type, info.size, info.permissions, info.owner) == ('b.txt', 'file', 5, 0o640, ssh_peer.user)
    assert info.last_modified is not None and abs(info.last_modified.timestamp() - time.time()) < 60
    assert conn.get_info(d).is_directory

    local = tmp_path / 'up.txt'
    local.write_bytes(b'from the server')
    os.utime(local, (1_600_000_000, 1_600_000_000))
    conn.upload(str(local), f'{d}/up.txt')
    assert conn.read(f'{d}/up.txt') == b'from the server'
    assert conn.get_info(f'{d}/up.txt').last_modified.timestamp() == 1_600_000_000
    conn.download(f'{d}/up.txt', str(tmp_path / 'down.txt'))
    assert (tmp_path / 'down.txt').read_bytes() == b'from the server'
    with pytest.raises(FileExistsError):
        conn.download(f'{d}/up.txt', str(tmp_path / 'down.txt'))

    for name in ('b.txt', 'up.txt'):
        conn.delete(f'{d}/{name}')
    conn.delete(d)
    assert not conn.exists(d)
    assert 0 < conn.ping() < 2


def test_a_script_runs_the_supported_commands_in_order(ssh_peer, started):
    conn = start(started, sftp_config(ssh_peer), ssh_peer.password)
    d = ssh_peer.remote_dir
    out = conn.execute(f'''
        # comments and blank lines are skipped
        cd {d}
        mkdir s
        -rm no-such-file
        pwd
        chmod 700 s
        ls
    ''')
    assert out.is_ok and out.stdout.startswith(f'{d}\ndrwx------ ') and out.stdout.rstrip().endswith(' s')
    assert 'rm no-such-file' in out.stderr

    with pytest.raises(FileNotFoundError):
        conn.execute(f'cd {d}\nrmdir nope\nrmdir s')
    assert conn.is_directory(f'{d}/s')
    out = conn.execute(f'cd {d}\nrmdir nope\nrmdir s', raise_on_error=False)
    assert not out.is_ok and 'line 2' in out.stderr and conn.is_directory(f'{d}/s')
    conn.execute(f'rmdir {d}/s')
    assert not conn.exists(f'{d}/s')

    with pytest.raises(ValueError, match='`reget` is not supported'):
        conn.execute('reget x')


def test_a_private_key_logs_in_and_a_wrong_password_is_an_auth_error(ssh_peer, started):
    conn = start(started, sftp_config(ssh_peer, auth_type='key'), private_key(ssh_peer))
    assert conn.is_directory(ssh_peer.remote_dir)
    bad = start(started, sftp_config(ssh_peer), 'wrong')
    with pytest.raises(ConnectorAuthError, match='`sftp test`.*credentials of `zato-test-ssh` were refused'):
        bad.list('.')


def test_concurrent_calls_share_a_small_pool_of_sessions(ssh_peer, started):
    conn = start(started, sftp_config(ssh_peer, pool_size=2), ssh_peer.password)
    jobs = [gevent.spawn(conn.is_directory, ssh_peer.remote_dir) for _ in range(10)]
    gevent.joinall(jobs, raise_error=True)
    assert all(job.value for job in jobs)
    assert conn.client.idle.qsize() <= 2


def test_sshd_down_at_start_then_up_builds_the_client_and_a_lost_session_reconnects(own_peer, started):
    own_peer.kill()
    try:
        began = time.monotonic()
        conn = start(started, sftp_config(own_peer), own_peer.password, wait=False)
        assert time.monotonic() - began < 0.1
        conn.wait_attempted(5)
        with pytest.raises(ConnectorUnavailable, match='`sftp test`.*refused'):
            conn.ping()
    finally:
        restart(own_peer)
    deadline = time.monotonic() + 10
    while not conn.is_built and time.monotonic() < deadline:
        gevent.sleep(0.05)
    assert conn.is_directory(own_peer.remote_dir)

    own_peer.kill()
    try:
        with pytest.raises(ConnectorUnavailable):
            conn.list(own_peer.remote_dir)
    finally:
        restart(own_peer)
    assert conn.list(own_peer.remote_dir) == []


@pytest.mark.parametrize('data, field', [
    ({'colour': 'red'}, 'colour'),
    ({'port': 70000}, 'port'),
    ({'host': 'a;b'}, 'host'),
    ({'host_key_policy': 'never'}, 'host_key_policy'),
    ({'known_hosts': ''}, 'known_hosts'),
    ({'pool_size': 0}, 'pool_size'),
    ({'buffer_size': 10}, 'buffer_size'),
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(ssh_peer, data, field):
    with pytest.raises(FieldError) as info:
        config, _ = validate(SFTPConnector.fields, {**sftp_config(ssh_peer), **data})
        SFTPConnector.check_config(config)
    assert info.value.field == field
