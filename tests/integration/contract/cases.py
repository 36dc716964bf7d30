"""One case per connector kind for the contract suite: how to run its remote end so that it can go
down and come back on the same port, the definition pointing at it, and one real call through the
kind's own API. Adding a kind to Zato means adding a case here; the suite then holds it to the
contract every kind keeps."""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

from tests.integration.im.fakes import FakeAPI, FakeSlack, FakeTelegram
from tests.integration.peers import KafkaPeer, LDAPPeer, MongoPeer, Peer, SSHPeer
from tests.integration.peers_mail import DovecotPeer, SMTPPeer

HERE = os.path.dirname(os.path.abspath(__file__))


class ScriptPeer(Peer):
    """remote.py in its own process: `http` (REST and JSON-RPC) or `wsx` (a WebSocket echo)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.name = f'{mode}-remote'

    def command(self) -> list[str]:
        return [sys.executable, os.path.join(HERE, 'remote.py'), self.mode, str(self.port)]


class Remote:
    """A remote end that can be taken down and brought back on the same port."""

    def __init__(self, server: Peer | FakeAPI) -> None:
        self.server = server

    def start(self) -> Remote:
        self.server.start()
        return self

    def down(self) -> None:
        if isinstance(self.server, Peer):
            self.server.kill()
        else:
            self.server.stop()

    def up(self) -> None:
        if isinstance(self.server, Peer):
            self.server.spawn(self.server.command())
        else:
            self.server.start()  # the port it had

    def close(self) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        return self.server.port


class Case:
    """What the suite needs of a kind."""

    kind = ''

    def remote(self) -> Remote:
        raise NotImplementedError

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        """The fields of a definition pointing at the remote end, and its secret ('' if none)."""
        raise NotImplementedError

    def use(self, conn: Any) -> None:
        """One real call through what ``self.out.<kind>[name].conn`` gives a service."""
        raise NotImplementedError

    # The field an edit changes without changing where the connection points
    edit: tuple[str, Any] = ('', None)

    def __repr__(self) -> str:
        return self.kind


class REST(Case):
    kind = 'rest'
    edit = ('timeout', 3.0)

    def remote(self) -> Remote:
        return Remote(ScriptPeer('http'))

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        return {'address_host': f'http://127.0.0.1:{remote.port}', 'timeout': 2.0}, ''

    def use(self, conn: Any) -> None:
        response = conn.get('cid-1', params={'q': 'contract'})
        assert response.status_code == 200 and response.data == {'path': '/?q=contract'}, response.text


class JSONRPC(REST):
    kind = 'jsonrpc'

    def use(self, conn: Any) -> None:
        assert conn.invoke('echo', {'n': 1}) == {'n': 1}


class MongoDB(Case):
    kind = 'mongodb'
    edit = ('socket_timeout', 6)

    def remote(self) -> Remote:
        return Remote(MongoPeer())

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        return {'server_list': f'127.0.0.1:{remote.port}', 'server_select_timeout': 1, 'connect_timeout': 1,
                'socket_timeout': 5, 'hb_frequency': 0.5}, ''

    def use(self, conn: Any) -> None:
        with conn.mapped_errors():
            conn.client.contract.items.insert_one({'n': 1})


class LDAP(Case):
    kind = 'ldap'
    edit = ('receive_timeout', 6)

    def remote(self) -> Remote:
        return Remote(LDAPPeer())

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        peer = remote.server
        assert isinstance(peer, LDAPPeer)
        return {'server_list': [peer.url], 'username': peer.bind_dn, 'connect_timeout': 2.0, 'receive_timeout': 5,
                'pool_exhaust_timeout': 0.0}, peer.password

    def use(self, conn: Any) -> None:
        with conn.client() as client, client.get() as c:
            assert c.search(LDAPPeer.base_dn, '(objectClass=*)', search_scope='BASE'), c.result


class Kafka(Case):
    kind = 'kafka'
    edit = ('message_timeout', 4.0)

    def remote(self) -> Remote:
        return Remote(KafkaPeer())

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        return {'server_list': f'127.0.0.1:{remote.port}', 'socket_timeout': 1.0, 'message_timeout': 3.0}, ''

    def use(self, conn: Any) -> None:
        assert conn.send(f't-{uuid.uuid4().hex[:10]}', b'contract').offset() == 0


def _known_hosts(peer: SSHPeer) -> str:
    return f'[127.0.0.1]:{peer.port},[localhost]:{peer.port} {peer.host_key}\n'


class SSH(Case):
    kind = 'ssh'
    edit = ('timeout', 6.0)

    def remote(self) -> Remote:
        return Remote(SSHPeer())

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        peer = remote.server
        assert isinstance(peer, SSHPeer)
        return {'hosts': ['127.0.0.1'], 'port': peer.port, 'username': peer.user, 'known_hosts': _known_hosts(peer),
                'timeout': 5.0, 'connect_timeout': 2.0}, peer.password

    def use(self, conn: Any) -> None:
        out = conn.run('echo contract')['127.0.0.1']
        assert out.is_ok and out.stdout.strip() == 'contract', out


class SFTP(SSH):
    kind = 'sftp'

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        config, secret = super().definition(remote)
        config['host'] = config.pop('hosts')[0]
        return config, secret

    def use(self, conn: Any) -> None:
        assert conn.exists('.')


class Slack(Case):
    kind = 'slack'
    edit = ('timeout', 3.0)

    def remote(self) -> Remote:
        return Remote(FakeSlack())

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        fake = remote.server
        assert isinstance(fake, FakeSlack)
        return {'address': fake.base_url, 'timeout': 1.0}, fake.token

    def use(self, conn: Any) -> None:
        with conn.mapped_errors():
            assert conn.client.auth_test()['ok'] is True


class Telegram(Case):
    kind = 'telegram'
    edit = ('invoke_timeout', 3.0)

    def remote(self) -> Remote:
        return Remote(FakeTelegram())

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        fake = remote.server
        assert isinstance(fake, FakeTelegram)
        return {'address': fake.address, 'connect_timeout': 1.0, 'invoke_timeout': 1.0}, fake.token

    def use(self, conn: Any) -> None:
        assert conn.client.invoke('getMe')['is_bot'] is True


class WSX(Case):
    kind = 'wsx'
    edit = ('ping_interval', 20.0)

    def remote(self) -> Remote:
        return Remote(ScriptPeer('wsx'))

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        return {'address': f'ws://127.0.0.1:{remote.port}/', 'connect_timeout': 2.0}, ''

    def use(self, conn: Any) -> None:
        assert conn.wait_connected(5)
        conn.send({'n': 1})


class SMTP(Case):
    kind = 'smtp'
    edit = ('timeout', 3.0)

    def remote(self) -> Remote:
        return Remote(SMTPPeer())

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        peer = remote.server
        assert isinstance(peer, SMTPPeer)
        return {'host': '127.0.0.1', 'port': peer.port, 'mode': 'starttls', 'username': peer.user,
                'tls_ca_file': peer.ca_file, 'timeout': 2.0}, peer.password

    def use(self, conn: Any) -> None:
        from zato.server.service import SMTPMessage

        result = conn.send(SMTPMessage('zato@example.org', 'alice@example.org', 'contract', 'A contract test'))
        assert result.message_id and not result.refused, result


class IMAP(Case):
    kind = 'imap'
    edit = ('timeout', 3.0)

    def remote(self) -> Remote:
        return Remote(DovecotPeer())

    def definition(self, remote: Remote) -> tuple[dict[str, Any], str]:
        peer = remote.server
        assert isinstance(peer, DovecotPeer)
        return {'host': '127.0.0.1', 'port': peer.ssl_port, 'mode': 'ssl', 'username': peer.user,
                'tls_ca_file': peer.ca_file, 'timeout': 2.0}, peer.password

    def use(self, conn: Any) -> None:
        assert isinstance(conn.get('INBOX', 'ALL'), list)


CASES: list[Case] = [REST(), JSONRPC(), MongoDB(), LDAP(), Kafka(), SSH(), SFTP(), Slack(), Telegram(), WSX(), SMTP(),
                     IMAP()]
