"""Outgoing SFTP connections: ``self.out.sftp['name'].conn`` lists, reads, writes, moves and deletes
files on an SSH server, with the method names of Zato 3.1.

Built on paramiko's SFTP client (3.1 ran the `sftp` command in a subprocess). Each worker keeps a
small pool of SFTP sessions, each over its own SSH transport, up to `pool_size`; a call borrows one
and gives it back. The host's key is checked against the connection's `host_key_policy`
(zato.connectors.ssh_hostkeys) before any credential is sent.

A file-level failure is an answer, raised as the standard exception: FileNotFoundError,
PermissionError, FileExistsError or OSError. A failure of the session itself (the server went away,
no answer within `timeout`) is a ConnectorError; that session is dropped and the next call opens a
new one. Nothing is retried: a call may have done its work before its answer was lost.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import posixpath
import shlex
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from io import StringIO
from typing import Any, ClassVar

import gevent.lock
import gevent.queue

from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field, describe)
from zato.connectors.ssh import CREDENTIAL_FIELDS, check_credentials, check_host, check_pool_size, positive
from zato.connectors.ssh_hostkeys import HostKeyChecker, HostKeyRejected

logger = logging.getLogger('zato.connectors.sftp')

SFTP_FIELDS: tuple[Field, ...] = (
    Field('host', str, None, check_host, 'The SSH server'),
    *CREDENTIAL_FIELDS,
    Field('timeout', float, 30.0, positive, 'Seconds to wait for each answer of the server'),
    Field('pool_size', int, 2, check_pool_size, 'SFTP sessions per worker, each its own SSH connection'),
    Field('is_compression_enabled', bool, False, None, 'Compress the SSH transport (zlib)'),
    Field('should_preserve_meta', bool, True, None, 'upload/download keep the modification time and mode'),
    Field('buffer_size', int, 32768, lambda v: None if 1024 <= v <= 16 * 1024 * 1024 else 'expected 1024 to 16 MiB',
          'Bytes per read and write'),
)

# execute(script): what it understands, with the number of arguments each takes (min, max)
SCRIPT_COMMANDS = {'cd': (1, 1), 'pwd': (0, 0), 'ls': (0, 1), 'mkdir': (1, 1), 'rmdir': (1, 1), 'rm': (1, 1),
                   'rename': (2, 2), 'chmod': (2, 2), 'put': (1, 2), 'get': (1, 2), 'ln': (2, 3),
                   'symlink': (2, 2)}


# ################################################################################################ results

@dataclass(frozen=True, slots=True)
class SFTPInfo:
    """One remote file, directory or link, as list() and get_info() return it."""

    name: str
    type: str              # 'file', 'directory', 'symlink' or 'other'
    size: int
    permissions: int       # the mode bits, e.g. 0o644
    uid: int
    gid: int
    owner: str             # the user and group names when the server gives them (list() only), else the ids
    group: str
    last_modified: datetime | None

    @property
    def is_file(self) -> bool:
        return self.type == 'file'

    @property
    def is_directory(self) -> bool:
        return self.type == 'directory'

    @property
    def is_symlink(self) -> bool:
        return self.type == 'symlink'

    def to_dict(self) -> dict[str, Any]:
        return {'name': self.name, 'type': self.type, 'size': self.size, 'permissions': oct(self.permissions),
                'owner': self.owner, 'group': self.group,
                'last_modified': self.last_modified.isoformat() if self.last_modified else None}


@dataclass(frozen=True, slots=True)
class SFTPOutput:
    """What execute(script) did: `is_ok`, the listing and messages in `stdout`, failures in `stderr`."""

    is_ok: bool
    stdout: str
    stderr: str


def _info(name: str, attr: Any) -> SFTPInfo:
    mode = attr.st_mode or 0
    if stat.S_ISDIR(mode):
        kind = 'directory'
    elif stat.S_ISLNK(mode):
        kind = 'symlink'
    elif stat.S_ISREG(mode):
        kind = 'file'
    else:
        kind = 'other'
    owner, group = str(attr.st_uid), str(attr.st_gid)
    longname = getattr(attr, 'longname', None)
    if longname:  # `ls -l` style: mode links owner group size ...
        parts = longname.split()
        if len(parts) >= 4:
            owner, group = parts[2], parts[3]
    mtime = datetime.fromtimestamp(attr.st_mtime, UTC) if attr.st_mtime is not None else None
    return SFTPInfo(name, kind, attr.st_size or 0, stat.S_IMODE(mode), attr.st_uid or 0, attr.st_gid or 0,
                    owner, group, mtime)


# ################################################################################################ the session pool

class SessionPool:
    """Up to `size` (transport, SFTPClient) pairs; idle ones are reused, broken ones dropped."""

    def __init__(self, size: int, first: tuple[Any, Any]) -> None:
        self.slots = gevent.lock.BoundedSemaphore(size)
        self.idle: gevent.queue.LifoQueue = gevent.queue.LifoQueue()
        self.idle.put(first)
        self.closed = False

    def close(self) -> None:
        self.closed = True
        while not self.idle.empty():
            _close(self.idle.get_nowait())


def _close(session: tuple[Any, Any]) -> None:
    transport, sftp = session
    for closable in (sftp, transport):
        try:
            closable.close()
        except Exception:  # noqa: BLE001 - a broken session may fail to say goodbye
            logger.debug('Could not close %r', closable, exc_info=True)


# ################################################################################################ the connector

class SFTPConnector(Connector):
    """An outgoing SFTP connection; `conn` is the connector itself, with the file methods."""

    kind: ClassVar[str] = 'sftp'
    fields: ClassVar[tuple[Field, ...]] = SFTP_FIELDS

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self.host = str(config['host'])
        self.port = int(config.get('port', 22))
        self.timeout = float(config.get('timeout', 30.0))
        self.connect_timeout = float(config.get('connect_timeout', 10.0))
        self.buffer_size = int(config.get('buffer_size', 32768))
        self.preserve = bool(config.get('should_preserve_meta', True))
        self.checker = HostKeyChecker(config.get('host_key_policy', 'strict'), config.get('known_hosts', ''))

    # ------------------------------------------------------------------ information

    def list(self, path: str = '.') -> list[SFTPInfo]:
        """The entries of a directory, sorted by name (`.` and `..` left out)."""
        with self._sftp() as sftp:
            entries = sftp.listdir_attr(path)
        return sorted((_info(attr.filename, attr) for attr in entries), key=lambda info: info.name)

    def get_info(self, path: str) -> SFTPInfo:
        """What `path` is; a symlink is described itself, not what it points to. FileNotFoundError if none."""
        with self._sftp() as sftp:
            return _info(posixpath.basename(path.rstrip('/')) or path, sftp.lstat(path))

    def exists(self, path: str) -> bool:
        try:
            self.get_info(path)
        except FileNotFoundError:
            return False
        return True

    def _is(self, path: str, kind: str) -> bool:
        try:
            return self.get_info(path).type == kind
        except FileNotFoundError:
            return False

    def is_file(self, path: str) -> bool:
        return self._is(path, 'file')

    def is_directory(self, path: str) -> bool:
        return self._is(path, 'directory')

    def is_symlink(self, path: str) -> bool:
        return self._is(path, 'symlink')

    # ------------------------------------------------------------------ contents

    def read(self, path: str) -> bytes:
        """The contents of a remote file."""
        with self._sftp() as sftp, sftp.open(path, 'rb', self.buffer_size) as f:
            f.prefetch()
            return bytes(f.read())

    def write(self, data: bytes | str, path: str, overwrite: bool = False) -> None:
        """Writes `data` (str as UTF-8) to a remote file; FileExistsError if it exists, unless `overwrite`."""
        payload = data.encode('utf-8') if isinstance(data, str) else bytes(data)
        with self._exclusive(path, overwrite), self._sftp() as sftp, \
                sftp.open(path, 'wb' if overwrite else 'wxb', self.buffer_size) as f:
            f.set_pipelined(True)
            f.write(payload)

    def upload(self, local: str, remote: str, overwrite: bool = False) -> None:
        """Copies a local file of the server to `remote`; FileExistsError if it exists, unless `overwrite`."""
        with open(local, 'rb') as source, self._exclusive(remote, overwrite), self._sftp() as sftp:
            with sftp.open(remote, 'wb' if overwrite else 'wxb', self.buffer_size) as f:
                f.set_pipelined(True)
                while chunk := source.read(self.buffer_size):
                    f.write(chunk)
            if self.preserve:
                meta = os.stat(local)
                sftp.utime(remote, (meta.st_atime, meta.st_mtime))
                sftp.chmod(remote, stat.S_IMODE(meta.st_mode))

    def download(self, remote: str, local: str, overwrite: bool = False) -> None:
        """Copies `remote` to a local file of the server; FileExistsError if it exists, unless `overwrite`."""
        with self._sftp() as sftp:
            with sftp.open(remote, 'rb', self.buffer_size) as f, open(local, 'wb' if overwrite else 'xb') as target:
                f.prefetch()
                while chunk := f.read(self.buffer_size):
                    target.write(chunk)
            if self.preserve:
                meta = sftp.stat(remote)
                os.utime(local, (meta.st_atime, meta.st_mtime))
                os.chmod(local, stat.S_IMODE(meta.st_mode or 0o600))

    # ------------------------------------------------------------------ changes

    def delete(self, path: str) -> None:
        """Deletes a file, a symlink or an empty directory."""
        if self.is_directory(path):
            with self._sftp() as sftp:
                sftp.rmdir(path)
            return
        with self._sftp() as sftp:
            sftp.remove(path)

    def delete_file(self, path: str) -> None:
        with self._sftp() as sftp:
            sftp.remove(path)

    def delete_directory(self, path: str) -> None:
        """Deletes an empty directory."""
        with self._sftp() as sftp:
            sftp.rmdir(path)

    def move(self, src: str, dst: str) -> None:
        """Renames `src` to `dst`; the server may refuse if `dst` exists (SFTP v3 rename)."""
        with self._sftp() as sftp:
            sftp.rename(src, dst)

    def create_directory(self, path: str) -> None:
        with self._sftp() as sftp:
            sftp.mkdir(path)

    def create_symlink(self, target: str, path: str) -> None:
        """Makes `path` a symlink to `target`."""
        with self._sftp() as sftp:
            sftp.symlink(target, path)

    def chmod(self, mode: int | str, path: str) -> None:
        """Sets the mode bits: an int (0o640) or an octal string ('640')."""
        bits = int(mode, 8) if isinstance(mode, str) else int(mode)
        with self._sftp() as sftp:
            sftp.chmod(path, bits)

    # ------------------------------------------------------------------ scripts

    def execute(self, script: str, raise_on_error: bool = True) -> SFTPOutput:
        """Runs a script of sftp batch commands, one a line, on one session: cd, pwd, ls [path],
        mkdir, rmdir, rm, rename, chmod MODE PATH, put LOCAL [REMOTE], get REMOTE [LOCAL],
        ln -s / symlink TARGET PATH. `#` starts a comment; a command prefixed with `-` may fail
        without stopping the script. Stops at the first other failure: OSError if `raise_on_error`,
        else an SFTPOutput with is_ok False."""
        commands = _parse_script(script)
        out, err = StringIO(), StringIO()
        with self._sftp() as sftp:
            sftp.chdir(None)
            try:
                for number, (tolerant, words) in enumerate(commands, 1):
                    try:
                        self._script_command(sftp, words, out)
                    except OSError as e:
                        err.write(f'line {number}: {" ".join(words)}: {describe(e)}\n')
                        if tolerant:
                            continue
                        if raise_on_error:
                            raise
                        return SFTPOutput(False, out.getvalue(), err.getvalue())
            finally:
                sftp.chdir(None)
        return SFTPOutput(True, out.getvalue(), err.getvalue())

    def _script_command(self, sftp: Any, words: builtins.list[str], out: StringIO) -> None:
        command, args = words[0], words[1:]
        if command == 'cd':
            sftp.chdir(args[0])
        elif command == 'pwd':
            out.write(f'{sftp.getcwd() or sftp.normalize(".")}\n')
        elif command == 'ls':
            for attr in sorted(sftp.listdir_attr(args[0] if args else '.'), key=lambda a: a.filename):
                out.write(f'{attr.longname or attr.filename}\n')
        elif command == 'mkdir':
            sftp.mkdir(args[0])
        elif command == 'rmdir':
            sftp.rmdir(args[0])
        elif command == 'rm':
            sftp.remove(args[0])
        elif command == 'rename':
            sftp.rename(args[0], args[1])
        elif command == 'chmod':
            sftp.chmod(args[1], int(args[0], 8))
        elif command == 'put':
            sftp.put(args[0], args[1] if len(args) > 1 else posixpath.basename(args[0]))
        elif command == 'get':
            sftp.get(args[0], args[1] if len(args) > 1 else posixpath.basename(args[0]))
        else:  # ln -s target path, symlink target path
            sftp.symlink(args[-2], args[-1])

    # ------------------------------------------------------------------ the Connector contract

    def connect(self) -> SessionPool:
        try:
            first = self._open()
        except Exception as e:
            # Mapped here, where it explains itself best; the base class keeps its class for the calls
            raise self.map_error(e) from e
        return SessionPool(int(self.config.get('pool_size', 2)), first)

    def ping_client(self, client: SessionPool) -> None:
        """Asks the server where the session starts (`realpath .`): one round trip."""
        with self._sftp() as sftp:
            sftp.normalize('.')

    def close_client(self, client: SessionPool) -> None:
        client.close()

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_credentials(config)

    def map_error(self, e: BaseException) -> ConnectorError:
        import paramiko

        if isinstance(e, ConnectorError):
            return e
        if isinstance(e, paramiko.AuthenticationException):
            return self.error(ConnectorAuthError, f'the credentials of `{self.config["username"]}` were refused')
        if isinstance(e, HostKeyRejected):
            return self.error(ConnectorUnavailable, str(e))
        if isinstance(e, TimeoutError):
            return self.error(ConnectorTimeout, f'{self.host}:{self.port}: no answer in time ({describe(e)})')
        return self.error(ConnectorUnavailable, f'{self.host}:{self.port}: {describe(e)}')

    # ------------------------------------------------------------------ sessions

    def _open(self) -> tuple[Any, Any]:
        """A logged-in SFTP session: connect, check the host's key, authenticate, open the subsystem."""
        import paramiko

        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        transport = paramiko.Transport(sock)
        try:
            transport.use_compression(bool(self.config.get('is_compression_enabled', False)))
            transport.start_client(timeout=self.connect_timeout)
            key = transport.get_remote_server_key()
            self.checker.check(self.host, self.port, key.asbytes())
            username = self.config['username']
            if self.config.get('auth_type', 'password') == 'key':
                transport.auth_publickey(username, _private_key(self.secret))
            else:
                transport.auth_password(username, self.secret)
            sftp = paramiko.SFTPClient.from_transport(transport)
            if sftp is None:
                raise ConnectionError('the server did not start the sftp subsystem')
            sftp.get_channel().settimeout(self.timeout)
        except BaseException:
            transport.close()
            raise
        return transport, sftp

    @contextmanager
    def _exclusive(self, path: str, overwrite: bool) -> Iterator[None]:
        """OpenSSH answers an exclusive create of an existing file with a bare `Failure`: say what it is."""
        try:
            yield
        except OSError as e:
            if overwrite or isinstance(e, FileNotFoundError | PermissionError | TimeoutError | ConnectorError):
                raise
            if self.exists(path):
                raise FileExistsError(errno.EEXIST, f'{path} exists (pass overwrite=True to replace it)') from e
            raise

    @contextmanager
    def _sftp(self) -> Iterator[Any]:
        """Borrows a session for one call; a broken one is dropped, the error mapped."""
        import paramiko

        pool: SessionPool = self.client
        if not pool.slots.acquire(timeout=self.timeout):
            raise self.error(ConnectorTimeout, f'all {self.config.get("pool_size", 2)} sessions stayed busy '
                                               f'for {self.timeout}s')
        session = None
        try:
            session = pool.idle.get_nowait() if not pool.idle.empty() else None
            if session is None or not session[0].is_active():
                if session is not None:
                    _close(session)
                try:
                    session = self._open()
                except Exception as e:
                    session = None
                    raise self.map_error(e) from e
            try:
                yield session[1]
            except (paramiko.SSHException, EOFError, OSError) as e:
                if isinstance(e, OSError) and not isinstance(e, TimeoutError) and session[0].is_active():
                    raise  # an SFTP status (no such file, permission denied ...) or a local file's error: an answer
                _close(session)
                session = None
                raise self.map_error(e) from e
        finally:
            if session is not None:
                if pool.closed or not session[0].is_active():
                    _close(session)
                else:
                    pool.idle.put(session)
            pool.slots.release()


def _private_key(text: str) -> Any:
    """A paramiko key from an unencrypted private key in PEM or OpenSSH format."""
    import paramiko

    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(StringIO(text))
        except (paramiko.SSHException, ValueError) as e:
            errors.append(f'{cls.__name__}: {e}')
    raise paramiko.AuthenticationException(f'the secret is not a private key paramiko can read ({"; ".join(errors)})')


def _parse_script(script: str) -> list[tuple[bool, list[str]]]:
    """(may fail, words) per command; ValueError naming a line that is not a supported command."""
    commands = []
    for number, raw in enumerate(script.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        tolerant = line.startswith('-')
        try:
            words = shlex.split(line[1:] if tolerant else line)
        except ValueError as e:
            raise ValueError(f'line {number}: {e}') from None
        if words and words[0] == 'ln' and (len(words) != 4 or words[1] != '-s'):
            raise ValueError(f'line {number}: only `ln -s TARGET PATH` is supported')
        command = words[0] if words else ''
        if command not in SCRIPT_COMMANDS:
            raise ValueError(f'line {number}: `{command}` is not supported (supported: {", ".join(SCRIPT_COMMANDS)})')
        low, high = SCRIPT_COMMANDS[command]
        if command != 'ln' and not low <= len(words) - 1 <= high:
            raise ValueError(f'line {number}: `{command}` takes {low}' + (f' to {high}' if high != low else '')
                             + ' argument(s)')
        if command == 'chmod':
            try:
                int(words[1], 8)
            except ValueError:
                raise ValueError(f'line {number}: chmod takes an octal mode, e.g. 640') from None
        commands.append((tolerant, words))
    return commands

