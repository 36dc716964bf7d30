"""Zato's WebSocket (WSX) channels: echo against the `websockets` library, broadcast to many clients,
and the memory an idle connection costs.

    .venv/bin/python bench/wsx.py                        # everything, ~10 minutes on a quiet machine
    .venv/bin/python bench/wsx.py --quick                # a smoke run, ~2 minutes
    .venv/bin/python bench/wsx.py --only echo --runs 5 --sizes 64
    .venv/bin/python bench/wsx.py --only broadcast --clients 1000,10000 --workers 1,2 --json /tmp/wsx.json
    .venv/bin/python bench/wsx.py --show /tmp/wsx.json   # the tables of a saved run

Every server runs pinned to one CPU (``--server-cpu``, default 0) and every load generator to the
other (``--client-cpu``, default 1); this process pins itself to the client CPU too.

1. **Echo**: N connections (``--connections``, 50), each sending one text message and waiting for
   its echo before sending the next, for ``--duration`` seconds after a warm-up; 64-byte and 16 KiB
   messages. The same load generator drives Zato with one worker (a raw channel whose service
   returns ``self.request.payload``), the same Zato with ``ZATO_PURE_PYTHON=1`` (the pure-Python
   masker and HTTP parser), and an asyncio echo server built on ``websockets.asyncio.server.serve``
   in one process. The load generator is websockets' Sans-I/O ``ClientProtocol`` (handshake,
   framing, masking in C; no compression) driven from asyncio Protocol callbacks: websockets'
   asyncio client (``--echo-client asyncio``) costs more CPU per message than the servers it
   measures. Runs go round-robin over the configurations; the medians of ``--runs`` runs are
   reported, with each one's messages/s over that of `websockets`, and the server's and the
   client's CPU, so that a client-bound run shows as one.
2. **Broadcast**: N idle clients (``--clients``, 1,000 and 10,000) on one channel of Zato with one
   and with two workers (``--workers``), and of the `websockets` server with ``websockets.broadcast``.
   A trigger client sends ``<id> <time.time()>`` to a trigger channel; its service (Zato) or handler
   (`websockets`) broadcasts ``<id> <trigger time> <time.time() at broadcast>`` to every client.
   ``--broadcasts`` (20) triggers ``--interval`` (0.5 s) apart make one round, ``--runs`` rounds per
   configuration. Each client records when every broadcast arrived, so latency is per delivered
   message, from the trigger to its receipt; every client must get every broadcast (misses counted).
   The clients are a lean epoll loop over raw sockets (one process unless ``--client-procs``) that
   parses only the small unmasked frames the servers send and answers pings. Every read also
   carries the kernel's receive time (SO_TIMESTAMPNS), so the latency is given both as the client
   read it and as the kernel had it; the difference is the client's own delay.
3. **Memory**: each broadcast configuration starts a fresh server; the workers' VmRSS is read after a
   small warm-up and again once the N clients are connected and idle; the difference over N is the
   cost of one idle connection.

bench/README.md ("WebSockets") has the figures and how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rest  # noqa: E402 - shared helpers: the machine, a quiet-machine wait
import servers  # noqa: E402

THIS = os.path.abspath(__file__)
GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

ECHO_PATH = '/bench/ws/echo'
BCAST_PATH = '/bench/ws/bcast'
TRIGGER_PATH = '/bench/ws/trigger'
BCAST_CHANNEL = 'bench.wsx.bcast'

# Deployed into the benchmark's Zato environments through the admin API
SERVICES_FILE = 'bench_wsx_services.py'
SERVICES_SOURCE = '''"""The Zato side of bench/wsx.py."""

import time

from zato.server.service import Service


class Echo(Service):
    name = 'bench.wsx-echo'

    def handle(self):
        self.response.payload = self.request.payload


class Trigger(Service):
    """Gets "<id> <trigger time>" and broadcasts it with the time it leaves this service."""
    name = 'bench.wsx-trigger'

    def handle(self):
        self.wsx.channel['bench.wsx.bcast'].broadcast(f'{self.request.payload} {time.time():.6f}')
'''
WSX_CHANNELS = [
    {'name': 'bench.wsx.echo', 'url_path': ECHO_PATH, 'service': 'bench.wsx-echo', 'data_format': '',
     'ping_interval': 30, 'send_queue_max': 1000},
    {'name': BCAST_CHANNEL, 'url_path': BCAST_PATH, 'service': 'bench.wsx-echo', 'data_format': '',
     'ping_interval': 30, 'send_queue_max': 1000},
    {'name': 'bench.wsx.trigger', 'url_path': TRIGGER_PATH, 'service': 'bench.wsx-trigger', 'data_format': '',
     'ping_interval': 30, 'send_queue_max': 1000},
]

ECHO_SERVERS = {
    'zato': 'Zato, 1 worker (compiled masker and parser)',
    'zato-py': 'Zato, 1 worker, ZATO_PURE_PYTHON=1',
    'websockets': 'websockets 17 asyncio server, 1 process',
}

_STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = int(time.monotonic() - _STARTED)
    print(f'[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}', flush=True)


def percentile(sorted_values: list[float] | array, q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def cpu_of(pid: int) -> float:
    try:
        return servers.cpu_seconds(pid)
    except OSError:
        return 0.0


def busy_seconds_between(before: dict[str, list[int]], after: dict[str, list[int]]) -> float:
    return rest.busy_and_steal(before, after)[0]


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f'/proc/{pid}/fd'))
    except OSError:
        return -1


def raise_nofile(wanted: int) -> int:
    """Raises this process's open-file limit (children inherit it); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted)) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ################################################################################################
# The `websockets` peer server: `wsx.py _peer-server --port P`

def peer_server_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog='wsx.py _peer-server')
    p.add_argument('--port', type=int, required=True)
    a = p.parse_args(argv)
    raise_nofile(65536)
    import logging
    logging.basicConfig(format='%(asctime)s - %(levelname)s - %(process)d:%(threadName)s - %(name)s - %(message)s',
                        level=logging.WARNING)

    async def serve_forever() -> None:
        from websockets.asyncio.server import broadcast, serve
        from websockets.exceptions import ConnectionClosed

        subscribers: set[Any] = set()

        async def handler(conn: Any) -> None:
            path = conn.request.path
            try:
                if path == ECHO_PATH:
                    async for message in conn:
                        await conn.send(message)
                elif path == BCAST_PATH:
                    subscribers.add(conn)
                    try:
                        await conn.wait_closed()
                    finally:
                        subscribers.discard(conn)
                elif path == TRIGGER_PATH:
                    async for message in conn:
                        broadcast(subscribers, f'{message} {time.time():.6f}')
                else:
                    await conn.close(1008, 'unknown path')
            except ConnectionClosed:
                pass  # a client that leaves without a close frame, as the broadcast clients do

        # The same settings as Zato's channels: no compression, a ping after 30 s; a backlog like gunicorn's
        async with serve(handler, '127.0.0.1', a.port, compression=None, ping_interval=30, max_size=1 << 20,
                         backlog=2048) as server:
            await server.serve_forever()

    try:
        asyncio.run(serve_forever())
    except KeyboardInterrupt:
        pass
    return 0


# ################################################################################################
# The echo load generator: `wsx.py _echo-client --url ... --connections N --size S ...`, one JSON line out

PATTERN = 'The quick brown fox jumps over the lazy dog 0123456789. '


def echo_client_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog='wsx.py _echo-client')
    p.add_argument('--url', required=True)
    p.add_argument('--connections', type=int, default=50)
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--duration', type=float, default=10.0)
    p.add_argument('--warmup', type=float, default=1.0, help='seconds of load before measuring, not counted')
    p.add_argument('--server-pid', type=int, default=0, help='its CPU time is read at the window edges')
    p.add_argument('--client', choices=('sansio', 'asyncio'), default='sansio')
    a = p.parse_args(argv)
    raise_nofile(a.connections + 100)
    result = asyncio.run(_echo_load_sansio(a) if a.client == 'sansio' else _echo_load(a))
    print(json.dumps(result), flush=True)
    return 0


async def _echo_load(a: argparse.Namespace) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    message = (PATTERN * (a.size // len(PATTERN) + 1))[:a.size]
    opened = await asyncio.gather(*(connect(a.url, compression=None, ping_interval=None, max_size=None, proxy=None,
                                            open_timeout=30) for _ in range(a.connections)),
                                  return_exceptions=True)
    conns = [c for c in opened if not isinstance(c, BaseException)]
    connect_errors = [f'{type(c).__name__}: {c}'[:200] for c in opened if isinstance(c, BaseException)]
    latencies: list[float] = []
    state = {'measuring': False, 'stop': False, 'mismatches': 0}
    errors: Counter[str] = Counter()

    async def loop(ws: Any) -> None:
        send, recv, clock = ws.send, ws.recv, time.perf_counter
        record = latencies.append
        try:
            while not state['stop']:
                started = clock()
                await send(message)
                reply = await recv()
                elapsed = clock() - started
                if reply != message:
                    state['mismatches'] += 1
                if state['measuring']:
                    record(elapsed)
        except ConnectionClosed as e:
            errors[f'closed: {e}'[:120]] += 1
        except Exception as e:
            errors[f'{type(e).__name__}: {e}'[:120]] += 1

    tasks = [asyncio.create_task(loop(ws)) for ws in conns]
    await asyncio.sleep(a.warmup)
    stat0, server0, own0, t0 = rest.proc_stat(), cpu_of(a.server_pid), time.process_time(), time.perf_counter()
    state['measuring'] = True
    await asyncio.sleep(a.duration)
    state['measuring'] = False
    wall = time.perf_counter() - t0
    stat1, server1, own1 = rest.proc_stat(), cpu_of(a.server_pid), time.process_time()
    count = len(latencies)
    state['stop'] = True
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)

    latencies.sort()
    server_cpu = server1 - server0
    client_cpu = own1 - own0
    busy = busy_seconds_between(stat0, stat1)
    return {
        'connections': len(conns), 'connect_errors': connect_errors, 'size': a.size, 'messages': count,
        'mps': count / wall, 'wall_s': wall,
        'p50_ms': 1e3 * percentile(latencies, 0.50), 'p90_ms': 1e3 * percentile(latencies, 0.90),
        'p99_ms': 1e3 * percentile(latencies, 0.99), 'max_ms': 1e3 * (latencies[-1] if latencies else 0.0),
        'mismatches': state['mismatches'], 'errors': dict(errors),
        'server_cpu_percent': 100 * server_cpu / wall, 'client_cpu_percent': 100 * client_cpu / wall,
        'server_cpu_us_per_msg': 1e6 * server_cpu / count if count else 0.0,
        'client_cpu_us_per_msg': 1e6 * client_cpu / count if count else 0.0,
        'other_cpu_percent': max(0.0, 100 * (busy - server_cpu - client_cpu) / wall),
    }


class _EchoProtocol(asyncio.Protocol):
    """One connection of the lean echo client: websockets' Sans-I/O ClientProtocol (handshake, framing,
    masking with its C extension) driven straight from asyncio's callbacks, with no task per connection."""

    def __init__(self, uri: Any, message: bytes, shared: dict[str, Any]) -> None:
        from websockets.client import ClientProtocol
        self.ws = ClientProtocol(uri, max_size=None)  # no extensions: no compression
        self.message = message
        self.shared = shared
        self.transport: Any = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.parts: list[bytes] = []
        self.started = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.get_extra_info('socket').setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws.send_request(self.ws.connect())
        self._flush()

    def _flush(self) -> None:
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)

    def next(self) -> None:
        if self.shared['stop']:
            return
        self.started = time.perf_counter()
        self.ws.send_text(self.message)
        self._flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is not Frame:  # the handshake's response
                if ws.handshake_exc is not None:
                    self.opened.set_exception(ws.handshake_exc)
                else:
                    self.opened.set_result(True)
                continue
            if event.opcode > 2:  # close, ping, pong: the protocol answers them itself
                continue
            self.parts.append(event.data)
            if not event.fin:
                continue
            reply = self.parts[0] if len(self.parts) == 1 else b''.join(self.parts)
            self.parts = []
            shared = self.shared
            if reply != self.message:
                shared['mismatches'] += 1
            if shared['measuring']:
                shared['latencies'].append(time.perf_counter() - self.started)
            self.next()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError('closed during the handshake'))
        elif not self.shared['stop']:
            self.shared['errors'][f'connection lost: {exc}'[:120]] += 1


async def _echo_load_sansio(a: argparse.Namespace) -> dict[str, Any]:
    from websockets.uri import parse_uri
    uri = parse_uri(a.url)
    message = (PATTERN * (a.size // len(PATTERN) + 1))[:a.size].encode()
    loop = asyncio.get_running_loop()
    shared: dict[str, Any] = {'measuring': False, 'stop': False, 'mismatches': 0, 'latencies': [],
                              'errors': Counter()}

    async def open_one() -> _EchoProtocol:
        _transport, proto = await loop.create_connection(lambda: _EchoProtocol(uri, message, shared), uri.host,
                                                         uri.port)
        await asyncio.wait_for(proto.opened, 30)
        return proto

    opened = await asyncio.gather(*(open_one() for _ in range(a.connections)), return_exceptions=True)
    conns = [c for c in opened if not isinstance(c, BaseException)]
    connect_errors = [f'{type(c).__name__}: {c}'[:200] for c in opened if isinstance(c, BaseException)]
    for proto in conns:
        proto.next()
    await asyncio.sleep(a.warmup)
    stat0, server0, own0, t0 = rest.proc_stat(), cpu_of(a.server_pid), time.process_time(), time.perf_counter()
    shared['measuring'] = True
    await asyncio.sleep(a.duration)
    shared['measuring'] = False
    wall = time.perf_counter() - t0
    stat1, server1, own1 = rest.proc_stat(), cpu_of(a.server_pid), time.process_time()
    shared['stop'] = True
    latencies = shared['latencies']
    count = len(latencies)
    await asyncio.sleep(0.2)  # the last echoes in flight
    for proto in conns:  # a clean close, so that neither server logs a dropped connection
        try:
            proto.ws.send_close(1000)
            proto._flush()
        except Exception:
            pass
    await asyncio.sleep(0.3)
    for proto in conns:
        proto.transport.close()
    latencies.sort()
    server_cpu = server1 - server0
    client_cpu = own1 - own0
    busy = busy_seconds_between(stat0, stat1)
    return {
        'connections': len(conns), 'connect_errors': connect_errors, 'size': a.size, 'messages': count,
        'mps': count / wall, 'wall_s': wall,
        'p50_ms': 1e3 * percentile(latencies, 0.50), 'p90_ms': 1e3 * percentile(latencies, 0.90),
        'p99_ms': 1e3 * percentile(latencies, 0.99), 'max_ms': 1e3 * (latencies[-1] if latencies else 0.0),
        'mismatches': shared['mismatches'], 'errors': dict(shared['errors']),
        'server_cpu_percent': 100 * server_cpu / wall, 'client_cpu_percent': 100 * client_cpu / wall,
        'server_cpu_us_per_msg': 1e6 * server_cpu / count if count else 0.0,
        'client_cpu_us_per_msg': 1e6 * client_cpu / count if count else 0.0,
        'other_cpu_percent': max(0.0, 100 * (busy - server_cpu - client_cpu) / wall),
    }


# ################################################################################################
# The broadcast clients: `wsx.py _bcast-client --port P --connections N ...`
#
# A lean epoll loop over raw non-blocking sockets: the handshake by hand, then only the frames a
# server sends (unmasked, small). Talks to its parent in JSON lines: it prints `connected` once
# the handshakes are over, then waits for commands on stdin: `REPORT <first id> <last id> <quiet s>
# <max s>` prints what arrived of those broadcasts once every client has them all, or nothing more
# arrived for <quiet> seconds, or <max> seconds passed; `QUIT` ends it.

_CONNECTING, _HANDSHAKE, _OPEN, _CLOSED = 0, 1, 2, 3
IP_BIND_ADDRESS_NO_PORT = getattr(socket, 'IP_BIND_ADDRESS_NO_PORT', 24)  # Linux 4.2+
SO_TIMESTAMPNS = getattr(socket, 'SO_TIMESTAMPNS', 35)  # Linux: the kernel's receive time of each read
_TIMESPEC = struct.Struct('@qq')


class _Peer:
    __slots__ = ('sock', 'state', 'buf', 'got')

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.state = _CONNECTING
        self.buf = b''
        self.got = 0


class BroadcastClients:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.ep = select.epoll()
        self.peers: dict[int, _Peer] = {}
        key = base64.b64encode(os.urandom(16)).decode('ascii')
        self.accept = base64.b64encode(hashlib.sha1((key + GUID).encode('ascii')).digest())
        self.request = (f'GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nUpgrade: websocket\r\n'
                        f'Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n'
                        f'User-Agent: zato-bench-wsx\r\n\r\n').encode('latin-1')
        self.established = 0
        self.failures: Counter[str] = Counter()
        self.pending = 0
        # Per broadcast id: deliveries, and latencies in microseconds from the trigger and from the server
        self.counts: Counter[int] = Counter()
        self.lat_trigger: dict[int, array] = {}   # trigger -> this process reads it
        self.lat_kernel: dict[int, array] = {}    # trigger -> the kernel has it (SO_TIMESTAMPNS)
        self.lat_server: dict[int, array] = {}    # the broadcast's own time.time() -> this process reads it
        self.lag: dict[int, array] = {}           # the kernel has it -> this process reads it: the client's own delay
        self.last_rx = time.monotonic()
        self.disconnects = 0
        self.close_codes: Counter[int] = Counter()
        self.pings = 0
        self.oddities: Counter[str] = Counter()
        self.expected_per_client = 0
        self.cpu_mark = 0.0

    def out(self, event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event) + '\n')
        sys.stdout.flush()

    # Connecting

    def connect_all(self) -> None:
        a = self.a
        started = time.monotonic()
        deadline = started + a.connect_timeout
        todo = a.connections
        while (todo or self.pending) and time.monotonic() < deadline:
            while todo and self.pending < a.window:
                todo -= 1
                self._open_one()
            for fd, events in self.ep.poll(0.5):
                peer = self.peers.get(fd)
                if peer is not None:
                    self._handshake_step(fd, peer, events)
        for fd, peer in list(self.peers.items()):
            if peer.state in (_CONNECTING, _HANDSHAKE):
                self._fail(fd, peer, 'handshake timed out')
        self.failures['never attempted (connect timeout)'] += todo
        self.out({'event': 'connected', 'established': self.established, 'failures': dict(self.failures),
                  'seconds': time.monotonic() - started})

    def _open_one(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if self.a.source:
            # The port is chosen by connect(), not bind(): only connect() may reuse the ports of
            # TIME_WAIT connections (net.ipv4.tcp_tw_reuse), which earlier configurations leave by the thousand
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((self.a.source, 0))
        err = sock.connect_ex((self.a.host, self.a.port))
        if err not in (0, 115):  # EINPROGRESS
            self.failures[f'connect: {os.strerror(err)}'] += 1
            sock.close()
            return
        fd = sock.fileno()
        self.peers[fd] = _Peer(sock)
        self.ep.register(fd, select.EPOLLOUT)
        self.pending += 1

    def _fail(self, fd: int, peer: _Peer, reason: str) -> None:
        self.failures[reason] += 1
        self.pending -= 1
        self._drop(fd, peer)

    def _drop(self, fd: int, peer: _Peer) -> None:
        peer.state = _CLOSED
        try:
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass
        self.peers.pop(fd, None)
        peer.sock.close()

    def _handshake_step(self, fd: int, peer: _Peer, events: int) -> None:
        sock = peer.sock
        if peer.state == _CONNECTING:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._fail(fd, peer, f'connect: {os.strerror(err)}')
                return
            sock.send(self.request)  # ~200 bytes always fit an empty socket buffer
            peer.state = _HANDSHAKE
            self.ep.modify(fd, select.EPOLLIN)
            return
        try:
            data = sock.recv(16384)
        except BlockingIOError:
            return
        except OSError as e:
            self._fail(fd, peer, f'handshake: {e.strerror}')
            return
        if not data:
            self._fail(fd, peer, 'closed during the handshake')
            return
        peer.buf += data
        end = peer.buf.find(b'\r\n\r\n')
        if end < 0:
            return
        head, rest_ = peer.buf[:end], peer.buf[end + 4:]
        status = head.split(b'\r\n', 1)[0]
        if not status.startswith(b'HTTP/1.1 101'):
            self._fail(fd, peer, status.decode('latin-1', 'replace')[:60])
            return
        if self.accept not in head:
            self._fail(fd, peer, 'wrong Sec-WebSocket-Accept')
            return
        peer.state = _OPEN
        peer.buf = b''
        self.pending -= 1
        self.established += 1
        if rest_:
            now = time.time()
            self._frames(fd, peer, rest_, now, now)

    # Receiving

    def _frames(self, fd: int, peer: _Peer, data: bytes, now: float, kernel: float) -> None:
        buf = peer.buf + data if peer.buf else data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], 'big'), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], 'big'), 10
            if b1 & 0x80:
                self.oddities['masked frame from the server'] += 1
                head += 4
            end = pos + head + length
            if end > size:
                break
            payload = buf[pos + head:end]
            pos = end
            opcode = b0 & 0x0F
            if not b0 & 0x80:
                self.oddities['fragmented frame'] += 1
            if opcode == 1:
                try:
                    bid_, t0_, t1_ = payload.split()
                    bid, t0, t1 = int(bid_), float(t0_), float(t1_)
                except ValueError:
                    self.oddities['unexpected text message'] += 1
                    continue
                self.counts[bid] += 1
                peer.got += 1
                lat = self.lat_trigger.get(bid)
                if lat is None:
                    lat = self.lat_trigger[bid] = array('q')
                    self.lat_kernel[bid] = array('q')
                    self.lat_server[bid] = array('q')
                    self.lag[bid] = array('q')
                lat.append(int((now - t0) * 1e6))
                self.lat_kernel[bid].append(int((kernel - t0) * 1e6))
                self.lat_server[bid].append(int((now - t1) * 1e6))
                self.lag[bid].append(int((now - kernel) * 1e6))
            elif opcode == 9:
                # A pong, masked with a zero key (which leaves the payload as it is)
                self.pings += 1
                try:
                    peer.sock.send(bytes((0x8A, 0x80 | len(payload))) + b'\0\0\0\0' + payload)
                except OSError:
                    pass
            elif opcode == 8:
                code = int.from_bytes(payload[:2], 'big') if len(payload) >= 2 else 1005
                self.close_codes[code] += 1
                try:
                    peer.sock.send(bytes((0x88, 0x80 | len(payload[:2]))) + b'\0\0\0\0' + payload[:2])
                except OSError:
                    pass
            elif opcode != 10:
                self.oddities[f'opcode {opcode}'] += 1
        peer.buf = buf[pos:] if pos < size else b''

    def _readable(self, fd: int, peer: _Peer) -> None:
        try:
            data, ancillary, _flags, _address = peer.sock.recvmsg(262144, 64)
        except BlockingIOError:
            return
        except OSError:
            data, ancillary = b'', []
        if not data:
            if peer.state == _OPEN:
                self.disconnects += 1
            self._drop(fd, peer)
            return
        now = kernel = time.time()
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                kernel = seconds + nanoseconds * 1e-9
        self.last_rx = time.monotonic()
        self._frames(fd, peer, data, now, kernel)

    def serve(self) -> None:
        stdin = sys.stdin.fileno()
        os.set_blocking(stdin, False)
        self.ep.register(stdin, select.EPOLLIN)
        commands = b''
        report: tuple[int, int, float, float, float] | None = None
        self.cpu_mark = time.process_time()  # a round's CPU time counts from the previous report
        peers = self.peers
        readable = self._readable
        while True:
            for fd, _events in self.ep.poll(0.05):
                peer = peers.get(fd)
                if peer is not None:
                    readable(fd, peer)
                elif fd == stdin:
                    chunk = os.read(stdin, 4096)
                    if not chunk:
                        return
                    commands += chunk
            while b'\n' in commands:
                line, commands = commands.split(b'\n', 1)
                words = line.decode().split()
                if not words:
                    continue
                if words[0] == 'QUIT':
                    return
                if words[0] == 'REPORT':
                    first, last, quiet, longest = int(words[1]), int(words[2]), float(words[3]), float(words[4])
                    now = time.monotonic()
                    report = (first, last, quiet, longest, now)
            if report is not None:
                first, last, quiet, longest, asked = report
                now = time.monotonic()
                complete = all(self.counts[i] >= self.established for i in range(first, last + 1))
                if complete or now - self.last_rx >= quiet and now - asked >= quiet or now - asked >= longest:
                    self._report(first, last)
                    report = None

    def _report(self, first: int, last: int) -> None:
        ids = list(range(first, last + 1))
        self.expected_per_client += len(ids)
        trig: list[int] = []
        kern: list[int] = []
        serv: list[int] = []
        lag: list[int] = []
        per_id = {}
        for i in ids:
            t = self.lat_trigger.pop(i, array('q'))
            per_id[i] = {'count': self.counts.pop(i, 0), 'max_us': max(t) if t else None}
            trig.extend(t)
            kern.extend(self.lat_kernel.pop(i, ()))
            serv.extend(self.lat_server.pop(i, ()))
            lag.extend(self.lag.pop(i, ()))
        short = sum(1 for p in self.peers.values() if p.state == _OPEN and p.got < self.expected_per_client)
        self.out({'event': 'report', 'first': first, 'last': last, 'established': self.established,
                  'open': sum(1 for p in self.peers.values() if p.state == _OPEN), 'per_id': per_id,
                  'lat_trigger_us': trig, 'lat_kernel_us': kern, 'lat_server_us': serv, 'lag_us': lag,
                  'clients_short': short,
                  'disconnects': self.disconnects, 'close_codes': dict(self.close_codes), 'pings': self.pings,
                  'oddities': dict(self.oddities), 'cpu_s': time.process_time() - self.cpu_mark})
        self.cpu_mark = time.process_time()


def bcast_client_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog='wsx.py _bcast-client')
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--path', default=BCAST_PATH)
    p.add_argument('--connections', type=int, required=True)
    p.add_argument('--window', type=int, default=100, help='handshakes in flight at once')
    p.add_argument('--connect-timeout', type=float, default=300.0)
    p.add_argument('--source', default='', help='local address to bind, e.g. 127.0.0.2')
    a = p.parse_args(argv)
    raise_nofile(a.connections + 100)
    clients = BroadcastClients(a)
    clients.connect_all()
    clients.serve()
    return 0


# ################################################################################################
# The servers

class ZatoWSX(servers.Zato):
    """A quickstart environment with WSX channels; the worker count is set at each start."""

    def __init__(self, port: int, cpu: int | None, log_dir: str, env_dir: str, pure_python: bool,
                 max_wsx: int) -> None:
        super().__init__(port, cpu, log_dir, env_dir, pure_python)
        self.kind = 'zato-py' if pure_python else 'zato'
        self.workers = 1
        self.max_wsx = max_wsx

    def start(self, wait: float = 90.0, pure_python: bool | None = None) -> None:
        pure = self.pure_python if pure_python is None else pure_python
        self.check_port()
        if not os.path.exists(os.path.join(self.env_dir, 'config')):
            servers.zato_cli('quickstart', 'create', self.env_dir, '--workers', '1', '--base-port', str(self.port))
        extra = {'ZATO_MAIN_WORKERS': str(self.workers), 'ZATO_WSX_MAX_CONNECTIONS': str(self.max_wsx)}
        if pure:
            extra['ZATO_PURE_PYTHON'] = '1'
        try:
            servers.zato_cli('start', self.env_dir, env=servers.child_env(**extra), cpu=self.cpu)
        finally:
            self.master_pid = self.read_master_pid()
            self.pgid = self.master_pid
        self.wait_ready(wait)
        deadline = time.monotonic() + wait
        while len(self.worker_pids()) < self.workers:
            if time.monotonic() > deadline:
                raise servers.ServerError(f'{self.kind}: {self.workers} workers expected, found {self.worker_pids()}')
            time.sleep(0.1)
        self.notes = {'workers': self.workers, 'pure_python': pure}

    def worker_pids(self) -> list[int]:
        return servers.children_of(self.master_pid) if self.master_pid else []

    def worker_pid(self) -> int:
        pids = self.worker_pids()
        if not pids:
            raise servers.ServerError(f'{self.kind}: no worker under the master {self.master_pid}')
        return pids[0]

    def set_up(self) -> None:
        """Deploys the services and creates the channels (once per environment: the ODB keeps them)."""
        client = self.admin()
        client.call('POST', '/zato/admin/deploy', {'file_name': SERVICES_FILE, 'source': SERVICES_SOURCE})
        existing = {x['name'] for x in client.call('GET', '/zato/admin/channels/wsx')}
        for channel in WSX_CHANNELS:
            if channel['name'] not in existing:
                client.call('POST', '/zato/admin/channels/wsx', channel)

    def check_modules(self) -> dict[str, bool]:
        """Which compiled modules the workers have loaded (after a WebSocket has been served)."""
        out = {}
        for pid in self.worker_pids():
            out[str(pid)] = {'http1': servers.maps_contain(pid, 'zato/cy/http1.'),
                             'wsmask': servers.maps_contain(pid, 'zato/cy/wsmask.')}
        return out


class PeerServer(servers.Server):
    kind = 'websockets'

    def command(self) -> list[str]:
        return [servers.PYTHON, THIS, '_peer-server', '--port', str(self.port)]

    def worker_pids(self) -> list[int]:
        return [self.worker_pid()]


def echo_check(port: int, wait: float = 20.0) -> str:
    """Waits until the echo channel answers; '' when it does, else what went wrong."""
    from websockets.sync.client import connect
    deadline = time.monotonic() + wait
    problem = ''
    while time.monotonic() < deadline:
        try:
            with connect(f'ws://127.0.0.1:{port}{ECHO_PATH}', compression=None, proxy=None, open_timeout=5,
                         ping_interval=None) as ws:
                ws.send('hello')
                got = ws.recv(timeout=5)
                if got == 'hello':
                    return ''
                problem = f'echo answered {got!r}'
        except Exception as e:
            problem = f'{type(e).__name__}: {e}'
        time.sleep(0.3)
    return problem


class LogWatch:
    """What a server wrote to its log from now on: WARNING and above, and zato.wsx lines."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.offset = os.path.getsize(path) if path and os.path.exists(path) else 0

    def collect(self) -> dict[str, Any]:
        if not self.path or not os.path.exists(self.path):
            return {}
        with open(self.path, encoding='utf-8', errors='replace') as f:
            f.seek(self.offset)
            text = f.read()
        counts: Counter[str] = Counter()
        samples: dict[str, str] = {}
        lines = text.splitlines()
        for no, line in enumerate(lines):
            parts = line.split(' - ', 4)
            if len(parts) < 5:
                if line.startswith('Traceback'):
                    # The exception is the first line after the traceback that is not indented
                    last = next((x for x in lines[no + 1:] if x and not x.startswith(' ')), '')
                    key = f'Traceback: {last.split(":", 1)[0]}'
                    counts[key] += 1
                    samples.setdefault(key, last[:300])
                continue
            level, logger, message = parts[1], parts[3], parts[4]
            if level in ('WARNING', 'ERROR', 'CRITICAL') or logger == 'zato.wsx':
                # Group messages that differ only in ids, addresses and numbers
                words = ['#' if any(ch.isdigit() for ch in w) else w for w in message.split()[:12]]
                key = f'{level} {logger}: {" ".join(words)}'
                counts[key] += 1
                samples.setdefault(key, message[:300])
        return {'counts': dict(counts), 'samples': samples}


# ################################################################################################
# Children that speak JSON lines

class Child:
    def __init__(self, cmd: list[str], stderr_path: str, stdin: bool = False) -> None:
        self.name = next((x for x in cmd if x.startswith('_')), cmd[0])
        self.err = open(stderr_path, 'ab')  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.err, cwd=servers.REPO,
                                     env=servers.child_env(), start_new_session=True)
        self.buf = b''
        self.stderr_path = stderr_path

    def event(self, timeout: float) -> dict[str, Any]:
        """The next JSON line the child prints; raises RuntimeError on a timeout or its exit."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f'no answer from {self.name} within {timeout:.0f} s')
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise RuntimeError(f'{self.name} exited (code {self.proc.wait()}); see {self.stderr_path}')
                self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b'\n')
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def close(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.send('QUIT')
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                servers.kill_group(self.proc.pid, timeout=2)
        self.err.close()


def pinned(cpu: int | None, cmd: list[str]) -> list[str]:
    return cmd if cpu is None else ['taskset', '-c', str(cpu), *cmd]


# ################################################################################################
# Echo

@dataclass
class EchoConfig:
    id: str
    server: str
    size: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    failure: str = ''


def summarize_echo(c: EchoConfig) -> dict[str, Any]:
    runs = c.runs
    if not runs:
        return {}
    med = statistics.median
    return {
        'mps': med(r['mps'] for r in runs), 'mps_min': min(r['mps'] for r in runs),
        'mps_max': max(r['mps'] for r in runs),
        'p50_ms': med(r['p50_ms'] for r in runs), 'p99_ms': med(r['p99_ms'] for r in runs),
        'errors': sum(sum(r['errors'].values()) + len(r['connect_errors']) for r in runs),
        'mismatches': sum(r['mismatches'] for r in runs),
        'server_cpu_percent': med(r['server_cpu_percent'] for r in runs),
        'server_cpu_us_per_msg': med(r['server_cpu_us_per_msg'] for r in runs),
        'client_cpu_percent': med(r['client_cpu_percent'] for r in runs),
        'other_cpu_percent': med(r['other_cpu_percent'] for r in runs),
    }


class Bench:
    def __init__(self, args: argparse.Namespace, work_dir: str) -> None:
        self.args = args
        self.work_dir = work_dir
        self.zato: dict[str, ZatoWSX] = {}
        self.peer: PeerServer | None = None
        self.children: list[Child] = []
        self.echo: list[EchoConfig] = []
        self.echo_memory: dict[str, Any] = {}
        self.bcast: list[dict[str, Any]] = []
        self.logs: dict[str, Any] = {}
        self.modules: dict[str, Any] = {}
        self.sources = 0
        a = args
        self.ports = {'zato': a.base_port, 'zato-py': a.base_port + 1, 'websockets': a.base_port + 2}
        max_clients = max(a.clients) if a.clients else 0
        # Every WSX client of a worker counts, the trigger's connection too; the default is 10,000
        self.max_wsx = a.wsx_max_connections or max(10000, max_clients + 100)

    # Servers

    def zato_server(self, name: str) -> ZatoWSX:
        if name not in self.zato:
            env_dir = os.path.join(self.work_dir, f'env-{name}')
            self.zato[name] = ZatoWSX(self.ports[name], self.args.server_cpu, self.work_dir, env_dir,
                                      pure_python=name == 'zato-py', max_wsx=self.max_wsx)
        return self.zato[name]

    def start_zato(self, name: str, workers: int) -> ZatoWSX:
        server = self.zato_server(name)
        server.workers = workers
        fresh = not os.path.exists(os.path.join(server.env_dir, 'config'))
        log(f'- starting {name} ({workers} worker{"s" if workers > 1 else ""}) on port {server.port} ...')
        server.start()
        if fresh:
            # Set up, then start again: what is measured never runs in a worker that did the setting up
            server.set_up()
            server.stop()
            server.start()
        problem = echo_check(server.port)
        if problem:
            raise servers.ServerError(f'{name}: the echo channel does not answer: {problem}; see {server.log_path}')
        modules = self.modules[f'{name}/{workers}w'] = server.check_modules()
        for pid, loaded in modules.items():
            if loaded['wsmask'] == server.pure_python:
                raise servers.ServerError(f'{name}: worker {pid} has {"" if loaded["wsmask"] else "not "}loaded '
                                          'the compiled masker (zato/cy/wsmask)')
        return server

    def start_peer(self) -> PeerServer:
        if self.peer is None:
            self.peer = PeerServer(self.ports['websockets'], self.args.server_cpu, self.work_dir)
        log(f'- starting websockets on port {self.peer.port} ...')
        self.peer.start()
        problem = echo_check(self.peer.port)
        if problem:
            raise servers.ServerError(f'websockets: the echo server does not answer: {problem}')
        return self.peer

    def stop_all(self) -> None:
        for child in list(self.children):
            try:
                child.close(timeout=5)
            except Exception as e:
                print(f'! stopping a client failed: {e}', file=sys.stderr)
        self.children.clear()
        for name, server in list(self.zato.items()):
            if server.master_pid or server.read_master_pid():
                log(f'- stopping {name}')
                try:
                    server.stop()
                except Exception as e:
                    print(f'! stopping {name} failed: {e}', file=sys.stderr)
        if self.peer is not None and self.peer.proc is not None:
            log('- stopping websockets')
            self.peer.stop()

    def server_of(self, name: str) -> ZatoWSX | PeerServer:
        return self.peer if name == 'websockets' else self.zato[name]  # type: ignore[return-value]

    # Echo

    def echo_run(self, config: EchoConfig, duration: float, warmup: float) -> dict[str, Any]:
        a = self.args
        server = self.server_of(config.server)
        cmd = [servers.PYTHON, THIS, '_echo-client', '--url', f'ws://127.0.0.1:{server.port}{ECHO_PATH}',
               '--connections', str(a.connections), '--size', str(config.size), '--duration', str(duration),
               '--warmup', str(warmup), '--server-pid', str(server.worker_pid()), '--client', a.echo_client]
        child = Child(pinned(a.client_cpu, cmd), os.path.join(self.work_dir, 'echo-client.stderr'))
        self.children.append(child)
        try:
            return child.event(timeout=duration + warmup + 120)
        finally:
            child.close()
            self.children.remove(child)

    def run_echo(self) -> None:
        a = self.args
        self.echo = [EchoConfig(f'{s}-{size}', s, size) for size in a.sizes for s in a.echo_servers]
        for name in a.echo_servers:
            if name == 'websockets':
                self.start_peer()
            else:
                self.start_zato(name, 1)
        for name in a.echo_servers:
            pid = self.server_of(name).worker_pid()
            self.echo_memory[name] = {'idle': servers.memory_kib(pid)}
        logs = {name: LogWatch(self.server_of(name).log_path) for name in a.echo_servers}
        for config in self.echo:
            log(f'- warming up {config.id} ({a.warmup:.0f} s)')
            try:
                r = self.echo_run(config, a.warmup, 0.5)
            except RuntimeError as e:
                config.failure = str(e)
                continue
            if r['mismatches'] or not r['messages'] or r['connect_errors']:
                config.failure = (f'{r["messages"]} messages, {r["mismatches"]} wrong echoes, '
                                  f'connect errors {r["connect_errors"][:2]}, errors {r["errors"]}')
                log(f'! {config.id}: {config.failure}; not measured')
        for run_no in range(1, a.runs + 1):
            for config in self.echo:
                if config.failure:
                    continue
                try:
                    r = self.echo_run(config, a.duration, 1.0)
                except RuntimeError as e:
                    config.failure = str(e)
                    continue
                config.runs.append(r)
                log(f'  run {run_no}/{a.runs} {config.id:<17} {r["mps"]:>8,.0f} msg/s  p50 {r["p50_ms"]:6.2f} ms'
                    f'  p99 {r["p99_ms"]:6.2f} ms  errors {sum(r["errors"].values())}  wrong {r["mismatches"]}'
                    f'  server CPU {r["server_cpu_percent"]:.0f}% ({r["server_cpu_us_per_msg"]:.1f} µs/msg)'
                    f'  client CPU {r["client_cpu_percent"]:.0f}% ({r.get("client_cpu_us_per_msg", 0):.1f} µs/msg)'
                    f'  other CPU {r["other_cpu_percent"]:.0f}%')
        for name in a.echo_servers:
            self.echo_memory[name]['after'] = servers.memory_kib(self.server_of(name).worker_pid())
        for name, watch in logs.items():
            self.logs[f'echo/{name}'] = watch.collect()
        for name in a.echo_servers:
            server = self.server_of(name)
            log(f'- stopping {name}')
            server.stop()

    # Broadcast

    def bcast_clients(self, port: int, n: int, procs: int) -> list[Child]:
        a = self.args
        out = []
        per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        for count in (c for c in per if c):
            # Each client process connects from an address of its own (127.0.0.2 to 127.0.0.251 in turn), so
            # that the TIME_WAIT connections an earlier configuration left never take the ports it needs
            source = f'127.0.0.{2 + self.sources % 250}'
            self.sources += 1
            cmd = [servers.PYTHON, THIS, '_bcast-client', '--port', str(port), '--connections', str(count),
                   '--window', str(a.connect_window), '--source', source]
            child = Child(pinned(a.client_cpu, cmd), os.path.join(self.work_dir, 'bcast-client.stderr'), stdin=True)
            self.children.append(child)
            out.append(child)
        return out

    def broadcast_round(self, trigger: Any, clients: list[Child], first: int, count: int, pids: list[int],
                        established: int) -> dict[str, Any]:
        """Sends `count` triggers `--interval` apart and gathers what the clients saw of them."""
        a = self.args
        cpu0 = sum(cpu_of(p) for p in pids)
        stat0 = rest.proc_stat()
        started = time.monotonic()
        for k in range(count):
            delay = started + k * a.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            trigger.send(f'{first + k} {time.time():.6f}')
            try:
                while True:  # Zato's trigger service answers with an empty message; nobody needs it
                    trigger.recv(timeout=0)
            except TimeoutError:
                pass
        for child in clients:
            child.send(f'REPORT {first} {first + count - 1} {a.quiet} {a.round_wait}')
        reports = [child.event(timeout=a.round_wait + 60) for child in clients]
        wall = time.monotonic() - started
        server_cpu = sum(cpu_of(p) for p in pids) - cpu0
        stat1 = rest.proc_stat()
        busy = busy_seconds_between(stat0, stat1)
        core = f'cpu{a.server_cpu}'
        # All busy time of the servers' core: the workers, the loopback softirq work their sends cause
        # (not charged to any process) and whatever else ran there
        core_busy = busy_seconds_between({'cpu': stat0[core]}, {'cpu': stat1[core]})
        core_softirq = (stat1[core][6] - stat0[core][6]) / os.sysconf('SC_CLK_TCK')
        trig = sorted(x for r in reports for x in r['lat_trigger_us'])
        kern = sorted(x for r in reports for x in r['lat_kernel_us'])
        serv = sorted(x for r in reports for x in r['lat_server_us'])
        lag = sorted(x for r in reports for x in r['lag_us'])
        delivered = len(trig)
        per_id_max = []
        for i in range(first, first + count):
            maxes = [r['per_id'][str(i)]['max_us'] for r in reports if r['per_id'][str(i)]['max_us'] is not None]
            if maxes:
                per_id_max.append(max(maxes))
        client_cpu = sum(r['cpu_s'] for r in reports)
        return {
            'broadcasts': count, 'delivered': delivered, 'expected': established * count,
            'missed': established * count - delivered,
            'clients_short': sum(r['clients_short'] for r in reports),
            'p50_ms': percentile(trig, 0.50) / 1e3, 'p90_ms': percentile(trig, 0.90) / 1e3,
            'p99_ms': percentile(trig, 0.99) / 1e3, 'max_ms': (trig[-1] if trig else 0) / 1e3,
            'server_p50_ms': percentile(serv, 0.50) / 1e3, 'server_p99_ms': percentile(serv, 0.99) / 1e3,
            'kernel_p50_ms': percentile(kern, 0.50) / 1e3, 'kernel_p99_ms': percentile(kern, 0.99) / 1e3,
            'kernel_max_ms': (kern[-1] if kern else 0) / 1e3,
            'lag_p50_ms': percentile(lag, 0.50) / 1e3, 'lag_p99_ms': percentile(lag, 0.99) / 1e3,
            'lag_max_ms': (lag[-1] if lag else 0) / 1e3,
            'all_reached_median_ms': statistics.median(per_id_max) / 1e3 if per_id_max else None,
            'all_reached_max_ms': max(per_id_max) / 1e3 if per_id_max else None,
            'disconnects': sum(r['disconnects'] for r in reports),
            'close_codes': dict(sum((Counter(r['close_codes']) for r in reports), Counter())),
            'pings_answered': sum(r['pings'] for r in reports),
            'oddities': dict(sum((Counter(r['oddities']) for r in reports), Counter())),
            'client_cpu_us_per_msg': 1e6 * client_cpu / delivered if delivered else None,
            'client_cpu_s': client_cpu,
            'server_cpu_s': server_cpu, 'server_cpu_us_per_msg': 1e6 * server_cpu / delivered if delivered else None,
            'other_cpu_s': max(0.0, busy - server_cpu - client_cpu), 'wall_s': wall,
            'server_core_busy_s': core_busy, 'server_core_softirq_s': core_softirq,
            'server_core_us_per_msg': 1e6 * core_busy / delivered if delivered else None,
        }

    def warm_up_broadcast(self, port: int, trigger: Any, next_id: int) -> tuple[str, int]:
        """20 clients get 2 broadcasts, then leave: every code path runs once before memory is read."""
        problem = ''
        for _attempt in range(3):
            clients = self.bcast_clients(port, 20, 1)
            try:
                connected = clients[0].event(timeout=60)
                if connected['established'] != 20:
                    problem = f'warm-up: {connected["established"]} of 20 clients connected: {connected["failures"]}'
                else:
                    r = self.broadcast_round(trigger, clients, next_id, 2, [], 20)
                    next_id += 2
                    problem = '' if r['missed'] == 0 else f'warm-up: {r["missed"]} of 40 broadcasts missed'
            finally:
                for child in clients:
                    child.close()
                    self.children.remove(child)
            if not problem:
                break
            log(f'  {problem}; trying again')
            time.sleep(1.0)
        return problem, next_id

    def run_broadcast_config(self, target: str, workers: int, n: int) -> dict[str, Any]:
        from websockets.sync.client import connect
        a = self.args
        row: dict[str, Any] = {'server': target, 'workers': workers, 'clients': n, 'rounds': [], 'failure': ''}
        server: ZatoWSX | PeerServer
        server = self.start_peer() if target == 'websockets' else self.start_zato(target, workers)
        watch = LogWatch(server.log_path)
        pids = server.worker_pids()
        row['worker_pids'] = pids
        clients: list[Child] = []
        stack = contextlib.ExitStack()
        try:
            trigger = stack.enter_context(connect(f'ws://127.0.0.1:{server.port}{TRIGGER_PATH}', compression=None,
                                                  proxy=None, ping_interval=None, open_timeout=10))
            problem, next_id = self.warm_up_broadcast(server.port, trigger, 1)
            if problem:
                row['failure'] = problem
                return row
            time.sleep(1.0)
            row['rss_before'] = {str(p): servers.memory_kib(p) for p in pids}
            row['fds_before'] = {str(p): fd_count(p) for p in pids}

            log(f'  connecting {n:,} clients ...')
            clients = self.bcast_clients(server.port, n, a.client_procs)
            events = [child.event(timeout=a.connect_timeout + 60) for child in clients]
            established = sum(e['established'] for e in events)
            failures = sum((Counter(e['failures']) for e in events), Counter())
            row['connected'] = established
            row['connect_failures'] = dict(failures)
            row['connect_s'] = max(e['seconds'] for e in events)
            log(f'  {established:,} connected in {row["connect_s"]:.1f} s'
                + (f'; failed: {dict(failures)}' if failures else ''))
            time.sleep(a.settle)
            row['rss_idle'] = {str(p): servers.memory_kib(p) for p in pids}
            row['fds_idle'] = {str(p): fd_count(p) for p in pids}
            if established:
                grown = sum(row['rss_idle'][str(p)]['VmRSS'] - row['rss_before'][str(p)]['VmRSS'] for p in pids)
                row['kib_per_connection'] = grown / established
                log(f'  workers\' RSS {sum(row["rss_before"][str(p)]["VmRSS"] for p in pids) / 1024:.1f} → '
                    f'{sum(row["rss_idle"][str(p)]["VmRSS"] for p in pids) / 1024:.1f} MiB: '
                    f'{row["kib_per_connection"]:.1f} KiB per idle connection')
            if not established:
                row['failure'] = f'no client connected: {dict(failures)}'
                return row
            if a.bcast_warmup:
                # The first broadcasts to fresh connections are slower (the kernel's first buffers on each
                # socket, the clients' first arrays): a few of them first, kept apart from the rounds
                r = row['warmup'] = self.broadcast_round(trigger, clients, next_id, a.bcast_warmup, pids, established)
                next_id += a.bcast_warmup
                log(f'  warm-up: {a.bcast_warmup} broadcasts, {r["delivered"]:,}/{r["expected"]:,} delivered, '
                    f'p50 {r["p50_ms"]:.1f} ms, p99 {r["p99_ms"]:.1f} ms, all reached in '
                    f'{r["all_reached_max_ms"] or 0:.0f} ms (slowest)')
            for round_no in range(1, a.runs + 1):
                r = self.broadcast_round(trigger, clients, next_id, a.broadcasts, pids, established)
                next_id += a.broadcasts
                row['rounds'].append(r)
                log(f'  round {round_no}/{a.runs}: {r["delivered"]:,}/{r["expected"]:,} delivered, '
                    f'missed {r["missed"]}, p50 {r["p50_ms"]:.1f} ms, p99 {r["p99_ms"]:.1f} ms, '
                    f'max {r["max_ms"]:.1f} ms, all reached in {r["all_reached_median_ms"] or 0:.0f} ms (median), '
                    f'disconnects {r["disconnects"]}, server CPU {r["server_cpu_us_per_msg"] or 0:.1f} µs/msg, '
                    f'(server core busy {r["server_core_us_per_msg"] or 0:.1f}), '
                    f'client lag p99 {r["lag_p99_ms"]:.1f} ms (max {r["lag_max_ms"]:.1f}), '
                    f'other CPU {100 * r["other_cpu_s"] / r["wall_s"]:.0f}%')
            row['rss_after'] = {str(p): servers.memory_kib(p) for p in pids}
            row['workers_alive'] = all(os.path.exists(f'/proc/{p}') for p in pids)
            if target != 'websockets':
                row['workers_now'] = server.worker_pids()
        finally:
            for child in clients:
                child.close()
                self.children.remove(child)
            try:
                stack.close()
            except Exception:
                pass
            row['log'] = watch.collect()
            log(f'- stopping {target}')
            server.stop()
        return row

    def run_broadcast(self) -> None:
        a = self.args
        configs = []
        for n in a.clients:
            for target in a.bcast_servers:
                for workers in (a.workers if target == 'zato' else [1]):
                    configs.append((target, workers, n))
        for target, workers, n in configs:
            log(f'- broadcast: {target}, {workers} worker(s), {n:,} clients')
            try:
                row = self.run_broadcast_config(target, workers, n)
            except (RuntimeError, servers.ServerError) as e:
                row = {'server': target, 'workers': workers, 'clients': n, 'rounds': [], 'failure': str(e)}
            if row['failure']:
                log(f'! {target} {workers}w {n}: {row["failure"]}')
            self.bcast.append(row)

    def run(self) -> None:
        if 'echo' in self.args.only:
            self.run_echo()
        if 'broadcast' in self.args.only:
            self.run_broadcast()


# ################################################################################################
# Results

def summarize_bcast(row: dict[str, Any]) -> dict[str, Any]:
    rounds = row.get('rounds') or []
    if not rounds:
        return {}
    med = statistics.median
    return {
        'p50_ms': med(r['p50_ms'] for r in rounds), 'p99_ms': med(r['p99_ms'] for r in rounds),
        'max_ms': max(r['max_ms'] for r in rounds),
        'server_p99_ms': med(r['server_p99_ms'] for r in rounds),
        'kernel_p99_ms': med(r['kernel_p99_ms'] for r in rounds),
        'lag_p99_ms': med(r['lag_p99_ms'] for r in rounds), 'lag_max_ms': max(r['lag_max_ms'] for r in rounds),
        'all_reached_ms': med([r['all_reached_median_ms'] for r in rounds if r['all_reached_median_ms'] is not None]
                              or [0.0]),
        'missed': sum(r['missed'] for r in rounds), 'expected': sum(r['expected'] for r in rounds),
        'disconnects': max(r['disconnects'] for r in rounds),
        'server_cpu_us_per_msg': med(r['server_cpu_us_per_msg'] or 0 for r in rounds),
        'client_cpu_us_per_msg': med(r['client_cpu_us_per_msg'] or 0 for r in rounds),
        'other_cpu_percent': med(100 * r['other_cpu_s'] / r['wall_s'] for r in rounds),
    }


def echo_table(configs: list[dict[str, Any]], memory: dict[str, Any]) -> str:
    lines = []
    for size in dict.fromkeys(c['size'] for c in configs):
        group = [c for c in configs if c['size'] == size]
        ref = next((c for c in group if c['server'] == 'websockets' and c['runs']), None)
        ref_mps = summarize_echo(EchoConfig(**ref))['mps'] if ref else None
        lines += ['', f'**Echo, {size:,}-byte text messages**', '',
                  '| server | msg/s (min–max) | p50 ms | p99 ms | errors | ÷ websockets | server CPU | '
                  'server CPU µs/msg | client CPU | other CPU | RSS MiB (idle → after) |',
                  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|']
        for c in group:
            mem = memory.get(c['server'], {})
            rss = '-'
            if 'idle' in mem:
                rss = f'{mem["idle"]["VmRSS"] / 1024:.0f}'
                if 'after' in mem:
                    rss += f' → {mem["after"]["VmRSS"] / 1024:.0f}'
            label = ECHO_SERVERS.get(c['server'], c['server'])
            if not c['runs']:
                lines.append(f'| {label} | failed: {(c["failure"] or "not measured")[:150]} | | | | | | | | | {rss} |')
                continue
            s = summarize_echo(EchoConfig(**c))
            ratio = f'{s["mps"] / ref_mps:.2f}x' if ref_mps else '-'
            spread = f' ({s["mps_min"]:,.0f}–{s["mps_max"]:,.0f})' if len(c['runs']) > 1 else ''
            errors = f'{s["errors"]}' + (f' + {s["mismatches"]} wrong' if s['mismatches'] else '')
            lines.append(f'| {label} | {s["mps"]:,.0f}{spread} | {s["p50_ms"]:.2f} | {s["p99_ms"]:.2f} | {errors} | '
                         f'{ratio} | {s["server_cpu_percent"]:.0f}% | {s["server_cpu_us_per_msg"]:.1f} | '
                         f'{s["client_cpu_percent"]:.0f}% | {s["other_cpu_percent"]:.0f}% | {rss} |')
    return '\n'.join(lines)


def bcast_table(rows: list[dict[str, Any]]) -> str:
    lines = ['', '**Broadcast: trigger → every client, latency per delivered message**', '',
             '| server | workers | clients connected | connect s | p50 ms | p99 ms | max ms | all reached ms '
             '(median) | p99 ms at the kernel | client lag p99 / max ms | missed / expected | disconnects | '
             'server CPU µs/msg | other CPU | RSS MiB before → idle → after | KiB per idle connection |',
             '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|']
    for row in rows:
        label = 'Zato' if row['server'] == 'zato' else row['server']
        s = summarize_bcast(row)
        if not s:
            lines.append(f'| {label} | {row["workers"]} | {row.get("connected", 0):,} of {row["clients"]:,} | '
                         f'failed: {row["failure"][:150]} | | | | | | | | | | | | |')
            continue
        rss = ' → '.join(f'{sum(m["VmRSS"] for m in row[k].values()) / 1024:.0f}'
                         for k in ('rss_before', 'rss_idle', 'rss_after') if k in row)
        per_conn = f'{row["kib_per_connection"]:.1f}' if 'kib_per_connection' in row else '-'
        lines.append(f'| {label} | {row["workers"]} | {row["connected"]:,} of {row["clients"]:,} | '
                     f'{row["connect_s"]:.1f} | {s["p50_ms"]:.1f} | {s["p99_ms"]:.1f} | {s["max_ms"]:.1f} | '
                     f'{s["all_reached_ms"]:.0f} | {s["kernel_p99_ms"]:.1f} | '
                     f'{s["lag_p99_ms"]:.1f} / {s["lag_max_ms"]:.1f} | {s["missed"]:,} / {s["expected"]:,} | '
                     f'{s["disconnects"]} | {s["server_cpu_us_per_msg"]:.1f} | '
                     f'{s["other_cpu_percent"]:.0f}% | {rss} | {per_conn} |')
    return '\n'.join(lines)


def targets(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for row in rows:
        s = summarize_bcast(row)
        if row['server'] != 'zato' or row['clients'] < 10000 or not s:
            continue
        ok = s['p99_ms'] < 1000 and s['missed'] == 0
        out.append(f'target: 10,000 clients, p99 < 1 s, nothing missed ({row["workers"]} worker(s)): '
                   f'p99 {s["p99_ms"]:.0f} ms, missed {s["missed"]} -> {"met" if ok else "MISSED"}')
    for row in rows:
        if row['server'] == 'zato' and 'kib_per_connection' in row and row['clients'] >= 1000:
            kib = row['kib_per_connection']
            out.append(f'target: < 20 KB per idle connection ({row["workers"]} worker(s), {row["clients"]:,} clients): '
                       f'{kib:.1f} KiB -> {"met" if kib * 1024 < 20000 else "MISSED"}')
    return out


def log_summary(logs: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = []
    sources = dict(logs)
    for row in rows:
        if row.get('log'):
            sources[f'broadcast/{row["server"]}/{row["workers"]}w/{row["clients"]}'] = row['log']
    for name, found in sources.items():
        counts = found.get('counts') or {}
        if not counts:
            continue
        lines.append(f'server log during {name}:')
        for key, count in sorted(counts.items(), key=lambda kv: -kv[1])[:8]:
            lines.append(f'  {count:>6} x {found.get("samples", {}).get(key, key)[:200]}  [{key.split(":")[0]}]')
    return '\n'.join(lines)


def print_results(data: dict[str, Any]) -> None:
    if data.get('echo'):
        print(echo_table(data['echo'], data.get('echo_memory', {})))
    if data.get('broadcast'):
        print(bcast_table(data['broadcast']))
        checked = targets(data['broadcast'])
        if checked:
            print()
            print('\n'.join(checked))
    summary = log_summary(data.get('logs', {}), data.get('broadcast', []))
    if summary:
        print()
        print(summary)


# ################################################################################################

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def ints(text: str) -> list[int]:
        return [int(x.replace('_', '')) for x in text.split(',') if x]

    def names(allowed: tuple[str, ...]) -> Any:
        def parse(text: str) -> list[str]:
            out = [x for x in text.split(',') if x]
            bad = set(out) - set(allowed)
            if bad:
                raise argparse.ArgumentTypeError(f'unknown {", ".join(sorted(bad))}; choose from {", ".join(allowed)}')
            return out
        return parse

    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true',
                   help='a smoke run: echo 2 s x 1 run, broadcast to 1,000 clients, 5 broadcasts x 1 round')
    p.add_argument('--only', type=names(('echo', 'broadcast')), default=['echo', 'broadcast'],
                   help='echo, broadcast or both (default)')
    p.add_argument('--runs', type=int, default=3, help='echo runs / broadcast rounds per configuration (default 3)')
    p.add_argument('--duration', type=float, default=10.0, help='echo: seconds per run (default 10)')
    p.add_argument('--warmup', type=float, default=3.0, help='echo: seconds of warm-up per configuration (default 3)')
    p.add_argument('--connections', type=int, default=50, help='echo: connections (default 50)')
    p.add_argument('--sizes', type=ints, default=[64, 16384], help='echo: message sizes in bytes (default 64,16384)')
    p.add_argument('--echo-servers', type=names(tuple(ECHO_SERVERS)), default=list(ECHO_SERVERS),
                   help='echo: any of zato, zato-py, websockets (default all)')
    p.add_argument('--echo-client', choices=('sansio', 'asyncio'), default='sansio',
                   help="echo: the load generator: websockets' Sans-I/O protocol on asyncio callbacks (default), "
                        'or its asyncio client (a task per connection; heavier than the servers it measures)')
    p.add_argument('--clients', type=ints, default=[1000, 10000], help='broadcast: clients (default 1000,10000)')
    p.add_argument('--workers', type=ints, default=[1, 2], help='broadcast: Zato worker counts (default 1,2)')
    p.add_argument('--bcast-servers', type=names(('zato', 'websockets')), default=['zato', 'websockets'],
                   help='broadcast: zato, websockets or both (default)')
    p.add_argument('--broadcasts', type=int, default=20, help='broadcast: triggers per round (default 20)')
    p.add_argument('--bcast-warmup', type=int, default=3,
                   help='broadcast: triggers to all clients before the rounds, not counted (default 3)')
    p.add_argument('--interval', type=float, default=0.5, help='broadcast: seconds between triggers (default 0.5)')
    p.add_argument('--client-procs', type=int, default=1, help='broadcast: client processes (default 1)')
    p.add_argument('--connect-window', type=int, default=100, help='broadcast: handshakes in flight (default 100)')
    p.add_argument('--connect-timeout', type=float, default=300.0, help='broadcast: longest connect phase, s')
    p.add_argument('--settle', type=float, default=3.0, help='broadcast: idle seconds before RSS is read (3)')
    p.add_argument('--quiet', type=float, default=3.0,
                   help='broadcast: a round ends when nothing arrived for this long (default 3 s) ...')
    p.add_argument('--round-wait', type=float, default=30.0, help='... or this long after its last trigger (30 s)')
    p.add_argument('--wsx-max-connections', type=int, default=0,
                   help='ZATO_WSX_MAX_CONNECTIONS for the workers (default: 10,000 or the most clients + 100)')
    p.add_argument('--server-cpu', type=int, default=0)
    p.add_argument('--client-cpu', type=int, default=1)
    p.add_argument('--base-port', type=int, default=17460, help='first of the 3 ports used (default 17460)')
    p.add_argument('--max-load', type=float, default=None,
                   help='wait until the 1-minute load average is below this (default 0.5; --quick: 0, no wait)')
    p.add_argument('--load-wait', type=float, default=600, help='longest wait for --max-load, seconds')
    p.add_argument('--json', metavar='FILE', help='also save the results as JSON')
    p.add_argument('--keep', action='store_true', help='keep the work directory (logs, Zato environments)')
    p.add_argument('--show', metavar='FILE', help='only print the tables of results saved earlier with --json')
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.runs, args.warmup, args.broadcasts = 2.0, 1, 1.0, 5
        if '--clients' not in (argv or sys.argv):
            args.clients = [1000]
    if args.max_load is None:
        args.max_load = 0.0 if args.quick else 0.5
    if args.runs < 1 or args.duration < 1 or args.connections < 1 or args.broadcasts < 1 or args.client_procs < 1:
        p.error('--runs, --duration, --connections, --broadcasts and --client-procs must be at least 1')
    if args.client_procs > 250:
        p.error('--client-procs: at most 250 (each connects from its own 127.0.0.x)')
    return args


def check_tools(args: argparse.Namespace) -> None:
    if shutil.which('taskset') is None:
        sys.exit('wsx.py: `taskset` is not installed (apt-get install -y util-linux)')
    ncpu = os.cpu_count() or 1
    for name in ('server_cpu', 'client_cpu'):
        if getattr(args, name) >= ncpu:
            sys.exit(f'wsx.py: --{name.replace("_", "-")} {getattr(args, name)} but this machine has {ncpu} CPUs')
    if args.server_cpu == args.client_cpu:
        log('! the servers and the clients share a CPU; the figures will be lower and noisier')
    wanted = max(args.clients or [0]) // args.client_procs + 1000
    limit = raise_nofile(wanted)
    if limit < wanted:
        log(f'! open-file limit {limit} < {wanted}: clients will fail to connect; raise `ulimit -n` or use '
            '--client-procs')


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in ('gevent', 'gunicorn', 'websockets', 'orjson'):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = 'not installed'
    return out


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the server's code had uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(['git', *args], capture_output=True, text=True, cwd=servers.REPO, check=False)
        return done.stdout.strip()
    return {'commit': git('rev-parse', 'HEAD'), 'changed': git('status', '--porcelain', 'zato', 'ext').splitlines()}


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    internal = {'_peer-server': peer_server_main, '_echo-client': echo_client_main, '_bcast-client': bcast_client_main}
    if argv and argv[0] in internal:
        return internal[argv[0]](argv[1:])
    args = parse_args(argv)
    if args.show:
        with open(args.show, encoding='utf-8') as f:
            data = json.load(f)
        m = data['machine']
        print(f'{data["when"]}: {m["cpu_model"]}, {m["nproc"]} CPUs, load average {m["load_1m_before"]} before the run')
        print_results(data)
        return 0
    check_tools(args)
    # This process only starts things and sends triggers; it stays off the servers' CPU
    os.sched_setaffinity(0, {args.client_cpu})

    load = os.getloadavg()[0]
    if args.max_load > 0:
        load = rest.wait_for_quiet_machine(args.max_load, args.load_wait)
    print(f'{rest.cpu_model()}, {os.cpu_count()} CPUs, load average {load:.2f}; servers on CPU {args.server_cpu}, '
          f'clients on CPU {args.client_cpu}; open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}',
          flush=True)

    work_dir = tempfile.mkdtemp(prefix='zato-bench-wsx-')
    bench = Bench(args, work_dir)
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    ok = failed = False
    try:
        bench.run()
        ok = True
    except KeyboardInterrupt:
        print('\ninterrupted; stopping everything', file=sys.stderr)
    except servers.ServerError as e:
        failed = True
        print(f'wsx.py: error: {e}', file=sys.stderr)
    except BaseException:
        failed = True
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            bench.stop_all()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        failed = failed or any(row['failure'] for row in bench.bcast) or any(c.failure for c in bench.echo)
        if args.keep or failed:
            print(f'work directory kept (logs, Zato environments): {work_dir}', file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    data = {
        'when': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        'settings': {k: v for k, v in vars(args).items() if k not in ('show', 'json', 'keep')},
        'machine': rest.machine_info(load),
        'versions': versions(),
        'git': git_state(),
        'wsx_max_connections': bench.max_wsx,
        'echo': [{'id': c.id, 'server': c.server, 'size': c.size, 'runs': c.runs, 'failure': c.failure}
                 for c in bench.echo],
        'echo_memory': bench.echo_memory,
        'broadcast': bench.bcast,
        'logs': bench.logs,
        'modules_loaded': bench.modules,
    }
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=1)
    print_results(data)
    if args.json:
        print(f'\nresults saved to {args.json}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
