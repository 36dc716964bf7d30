"""The connection handler: reads bytes, feeds the sans-IO parser, dispatches every complete
request and writes all responses of a batch in one send (pipelining-safe, Nagle-proof).

Holding connections open must not take a worker offline. A client has `header_timeout` seconds from
accept to send its first request's head (a connection that sends nothing is closed then; one that
sent part of a head gets 408). Each worker keeps at most `worker_connections` HTTP connections open:
a new one above that closes the connection that has been waiting for a request the longest (a
silent one, or an idle keep-alive one - a client must expect the server to close those), or is
answered 503 when every connection is busy. `max_connections_per_address` can cap one address.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import gevent

from zato import accel
from zato.service.invoker import new_cid

if TYPE_CHECKING:
    from zato.server.dispatcher import Dispatcher

http1 = accel.load('zato.proto.http1')
NEED_DATA = http1.NEED_DATA
CONTINUE = http1.CONTINUE
ProtocolError = http1.ProtocolError

logger = logging.getLogger('zato.connection')

CONTINUE_LINE = b'HTTP/1.1 100 Continue\r\n\r\n'
BUSY_HEADERS = {'Retry-After': '1'}
BULK = 8192  # a recv this large is real progress and extends the request deadline


class ConnectionHandler:
    """One per worker; ``handle`` runs in one greenlet per accepted connection."""

    def __init__(self, dispatcher: Dispatcher, config: Any) -> None:
        self.dispatcher = dispatcher
        self.limits = http1.Limits(
            max_request_line=config.get('http', 'max_request_line'),
            max_header_count=config.get('http', 'max_header_count'),
            max_header_bytes=config.get('http', 'max_header_bytes'),
            max_body=config.get('http', 'max_body'))
        self.header_timeout = config.get('http', 'header_timeout')
        self.keepalive_timeout = config.get('http', 'keepalive_timeout')
        self.max_requests = config.get('http', 'max_requests_per_connection')
        self.max_connections = config.get('main', 'worker_connections')
        self.max_per_address = config.get('http', 'max_connections_per_address')
        self.accepting = True
        self.open = 0                                # HTTP connections of this worker (not WebSockets)
        self.by_address: dict[str, int] = {}         # kept only when max_per_address is set
        # Connections waiting for a request (a first one, or the next on a keep-alive connection), the
        # one waiting the longest first: a dict keeps insertion order, and a connection that goes idle
        # again is put back at the end
        self.idle: dict[socket.socket, None] = {}

    def close_idle(self) -> None:
        """Graceful stop: connections waiting for a next request are closed; busy ones finish;
        WebSocket clients are sent a close frame (1001, going away)."""
        self.accepting = False
        self.dispatcher.runtime.wsx.close_all()
        for sock in list(self.idle):
            _shut(sock)

    def error_bytes(self, status: int, reason: str, headers: dict[str, str] | None = None) -> bytes:
        return self.dispatcher.error(new_cid(), status, reason, keep_alive=False, headers=headers)

    def _admit(self, peer: str) -> str:
        """Makes room for a new connection; returns why it cannot be served ('' when it can)."""
        if self.max_per_address and self.by_address.get(peer, 0) > self.max_per_address:
            return 'Too many connections from this address'
        if self.open > self.max_connections:
            if not self.idle:
                return 'Server busy'
            oldest = next(iter(self.idle))
            del self.idle[oldest]  # at once, so the next new connection sheds another one
            _shut(oldest)
        return ''

    def handle(self, client: socket.socket, addr: Any) -> None:
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        peer = addr[0] if isinstance(addr, tuple) and addr else ''
        self.open += 1
        if self.max_per_address:
            self.by_address[peer] = self.by_address.get(peer, 0) + 1
        try:
            refusal = self._admit(peer)
            if refusal:
                client.settimeout(1.0)
                client.sendall(self.error_bytes(503, refusal, BUSY_HEADERS))
            else:
                self._serve(client, peer)
        except OSError:
            pass  # the peer went away; nothing to answer
        except Exception:
            # Our own bug: log it and close, never leave a traceback on stderr only
            logger.exception('Connection handler failed for peer %s', peer)
        finally:
            self.open -= 1
            if self.max_per_address:
                left = self.by_address[peer] - 1
                if left:
                    self.by_address[peer] = left
                else:
                    del self.by_address[peer]
            self.idle.pop(client, None)
            try:
                client.close()
            except OSError:
                pass

    def _serve(self, client: socket.socket, peer: str) -> None:
        parser = http1.RequestParser(self.limits)
        dispatch = self.dispatcher.dispatch
        recv = client.recv
        send = client.send
        sendall = client.sendall
        timeout: float | None = None
        served = 0
        # The first request's head is due header_timeout after accept, whether or not a byte came
        deadline = time.monotonic() + self.header_timeout
        idle = self.idle
        wsx = self.dispatcher.runtime.wsx

        while True:
            pending = parser.has_pending
            if pending or not served:
                if not deadline:
                    deadline = time.monotonic() + self.header_timeout
                # Rounded, so settimeout is not called again for every trickled byte
                wait = round(deadline - time.monotonic(), 1)
                if wait <= 0:
                    if pending:
                        sendall(self.error_bytes(408, 'Request not received in time'))
                    return
            else:
                deadline = 0.0
                wait = self.keepalive_timeout
            if not pending:
                if not self.accepting:
                    return
                idle[client] = None
            if wait != timeout:
                client.settimeout(wait)
                timeout = wait
            try:
                data = recv(65536)
            except TimeoutError:
                if pending:
                    sendall(self.error_bytes(408, 'Request not received in time'))
                return
            finally:
                if not pending:
                    idle.pop(client, None)
            if not data:
                return
            if pending and len(data) >= BULK:
                deadline = time.monotonic() + self.header_timeout
            parser.feed(data)

            out = []
            close = False
            while True:
                try:
                    event = parser.next_event()
                except ProtocolError as e:
                    out.append(self.error_bytes(e.status, e.reason))
                    close = True
                    break
                if event is NEED_DATA:
                    break
                if event is CONTINUE:
                    out.append(CONTINUE_LINE)
                    continue
                served += 1
                deadline = 0.0
                if wsx.by_path and event.path in wsx.by_path:
                    # A WebSocket channel's path: the connection leaves HTTP for good
                    if out:
                        sendall(b''.join(out))
                    refusal = wsx.upgrade(event, client, peer, parser.take_buffered())
                    if refusal is not None:
                        sendall(refusal)
                    return
                if served >= self.max_requests or not self.accepting:
                    event.keep_alive = False
                out.append(dispatch(event, peer))
                if not event.keep_alive:
                    close = True
                    break
            if out:
                # The read timeout doubles as a write timeout, so a client that stops reading is
                # dropped too. One send() nearly always takes it all; sendall only for the rest.
                data = out[0] if len(out) == 1 else b''.join(out)
                sent = send(data)
                if sent < len(data):
                    sendall(data[sent:])
            if close:
                return
            # Let other connections run between batches: fairness keeps p99 down under load
            gevent.sleep(0)


def _shut(sock: socket.socket) -> None:
    """Ends a connection whose greenlet waits in recv: the recv returns, and the greenlet closes it."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
