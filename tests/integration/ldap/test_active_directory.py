"""Outgoing LDAP connections against Active Directory: a real Samba AD DC (tests/integration/peers_ad.py).

Simple binds with a UPN, a DN and DOMAIN\\user; searches by sAMAccountName with AD's attributes;
credential checks (a disabled account and a password that must be changed are refused); LDAPS and
StartTLS with Samba's own CA; the global catalog; paged searches past AD's 1000 entries; referrals,
which are never chased; NTLM, which Samba does not implement the way ldap3 binds. Then the same
through a running server with two workers and the admin API.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ldap3
import pytest
import requests
from ldap3.core.exceptions import LDAPException, LDAPNoSuchObjectResult, LDAPSessionTerminatedByServerError
from ldap3.utils.conv import escape_filter_chars

from tests.e2e.harness import DOCS_EXAMPLE, ROOT, Env
from tests.integration.ldap.test_ldap import SERVICES, connector, every_worker
from tests.integration.peers import LDAPPeer, PeerFailed, port_open
from tests.integration.peers_ad import BULK, LDAP_PORT, ADPeer
from zato.admin_client import AdminCallError
from zato.connectors.base import ConnectorAuthError, ConnectorError, ConnectorUnavailable, FieldError, validate
from zato.connectors.ldap import LDAP_FIELDS, NTLMUnsupported, LDAPConnector

SID = re.compile(r'^S-1-5-21-\d+-\d+-\d+-\d+$')
AD_ATTRIBUTES = ['sAMAccountName', 'userPrincipalName', 'memberOf', 'objectSid']


@contextmanager
def running(c: LDAPConnector) -> Iterator[LDAPConnector]:
    c.start()
    try:
        assert c.wait_attempted(10), c.last_error
        yield c
    finally:
        c.stop()


def refused(c: LDAPConnector, cls: type[ConnectorError]) -> str:
    """Starts `c`, whose first attempt to connect must fail, and returns what using it raises then."""
    c.start()
    try:
        assert c.wait_attempted(10) is False
        with pytest.raises(cls) as info, c.conn.client():
            pass
        return str(info.value)
    finally:
        c.stop()


def tls(peer: ADPeer, **extra: Any) -> dict[str, Any]:
    """LDAPS settings that verify Samba's certificate: its CA, and the name it carries (not 127.0.0.1)."""
    return {'server_list': [peer.ldaps_url], 'tls_ca_file': peer.ca_file, 'tls_valid_names': [peer.cert_name],
            **extra}


def find(c: LDAPConnector, sam: str, base: str = ADPeer.base_dn) -> list[dict[str, Any]]:
    """The entries a subtree search by sAMAccountName finds, as ldap3 gives them (AD's references left out)."""
    with c.conn.client() as client, client.get() as conn:
        conn.search(base, f'(sAMAccountName={escape_filter_chars(sam)})', attributes=AD_ATTRIBUTES)
        return [r for r in conn.response if r['type'] == 'searchResEntry']


def assert_is_jdoe(peer: ADPeer, entries: list[dict[str, Any]]) -> None:
    jdoe = peer.users['jdoe']
    assert [e['dn'] for e in entries] == [jdoe.dn]
    attrs = entries[0]['attributes']
    assert attrs['sAMAccountName'] == 'jdoe' and attrs['userPrincipalName'] == jdoe.upn
    assert attrs['memberOf'] == [peer.group_dn]
    assert SID.match(attrs['objectSid']), attrs['objectSid']  # formatted by ldap3 from the schema it read


# ################################################################################################ binds and searches

def test_a_upn_bind_finds_a_user_by_sam_account_name_with_ad_attributes(ad_peer):
    with running(connector(ad_peer)) as c:
        assert c.config['username'] == 'zato-svc@zato.test'
        assert_is_jdoe(ad_peer, find(c, 'jdoe'))
        assert find(c, 'nobody') == []
        assert 0 < c.conn.ping() < 2


@pytest.mark.parametrize('username', ['dn', 'ZATO\\zato-svc'])
def test_a_dn_bind_and_a_down_level_name_bind_work_as_well(ad_peer, username):
    svc = ad_peer.users['zato-svc']
    with running(connector(ad_peer, username=svc.dn if username == 'dn' else username)) as c:
        assert_is_jdoe(ad_peer, find(c, 'jdoe'))


def test_a_wrong_password_of_the_connection_is_an_auth_error_with_ads_reason(ad_peer):
    message = refused(connector(ad_peer, password='wrong'), ConnectorAuthError)
    assert f'bind as `{ad_peer.bind_dn}` refused by {ad_peer.url}' in message
    # AD's reason: 52e is a wrong password (or an unknown user)
    assert 'invalidCredentials' in message and 'data 52e' in message and 'wrong' not in message


def test_check_credentials_takes_upn_dn_and_down_level_names_and_refuses_disabled_and_must_change(ad_peer):
    jdoe, disabled, change = (ad_peer.users[sam] for sam in ('jdoe', 'jdisabled', 'jchange'))
    with running(connector(ad_peer)) as c, c.conn.client() as client:
        for name in (jdoe.upn, jdoe.dn, 'ZATO\\jdoe'):
            assert client.check_credentials(name, jdoe.password) is True, name
        # Each with its right password: AD refuses a disabled account (data 533) and a password that must
        # be changed (data 773) as it refuses a wrong password (52e), and so does check_credentials
        assert client.check_credentials(disabled.upn, disabled.password, raise_on_error=False) is False
        assert client.check_credentials(change.upn, change.password, raise_on_error=False) is False
        assert client.check_credentials(jdoe.upn, disabled.password, raise_on_error=False) is False
        assert client.check_credentials('nobody@zato.test', jdoe.password, raise_on_error=False) is False
        assert client.check_credentials(jdoe.upn, '', raise_on_error=False) is False
        for name, password in ((disabled.upn, disabled.password), (jdoe.upn, 'wrong')):
            with pytest.raises(ConnectorAuthError) as info:
                client.check_credentials(name, password)
            assert str(info.value) == 'Outgoing ldap connection `dir`: invalid credentials'
    # The account itself is fine: it binds on a connection of its own
    with running(connector(ad_peer, username=jdoe.upn, password=jdoe.password)) as c:
        assert_is_jdoe(ad_peer, find(c, 'jdoe'))


# ################################################################################################ TLS

@pytest.mark.parametrize('how', ['ldaps', 'starttls', 'global catalog over TLS'])
def test_tls_with_sambas_ca_and_its_certificate_name_binds_and_searches(ad_peer, how):
    extra = {'ldaps': tls(ad_peer), 'starttls': tls(ad_peer, server_list=[ad_peer.url], auto_bind='TLS_BEFORE_BIND'),
             'global catalog over TLS': tls(ad_peer, server_list=[ad_peer.gcs_url])}[how]
    with running(connector(ad_peer, **extra)) as c:
        assert_is_jdoe(ad_peer, find(c, 'jdoe'))
        with c.conn.client() as client, client.get() as conn:
            assert conn.server.ssl or conn.tls_started
        assert client.check_credentials(ad_peer.users['jdoe'].upn, ad_peer.users['jdoe'].password) is True


def test_tls_validation_refuses_sambas_certificate_without_its_ca_or_its_name(ad_peer):
    without_ca = connector(ad_peer, **tls(ad_peer, tls_ca_file=''))  # the system's CAs
    without_name = connector(ad_peer, **tls(ad_peer, tls_valid_names=[]))
    for c, reason in ((without_ca, 'certificate verify failed'),
                      (without_name, "the server's certificate names DC1.zato.test, none of ['127.0.0.1']")):
        message = refused(c, ConnectorUnavailable)
        assert reason in message and ad_peer.ldaps_url in message
        assert "'subject'" not in message  # not ldap3's dump of the whole certificate
    # Validation off takes any certificate: for tests, never for a directory you mean to trust
    with running(connector(ad_peer, **tls(ad_peer, tls_ca_file='', tls_valid_names=[], tls_validate=False))) as c:
        assert_is_jdoe(ad_peer, find(c, 'jdoe'))


@pytest.mark.parametrize('names', [['*'], ['dc1.zato.test', '*.zato.test'], ['a b'], 'dc1'])
def test_tls_valid_names_are_host_names_without_wildcards(names):
    with pytest.raises(FieldError) as info:
        validate(LDAP_FIELDS, {'server_list': ['ldaps://dc1'], 'tls_valid_names': names})
    assert info.value.field == 'tls_valid_names'


# ################################################################################################ the global catalog

def test_the_global_catalog_finds_users_from_the_forest_root(ad_peer):
    with running(connector(ad_peer, server_list=[ad_peer.gc_url])) as c:
        assert_is_jdoe(ad_peer, find(c, 'jdoe', base=''))  # the whole forest: no base DN needed
    # The domain's own LDAP port has no entry at the root to search under
    with running(connector(ad_peer)) as c, pytest.raises(LDAPNoSuchObjectResult):
        find(c, 'jdoe', base='')


# ################################################################################################ paged searches

def test_search_paged_returns_every_entry_past_maxpagesize_a_page_at_a_time(ad_peer):
    with running(connector(ad_peer)) as c, c.conn.client() as client:
        entries = list(client.search_paged(ad_peer.bulk_dn, '(objectClass=contact)', attributes=['cn'],
                                           page_size=400))
        assert sorted(e['attributes']['cn'] for e in entries) == [f'contact-{n:04d}' for n in range(BULK)]
        # The directory does page: one page of a paged search is page_size entries and a cookie for the next
        with client.get() as conn:
            conn.search(ad_peer.bulk_dn, '(objectClass=contact)', attributes=['cn'], paged_size=400)
            assert len(conn.entries) == 400
            assert conn.result['controls']['1.2.840.113556.1.4.319']['value']['cookie']
            first = conn
        # From the domain root AD adds references to other naming contexts; search_paged leaves them out
        found = list(client.search_paged(ad_peer.base_dn, '(sAMAccountName=jdoe)', attributes=AD_ATTRIBUTES))
        assert_is_jdoe(ad_peer, found)
        # A paged search left half way leaves a paged state on the server: its connection is not reused
        with client.get() as conn:
            assert conn is first
        pages = client.search_paged(ad_peer.bulk_dn, '(objectClass=contact)', attributes=['cn'], page_size=10)
        next(pages)
        pages.close()
        with client.get() as conn:
            assert conn is not first and conn.bound


# ################################################################################################ referrals

def test_ad_references_to_other_naming_contexts_are_returned_not_followed(ad_peer):
    with running(connector(ad_peer)) as c, c.conn.client() as client, client.get() as conn:
        assert conn.auto_referrals is False
        assert conn.search(ad_peer.base_dn, '(sAMAccountName=jdoe)', attributes=['cn'])
        refs = [uri for r in conn.response if r['type'] == 'searchResRef' for uri in r['uri']]
        assert 'ldap://zato.test/CN=Configuration,DC=zato,DC=test' in refs
        assert [e.entry_dn for e in conn.entries] == [ad_peer.users['jdoe'].dn]


class Trap:
    """A TCP listener that records what connects to it: the host a referral names."""

    def __init__(self) -> None:
        self.sock = socket.create_server(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.received = b''
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with client:
                client.settimeout(2)
                try:
                    self.received += client.recv(65536)
                except OSError:
                    pass

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


def test_a_referral_is_not_chased_so_the_bind_password_never_reaches_the_host_it_names(ldap_peer: LDAPPeer):
    # Samba never answers with a referral, AD does (for another domain's naming context): slapd stands in
    trap = Trap()
    base = f'ou=elsewhere,{ldap_peer.base_dn}'
    manage_dsa_it = [('2.16.840.1.113730.3.4.2', False, None)]
    with ldap3.Connection(ldap_peer.url, ldap_peer.bind_dn, ldap_peer.password, auto_bind=True,
                          raise_exceptions=True) as admin:
        admin.add(base, ['referral', 'extensibleObject'],
                  {'ou': 'elsewhere', 'ref': f'ldap://127.0.0.1:{trap.port}/{base}'})
    try:
        with running(connector(ldap_peer)) as c, c.conn.client() as client, client.get() as conn:
            assert conn.search(base, '(objectClass=*)') is False
            assert conn.result['description'] == 'referral'
            assert conn.result['referrals'] == [f'ldap://127.0.0.1:{trap.port}/{base}??sub']
        assert trap.received == b''
        # Calibration: ldap3's default follows it and binds there with the same password, in clear (with no
        # server info to read first, which the trap would not answer)
        raw = ldap3.Connection(ldap3.Server(ldap_peer.url, get_info=ldap3.NONE), ldap_peer.bind_dn,
                               ldap_peer.password, auto_bind=True, receive_timeout=3)
        try:
            raw.search(base, '(objectClass=*)')
        except LDAPException:
            pass  # the trap answers nothing
        raw.unbind()
        trap.close()
        assert ldap_peer.password.encode() in trap.received
    finally:
        trap.close()
        with ldap3.Connection(ldap_peer.url, ldap_peer.bind_dn, ldap_peer.password, auto_bind=True) as admin:
            admin.delete(base, controls=manage_dsa_it)


# ################################################################################################ NTLM

def test_an_ntlm_bind_is_refused_with_a_clear_error_as_samba_does_not_implement_ldap3s(ad_peer):
    # Samba itself: it closes the connection on ldap3's NTLM bind (Microsoft's "Sicily" bind)
    with pytest.raises(LDAPSessionTerminatedByServerError):
        ldap3.Connection(ad_peer.url, 'ZATO\\zato-svc', ad_peer.password, authentication=ldap3.NTLM, auto_bind=True,
                         raise_exceptions=True, receive_timeout=5)
    c = connector(ad_peer, auth_type='NTLM', username='ZATO\\zato-svc')
    message = refused(c, ConnectorAuthError)
    assert 'NTLMUnsupported' in c.last_error and 'Sicily' in c.last_error
    assert 'bind as `ZATO\\zato-svc` refused' in message and 'use auth_type SIMPLE, over LDAPS' in message
    # No password was refused, so this is retried as after any failure, not held back for minutes
    assert c._auth_refused_at is None
    # check_credentials of an NTLM connection can't answer False for a password it never checked
    simple = connector(ad_peer)
    with running(simple) as c, c.conn.client() as client:
        pool = c.client
        pool.config = {**pool.config, 'auth_type': 'NTLM'}
        with pytest.raises(NTLMUnsupported, match='Sicily'):
            client.check_credentials('ZATO\\jdoe', ad_peer.users['jdoe'].password, raise_on_error=False)


# ################################################################################################ through a server

@pytest.fixture(scope='module')
def ad_env(env: Env) -> Env:
    """The running server with test_ldap.py's search-and-check service, and the docs example's channels."""
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'ldap_it.py', 'source': SERVICES})
    env.wait_for(lambda: 'ldap-it.search' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    env.channel('ldap-it-search', '/ldap-it/search', 'ldap-it.search')
    return env


def search(env: Env, peer: ADPeer, name: str, password: str) -> dict[str, Any]:
    """jdoe found by sAMAccountName through the connection `it ad`, and whether `name` binds with `password`."""
    body = {'conn': 'it ad', 'base': peer.base_dn, 'filter': '(sAMAccountName=jdoe)', 'dn': name, 'password': password}
    r = requests.post(env.url + '/ldap-it/search', json=body, headers={'Connection': 'close'}, timeout=15)
    if r.status_code != 200:
        # A worker the bus has not brought a new connection to yet raises KeyError (500): callers wait it out,
        # and anything else shows with the server's log of the call
        cid = r.headers.get('X-Zato-CID', '')
        return {'status': r.status_code, 'log': [line for line in env.log().splitlines() if cid and cid in line]}
    return r.json()


def found_jdoe(env: Env, peer: ADPeer) -> bool:
    jdoe = peer.users['jdoe']
    return search(env, peer, jdoe.upn, jdoe.password) == {'found': [jdoe.dn], 'credentials_ok': True}


def test_a_service_searches_ad_over_ldaps_and_admin_edits_of_tls_and_ntlm_apply_live(ad_env, ad_peer):
    env = ad_env
    created = env.admin.call('POST', '/zato/admin/outconns/ldap', {
        'name': 'it ad', 'username': ad_peer.bind_dn, 'secret': ad_peer.password, 'connect_timeout': 2,
        'pool_exhaust_timeout': 0, **tls(ad_peer)})
    assert created['has_secret'] is True and 'password' not in created and 'secret' not in created
    assert created['tls_valid_names'] == [ad_peer.cert_name] and created['tls_ca_file'] == ad_peer.ca_file
    url = f'/zato/admin/outconns/ldap/{created["id"]}'
    every_worker(env, lambda: found_jdoe(env, ad_peer))
    users = ad_peer.users
    jdoe, disabled, change = users['jdoe'], users['jdisabled'], users['jchange']
    for name, password, ok in ((jdoe.dn, jdoe.password, True), ('ZATO\\jdoe', jdoe.password, True),
                               (jdoe.upn, 'wrong', False), (disabled.upn, disabled.password, False),
                               (change.upn, change.password, False)):
        assert search(env, ad_peer, name, password) == {'found': [jdoe.dn], 'credentials_ok': ok}, name
    ping = env.admin.call('POST', f'{url}/ping')
    assert ping['ok'] is True and 0 < ping['time'] < 2, ping

    # Without Samba's CA the certificate is refused, with the reason
    env.admin.call('PUT', url, {'tls_ca_file': ''})
    every_worker(env, lambda: search(env, ad_peer, jdoe.upn, jdoe.password).get('type') == 'ConnectorUnavailable')
    ping = env.admin.call('POST', f'{url}/ping')
    assert ping['ok'] is False and 'certificate verify failed' in ping['error'], ping
    env.admin.call('PUT', url, {'tls_ca_file': ad_peer.ca_file})
    every_worker(env, lambda: found_jdoe(env, ad_peer))

    # NTLM: refused, saying why
    env.admin.call('PUT', url, {'auth_type': 'NTLM', 'username': 'ZATO\\zato-svc'})
    every_worker(env, lambda: 'Sicily' in search(env, ad_peer, jdoe.upn, jdoe.password).get('error', ''))
    ping = env.admin.call('POST', f'{url}/ping')
    assert ping['ok'] is False and 'use auth_type SIMPLE, over LDAPS' in ping['error'], ping
    env.admin.call('PUT', url, {'auth_type': 'SIMPLE', 'username': ad_peer.users['zato-svc'].dn})
    every_worker(env, lambda: found_jdoe(env, ad_peer))

    with pytest.raises(AdminCallError) as info:
        env.admin.call('PUT', url, {'tls_valid_names': ['*']})
    assert info.value.status == 400 and '`tls_valid_names`' in str(info.value)


def ad_docs_example() -> tuple[dict[str, Any], str, str]:
    """The Active Directory example of docs/outgoing-ldap.md: its docs-test spec, file name and code."""
    with open(os.path.join(ROOT, 'docs', 'outgoing-ldap.md'), encoding='utf-8') as f:
        found = {m['file']: m for m in DOCS_EXAMPLE.finditer(f.read())}
    m = found['outgoing_ldap_ad.py']
    return json.loads(m['spec']), m['file'], m['code']


def test_the_docs_example_finds_users_by_logon_name_and_nested_group_members(ad_env, ad_peer):
    env = ad_env
    spec, file_name, code = ad_docs_example()
    written = "DOMAIN = 'DC=example,DC=com'"
    assert written in code
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name,
                                                  'source': code.replace(written, f'DOMAIN = {ad_peer.base_dn!r}')})
    for channel in spec['channels']:
        env.channel(**channel)
    env.admin.call('POST', '/zato/admin/outconns/ldap', {'name': 'Corp AD', 'username': ad_peer.bind_dn,
                                                         'password': ad_peer.password, **tls(ad_peer)})

    def post(path: str, body: dict[str, Any]) -> Any:
        r = requests.post(env.url + path, json=body, headers={'Connection': 'close'}, timeout=15)
        assert r.status_code in (200, 404, 500), r.text
        return r.json() if r.status_code == 200 else None

    jdoe = ad_peer.users['jdoe']
    every_worker(env, lambda: (post('/docs/ldap/ad/find-user', {'login': 'jdoe'}) or {}).get('found') is True)
    out = post('/docs/ldap/ad/find-user', {'login': 'jdoe'})
    assert SID.match(out.pop('sid')), out
    assert out == {'found': True, 'dn': jdoe.dn, 'upn': jdoe.upn, 'groups': [ad_peer.group_dn], 'disabled': False}
    assert post('/docs/ldap/ad/find-user', {'login': 'jdisabled'})['disabled'] is True
    assert post('/docs/ldap/ad/find-user', {'login': '*'}) == {'found': False}  # escaped, not a wildcard
    assert post('/docs/ldap/ad/group-members', {'group': ad_peer.group_dn}) == {'logins': ['jdoe']}


# ################################################################################################ the peer itself

def test_one_ad_peer_per_machine_and_a_killed_one_leaves_no_samba_process_behind(ad_peer):
    second = ADPeer()
    with pytest.raises(PeerFailed, match='another Samba AD DC of the tests runs on this machine'):
        second.start()
    assert not second.dir and second.proc is None

    assert ad_peer.proc is not None
    group = ad_peer.proc.pid
    ad_peer.kill()
    assert not port_open(LDAP_PORT)
    # Zombies may linger until init reaps them; a live process never
    deadline = time.monotonic() + 10
    while subprocess.run(['pgrep', '-g', str(group)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, subprocess.run(['ps', '-o', 'pid,stat,args', '-g', str(group)],
                                                           capture_output=True, text=True).stdout
        time.sleep(0.1)

    ad_peer.spawn(ad_peer.command())  # the same copy of the domain, for the tests after this one
    with running(connector(ad_peer)) as c:
        assert_is_jdoe(ad_peer, find(c, 'jdoe'))
