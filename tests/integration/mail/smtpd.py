"""The SMTP server of the integration tests, run as its own process so that it can be killed and started
again on the same ports: aiosmtpd, a full SMTP implementation, on two loopback ports — one plain with
STARTTLS, one with TLS from the first byte — with AUTH PLAIN and LOGIN (only over TLS, as aiosmtpd
requires by default) for the users of its config.

    python smtpd.py CONFIG.json

Each message it takes is written to `spool` as a JSON file (sender, recipients, the message, who
logged in, whether TLS was on), and relayed over LMTP to `lmtp` (Dovecot) when its recipients are in
`local_domains`. Recipients at `refused.invalid` are refused with 550, so that tests see a refusal.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import ssl
import sys
import time
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

REFUSED_DOMAIN = 'refused.invalid'


class Handler:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.count = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if address.lower().endswith('@' + REFUSED_DOMAIN):
            return f'550 5.1.1 <{address}>: Recipient address rejected: no such user'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        data = envelope.original_content or b''
        local = [r for r in envelope.rcpt_tos if r.rpartition('@')[2].lower() in self.config['local_domains']]
        if local and self.config.get('lmtp'):
            host, port = self.config['lmtp']
            try:
                with smtplib.LMTP(host, port, timeout=10) as lmtp:
                    lmtp.sendmail(envelope.mail_from, local, data)
            except (OSError, smtplib.SMTPException) as e:
                return f'451 4.3.0 could not deliver to the mailbox server: {e}'
        self.count += 1
        record = {'mail_from': envelope.mail_from, 'rcpt_tos': envelope.rcpt_tos,
                  'data': data.decode('utf-8', 'surrogateescape'),
                  'tls': session.ssl is not None or server.transport.get_extra_info('sslcontext') is not None,
                  'login': session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
                  'received': time.time()}
        spool = self.config['spool']
        path = os.path.join(spool, f'{time.monotonic_ns()}-{self.count}.json')
        with open(path + '.tmp', 'w', encoding='utf-8') as f:
            json.dump(record, f)
        os.replace(path + '.tmp', path)
        return '250 2.0.0 Message accepted for delivery'


def authenticator(users: dict[str, str]) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and users.get(auth_data.login.decode()) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return check


def main(config_path: str) -> None:
    with open(config_path, encoding='utf-8') as f:
        config = json.load(f)
    config['local_domains'] = [d.lower() for d in config.get('local_domains', [])]
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(config['cert_file'], config['key_file'])
    handler = Handler(config)
    users = config.get('users') or {}

    def plain() -> SMTP:
        # AUTH only after STARTTLS (with `starttls` false, a server that offers no TLS on this port)
        return SMTP(handler, hostname='zato-test-smtpd', tls_context=tls if config.get('starttls', True) else None,
                    authenticator=authenticator(users),
                    auth_required=bool(users), auth_require_tls=True, timeout=30)

    def implicit_tls() -> SMTP:
        # TLS from the first byte: aiosmtpd must neither offer STARTTLS nor wait for it before AUTH
        return SMTP(handler, hostname='zato-test-smtpd', authenticator=authenticator(users),
                    auth_required=bool(users), auth_require_tls=False, timeout=30)

    loop = asyncio.new_event_loop()
    servers = [loop.run_until_complete(loop.create_server(plain, config['host'], config['port'])),
               loop.run_until_complete(loop.create_server(implicit_tls, config['host'], config['ssl_port'], ssl=tls))]
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    print(f'smtpd: listening on {config["host"]}:{config["port"]} and {config["ssl_port"]} (TLS)', flush=True)
    try:
        loop.run_forever()
    finally:
        for server in servers:
            server.close()


if __name__ == '__main__':
    main(sys.argv[1])
