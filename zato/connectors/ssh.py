"""Outgoing SSH connections: ``self.out.ssh['name'].conn.run(command)`` runs a command on one or
more hosts in parallel and returns each host's stdout, stderr and exit code.

Built on parallel-ssh's native client (libssh2 through ssh2-python), which waits on sockets through
gevent, as our workers do. We keep one parallel-ssh `SSHClient` per configured host and run them
side by side with a gevent pool, which is what its `ParallelSSHClient` does inside; we don't use that
class itself because its host list is shared state (changing it drops connections), so concurrent
calls on different hosts could not share one.

Every host's key is checked against the connection's `host_key_policy` (zato.connectors.ssh_hostkeys)
after the key exchange and before any credential is sent. A command is sent once and never retried:
it may have run. A host's session that fails is dropped, and the next call to that host reconnects.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import gevent
import gevent.lock
import gevent.pool

from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field, FieldError, describe)
from zato.connectors.ssh_hostkeys import POLICIES, HostKeyChecker, HostKeyRejected, check_known_hosts

logger = logging.getLogger('zato.connectors.ssh')

AUTH_TYPES = ('password', 'key')

_HOST = re.compile(r'^[A-Za-z0-9._:%-]+$')  # a DNS name, IPv4 or IPv6 address: nothing a shell or URL would read


# ############################################################################################ checks (sftp's too)

def check_host(value: str) -> str | None:
    if not _HOST.match(value) or value.startswith('-'):
        return 'expected a host name or an IP address'
    return None


def check_hosts(value: list[str]) -> str | None:
    if not value:
        return 'expected at least one host'
    for host in value:
        error = check_host(host)
        if error:
            return f'`{host}`: {error}'
    if len(set(value)) != len(value):
        return 'a host is listed twice'
    return None


def check_port(value: int) -> str | None:
    return None if 0 < value < 65536 else 'expected 1 to 65535'


def check_username(value: str) -> str | None:
    return None if value and not any(c.isspace() or c in '@:' for c in value) else 'expected a user name'


def positive(value: float) -> str | None:
    return None if value > 0 else 'expected a number above 0'


def one_of(allowed: tuple[str, ...]) -> Any:
    def check(value: str) -> str | None:
        return None if value in allowed else f'expected one of {", ".join(repr(a) for a in allowed)}'
    return check


def check_pool_size(value: int) -> str | None:
    return None if 0 < value <= 1000 else 'expected 1 to 1000'


# The fields both kinds have, in the order the docs list them
CREDENTIAL_FIELDS: tuple[Field, ...] = (
    Field('port', int, 22, check_port, 'The SSH port'),
    Field('username', str, None, check_username, 'The user to log in as'),
    Field('auth_type', str, 'password', one_of(AUTH_TYPES),
          "'password' (secret is the password) or 'key' (secret is an unencrypted private key, PEM/OpenSSH)"),
    Field('secret', str, '', None, 'The password or the private key; encrypted', secret=True),
    Field('host_key_policy', str, 'strict', one_of(POLICIES), "'strict', 'accept-new' or 'no-check'"),
    Field('known_hosts', str, '', check_known_hosts, 'The hosts\' keys, in OpenSSH known_hosts format'),
    Field('connect_timeout', float, 10.0, positive, 'Seconds to connect and log in'),
)


def check_credentials(config: dict[str, Any]) -> None:
    """check_config of both kinds."""
    if config.get('host_key_policy', 'strict') == 'strict' and not config.get('known_hosts'):
        raise FieldError('known_hosts', "required with host_key_policy 'strict' (or choose 'accept-new' or "
                                        "'no-check', and read the docs on what they risk)")


SSH_FIELDS: tuple[Field, ...] = (
    Field('hosts', list, None, check_hosts, 'The hosts a command runs on by default; run() may pick some of them'),
    *CREDENTIAL_FIELDS,
    Field('timeout', float, 60.0, positive, 'Seconds a command may take, unless run() says otherwise'),
    Field('pool_size', int, 10, check_pool_size, 'Hosts a call runs on at the same time'),
)


# ################################################################################################ results

@dataclass(frozen=True, slots=True)
class SSHResult:
    """What a command did on one host. `exit_code` is None and `error` the ConnectorError if the
    command could not be run or did not finish (run(..., raise_on_error=False) only)."""

    host: str
    stdout: str
    stderr: str
    exit_code: int | None
    error: ConnectorError | None = None

    @property
    def is_ok(self) -> bool:
        """True if the command ran and exited with 0."""
        return self.error is None and self.exit_code == 0


def _client_class(checker: HostKeyChecker, port: int) -> type:
    """parallel-ssh's native SSHClient, checking the host's key right after the key exchange."""
    from pssh.clients.native.single import SSHClient

    class CheckedSSHClient(SSHClient):
        def _init_session(self, retries: int = 1) -> None:
            super()._init_session(retries)
            blob, _ = self.session.hostkey()
            try:
                checker.check(self.host, port, bytes(blob))
            except HostKeyRejected:
                self.sock.close()
                raise

    return CheckedSSHClient


# ################################################################################################ the connector

class SSHConnector(Connector):
    """An outgoing SSH connection; `conn` is the connector itself, with `run`."""

    kind: ClassVar[str] = 'ssh'
    fields: ClassVar[tuple[Field, ...]] = SSH_FIELDS

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self.hosts: list[str] = list(config['hosts'])
        self.port = int(config.get('port', 22))
        self.timeout = float(config.get('timeout', 60.0))
        self.connect_timeout = float(config.get('connect_timeout', 10.0))
        self.checker = HostKeyChecker(config.get('host_key_policy', 'strict'), config.get('known_hosts', ''))
        self._locks = {host: gevent.lock.Semaphore() for host in self.hosts}
        self._cls: type | None = None

    # ------------------------------------------------------------------ calls

    def run(self, command: str, hosts: list[str] | str | None = None, timeout: float | None = None,
            raise_on_error: bool = True) -> dict[str, SSHResult]:
        """Runs `command` through each host's login shell, on all configured hosts or those of `hosts`
        (which must be configured ones), in parallel; {host: SSHResult} in the order of the hosts.

        A non-zero exit code is a result like any other. A host that can't be reached, refuses the
        credentials or doesn't finish within `timeout` seconds (the connection's timeout by default)
        raises its ConnectorError, after every host is done; with raise_on_error=False the error is
        in that host's result instead. The command is never sent twice."""
        targets = self._targets(hosts)
        sessions = self.client  # ConnectorUnavailable (or the auth error) until the first host was reached
        seconds = self.timeout if timeout is None else float(timeout)
        pool = gevent.pool.Pool(int(self.config.get('pool_size', 10)))
        jobs = [pool.spawn(self._run_on, sessions, host, command, seconds) for host in targets]
        gevent.joinall(jobs)
        results = {host: job.value for host, job in zip(targets, jobs, strict=True)}
        if raise_on_error:
            for result in results.values():
                if result.error is not None:
                    raise result.error
        return results

    # ------------------------------------------------------------------ the Connector contract

    def connect(self) -> dict[str, Any]:
        """Logs in to every host at once; built if at least one host let us in. Hosts that did not
        are tried again by the calls that need them."""
        sessions: dict[str, Any] = {}
        jobs = {host: gevent.spawn(self._open, host) for host in self.hosts}
        gevent.joinall(list(jobs.values()))
        errors = []
        for host, job in jobs.items():
            if job.successful():
                sessions[host] = job.value
            else:
                errors.append(self.host_error(host, job.exception))
        if not sessions:
            raise errors[0]  # mapped already: the base class keeps its class for the calls that follow
        for error in errors:
            logger.warning('%r: %s; will retry when a call needs it', self, error)
        return sessions

    def ping_client(self, client: dict[str, Any]) -> None:
        """Runs `true` on every configured host."""
        for result in self.run('true', timeout=self.connect_timeout).values():
            if result.exit_code != 0:
                raise self.error(ConnectorUnavailable, f'{result.host}: `true` exited with {result.exit_code}')

    def close_client(self, client: dict[str, Any]) -> None:
        for host in list(client):
            self._drop(client, host)

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_credentials(config)

    def map_error(self, e: BaseException) -> ConnectorError:
        from pssh import exceptions as pssh_errors

        if isinstance(e, ConnectorError):
            return e
        if isinstance(e, pssh_errors.AuthenticationError):
            return self.error(ConnectorAuthError, f'the credentials of `{self.config["username"]}` were refused')
        if isinstance(e, HostKeyRejected):
            return self.error(ConnectorUnavailable, str(e))
        if isinstance(e, pssh_errors.Timeout | gevent.Timeout | TimeoutError):
            return self.error(ConnectorTimeout, _detail(e))
        return self.error(ConnectorUnavailable, _detail(e))

    # ------------------------------------------------------------------ hosts and sessions

    def _targets(self, hosts: list[str] | str | None) -> list[str]:
        if hosts is None:
            return list(self.hosts)
        targets = [hosts] if isinstance(hosts, str) else list(hosts)
        unknown = [host for host in targets if host not in self._locks]
        if unknown or not targets:
            # Credentials go only to hosts the definition names, never to one a caller made up
            raise ValueError(f'Outgoing ssh connection `{self.name}`: `{unknown[0] if unknown else ""}` is not '
                             f'one of its hosts ({", ".join(self.hosts)})')
        return list(dict.fromkeys(targets))

    def _open(self, host: str) -> Any:
        if self._cls is None:
            self._cls = _client_class(self.checker, self.port)
        key = self.config.get('auth_type', 'password') == 'key'
        secret = self.secret
        # No agent, no ~/.ssh keys of the server's user: only the connection's own credentials
        return self._cls(
            host, user=self.config['username'], port=self.port, password=None if key else secret,
            pkey=secret.encode() if key else None, num_retries=1, retry_delay=0, timeout=self.connect_timeout,
            allow_agent=False, identity_auth=False, keepalive_seconds=30)

    def _session(self, sessions: dict[str, Any], host: str) -> Any:
        session = sessions.get(host)
        if session is not None:
            return session
        with self._locks[host]:
            session = sessions.get(host)
            if session is None:
                session = sessions[host] = self._open(host)
        return session

    def _drop(self, sessions: dict[str, Any], host: str) -> None:
        session = sessions.pop(host, None)
        if session is None:
            return
        try:
            session._disconnect()
        except Exception:  # noqa: BLE001 - a broken session may fail to say goodbye
            logger.debug('%r: could not disconnect from %s', self, host, exc_info=True)

    def _run_on(self, sessions: dict[str, Any], host: str, command: str, seconds: float) -> SSHResult:
        session = None
        timer = gevent.Timeout(seconds)
        timer.start()
        try:
            session = self._session(sessions, host)
            output = session.run_command(command)
            stdout = b''.join(output.buffers.stdout.rw_buffer)
            stderr = b''.join(output.buffers.stderr.rw_buffer)
            session.wait_finished(output)
            channel = output.channel
            # A dead session ends the output streams as a finished command would, but without an EOF
            if not channel.eof():
                raise ConnectionResetError('the connection was lost before the command finished')
            exit_code = channel.get_exit_status()
        except gevent.Timeout as e:
            if e is not timer:
                raise
            error = self.error(ConnectorTimeout, f'{host}: no result within {seconds}s; the command may still be '
                                                 'running')
        except Exception as e:  # noqa: BLE001 - mapped and put into the host's result
            error = self.host_error(host, e)
        else:
            return SSHResult(host, stdout.decode('utf-8', 'replace'), stderr.decode('utf-8', 'replace'), exit_code)
        finally:
            timer.close()
        # The session may be half-way through a channel, or broken: the next call starts afresh
        if session is not None:
            self._drop(sessions, host)
        return SSHResult(host, '', '', None, error)

    def host_error(self, host: str, e: BaseException) -> ConnectorError:
        """`e`, raised while using `host`, as a ConnectorError naming the connection and the host."""
        mapped = self.map_error(e)
        if isinstance(e, ConnectorError):
            return mapped
        detail = str(mapped).removeprefix(f'Outgoing {self.kind} connection `{self.name}`: ')
        return self.error(type(mapped), f'{host}: {detail}')


def _detail(e: BaseException) -> str:
    """parallel-ssh's exceptions carry a %-format and its values as args."""
    args = e.args
    if len(args) > 1 and isinstance(args[0], str) and '%s' in args[0]:
        try:
            return f'{type(e).__name__}: {args[0] % args[1:]}'
        except TypeError:
            pass
    return describe(e)
