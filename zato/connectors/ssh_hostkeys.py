"""Host-key checking for the `ssh` and `sftp` connectors, the same rules whatever the SSH library.

A connection's `host_key_policy` is one of:

- ``strict``: the host's key must be in the connection's `known_hosts` (OpenSSH's format, hashed
  names included); an unknown host or a different key is refused before any credential is sent.
- ``accept-new``: a key in `known_hosts` must match, as with strict; a host not listed there is
  trusted on first use and its key remembered by this worker for the life of the connection, so a
  changed key is refused until the connection is rebuilt. The first connection can be intercepted.
- ``no-check``: any key is accepted. Anyone on the path can impersonate the server and collect the
  password or the commands' output; for tests and throw-away hosts only.

The check takes the key as the server sent it (the SSH wire blob), so that ssh2-python (ssh) and
paramiko (sftp) share it. No I/O here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass

logger = logging.getLogger('zato.connectors.ssh')

POLICIES = ('strict', 'accept-new', 'no-check')


class HostKeyRejected(Exception):
    """The server's key is not the one expected; the message says why and gives its fingerprint."""


def fingerprint(blob: bytes) -> str:
    """SHA256:... as `ssh-keygen -l` prints it."""
    return 'SHA256:' + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip('=')


def key_type(blob: bytes) -> str:
    """The key's algorithm name, the first string of its wire form (ssh-ed25519, ssh-rsa ...)."""
    if len(blob) < 4:
        return '?'
    size = int.from_bytes(blob[:4], 'big')
    return blob[4:4 + size].decode('ascii', 'replace')


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: `host`, or `[host]:port` off port 22."""
    return host if port == 22 else f'[{host}]:{port}'


@dataclass(frozen=True)
class Entry:
    """One line of known_hosts."""

    patterns: tuple[str, ...]   # plain or wildcard patterns, `!` negates; empty if hashed
    hashed: tuple[bytes, bytes] | None  # (salt, HMAC-SHA1 of the name) of a |1|salt|hash line
    blob: bytes
    marker: str                 # '', '@revoked' or '@cert-authority'

    def matches(self, name: str) -> bool:
        if self.hashed is not None:
            salt, digest = self.hashed
            return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
        matched = False
        for pattern in self.patterns:
            negated = pattern.startswith('!')
            if _pattern(pattern[1:] if negated else pattern).match(name):
                if negated:
                    return False
                matched = True
        return matched


def _pattern(pattern: str) -> re.Pattern[str]:
    """OpenSSH's wildcards: `*` and `?` only (`[host]:port` is literal, not a character class)."""
    return re.compile(''.join('.*' if c == '*' else '.' if c == '?' else re.escape(c) for c in pattern) + r'\Z')


def parse_known_hosts(text: str) -> list[Entry]:
    """The entries of OpenSSH known_hosts content; ValueError naming the first bad line."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.split()
        marker = ''
        if parts[0].startswith('@'):
            marker, parts = parts[0], parts[1:]
            if marker not in ('@revoked', '@cert-authority'):
                raise ValueError(f'line {number}: unknown marker {marker}')
        if len(parts) < 3:
            raise ValueError(f'line {number}: expected hosts, key type and key')
        names, kind, encoded = parts[:3]
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError(f'line {number}: the key is not base64') from None
        if key_type(blob) != kind:
            raise ValueError(f'line {number}: the key is not a {kind} key')
        hashed = None
        patterns: tuple[str, ...] = ()
        if names.startswith('|1|'):
            try:
                _, _, salt, digest = names.split('|')
                hashed = (base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True))
            except (ValueError, binascii.Error):
                raise ValueError(f'line {number}: a malformed hashed host name') from None
        else:
            patterns = tuple(names.split(','))
        entries.append(Entry(patterns, hashed, blob, marker))
    return entries


def check_known_hosts(value: str) -> str | None:
    """A Field check: None if `value` is valid known_hosts content."""
    try:
        parse_known_hosts(value)
    except ValueError as e:
        return f'not valid known_hosts content ({e})'
    return None


class HostKeyChecker:
    """Checks the keys servers offer against one connection's policy and known_hosts."""

    def __init__(self, policy: str, known_hosts: str) -> None:
        self.policy = policy
        self.entries = parse_known_hosts(known_hosts)
        self.learned: dict[str, bytes] = {}  # accept-new: keys trusted on first use, by known_hosts name

    def check(self, host: str, port: int, blob: bytes) -> None:
        """Returns if `blob` may be the key of host:port; HostKeyRejected otherwise."""
        if self.policy == 'no-check':
            return
        name = known_hosts_name(host, port)
        offered = f'{key_type(blob)} {fingerprint(blob)}'
        matching = [e for e in self.entries if e.marker != '@cert-authority' and e.matches(name)]
        if any(e.marker == '@revoked' and e.blob == blob for e in matching):
            raise HostKeyRejected(f'the host key of {name} ({offered}) is marked @revoked in known_hosts')
        expected = [e.blob for e in matching if not e.marker]
        if not expected and name in self.learned:
            expected = [self.learned[name]]
        if expected:
            if blob in expected:
                return
            raise HostKeyRejected(f'the host key of {name} ({offered}) is not the one expected; someone may be '
                                  f'impersonating the server, or its key changed (update known_hosts)')
        if self.policy == 'strict':
            raise HostKeyRejected(f'{name} is not in known_hosts (host_key_policy is strict); it offered {offered}')
        self.learned[name] = blob
        logger.warning('Trusting the host key of %s on first use (host_key_policy accept-new): %s', name, offered)
