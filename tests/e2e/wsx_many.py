"""Many WebSocket clients in one test process, over raw sockets and one selector: enough for a
thousand connections without a thread each. Server frames are unmasked and small here, so the
parser below is all a client needs to count what a broadcast delivered."""

from __future__ import annotations

import base64
import os
import selectors
import socket
import struct
import time


def handshake(port: int, path: str, *, rcvbuf: int | None = None, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(('127.0.0.1', port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                  f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n').encode())
    head = b''
    while b'\r\n\r\n' not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError('closed during the handshake')
        head += chunk
    status = head.split(b' ', 2)[1]
    if status != b'101':
        raise ConnectionError(f'handshake refused: {head[:200]!r}')
    if head.index(b'\r\n\r\n') + 4 != len(head):
        raise AssertionError('frames arrived with the 101; this client does not keep them')
    return sock


def masked_text(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


class Frames:
    """Parses unmasked server frames from a stream."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while True:
            buf = self.buf
            if len(buf) < 2:
                return out
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
            pos = 2
            if length == 126:
                if len(buf) < 4:
                    return out
                length, pos = struct.unpack('!H', buf[2:4])[0], 4
            elif length == 127:
                if len(buf) < 10:
                    return out
                length, pos = struct.unpack('!Q', buf[2:10])[0], 10
            if len(buf) < pos + length:
                return out
            out.append((opcode, bytes(buf[pos:pos + length])))
            del buf[:pos + length]


class Crowd:
    """N connected clients; `collect` reads until each has `count` text messages or time runs out."""

    def __init__(self, port: int, path: str, n: int, parallel: int = 1) -> None:
        # `parallel` handshakes at a time: one after the other, the worker that answered one is often the
        # first to take the next connection too, so a small crowd may all land on one worker
        if parallel > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(parallel) as pool:
                self.socks = list(pool.map(lambda _: handshake(port, path), range(n)))
        else:
            self.socks = [handshake(port, path) for _ in range(n)]
        self.frames = {s.fileno(): Frames() for s in self.socks}
        self.messages: dict[int, list[tuple[float, bytes]]] = {s.fileno(): [] for s in self.socks}
        self.closed: set[int] = set()
        self.selector = selectors.DefaultSelector()
        for s in self.socks:
            s.setblocking(False)
            self.selector.register(s, selectors.EVENT_READ)

    def collect(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(m) >= count for fd, m in self.messages.items() if fd not in self.closed):
                return
            for key, _ in self.selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b''
                fd = sock.fileno()
                if not data:
                    self.closed.add(fd)
                    self.selector.unregister(sock)
                    continue
                now = time.time()
                for opcode, payload in self.frames[fd].feed(data):
                    if opcode in (1, 2):
                        self.messages[fd].append((now, payload))
                    elif opcode == 9:  # answer pings so the server keeps us
                        sock.setblocking(True)
                        mask = os.urandom(4)
                        sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask
                                     + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                        sock.setblocking(False)

    def close(self) -> None:
        self.selector.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
