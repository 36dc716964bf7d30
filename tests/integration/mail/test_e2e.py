"""The examples of docs/outgoing-smtp.md and docs/outgoing-imap.md as written, in a running Zato (two
workers), against the real peers: a REST call makes the SMTP example send a confirmation code through
aiosmtpd, which relays it to Dovecot, and a REST call to the IMAP example reads it back from there.
The addresses the server refuses are the caller's 400, and no password reaches the server's log."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.e2e.harness import docs_example
from tests.integration.peers_mail import DovecotPeer, SMTPPeer

RECIPIENT = 'bob@example.org'


@pytest.fixture(scope='module')
def examples(env, smtp_peer: SMTPPeer, dovecot_peer: DovecotPeer) -> dict[str, str]:
    """Both examples deployed as written, with their channels and their connections pointed at the peers;
    the URL path of each."""
    paths = {}
    for kind in ('smtp', 'imap'):
        spec, file_name, code = docs_example(f'outgoing-{kind}.md')
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': code})
        [channel] = spec['channels']
        env.channel(channel['name'], channel['url_path'], channel['service'])
        paths[kind] = channel['url_path']
        body = dict(spec['admin_after'][0]['body'], is_active=True, host='127.0.0.1', timeout=5.0)
        if kind == 'smtp':
            body.update(port=smtp_peer.port, username=smtp_peer.user, secret=smtp_peer.password,
                        tls_ca_file=smtp_peer.ca_file)
        else:
            body.update(port=dovecot_peer.ssl_port, username=RECIPIENT, secret=dovecot_peer.users[RECIPIENT],
                        tls_ca_file=dovecot_peer.ca_file)
        created = env.admin.call('POST', f'/zato/admin/outconns/{kind}', body)
        assert created['has_secret'] is True and created['mode'] == ('starttls' if kind == 'smtp' else 'ssl')
        env.wait_for(lambda kind=kind, id=created['id']:
                     env.admin.call('POST', f'/zato/admin/outconns/{kind}/{id}/ping')['ok'], timeout=20)
    return paths


def post(env, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.post(env.url + path, json=body or {}, headers={'Connection': 'close'}, timeout=30)


def test_a_confirmation_code_sent_through_zato_is_read_back_from_the_mailbox_through_zato(env, examples, smtp_peer):
    code = uuid.uuid4().hex[:8]
    before = len(smtp_peer.messages())
    r = post(env, examples['smtp'], {'email': RECIPIENT, 'code': code})
    assert r.status_code == 200, r.text
    message_id = r.json()['message_id']

    # What the SMTP server took: over TLS, logged in, from the example's sender
    record = smtp_peer.wait_for(before + 1)[-1]
    assert record['tls'] is True and record['login'] == smtp_peer.user and record['rcpt_tos'] == [RECIPIENT]
    assert f'Message-ID: {message_id}' in record['data']

    # What the mailbox has, through the IMAP example: each unseen message once, then marked seen
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        r = post(env, examples['imap'])
        assert r.status_code == 200, r.text
        found.extend(r.json()['messages'])
        return any(code in m['text'] for m in found)
    env.wait_for(arrived, timeout=15, interval=0.2)
    [mine] = [m for m in found if code in m['text']]
    assert mine['from'] == 'no-reply@example.com' and mine['subject'] == 'Your confirmation code'
    assert mine['text'] == f'Your code is {code}. It is valid for 15 minutes.' and mine['attachments'] == []
    again = post(env, examples['imap']).json()['messages']
    assert all(code not in m['text'] for m in again)


@pytest.mark.parametrize('email, details', [
    ('x@refused.invalid', 'Cannot send to x@refused.invalid: 550 5.1.1 <x@refused.invalid>: Recipient address '
                          'rejected: no such user'),
    ('not an address', 'Not an e-mail address: not an address'),
])
def test_an_address_that_cannot_take_mail_is_the_callers_400(env, examples, email, details):
    r = post(env, examples['smtp'], {'email': email, 'code': '1'})
    assert r.status_code == 400, r.text
    assert r.json()['details'] == details and r.json()['code'] == 'bad_request'


def test_no_password_reaches_the_servers_log(env, examples, smtp_peer, dovecot_peer):
    post(env, examples['imap'])
    log = env.log()
    assert smtp_peer.password not in log and dovecot_peer.users[RECIPIENT] not in log
