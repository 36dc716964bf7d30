"""The ssh connector against OpenSSH's sshd: commands with their output and exit codes, password
and key logins, host-key policies, timeouts, a wrong password, and sshd down at start or dying
mid-call."""

from __future__ import annotations

import time

import gevent
import pytest

from tests.integration.ssh.helpers import start_connector, known_hosts, private_key, restart, ssh_config
from zato.connectors.base import (
    ConnectorAuthError, ConnectorTimeout, ConnectorUnavailable, FieldError, validate)
from zato.connectors.ssh import SSHConnector, SSHResult


def start(started: list, config: dict, secret: str, wait: bool = True) -> SSHConnector:
    return start_connector(started, SSHConnector, 'ssh test', config, secret, wait)


def test_a_command_runs_with_a_password_and_returns_stdout_stderr_and_exit_code(ssh_peer, started):
    conn = start(started, ssh_config(ssh_peer), ssh_peer.password)
    results = conn.run('echo out; echo err >&2; whoami')
    assert results == {'127.0.0.1': SSHResult('127.0.0.1', f'out\n{ssh_peer.user}\n', 'err\n', 0)}
    assert results['127.0.0.1'].is_ok
    assert 0 < conn.ping() < 2


def test_a_failing_command_is_a_result_with_its_exit_code_and_stderr(ssh_peer, started):
    conn = start(started, ssh_config(ssh_peer), ssh_peer.password)
    result = conn.run('ls /no/such/dir', hosts='127.0.0.1')['127.0.0.1']
    assert result.exit_code == 2 and 'No such file' in result.stderr and result.stdout == ''
    assert not result.is_ok and result.error is None


def test_a_private_key_logs_in(ssh_peer, started):
    conn = start(started, ssh_config(ssh_peer, auth_type='key'), private_key(ssh_peer))
    assert conn.run('echo key')['127.0.0.1'].stdout == 'key\n'


def test_commands_run_on_every_configured_host_in_parallel_or_on_those_asked_for(ssh_peer, started):
    conn = start(started, ssh_config(ssh_peer, hosts=['127.0.0.1', 'localhost']), ssh_peer.password)
    began = time.monotonic()
    results = conn.run('sleep 1; echo done')
    assert time.monotonic() - began < 1.9
    assert list(results) == ['127.0.0.1', 'localhost'] and all(r.stdout == 'done\n' for r in results.values())
    assert list(conn.run('true', hosts=['localhost'])) == ['localhost']

    # Credentials never go to a host the definition does not name
    with pytest.raises(ValueError, match='`example.com` is not one of its hosts'):
        conn.run('true', hosts=['example.com'])


def test_a_command_that_takes_too_long_raises_a_timeout_and_the_next_call_works(ssh_peer, started):
    conn = start(started, ssh_config(ssh_peer), ssh_peer.password)
    began = time.monotonic()
    with pytest.raises(ConnectorTimeout, match='127.0.0.1: no result within 0.5s'):
        conn.run('sleep 5', timeout=0.5)
    assert time.monotonic() - began < 1.5
    result = conn.run('sleep 5', timeout=0.5, raise_on_error=False)['127.0.0.1']
    assert isinstance(result.error, ConnectorTimeout) and result.exit_code is None
    assert conn.run('echo next')['127.0.0.1'].stdout == 'next\n'


def test_a_wrong_password_is_an_auth_error_on_calls_and_ping(ssh_peer, started):
    conn = start(started, ssh_config(ssh_peer), 'not the password')
    assert not conn.is_built
    with pytest.raises(ConnectorAuthError, match='`ssh test`.*credentials of `zato-test-ssh` were refused'):
        conn.run('true')
    with pytest.raises(ConnectorAuthError):
        conn.ping()


def test_host_keys_are_checked_by_policy_before_logging_in(ssh_peer, started):
    other_key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'
    wrong = start(started, ssh_config(ssh_peer, known_hosts=f'[127.0.0.1]:{ssh_peer.port} {other_key}\n'),
                  ssh_peer.password)
    with pytest.raises(ConnectorUnavailable, match='is not the one expected') as info:
        wrong.run('true')
    assert ssh_peer.host_key_fingerprint in str(info.value)

    unknown = start(started, ssh_config(ssh_peer, known_hosts=f'[other]:22 {other_key}\n'), ssh_peer.password)
    with pytest.raises(ConnectorUnavailable, match='is not in known_hosts'):
        unknown.run('true')

    # accept-new trusts an unlisted host, but still refuses a listed host's wrong key
    new = start(started, ssh_config(ssh_peer, host_key_policy='accept-new', known_hosts=''), ssh_peer.password)
    assert new.run('true')['127.0.0.1'].is_ok
    assert list(new.checker.learned) == [f'[127.0.0.1]:{ssh_peer.port}']
    listed = start(started, ssh_config(ssh_peer, host_key_policy='accept-new',
                                       known_hosts=f'[127.0.0.1]:{ssh_peer.port} {other_key}\n'), ssh_peer.password)
    with pytest.raises(ConnectorUnavailable, match='is not the one expected'):
        listed.run('true')

    anything = start(started, ssh_config(ssh_peer, host_key_policy='no-check', known_hosts=''), ssh_peer.password)
    assert anything.run('true')['127.0.0.1'].is_ok


def test_sshd_down_at_start_then_up_builds_the_client(own_peer, started):
    own_peer.kill()
    try:
        began = time.monotonic()
        conn = start(started, ssh_config(own_peer), own_peer.password, wait=False)
        assert time.monotonic() - began < 0.1
        conn.wait_attempted(5)
        with pytest.raises(ConnectorUnavailable, match='`ssh test`.*not connected yet.*refused'):
            conn.ping()
    finally:
        restart(own_peer)
    deadline = time.monotonic() + 10
    while not conn.is_built and time.monotonic() < deadline:
        gevent.sleep(0.05)
    assert conn.run('echo up')['127.0.0.1'].stdout == 'up\n'


def test_sshd_dying_mid_call_is_a_mapped_error_and_the_next_call_reconnects(own_peer, started):
    conn = start(started, ssh_config(own_peer), own_peer.password)
    call = gevent.spawn(conn.run, 'sleep 3; echo late', raise_on_error=False)
    gevent.sleep(0.5)
    own_peer.kill()
    try:
        result = call.get(timeout=5)['127.0.0.1']
        assert isinstance(result.error, ConnectorUnavailable) and result.exit_code is None
        assert '127.0.0.1' in str(result.error)
        with pytest.raises(ConnectorUnavailable):
            conn.run('true')
    finally:
        restart(own_peer)
    assert conn.run('echo again')['127.0.0.1'].stdout == 'again\n'


@pytest.mark.parametrize('data, field', [
    ({'colour': 'red'}, 'colour'),
    ({'port': 0}, 'port'),
    ({'port': '22'}, 'port'),
    ({'hosts': []}, 'hosts'),
    ({'hosts': ['a b']}, 'hosts'),
    ({'hosts': ['-oProxyCommand=x']}, 'hosts'),
    ({'host_key_policy': 'yolo'}, 'host_key_policy'),
    ({'known_hosts': 'not a known_hosts line'}, 'known_hosts'),
    ({'known_hosts': ''}, 'known_hosts'),
    ({'auth_type': 'kerberos'}, 'auth_type'),
    ({'timeout': 0}, 'timeout'),
    ({'username': ''}, 'username'),
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(ssh_peer, data, field):
    with pytest.raises(FieldError) as info:
        config, _ = validate(SSHConnector.fields, {**ssh_config(ssh_peer), **data})
        SSHConnector.check_config(config)
    assert info.value.field == field


def test_the_known_hosts_of_the_peer_parse(ssh_peer):
    config, secret = validate(SSHConnector.fields, {**ssh_config(ssh_peer), 'secret': 'x'})
    assert secret == 'x' and 'secret' not in config and config['known_hosts'] == known_hosts(ssh_peer)
