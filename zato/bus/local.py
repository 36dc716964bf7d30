"""The `local` cluster bus: the workers of one host, over UNIX datagram sockets, no extra service.

Each started instance binds `<run_dir>/<member_id>.sock`; the directory listing *is* the
membership. `publish` sends a datagram to every socket there, `send_any` to the first one, in
random order, that accepts it. A socket file left behind by a dead process refuses datagrams
(ECONNREFUSED) and is removed by whoever notices first.

Datagrams above `MAX_DATAGRAM` bytes travel as a file in the run directory; the datagram then
carries only `F<file name>` and the receiver reads and deletes that file. `publish` gives every
recipient its own hard link to one written file, so each receiver deletes just its link and the
data goes away with the last one.

Linux lets only `net.unix.max_dgram_qlen` (often 10) datagrams wait in a receiver's queue, so
bursts do fill queues. A full queue is waited on, up to `SEND_WAIT` seconds, through a socket
connected to that receiver: the kernel reports such a socket writable exactly when the
receiver's queue has room, so the wait costs no polling.
"""

from __future__ import annotations

import enum
import logging
import os
import random
import socket
import time
import uuid

import gevent
from gevent import socket as gsocket

from zato.bus.base import Bus, decode_message, encode_message, new_member_id

logger = logging.getLogger('zato.bus')

SOCK_SUFFIX = '.sock'
BLOB_SUFFIX = '.blob'

# Payloads above this travel in a file. Comfortably below the default socket buffer (~208 KiB),
# which a datagram has to fit in whole.
MAX_DATAGRAM = 60 * 1024

# How long a sender waits for a full receiver before the message is dropped with a warning.
SEND_WAIT = 1.0

# Blob files a receiver never read (it died) are removed when an instance starts.
BLOB_MAX_AGE = 3600.0

_BUFFER_SIZE = 4 * 1024 * 1024  # the kernel caps it at net.core.{w,r}mem_max
_RECV_SIZE = 256 * 1024
_MAX_PATH = 107  # sun_path holds 108 bytes, NUL included
_POINTER = b'F'


class _Outcome(enum.Enum):
    SENT = 'sent'
    GONE = 'gone'  # no process behind that socket file any more
    FULL = 'full'  # the receiver's queue (or our send buffer) has no room
    FAILED = 'failed'  # anything else; already logged


class LocalBus(Bus):
    """A cluster bus among the processes of one host that share `run_dir`.

    The run directory is created (mode 0700) on `start`. Create the bus after the worker process
    forked, never before: a socket bound in a parent would be shared by its children.
    """

    def __init__(self, run_dir: str) -> None:
        super().__init__()

        # On one host the full host name only makes the socket path longer, and sun_path is short.
        short_host = socket.gethostname().split('.')[0][:24]
        self.member_id = new_member_id(hostname=short_host)

        self.run_dir = os.path.abspath(run_dir)
        self.path = os.path.join(self.run_dir, self.member_id + SOCK_SUFFIX)
        if len(os.fsencode(self.path)) > _MAX_PATH:
            raise ValueError(f'Bus run_dir is too long for a UNIX socket path (max {_MAX_PATH} bytes): {self.path}')

        self._recv_sock: gsocket.socket | None = None
        self._send_sock: gsocket.socket | None = None
        self._reader: gevent.Greenlet | None = None

    # ------------------------------------------------------------------ the interface

    def start(self) -> None:
        """Bind this instance's socket and start the receive loop."""
        if self._reader is not None:
            raise RuntimeError(f'Bus {self.member_id} is already started')

        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        self._remove_old_blobs()

        sock = gsocket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER_SIZE)
            sock.bind(self.path)
        except BaseException:
            sock.close()
            raise

        # Bound means ready: datagrams sent from now on wait in the socket's queue.
        self._recv_sock = sock
        self._reader = gevent.spawn(self._receive_loop, sock)

    def publish(self, subject: str, msg: dict) -> None:
        """Send `msg` to every started instance in `run_dir`, this one included."""
        data = encode_message(subject, msg)
        members = self._members()
        if not members:
            return

        # (socket path, datagram, blob link to remove if that datagram is not delivered)
        jobs: list[tuple[str, bytes, str | None]]
        if len(data) <= MAX_DATAGRAM:
            jobs = [(path, data, None) for path in members]
        else:
            jobs = self._link_blobs(data, members)

        full = []
        for path, datagram, blob in jobs:
            outcome = self._try_send(path, datagram)
            if outcome is _Outcome.FULL:
                full.append((path, datagram, blob))
            elif outcome is not _Outcome.SENT:
                _remove(blob)

        if full:
            # One deadline for all the slow receivers, so a publish waits SEND_WAIT at most.
            deadline = time.monotonic() + SEND_WAIT
            for path, datagram, blob in full:
                outcome = self._send_waiting(path, datagram, deadline)
                if outcome is not _Outcome.SENT:
                    _remove(blob)
                if outcome is _Outcome.FULL:
                    logger.warning('Bus %s: dropped a %r message to %s, its queue stayed full for %ss',
                        self.member_id, subject, path, SEND_WAIT)

    def send_any(self, subject: str, msg: dict) -> None:
        """Send `msg` to exactly one started instance in `run_dir`, chosen at random."""
        data = encode_message(subject, msg)
        members = self._members()
        random.shuffle(members)

        blob = None
        if len(data) > MAX_DATAGRAM and members:
            blob = self._write_blob(data)
            data = _POINTER + os.path.basename(blob).encode()

        try:
            # First everyone who has room right now, so one busy worker does not slow the sender.
            full = []
            for path in members:
                outcome = self._try_send(path, data)
                if outcome is _Outcome.SENT:
                    blob = None
                    return
                if outcome is _Outcome.FULL:
                    full.append(path)

            deadline = time.monotonic() + SEND_WAIT
            for path in full:
                if self._send_waiting(path, data, deadline) is _Outcome.SENT:
                    blob = None
                    return

            logger.warning('Bus %s: dropped a %r message, no member in %s could take it (%d found)',
                self.member_id, subject, self.run_dir, len(members))
        finally:
            _remove(blob)

    def stop(self) -> None:
        """Stop receiving, close the sockets and remove this instance's socket file."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.kill()

        recv_sock, self._recv_sock = self._recv_sock, None
        if recv_sock is not None:
            recv_sock.close()
            _remove(self.path)

        send_sock, self._send_sock = self._send_sock, None
        if send_sock is not None:
            send_sock.close()

    # ------------------------------------------------------------------ receiving

    def _receive_loop(self, sock: gsocket.socket) -> None:
        while True:
            data = sock.recv(_RECV_SIZE)
            try:
                if data[:1] == _POINTER:
                    data = self._take_blob(data[1:].decode())
                subject, msg = decode_message(data)
            except (ValueError, OSError):
                logger.warning('Bus %s: ignored an undeliverable datagram', self.member_id, exc_info=True)
                continue
            self._dispatch(subject, msg)

    def _take_blob(self, name: str) -> bytes:
        # basename: a datagram names a file in our run directory, never a path elsewhere.
        path = os.path.join(self.run_dir, os.path.basename(name))
        with open(path, 'rb') as f:
            data = f.read()
        _remove(path)
        return data

    # ------------------------------------------------------------------ sending

    def _members(self) -> list[str]:
        try:
            names = os.listdir(self.run_dir)
        except FileNotFoundError:
            return []
        return [os.path.join(self.run_dir, name) for name in names if name.endswith(SOCK_SUFFIX)]

    def _sender(self) -> gsocket.socket:
        if self._send_sock is None:
            sock = gsocket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER_SIZE)
            # Non-blocking: a full receiver must surface as EAGAIN here, see _send_waiting.
            sock.setblocking(False)
            self._send_sock = sock
        return self._send_sock

    def _try_send(self, path: str, datagram: bytes) -> _Outcome:
        """One attempt, never waiting."""
        try:
            self._sender().sendto(datagram, path)
        except BlockingIOError:
            return _Outcome.FULL
        except OSError as e:
            return self._failed(path, e)
        return _Outcome.SENT

    def _send_waiting(self, path: str, datagram: bytes, deadline: float) -> _Outcome:
        """Wait until the receiver at `path` has room, or `deadline` passes."""
        sock = gsocket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER_SIZE)
            sock.setblocking(False)
            try:
                # Connected, so that writability reflects the receiver's queue, not only ours.
                sock.connect(path)
            except OSError as e:
                return self._failed(path, e)
            while True:
                try:
                    sock.send(datagram)
                    return _Outcome.SENT
                except BlockingIOError:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return _Outcome.FULL
                    try:
                        gsocket.wait_write(sock.fileno(), timeout=remaining)
                    except TimeoutError:
                        return _Outcome.FULL
                except OSError as e:
                    return self._failed(path, e)
        finally:
            sock.close()

    def _failed(self, path: str, e: OSError) -> _Outcome:
        if isinstance(e, ConnectionRefusedError):
            # The file outlived its process; nothing will ever read from it again.
            _remove(path)
            logger.info('Bus %s: removed stale socket %s', self.member_id, path)
            return _Outcome.GONE
        if isinstance(e, FileNotFoundError):
            return _Outcome.GONE  # its owner stopped after we listed the directory
        logger.warning('Bus %s: could not send to %s: %s', self.member_id, path, e)
        return _Outcome.FAILED

    # ------------------------------------------------------------------ large payloads

    def _write_blob(self, data: bytes) -> str:
        path = os.path.join(self.run_dir, uuid.uuid4().hex + BLOB_SUFFIX)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        return path

    def _link_blobs(self, data: bytes, members: list[str]) -> list[tuple[str, bytes, str | None]]:
        """Write `data` once and give each member its own link to it, see the module docstring."""
        source = self._write_blob(data)
        stem = source[:-len(BLOB_SUFFIX)]
        jobs: list[tuple[str, bytes, str | None]] = []
        try:
            for idx, path in enumerate(members):
                link = f'{stem}.{idx}{BLOB_SUFFIX}'
                os.link(source, link)
                jobs.append((path, _POINTER + os.path.basename(link).encode(), link))
        except BaseException:
            for _, _, made in jobs:
                if made is not None:
                    _remove(made)
            raise
        finally:
            _remove(source)
        return jobs

    def _remove_old_blobs(self) -> None:
        cutoff = time.time() - BLOB_MAX_AGE
        with os.scandir(self.run_dir) as entries:
            for entry in entries:
                if not entry.name.endswith(BLOB_SUFFIX):
                    continue
                try:
                    if entry.stat().st_mtime < cutoff:
                        _remove(entry.path)
                except FileNotFoundError:
                    pass


def _remove(path: str | None) -> None:
    """Unlink `path` if given; another process may have removed it first."""
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
