"""What the ssh and sftp tests share: configs for the ssh_peer, and a second sshd of their own to stop and start."""

from __future__ import annotations

from typing import Any

from tests.integration.peers import SSHPeer


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
