"""Mail servers for the integration tests: aiosmtpd for SMTP and Dovecot for IMAP, each a real process
on free loopback ports in a temp dir, with real TLS from a CA made for the peer.

    with DovecotPeer() as imap, SMTPPeer(lmtp=imap.lmtp) as smtp:
        # what smtp takes for @example.org reaches imap's mailboxes over LMTP
        smtplib.SMTP(smtp.host, smtp.port).starttls(context=ssl.create_default_context(cafile=smtp.pki.ca_file))

Dovecot runs from a config of its own (nothing under /etc is read or changed): IMAP with STARTTLS on
`port`, IMAPS on `ssl_port`, LMTP on `lmtp_port`, and users alice and bob @example.org with random
passwords, their maildirs owned by `nobody`. Its master runs as root, as it does by default. Postfix
is not used: it keeps its config and queue under /etc/postfix and /var/spool/postfix and cannot be
run per test session without changing them; aiosmtpd (tests/integration/mail/smtpd.py) speaks the same
SMTP, with STARTTLS, TLS from the first byte and AUTH, and relays to Dovecot over LMTP.

scripts/peers.sh installs Dovecot (dovecot-imapd, dovecot-lmtpd); aiosmtpd is one of the test extras.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import pwd
import secrets
import smtplib
import socket
import ssl
import sys
import time
from typing import Any

from tests.integration.peers import HOST, Peer, PeerFailed, PeerMissing, find_program, port_open
from tests.pki import PKI, make_pki

HERE = os.path.dirname(os.path.abspath(__file__))
SMTPD = os.path.join(HERE, 'mail', 'smtpd.py')
MAIL_DOMAIN = 'example.org'


def _free_ports(count: int) -> list[int]:
    """`count` different loopback ports nobody listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# SMTP


class SMTPPeer(Peer):
    """aiosmtpd in its own process (tests/integration/mail/smtpd.py): plain with STARTTLS on `port`,
    TLS from the first byte on `ssl_port`, with the certificate of `pki`.

    With `users` ({login: password}), AUTH is required before MAIL, and offered only over TLS. With
    `lmtp` ((host, port) of Dovecot's LMTP), what it takes for MAIL_DOMAIN is delivered there too.
    With `starttls` false, `port` offers no STARTTLS.
    `messages()` lists what it took, oldest first."""

    name = 'smtp'

    def __init__(self, users: dict[str, str] | None = None, lmtp: tuple[str, int] | None = None,
                 starttls: bool = True) -> None:
        super().__init__()
        self.users = users if users is not None else {'zato@example.org': secrets.token_urlsafe(12)}
        self.lmtp = lmtp
        self.starttls = starttls
        self.ssl_port = 0
        self.spool = ''
        self.pki: PKI | None = None

    @property
    def user(self) -> str:
        return next(iter(self.users), '')

    @property
    def password(self) -> str:
        return self.users.get(self.user, '')

    @property
    def ca_file(self) -> str:
        assert self.pki is not None
        return self.pki.ca_file

    def prepare(self) -> None:
        if importlib.util.find_spec('aiosmtpd') is None:
            raise PeerMissing('aiosmtpd is not installed (PyPI package aiosmtpd, one of the test extras)')
        self.pki = make_pki(self.dir, 'smtp')
        self.spool = os.path.join(self.dir, 'spool')
        os.mkdir(self.spool)

    def command(self) -> list[str]:
        assert self.pki is not None
        if not self.ssl_port:  # chosen once: a restart (the contract suite's up()) keeps both ports
            self.ssl_port = next(p for p in _free_ports(2) if p != self.port)
        config = self.write('smtpd.json', json.dumps({
            'host': self.host, 'port': self.port, 'ssl_port': self.ssl_port, 'cert_file': self.pki.cert_file,
            'key_file': self.pki.key_file, 'users': self.users, 'spool': self.spool,
            'lmtp': list(self.lmtp) if self.lmtp else None, 'local_domains': [MAIL_DOMAIN], 'starttls': self.starttls}))
        return [sys.executable, SMTPD, config]

    def answers(self) -> bool:
        if not (port_open(self.port) and port_open(self.ssl_port)):
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                return s.recv(64).startswith(b'220 ')
        except OSError:
            return False

    def messages(self) -> list[dict[str, Any]]:
        """What the server took: mail_from, rcpt_tos, data (the message), login, tls."""
        found = []
        for path in sorted(glob.glob(os.path.join(self.spool, '*.json')),
                           key=lambda p: int(os.path.basename(p).split('-')[0])):
            with open(path, encoding='utf-8') as f:
                found.append(json.load(f))
        return found

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The messages, once there are at least `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


# IMAP


class DovecotPeer(Peer):
    """Dovecot on a config of its own: IMAP with STARTTLS on `port`, IMAPS on `ssl_port`, LMTP on
    `lmtp_port`; users `users` ({address: password}) with maildirs under its directory. Needs root."""

    name = 'dovecot'

    def __init__(self) -> None:
        super().__init__()
        self.users = {f'{user}@{MAIL_DOMAIN}': secrets.token_urlsafe(12) for user in ('alice', 'bob')}
        self.ssl_port = 0
        self.lmtp_port = 0
        self.pki: PKI | None = None

    @property
    def user(self) -> str:
        return next(iter(self.users))

    @property
    def password(self) -> str:
        return self.users[self.user]

    @property
    def ca_file(self) -> str:
        assert self.pki is not None
        return self.pki.ca_file

    @property
    def lmtp(self) -> tuple[str, int]:
        return self.host, self.lmtp_port

    def prepare(self) -> None:
        self.dovecot = find_program('dovecot', 'dovecot-imapd')
        if not os.path.exists('/usr/lib/dovecot/lmtp') and not glob.glob('/usr/lib*/dovecot/lmtp'):
            raise PeerMissing('dovecot has no LMTP server (Debian package dovecot-lmtpd)')
        if os.geteuid() != 0:
            raise PeerFailed("the Dovecot peer needs root: Dovecot's master runs as root and its mail processes as "
                             'nobody')
        account = pwd.getpwnam('nobody')
        os.chmod(self.dir, 0o711)  # the mail processes, as nobody, reach their maildirs through it
        self.pki = make_pki(self.dir, 'dovecot')
        os.makedirs(os.path.join(self.dir, 'run', 'state'))
        mail = os.path.join(self.dir, 'mail')
        os.mkdir(mail, 0o700)
        os.chown(mail, account.pw_uid, account.pw_gid)
        self.users_file = self.write('users', ''.join(
            f'{address}:{{PLAIN}}{password}:{account.pw_uid}:{account.pw_gid}::{mail}/{address.split("@")[0]}\n'
            for address, password in self.users.items()), 0o640)
        # Read by Dovecot's auth process, which runs as its internal user
        os.chown(self.users_file, 0, pwd.getpwnam('dovecot').pw_gid)

    def command(self) -> list[str]:
        assert self.pki is not None
        if not self.ssl_port:  # chosen once: a restart (the contract suite's up()) keeps every port
            self.ssl_port, self.lmtp_port = [p for p in _free_ports(3) if p != self.port][:2]
        config = self.write('dovecot.conf', f"""\
base_dir = {self.dir}/run
state_dir = {self.dir}/run/state
instance_name = {os.path.basename(self.dir)}
protocols = imap lmtp
listen = {self.host}
log_path = {self.log_path}
ssl = yes
ssl_cert = <{self.pki.cert_file}
ssl_key = <{self.pki.key_file}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_file}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_file}
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.ssl_port}
    ssl = yes
  }}
}}
# No growing delay for a client after failed logins (Dovecot's auth penalty): tests log in wrongly on purpose
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Archive {{
    auto = create
  }}
}}
""")
        # -F: in the foreground, so that the peer's process is Dovecot's master
        return [self.dovecot, '-F', '-c', config]

    def answers(self) -> bool:
        if not (port_open(self.ssl_port) and port_open(self.lmtp_port)):
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                return s.recv(64).startswith(b'* OK')
        except OSError:
            return False

    def deliver(self, raw: bytes, to: str | None = None, sender: str = f'tests@{MAIL_DOMAIN}') -> None:
        """Puts a message (RFC 5322 bytes) into a user's INBOX over LMTP, as an MTA would."""
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=10) as lmtp:
            lmtp.sendmail(sender, [to or self.user], raw)

    def tls(self) -> ssl.SSLContext:
        """A client context that trusts this peer's CA."""
        return ssl.create_default_context(cafile=self.ca_file)
