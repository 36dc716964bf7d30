"""What the ssh and sftp connector tests share: connectors stopped after each test, and an sshd of
a module's own to kill and start again (the session-wide ssh_peer stays up for the others)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.peers import SSHPeer
from zato.connectors.base import Connector


@pytest.fixture
def started() -> Iterator[list[Connector]]:
    """Connectors a test starts, stopped after it."""
    connectors: list[Connector] = []
    yield connectors
    for c in connectors:
        c.stop()


@pytest.fixture(scope='module')
def own_peer() -> Iterator[SSHPeer]:
    """An sshd of this module's own, to kill and start again."""
    peer = SSHPeer().start()
    yield peer
    peer.stop()
