"""The real peers of the integration tests, started once per session (tests/integration/peers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from tests.e2e.harness import Env
from tests.integration.peers import KafkaPeer, LDAPPeer, MongoPeer, Peer, PeerMissing, SSHPeer
from tests.integration.peers_ad import ADPeer
from tests.integration.peers_mail import DovecotPeer, SMTPPeer

# name → seconds its start took, for the summary at the end of the run
START_TIMES: dict[str, float] = {}

P = TypeVar('P', bound=Peer)


def started(peer: P, label: str) -> Iterator[P]:
    """Starts the peer for the session; a missing program is a setup bug, so it fails instead of skipping."""
    try:
        peer.start()
    except PeerMissing as e:
        pytest.fail(f'{label}: {e}. Run scripts/test.sh, which installs every peer '
                    f'(scripts/setup.sh --test for the Python ones, scripts/peers.sh for the Debian ones).', pytrace=False)
    START_TIMES[label] = peer.started_in
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope='session')
def mongo_peer() -> Iterator[MongoPeer]:
    """SecantusDB (MongoDB wire protocol), no auth: .uri, .host, .port."""
    yield from started(MongoPeer(), 'mongo')


@pytest.fixture(scope='session')
def mongo_auth_peer() -> Iterator[MongoPeer]:
    """SecantusDB with --auth (SCRAM-SHA-256) and a root user: .uri (with credentials), .user, .password."""
    yield from started(MongoPeer(auth=True), 'mongo --auth')


@pytest.fixture(scope='session')
def kafka_peer() -> Iterator[KafkaPeer]:
    """Tansu (Kafka protocol), one broker in memory: .bootstrap."""
    yield from started(KafkaPeer(), 'kafka')


@pytest.fixture(scope='session')
def ldap_peer() -> Iterator[LDAPPeer]:
    """OpenLDAP slapd with dc=example,dc=com: .url, .bind_dn, .password, .users [(dn, password)]."""
    yield from started(LDAPPeer(), 'ldap')


@pytest.fixture(scope='session')
def ad_peer() -> Iterator[ADPeer]:
    """Samba AD DC of ZATO.TEST on the fixed AD ports: .url, .ldaps_url, .gc_url, .bind_dn, .password, .users
    {sAMAccountName: ADUser}, .ca_file; provisioned once per Samba version, then copied (tests/integration/peers_ad.py)."""
    yield from started(ADPeer(), 'ad')


@pytest.fixture(scope='session')
def ssh_peer() -> Iterator[SSHPeer]:
    """OpenSSH sshd with SFTP: .host, .port, .user, .password, .key_path, .host_key_fingerprint, .known_hosts."""
    yield from started(SSHPeer(), 'ssh')


@pytest.fixture(scope='session')
def dovecot_peer() -> Iterator[DovecotPeer]:
    """Dovecot: IMAP with STARTTLS on .port, IMAPS on .ssl_port, LMTP on .lmtp_port; .users {address: password}
    @example.org, .ca_file, .deliver(raw, to)."""
    yield from started(DovecotPeer(), 'dovecot')


@pytest.fixture(scope='session')
def smtp_peer(dovecot_peer: DovecotPeer) -> Iterator[SMTPPeer]:
    """aiosmtpd: STARTTLS on .port, TLS on .ssl_port, AUTH as .user/.password; what it takes for @example.org
    reaches dovecot_peer's mailboxes; .messages() lists what it took."""
    yield from started(SMTPPeer(lmtp=dovecot_peer.lmtp), 'smtp')


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if START_TIMES:
        times = ', '.join(f'{name} {seconds:.2f} s' for name, seconds in START_TIMES.items())
        terminalreporter.write_line(f'integration peers started in: {times}')


@pytest.fixture(scope='module')
def env(tmp_path_factory) -> Iterator[Env]:
    """A running Zato with two workers for one module's end-to-end tests (its own ODB and ports)."""
    e = Env(str(tmp_path_factory.mktemp('zato') / 'env'), workers=2)
    e.start()
    try:
        yield e
    finally:
        e.stop()
