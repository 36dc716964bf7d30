"""What the ssh and sftp tests share: configs for the ssh_peer, and a second sshd of their own to stop and start."""

from __future__ import annotations

from typing import Any, TypeVar

from tests.integration.peers import SSHPeer
from zato.connectors.base import Connector


def known_hosts(peer: SSHPeer) -> str:
    """The peer's key under both names a config may use for it."""
    return f'[127.0.0.1]:{peer.port},[localhost]:{peer.port} {peer.host_key}\n'


def ssh_config(peer: SSHPeer, **extra: Any) -> dict[str, Any]:
    return {'hosts': ['127.0.0.1'], 'port': peer.port, 'username': peer.user, 'known_hosts': known_hosts(peer),
            'timeout': 5.0, 'connect_timeout': 5.0, **extra}


def sftp_config(peer: SSHPeer, **extra: Any) -> dict[str, Any]:
    return {'host': '127.0.0.1', 'port': peer.port, 'username': peer.user, 'known_hosts': known_hosts(peer),
            'timeout': 5.0, 'connect_timeout': 5.0, **extra}


def private_key(peer: SSHPeer) -> str:
    with open(peer.key_path, encoding='ascii') as f:
        return f.read()


def restart(peer: SSHPeer) -> None:
    """Starts a killed peer again, on the same port and with the same keys."""
    peer.spawn(peer.command())


C = TypeVar('C', bound=Connector)


def start_connector(started: list[Connector], cls: type[C], name: str, config: dict, secret: str,
                    wait: bool = True) -> C:
    """Starts a connector the `started` fixture stops after the test; waits for its first attempt."""
    c = cls(name, config, secret)
    started.append(c)
    c.start()
    if wait:
        c.wait_attempted(10)
    return c
