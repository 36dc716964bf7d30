"""WebSocket masking (RFC 6455 section 5.3): XOR with a 4-byte key repeated over the payload.

This module is the specification; ``ext/wsmask.pyx`` (``zato.cy.wsmask``) is its compiled twin with
the same public API, and ``zato.accel.load('zato.proto.wsmask')`` picks one of the two.

Masking is its own inverse, so the same function masks what a client sends and unmasks what a
server receives. Pure Python cannot loop over bytes quickly (1.6 ms for 16 KiB byte by byte), so the
payload and the repeated key are turned into two big integers, XOR-ed once and turned back.
"""

from __future__ import annotations

__all__ = ['mask']


def mask(data: bytes | bytearray | memoryview, key: bytes | bytearray | memoryview) -> bytes:
    """Returns ``data`` XOR-ed with the 4-byte ``key`` repeated; empty data gives ``b''``."""
    if len(key) != 4:
        raise ValueError(f'a WebSocket masking key has 4 bytes, not {len(key)}')
    size = len(data) if not isinstance(data, memoryview) else data.nbytes
    if not size:
        return b''
    # The key repeated to at least `size` bytes, then cut; byte order is irrelevant as long as both match
    keys = bytes(key) * ((size + 3) >> 2)
    if len(keys) != size:
        keys = keys[:size]
    return (int.from_bytes(data, 'little') ^ int.from_bytes(keys, 'little')).to_bytes(size, 'little')
