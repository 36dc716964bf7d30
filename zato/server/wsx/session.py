"""One connected WebSocket client: its read loop, its bounded send queue and what its messages run.

The connection's own greenlet reads; it answers pings, counts missed pongs and never waits for a
service. Messages go to a handler greenlet that exists only while there is work (so an idle client
costs no greenlet of its own), in order. Writes try a non-blocking send first and fall back to a
writer greenlet with a bounded queue, so a broadcast never waits for a slow client: one whose queue
overflows is disconnected with 1008, one that stops reading for a whole ping interval too.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections import deque
from datetime import datetime, UTC
from typing import TYPE_CHECKING, Any

import gevent
import orjson
from gevent.event import AsyncResult, Event

from zato.errors import Unauthorized
from zato.proto import websocket as ws
from zato.config.channel import ChannelInfo, SecurityInfo
from zato.service.invoker import new_cid
from zato.service.reqresp import Request

if TYPE_CHECKING:
    from zato.server.wsx.config import WSXChannelConfig
    from zato.server.wsx.registry import WSXRegistry

logger = logging.getLogger('zato.wsx')

_dumps = orjson.dumps
_loads = orjson.loads
_OPT = orjson.OPT_NON_STR_KEYS

INBOUND_MAX = 64          # messages read ahead of the service before the reader stops reading
WRITE_BATCH = 64          # frames joined into one sendall by the writer
CLOSE_WAIT = 2.0          # seconds to wait for the peer's close frame after ours
HANDLER_LINGER = 1.0      # seconds a client's handler greenlet waits for its next message before exiting
NOT_AUTHORIZED = 'You are not authorized to access this resource'


def timestamp() -> str:
    return datetime.now(UTC).isoformat()


def encode_payload(data: Any) -> tuple[int, bytes]:
    """What a service returns, or a broadcast carries, as (opcode, payload)."""
    if isinstance(data, str):
        return ws.OP_TEXT, data.encode('utf-8')
    if isinstance(data, (bytes, bytearray, memoryview)):
        return ws.OP_BINARY, bytes(data)
    return ws.OP_TEXT, _dumps(data, option=_OPT)


class WSXClient:
    """The server side of one WebSocket connection."""

    __slots__ = ('id', 'registry', 'channel', 'sock', 'peer', 'forwarded_for', 'conn', 'deflate', 'connected_at',
                 'sec_info', 'authenticated', 'token', 'token_expires', 'ext_client_id', 'ext_client_name', 'queue',
                 'writer', 'inbound', 'handler', 'room', 'idle', 'reading', 'closed', 'closing', 'pending', 'info')

    def __init__(self, registry: WSXRegistry, channel: WSXChannelConfig, sock: socket.socket, peer: str,
                 forwarded_for: str, conn: ws.Connection, sec_info: SecurityInfo | None) -> None:
        self.id = 'wsx.' + secrets.token_hex(10)
        self.registry = registry
        self.channel = channel
        self.sock = sock
        self.peer = peer
        self.forwarded_for = forwarded_for
        self.conn = conn
        self.deflate = conn_has_deflate(conn)
        self.connected_at = timestamp()
        self.sec_info = sec_info
        self.authenticated = sec_info is not None or channel.security_id is None
        self.token = ''
        self.token_expires = 0.0
        self.ext_client_id = ''
        self.ext_client_name = ''
        self.queue: deque[bytes] = deque()
        self.writer: gevent.Greenlet | None = None
        self.inbound: deque[Any] = deque()
        self.handler: gevent.Greenlet | None = None
        self.room: Event | None = None
        self.idle: Event | None = None
        self.reading = True
        self.closed = False
        self.closing = False
        self.pending: dict[str, AsyncResult] = {}
        self.info: ChannelInfo = self._channel_info()

    def _channel_info(self) -> ChannelInfo:
        base = self.channel.info
        if self.sec_info is None:
            return base
        return ChannelInfo(base.id, base.name, base.type, base.data_format, False, self.sec_info)

    # What services and the admin API see

    def describe(self) -> dict[str, Any]:
        return {'id': self.id, 'channel': self.channel.name, 'peer': self.peer, 'forwarded_for': self.forwarded_for,
                'connected_at': self.connected_at,
                'authenticated_as': self.sec_info.username if self.sec_info is not None else None,
                'ext_client_id': self.ext_client_id, 'ext_client_name': self.ext_client_name,
                'server': self.registry.runtime.server_name, 'pid': os.getpid(), 'queued': len(self.queue)}

    def environ(self) -> dict[str, Any]:
        """``self.environ`` of a service invoked for this client, with Zato 3.1's keys."""
        return {'web_socket': self, 'pub_client_id': self.id, 'ext_client_id': self.ext_client_id,
                'ext_client_name': self.ext_client_name, 'ws_token': self.token, 'peer_host': self.peer,
                'forwarded_for': self.forwarded_for, 'connection_time': self.connected_at,
                'ws_channel_config': self.channel}

    def send(self, data: Any) -> bool:
        """Sends one message to this client without waiting for it; False if it is gone."""
        if self.conn.close_sent:
            return False  # nothing may follow our close frame
        opcode, payload = encode_payload(data)
        return self.send_frame(self._frame(opcode, payload))

    def disconnect(self, code: int = ws.CLOSE_NORMAL, reason: str = '') -> None:
        self.close(code, reason)

    def invoke_client(self, cid: str, request: Any, timeout: float = 5) -> Any:
        """Sends a request to the client and waits for its ``client-response`` (Zato 3.1's API)."""
        msg_id = f'zato.ws.srv.rq.{cid}.{secrets.token_hex(4)}'
        result: AsyncResult = AsyncResult()
        self.pending[msg_id] = result
        try:
            self.send({'meta': {'id': msg_id, 'timestamp': timestamp(), 'action': 'zwsx.rqc'}, 'data': request})
            return result.get(timeout=timeout)
        except gevent.Timeout:
            raise TimeoutError(f'WebSocket client {self.id} did not respond within {timeout} s') from None
        finally:
            self.pending.pop(msg_id, None)

    # Writing

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        if opcode == ws.OP_TEXT:
            return self.conn.send(payload.decode('utf-8')) if self.deflate else ws.encode_frame(opcode, payload)
        return self.conn.send(payload) if self.deflate else ws.encode_frame(opcode, payload)

    def send_frame(self, frame: bytes) -> bool:
        """Queues one ready frame; tries a non-blocking send first when nothing is queued."""
        if self.closed:
            return False
        queue = self.queue
        if not queue and self.writer is None:
            try:
                sent = self.sock.send(frame, 0, timeout=0.0)  # type: ignore[call-arg]  # gevent's socket
            except BlockingIOError:
                sent = 0
            except OSError:
                self._abort()
                return False
            if sent == len(frame):
                return True
            frame = frame[sent:]
        elif len(queue) >= self.channel.send_queue_max:
            logger.warning('WebSocket client %s (%s, channel `%s`) does not keep up: %s messages queued; '
                           'disconnecting it', self.id, self.peer, self.channel.name, len(queue))
            self._abort(ws.CLOSE_POLICY, 'Send queue overflow')
            return False
        queue.append(frame)
        if self.writer is None:
            self.writer = gevent.spawn(self._drain)
        return True

    def _drain(self) -> None:
        queue = self.queue
        sendall = self.sock.sendall
        try:
            while queue:
                if len(queue) == 1:
                    chunk = queue.popleft()
                else:
                    parts = [queue.popleft() for _ in range(min(len(queue), WRITE_BATCH))]
                    chunk = b''.join(parts)
                # The socket's timeout is the ping interval: a client that reads nothing for that
                # long is stalled, and is dropped rather than holding its queue forever
                sendall(chunk)
        except (OSError, TimeoutError) as e:
            if not self.closed:
                logger.warning('WebSocket client %s (%s) stalled or gone while sending: %s', self.id, self.peer, e)
            self._abort()
        finally:
            self.writer = None

    def close(self, code: int = ws.CLOSE_NORMAL, reason: str = '') -> None:
        """Starts the close handshake; the read loop ends when the client answers, or soon after."""
        if self.closed or self.closing:
            return
        self.closing = True
        if not self.conn.close_sent:
            self.send_frame(self.conn.send_close(code, reason[:120]))
        gevent.spawn_later(CLOSE_WAIT, self._abort)

    def _abort(self, code: int | None = None, reason: str = '') -> None:
        """Ends the connection now: a last close frame if it fits in the socket's buffer, then shutdown."""
        if self.closed:
            return
        if code is not None and not self.conn.close_sent:
            try:
                self.sock.send(self.conn.send_close(code, reason), 0, timeout=0.0)  # type: ignore[call-arg]
            except OSError:
                pass
        self.closed = True
        self.queue.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # Reading

    def serve(self, leftover: bytes) -> None:
        """The read loop; returns when the connection is over."""
        registry = self.registry
        registry.add(self)
        self._enqueue(('hook', 'on_connected'))
        failure: ws.WebSocketError | None = None
        try:
            self._read_loop(leftover)
        except ws.WebSocketError as e:
            logger.info('WebSocket client %s (%s) closed with %s: %s', self.id, self.peer, e.code, e.reason)
            failure = e
            if self.handler is None:
                self._abort(e.code, e.reason)
            else:
                # Messages that arrived before the broken frame are still the service's to answer, and
                # their answers go out before the close frame: the handler sends it after them
                self._enqueue(('fail', e))
        finally:
            registry.remove(self)
            self.reading = False
            self._enqueue(('hook', 'on_disconnected'))
            for result in list(self.pending.values()):
                result.set_exception(ConnectionError(f'WebSocket client {self.id} disconnected'))
            # The handler greenlet may still run the last messages and hooks; the socket is the
            # caller's to close, so wait for a flush of what the handler answers
            handler = self.handler
            if handler is not None:
                handler.join(timeout=self.channel.ping_interval)
            writer = self.writer
            if writer is not None and not self.closed:
                writer.join(timeout=CLOSE_WAIT)
            if failure is not None:
                # Nothing more is read after a protocol error: the close frame, if the handler did not
                # get to send it in time, then the end of the connection
                self._abort(failure.code, failure.reason)
            self.closed = True

    def _read_loop(self, leftover: bytes) -> None:
        conn = self.conn
        sock = self.sock
        chan = self.channel
        missed = 0
        deadline = 0.0 if self.authenticated else time.monotonic() + chan.new_token_wait_time
        if leftover:
            conn.feed(leftover)
            if self._events():
                return
        timeout: float | None = None
        while not self.closed:
            if self.closing:
                wait = CLOSE_WAIT
            elif deadline and not self.authenticated:
                wait = max(0.05, min(chan.ping_interval, deadline - time.monotonic()))
            else:
                deadline = 0.0
                wait = chan.ping_interval
            if wait != timeout:
                sock.settimeout(wait)
                timeout = wait
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if self.closing:
                    return
                if deadline and not self.authenticated and time.monotonic() >= deadline:
                    logger.info('WebSocket client %s (%s) did not create a session in %s s',
                                self.id, self.peer, chan.new_token_wait_time)
                    self._abort(ws.CLOSE_POLICY, 'Session not created in time')
                    return
                if deadline:
                    continue
                if missed >= chan.pings_missed_threshold:
                    logger.info('WebSocket client %s (%s) missed %s pongs; disconnecting', self.id, self.peer, missed)
                    self._abort(ws.CLOSE_INTERNAL_ERROR, 'Ping timeout')
                    return
                missed += 1
                self.send_frame(conn.send_ping(b'zato'))
                continue
            except OSError:
                return
            if not data:
                return
            missed = 0
            conn.feed(data)
            if self._events():
                return

    def _events(self) -> bool:
        """Handles every complete event; True when the connection is over."""
        conn = self.conn
        while True:
            event: Any = conn.next_event()
            if event is None:
                return False
            kind = type(event)
            if kind is ws.Message:
                if self.pending and self._resolve(event.data):
                    continue
                self._enqueue(('msg', event.data))
            elif kind is ws.Ping:
                self.send_frame(conn.send_pong(event.data))
            elif kind is ws.Close:
                self.closing = True
                if not conn.close_sent:
                    code = event.code if event.code is not None else ws.CLOSE_NORMAL
                    self.send_frame(conn.send_close(code))
                return True
            # Pong: receiving anything already reset the missed-pong count

    def _resolve(self, data: str | bytes) -> bool:
        """A ``client-response`` to invoke_client is handed to the waiting service, not queued."""
        try:
            msg = _loads(data)
            meta = msg['meta']
            result = self.pending.get(meta['in_reply_to']) if meta.get('action') == 'client-response' else None
        except (ValueError, TypeError, KeyError):
            return False
        if result is None:
            return False
        result.set(msg.get('data'))
        return True

    def _enqueue(self, item: Any) -> None:
        inbound = self.inbound
        inbound.append(item)
        if self.handler is None:
            self.handler = gevent.spawn(self._handle_inbound)
        elif self.idle is not None:
            self.idle.set()  # the handler is lingering for more work: hand it this message
        elif len(inbound) >= INBOUND_MAX and item[0] == 'msg':
            # Back-pressure: stop reading until the service catches up
            room = self.room = Event()
            room.wait()

    def _handle_inbound(self) -> None:
        """Runs queued messages and hooks in order. Once the queue is empty after a message it
        lingers a moment, so a chatty client reuses one greenlet (a spawn per message costs more than
        the rest of an echo); an idle client, or one that has only just connected, keeps none."""
        inbound = self.inbound
        linger = False  # only after a message: a connect hook alone leaves no greenlet behind
        try:
            while True:
                if not inbound:
                    if not self.reading or not linger:
                        return
                    idle = self.idle = Event()
                    idle.wait(HANDLER_LINGER)
                    self.idle = None
                    if not inbound:
                        return
                kind, value = inbound.popleft()
                room = self.room
                if room is not None and len(inbound) < INBOUND_MAX // 2:
                    self.room = None
                    room.set()
                try:
                    if kind == 'msg':
                        linger = True
                        if not self.closed and not self.closing:
                            self.registry.on_message(self, value)
                    elif kind == 'fail':
                        # The peer broke the protocol after the messages before this one: the close
                        # frame follows their answers in the send queue
                        self.close(value.code, value.reason)
                    else:
                        self.registry.run_hook(self, value)
                except Exception:
                    logger.exception('Could not handle a message of WebSocket client %s (%s)', self.id, self.peer)
        finally:
            self.handler = None
            self.idle = None
            room = self.room
            if room is not None:
                self.room = None
                room.set()

    # Sessions (Zato 3.1's create-session) and tokens

    def create_session(self, meta: dict[str, Any]) -> None:
        msg_id = meta.get('id')
        self.ext_client_id = str(meta.get('client_id') or '')[:200]
        self.ext_client_name = str(meta.get('client_name') or '')[:200]
        if self.channel.security_id is not None:
            username, secret = meta.get('username'), meta.get('secret')
            if not isinstance(username, str) or not isinstance(secret, str):
                self.refuse(msg_id)
                return
            try:
                self.sec_info = self.registry.authenticate_secret(self.channel, username, secret)
            except Unauthorized:
                self.refuse(msg_id)
                return
            self.info = self._channel_info()
        self.authenticated = True
        self.token = 'ws.token.' + secrets.token_urlsafe(24)
        self.token_expires = time.monotonic() + self.channel.token_ttl
        self.send({'meta': {'status': 200, 'timestamp': timestamp(), 'in_reply_to': msg_id,
                            'id': f'zato.ws.srv.rsp-auth.{new_cid()}'}, 'data': {'token': self.token}})

    def refuse(self, msg_id: Any) -> None:
        logger.info('WebSocket client %s (%s) refused: invalid credentials or token', self.id, self.peer)
        self.send({'meta': {'status': 403, 'timestamp': timestamp(), 'in_reply_to': msg_id,
                            'id': f'zato.ws.srv.rsp-err.{new_cid()}'}, 'data': NOT_AUTHORIZED})
        self.close(ws.CLOSE_POLICY, 'Not authorized')

    def token_valid(self, token: Any) -> bool:
        """Once create-session issued a token, each invocation must carry it; a client that
        authenticated at the handshake, or one of an open channel, needs none."""
        if not self.token:
            return self.authenticated
        if not isinstance(token, str) or not secrets.compare_digest(token, self.token):
            return False
        if time.monotonic() > self.token_expires:
            return False
        # Each invocation extends the token's life, as in Zato 3.1
        self.token_expires = time.monotonic() + self.channel.token_ttl
        return True

    def reply(self, msg_id: Any, status: int, data: Any, cid: str) -> None:
        kind = 'rsp-ok' if status == 200 else 'rsp-err'
        self.send({'meta': {'status': status, 'timestamp': timestamp(), 'in_reply_to': msg_id,
                            'id': f'zato.ws.srv.{kind}.{cid}'}, 'data': data})

    def request_for(self, payload: Any, raw: str | bytes) -> Request:
        return Request(payload, raw if isinstance(raw, bytes) else raw.encode('utf-8'))


def conn_has_deflate(conn: ws.Connection) -> bool:
    return getattr(conn, 'deflate', None) is not None
