"""Active Directory for the integration tests: a Samba AD domain controller on loopback.

    with ADPeer() as ad:
        ldap3.Connection(ad.url, ad.users['jdoe'].upn, ad.users['jdoe'].password, auto_bind=True)

Samba serves real AD LDAP: the AD schema (sAMAccountName, memberOf, objectSid ...), simple binds with
a DN, a UPN or DOMAIN\\user, LDAPS and StartTLS with the certificate it makes itself, and the global
catalog. It runs only its LDAP service (`server services = ldap`), on AD's fixed ports: 389, 636,
3268 and 3269 on 127.0.0.1 and ::1. So only one instance runs on a machine: a second start fails at
once, saying who holds the ports; and it needs root, to bind them.

Provisioning a domain takes from a few to tens of seconds, so it is done once per Samba version: the
domain ZATO.TEST, its users, the TLS certificate Samba makes on its first start and the random
passwords (secrets.json, 0600) are kept in CACHE_DIR/samba-ad-<version>-r<RECIPE>, and every start
copies them into its own directory and starts samba there in the foreground, in a process group of
its own that stop() kills.

scripts/peers.sh installs the Debian packages (samba, samba-ad-dc, samba-ad-provision ...) and makes
sure Debian's own samba services are neither enabled nor running.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.integration.peers import HOST, Peer, PeerFailed, PeerMissing, _is_zombie, find_program, port_open

# Bump when what provisioning makes changes (users, attributes, smb.conf), so that old caches are not used
RECIPE = 3

# AD's fixed ports: LDAP, LDAPS, global catalog, global catalog over TLS
LDAP_PORT, LDAPS_PORT, GC_PORT, GCS_PORT = 389, 636, 3268, 3269
PORTS = (LDAP_PORT, LDAPS_PORT, GC_PORT, GCS_PORT)

# Held while a peer runs (and provisions): one Samba AD DC per machine, as its ports are fixed
LOCK_PATH = '/run/zato-test-ad.lock'

# Samba's own certificate is valid for about two years from the first start; provision again well before
MAX_CACHE_AGE = 365 * 86400

# Contacts under OU=bulk, more than AD's default MaxPageSize of 1000, for paged searches
BULK = 1100

# The path of the domain's directory in a cached smb.conf, replaced by each copy's own
PLACEHOLDER = '@ZATO_TEST_AD_DIR@'

# Files of a running samba that a copy must not take: sockets, pid files, logs, core dumps
_RUNTIME = re.compile(r'^(run|cores|msg\.sock|msg\.lock|ldapi|smbd\.tmp|log\..*)$')


def cache_dir() -> Path:
    """Where provisioned domains are kept: $XDG_CACHE_HOME/zato-tests, or ~/.cache/zato-tests."""
    return Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'zato-tests'


def _password() -> str:
    # Random, with the upper and lower case letter, digit and symbol AD's complexity rule asks for
    return f'{secrets.token_urlsafe(18)}-Zt9'


def _open_private(path: Path) -> IO[str]:
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w', encoding='utf-8')


@dataclass(frozen=True)
class ADUser:
    """A user of the test domain: its sAMAccountName, DN, UPN and password."""

    sam: str
    dn: str
    upn: str
    password: str


class ADPeer(Peer):
    """A Samba AD DC of the domain ZATO.TEST (NetBIOS ZATO, base DN DC=zato,DC=test) on 127.0.0.1.

    `users` by sAMAccountName: `zato-svc` (the account Zato binds as: `bind_dn` and `password` are its
    UPN and password), `jdoe` (a member of `group_dn`), `jdisabled` (a disabled account) and `jchange`
    (whose password must be changed at the next logon). `bulk_dn` holds BULK contacts. `ca_file` is the
    CA certificate Samba made; its server certificate names `cert_name`, not 127.0.0.1.
    """

    name = 'ad'
    start_timeout = 60.0  # samba forks a dozen processes; slow on a loaded machine
    stop_grace = 5.0

    realm = 'ZATO.TEST'
    domain = 'ZATO'
    dns_domain = 'zato.test'
    base_dn = 'DC=zato,DC=test'
    users_dn = f'CN=Users,{base_dn}'
    group_dn = f'CN=zato-devs,{users_dn}'
    bulk_dn = f'OU=bulk,{base_dn}'
    cert_name = 'dc1.zato.test'
    admin_upn = 'Administrator@zato.test'

    # sAMAccountName → (CN, userAccountControl, password must be changed)
    ACCOUNTS = {
        'zato-svc': ('Zato Service', 512, False),
        'jdoe': ('John Doe', 512, False),
        'jdisabled': ('Jane Disabled', 514, False),  # 514: a normal account (512), disabled (2)
        'jchange': ('Jack Change', 512, True),
    }

    def __init__(self) -> None:
        super().__init__()
        self.admin_password = ''
        self.users: dict[str, ADUser] = {}
        self.version = ''
        self.domain_dir = ''
        self.ca_file = ''
        self.provisioned = False  # True if this start provisioned the domain instead of copying the cache
        self._lock: IO[str] | None = None
        # LDAP, LDAPS, the global catalog and the global catalog over TLS
        self.url, self.ldaps_url = f'ldap://{self.host}:{LDAP_PORT}', f'ldaps://{self.host}:{LDAPS_PORT}'
        self.gc_url, self.gcs_url = f'ldap://{self.host}:{GC_PORT}', f'ldaps://{self.host}:{GCS_PORT}'

    # Where and as whom

    @property
    def bind_dn(self) -> str:
        return self.users['zato-svc'].upn

    @property
    def password(self) -> str:
        return self.users['zato-svc'].password

    @property
    def port(self) -> int:
        return LDAP_PORT

    @port.setter
    def port(self, value: int) -> None:
        """Ignored: Peer.start picks a free port for peers that take any, and AD's ports are fixed."""

    # The life cycle

    def prepare(self) -> None:
        try:
            import ldap3  # noqa: F401 - the peer talks to samba with it
        except ImportError:
            raise PeerMissing('ldap3 is not installed (a dependency of Zato)') from None
        self.samba = find_program('samba', 'samba')
        self.samba_tool = find_program('samba-tool', 'samba-common-bin')
        self.pgrep = find_program('pgrep', 'procps')
        if not os.path.isdir('/usr/share/samba/setup/ad-schema'):
            raise PeerMissing('the AD schema files are missing (Debian package samba-ad-provision)')
        if os.geteuid() != 0:
            raise PeerFailed('the AD peer needs root: Samba binds the fixed AD ports (389, 636, 3268, 3269)')
        self._take_machine()
        version = subprocess.run([self.samba, '-V'], capture_output=True, text=True, timeout=30).stdout
        self.version = re.sub(r'[^A-Za-z0-9._-]', '', version.replace('Version', '').strip()) or 'unknown'
        self.domain_dir = os.path.join(self.dir, 'domain')
        cached = cache_dir() / f'samba-ad-{self.version}-r{RECIPE}'
        if self._usable(cached):
            shutil.copytree(cached / 'domain', self.domain_dir, symlinks=True)
            self._configure(json.loads((cached / 'secrets.json').read_text()))
        else:
            self._provision(cached)
            self.provisioned = True

    def command(self) -> list[str]:
        # --debug-stdout: the log goes to self.log_path with the rest
        return [self.samba, '-s', os.path.join(self.domain_dir, 'etc', 'smb.conf'), '--foreground',
                '--no-process-group', '--debug-stdout']

    def answers(self) -> bool:
        """Once the directory takes the Administrator's simple bind."""
        if not port_open(LDAP_PORT):
            return False
        import ldap3

        server = ldap3.Server(self.host, port=LDAP_PORT, get_info=ldap3.NONE, connect_timeout=1)
        try:
            conn = ldap3.Connection(server, self.admin_upn, self.admin_password, receive_timeout=2)
            ok = conn.bind()
            conn.unbind()
            return bool(ok)
        except ldap3.core.exceptions.LDAPException:
            return False

    def kill(self) -> None:
        """Stops samba and every process of its group (start_new_session made it the group's leader)."""
        proc = self.proc
        if proc is None:
            return
        pgid = proc.pid
        _signal_group(pgid, signal.SIGTERM)  # samba ends its children on SIGTERM
        super().kill()
        # Members of the group left alive (a worker a pre-fork master forked after the tree was taken): while a
        # group has members its id is not reused, so this reaches samba's processes only. The wait: until the
        # last one has closed AD's ports, which a restart needs at once
        _signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self._group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _group_alive(self, pgid: int) -> bool:
        """Whether a process of the group is alive; zombies, which hold no ports, wait for init to reap them."""
        found = subprocess.run([self.pgrep, '-g', str(pgid)], capture_output=True, text=True, timeout=10).stdout
        return any(not _is_zombie(int(pid)) for pid in found.split())

    def cleanup(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # releases the flock

    # The machine, the cache and provisioning

    def _take_machine(self) -> None:
        """The machine-wide lock, then free ports: a clear failure if another AD DC has them."""
        lock = open(LOCK_PATH, 'a+', encoding='ascii')  # noqa: SIM115 - held until cleanup()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or 'unknown'
            lock.close()
            raise PeerFailed(f'another Samba AD DC of the tests runs on this machine (pid {holder}, lock '
                             f'{LOCK_PATH}): AD ports are fixed, so only one can run at a time') from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock
        taken = [port for port in PORTS if port_open(port, HOST)]
        if taken:
            raise PeerFailed(f'ports {", ".join(map(str, taken))} on {HOST} are taken, so Samba cannot serve AD '
                             f'there (Debian\'s samba-ad-dc service? scripts/peers.sh disables it):\n{_listeners()}')

    def _usable(self, cached: Path) -> bool:
        try:
            meta = json.loads((cached / 'secrets.json').read_text())
        except (OSError, ValueError):
            return False
        if time.time() - float(meta.get('created', 0)) > MAX_CACHE_AGE:
            return False
        return (cached / 'domain' / 'etc' / 'smb.conf').is_file()

    def _configure(self, meta: dict[str, Any]) -> None:
        """Points smb.conf at this copy of the domain and takes the passwords of `meta`."""
        conf = Path(self.domain_dir, 'etc', 'smb.conf')
        conf.write_text(conf.read_text().replace(PLACEHOLDER, self.domain_dir))
        os.makedirs(os.path.join(self.domain_dir, 'run'), exist_ok=True)
        self.admin_password = meta['admin_password']
        self.users = {sam: ADUser(sam, f'CN={cn},{self.users_dn}', f'{sam}@{self.dns_domain}', meta['users'][sam])
                      for sam, (cn, _, _) in self.ACCOUNTS.items()}
        self.ca_file = os.path.join(self.domain_dir, 'private', 'tls', 'ca.pem')

    def _provision(self, cached: Path) -> None:
        """Provisions the domain in self.dir, starts samba once (it makes its TLS certificate then), adds
        the users, groups and contacts, stops it and keeps a copy in `cached`."""
        meta: dict[str, Any] = {'admin_password': _password(), 'users': {sam: _password() for sam in self.ACCOUNTS},
                'created': time.time(), 'samba': self.version}
        # The Administrator's password is on samba-tool's command line for these seconds: a throwaway
        # domain on loopback, its passwords random per cache
        self._log_run([self.samba_tool, 'domain', 'provision', f'--realm={self.realm}', f'--domain={self.domain}',
                       '--server-role=dc', '--dns-backend=SAMBA_INTERNAL', f'--adminpass={meta["admin_password"]}',
                       '--use-rfc2307', '--host-name=dc1', f'--host-ip={HOST}', '--option=interfaces=lo',
                       '--option=bind interfaces only=yes', f'--targetdir={self.domain_dir}'])
        conf = Path(self.domain_dir, 'etc', 'smb.conf')
        text = re.sub(r'^\s*dns forwarder\s*=.*\n', '', conf.read_text(), flags=re.M)
        # Only the LDAP service (no DNS forwarding to the host's resolver, no SMB, Kerberos or RPC);
        # simple binds over plain ldap://, as AD allows unless LDAP signing is required
        extra = (f'\tserver services = ldap\n\tldap server require strong auth = no\n'
                 f'\tpid directory = {PLACEHOLDER}/run\n\tlog file = {PLACEHOLDER}/log.%m\n')
        conf.write_text(text.replace('[global]\n', f'[global]\n{extra}', 1))
        self._configure(meta)
        self.spawn(self.command())
        self._populate()
        self.kill()

        staging = Path(tempfile.mkdtemp(prefix=f'{cached.name}.', dir=_private_dir(cached.parent)))
        try:
            shutil.copytree(self.domain_dir, staging / 'domain', symlinks=True, ignore=_runtime_files)
            staged = staging / 'domain' / 'etc' / 'smb.conf'
            staged.write_text(staged.read_text().replace(self.domain_dir, PLACEHOLDER))
            with _open_private(staging / 'secrets.json') as f:
                json.dump(meta, f)
            # This domain replaces any other kept: of an older recipe or Samba version
            for old in cached.parent.glob('samba-ad-*'):
                if old.is_dir() and old != staging:
                    shutil.rmtree(old, ignore_errors=True)
            os.rename(staging, cached)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _populate(self) -> None:
        """The users, the group and the contacts, added over LDAPS (AD sets passwords only over TLS)."""
        import ssl

        import ldap3

        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file, valid_names=[self.cert_name])
        server = ldap3.Server(self.host, port=LDAPS_PORT, use_ssl=True, tls=tls, get_info=ldap3.NONE,
                              connect_timeout=10)
        with ldap3.Connection(server, self.admin_upn, self.admin_password, auto_bind=True, raise_exceptions=True,
                              receive_timeout=60) as c:
            for sam, (cn, uac, must_change) in self.ACCOUNTS.items():
                user = self.users[sam]
                given, _, surname = cn.partition(' ')
                c.add(user.dn, ['top', 'person', 'organizationalPerson', 'user'], {
                    'sAMAccountName': sam, 'userPrincipalName': user.upn, 'givenName': given, 'sn': surname,
                    'displayName': cn, 'mail': user.upn, 'description': f'Zato test user {sam}'})
                c.extend.microsoft.modify_password(user.dn, user.password)
                c.modify(user.dn, {'userAccountControl': [(ldap3.MODIFY_REPLACE, [uac])]})
                if must_change:
                    c.modify(user.dn, {'pwdLastSet': [(ldap3.MODIFY_REPLACE, [0])]})
            # A global security group
            c.add(self.group_dn, ['top', 'group'], {'sAMAccountName': 'zato-devs', 'groupType': -2147483646})
            c.modify(self.group_dn, {'member': [(ldap3.MODIFY_ADD, [self.users['jdoe'].dn])]})
            c.add(self.bulk_dn, ['top', 'organizationalUnit'])
            for n in range(BULK):
                c.add(f'CN=contact-{n:04d},{self.bulk_dn}', ['top', 'person', 'organizationalPerson', 'contact'],
                      {'description': f'bulk contact {n}'})

    def _log_run(self, argv: list[str]) -> None:
        with open(self.log_path, 'ab') as log:
            log.write(f'\n$ {" ".join(a if "adminpass" not in a else "--adminpass=***" for a in argv)}\n'.encode())
            log.flush()
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=self.dir, timeout=600)
        if proc.returncode != 0:
            raise PeerFailed(f'{argv[0]} {argv[1]} {argv[2]} failed ({proc.returncode})\n{self.log_tail()}')


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # the domains kept there have their private keys and secrets
    return path


def _runtime_files(where: str, names: list[str]) -> set[str]:
    return {name for name in names if _RUNTIME.match(name) or
            not (os.path.isdir(os.path.join(where, name)) or os.path.isfile(os.path.join(where, name)))}


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _listeners() -> str:
    ss = shutil.which('ss') or shutil.which('ss', path='/usr/sbin:/sbin:/usr/bin')
    if not ss:
        return '(ss is not installed, so who holds them is unknown)'
    ports = ' or '.join(f'sport = :{port}' for port in PORTS)
    proc = subprocess.run([ss, '-Hltnp', ports], capture_output=True, text=True, timeout=10)
    return proc.stdout.strip() or proc.stderr.strip()
