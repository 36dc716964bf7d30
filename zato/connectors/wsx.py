"""Outgoing WebSocket (WSX) connections, for gevent workers.

An `OutgoingWSX` keeps one WebSocket open to `WSXConfig.address` for as long as it is started. One
greenlet connects, does the opening handshake (and, for a Zato remote, `create-session`), then reads
until the connection ends and, if `has_auto_reconnect` is set, starts over after a backoff with full
jitter. Any greenlet may send; a lock serializes the writes, so frames never interleave and
compressed frames leave in the order they were compressed.

Liveness: we ping every `ping_interval`, and once nothing at all has arrived for
`pings_missed_threshold` intervals the remote end is presumed gone: the socket is dropped and the
reconnect logic takes over. Pings from the remote end are answered by the reader as they come.

A remote that is a Zato WSX channel (`is_zato`) speaks the JSON envelope of Zato 3.1: a
`create-session` message first if a username is configured, then `invoke-service` messages whose
replies name the request in `meta.in_reply_to`. Any other remote is a plain WebSocket: `invoke`
sends a message and takes the next message received as its reply, one invocation at a time.

Sockets and TLS come from gevent explicitly, so this works the same in a monkey-patched worker and
in an unpatched process such as the test runner. Create and use an instance in one thread.
"""

from __future__ import annotations

import base64
import logging
import random
import secrets
import socket
import time
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import orjson
from gevent import socket as gsocket
from gevent import ssl as gssl

from zato.connectors.base import Connector, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field
from zato.connectors.wsx_config import WSXConfig, backoff_delay, parse_address
from zato.proto import websocket as ws
from zato.proto.reasons import REASONS

if TYPE_CHECKING:
    from collections.abc import Callable

    from zato.connectors.base import Hooks

    OnMessage = Callable[[Any], Any]
    OnConnect = Callable[[], None]
    OnClose = Callable[[int | None, str], None]

logger = logging.getLogger('zato.connectors.wsx')

MSG_ID_PREFIX = 'zato.ws.cli.'

# What a Zato remote's invoke_client sends; the client answers with a client-response.
REQUEST_ACTION = 'zwsx.rqc'

# How long stop() waits at most for the remote end to answer our close frame, and for callbacks to finish.
CLOSE_TIMEOUT = 5.0

# A session that stayed up this long resets the backoff. One that drops sooner counts as a failed
# attempt, so a remote end that accepts and at once drops us is not hammered.
STABLE_AFTER = 10.0

_RECV_SIZE = 64 * 1024
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS

# 0 to 1, how much of the backoff cap a delay takes; a name of its own so that tests can fix it.
_jitter = random.random


class WSXConnectionError(ConnectorUnavailable):
    """Not connected, the connection could not be opened, or it was lost while a reply was awaited.
    A ConnectorUnavailable, so that a service catches it as it catches any kind's."""

    def __init__(self, message: str, *, kind: str = 'wsx', name: str = '') -> None:
        super().__init__(message, kind=kind, name=name)


class WSXTimeoutError(WSXConnectionError, ConnectorTimeout):
    """A reply or pong did not come in time; the connection itself may still be up."""


class WSXInvokeError(Exception):
    """A Zato remote answered an invocation with a status other than 200; `data` is its error text."""

    def __init__(self, name: str, status: Any, data: Any) -> None:
        self.status = status
        self.data = data
        super().__init__(f'WSX {name}: the remote end answered with status {status}: {_short(data)}')


class _Refused(Exception):
    """The remote end is up but will not have us: a handshake or create-session refused."""


# Everything that may go wrong opening a connection without being a bug of ours.
_OPEN_ERRORS = (OSError, ws.HandshakeError, ws.WebSocketError, _Refused)


def new_msg_id() -> str:
    """A message id as a Zato 3.1 WSX client makes them."""
    return MSG_ID_PREFIX + secrets.token_hex(12)


class _Session:
    """One open WebSocket: its socket, protocol state and whoever waits for something from it."""

    def __init__(self, name: str, sock: gsocket.socket, conn: ws.Connection, write_timeout: float) -> None:
        self.name = name
        self.sock = sock
        self.conn = conn
        self.write_timeout = write_timeout
        self.token = ''
        self.opened = self.last_received = time.monotonic()
        self.lost = ''  # why the session ended, once it did or is ending
        self.pending: dict[str, gevent.event.AsyncResult] = {}  # Zato request id -> its reply
        self.reply: gevent.event.AsyncResult | None = None  # a generic invoke waiting for the next message
        self.pings: dict[bytes, gevent.event.AsyncResult] = {}  # ping payload -> when its pong came
        self.keep_alive: gevent.Greenlet | None = None
        self._lock = gevent.lock.Semaphore()

    def write(self, make: Callable[[], bytes]) -> None:
        """Frame with `make` and send, one writer at a time. A write that stalls as long as the
        liveness window would let a silent peer live is as good as a dead peer."""
        stalled = TimeoutError(f'a write stalled for {self.write_timeout}s')
        with gevent.Timeout(self.write_timeout, stalled), self._lock:
            if self.lost or self.conn.close_sent:
                raise WSXConnectionError(f'WSX {self.name}: {self.lost or "the connection is closing"}')
            self.sock.sendall(make())

    def drop(self, cause: str) -> None:
        """End the session from outside the reader, which then sees the end of the stream."""
        if not self.lost:
            self.lost = cause
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def fail_waiters(self, error: Callable[[], Exception]) -> None:
        waiters = [*self.pending.values(), *self.pings.values()]
        if self.reply is not None:
            waiters.append(self.reply)
        self.pending, self.pings, self.reply = {}, {}, None
        for waiter in waiters:
            if not waiter.ready():
                waiter.set_exception(error())


class OutgoingWSX:
    """An outgoing WebSocket connection, kept open (and reopened) by a greenlet of its own.

    Callbacks run each in a greenlet of its own, so they may block, send and invoke; their
    exceptions are logged. `on_message` gets what arrives that is not a reply awaited by `invoke`:
    str or bytes from a generic remote; from a Zato remote the parsed JSON, or just its `data` if it
    is an envelope with `meta` and `data`. What it returns is ignored, except for the requests a
    Zato remote's service sends with invoke_client (action `zwsx.rqc`): that is the answer, sent
    back as a client-response. Replies with a status other than 200 that nobody awaits (those to
    `send`) are logged, not delivered. `on_connect` runs once a session is ready, `on_close` with
    the close code (None if there was no close frame) and reason once it ended.
    """

    def __init__(self, config: WSXConfig, *, on_message: OnMessage | None = None,
                 on_connect: OnConnect | None = None, on_close: OnClose | None = None) -> None:
        self.config = config
        self.name = config.name
        self._target = parse_address(config.address)
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_close = on_close
        self._client_id = 'zato.wsx.out.' + secrets.token_hex(8)
        self._ssl_context: gssl.SSLContext | None = None

        # The liveness window, which is also the longest a write may stall.
        self._silence_limit = config.ping_interval * config.pings_missed_threshold

        self._session: _Session | None = None
        self._runner: gevent.Greenlet | None = None
        self._stopping = False
        self._last_error = ''
        self._wake = gevent.event.Event()  # cuts a backoff sleep short when stopping
        self._connected = gevent.event.Event()
        self._invoke_lock = gevent.lock.Semaphore()  # one generic invoke at a time
        self._callbacks = gevent.pool.Group()

    # ------------------------------------------------------------------ the interface

    @property
    def is_connected(self) -> bool:
        """Whether a session is open and ready for sending."""
        return self._session is not None and not self._stopping

    def start(self) -> None:
        """Start connecting in the background; returns at once, connected or not."""
        if self._runner is not None and not self._runner.dead:
            raise RuntimeError(f'WSX {self.name} is already started')
        self._stopping = False
        self._wake.clear()
        self._runner = gevent.spawn(self._run)

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a session; True if there is one."""
        return bool(self._connected.wait(timeout)) and self.is_connected

    def send(self, data: Any) -> None:
        """Send without waiting for a reply: a str as text, bytes as binary, anything else as JSON
        text. To a Zato remote, `data` goes as an invoke-service envelope, whose reply then reaches
        on_message. Raises WSXConnectionError if not connected."""
        session = self._require_session()
        payload = self._envelope(session, data)[1] if self.config.is_zato else _frame_data(data)
        self._write(session, partial(session.conn.send, payload))

    def invoke(self, data: Any, timeout: float = 10.0) -> Any:
        """Send `data` and return the reply: a Zato remote's `data` of its reply (WSXInvokeError if
        the status is not 200), or a generic remote's next message. WSXTimeoutError if no reply came
        within `timeout` seconds, WSXConnectionError if not connected or disconnected meanwhile."""
        if self.config.is_zato:
            return self._invoke_zato(data, timeout)
        return self._invoke_generic(data, timeout)

    def ping(self, timeout: float | None = None) -> float:
        """Send a ping and return the seconds until its pong came; waits up to `timeout`
        (connect_timeout by default). WSXConnectionError if not connected, WSXTimeoutError if no pong."""
        timeout = self.config.connect_timeout if timeout is None else timeout
        session = self._require_session()
        payload = secrets.token_hex(8).encode()
        waiter = gevent.event.AsyncResult()
        session.pings[payload] = waiter
        started = time.monotonic()
        try:
            self._write(session, partial(session.conn.send_ping, payload))
            ponged: float = self._wait(waiter, timeout, f'no pong within {timeout}s')
        finally:
            session.pings.pop(payload, None)
        return ponged - started

    def stop(self) -> None:
        """Close the connection with 1000 and stop reconnecting; returns once the connection
        greenlet has ended. Calling it again does nothing."""
        self._stopping = True
        self._wake.set()
        runner, self._runner = self._runner, None
        if runner is None:
            return

        session = self._session
        if session is not None and not runner.dead:
            try:
                self._write(session, partial(session.conn.send_close, ws.CLOSE_NORMAL))
            except WSXConnectionError:
                pass
            else:
                # The reader returns when the remote end answers the close. One that cannot answer
                # in the time it is given to connect is as good as gone.
                runner.join(min(CLOSE_TIMEOUT, self.config.connect_timeout))
        runner.kill()
        self._connected.clear()

        # on_close was just spawned; let it and the other callbacks finish (but not wait for ourselves)
        current = gevent.getcurrent()
        gevent.joinall([g for g in self._callbacks if g is not current], timeout=CLOSE_TIMEOUT)
        logger.info('WSX %s: stopped', self.name)

    # ------------------------------------------------------------------ invoking

    def _envelope(self, session: _Session, data: Any) -> tuple[str, str]:
        msg_id = new_msg_id()
        meta = {'action': 'invoke-service', 'id': msg_id, 'timestamp': _now()}
        if session.token:
            meta['token'] = session.token
        return msg_id, orjson.dumps({'meta': meta, 'data': data}, option=_JSON_OPTIONS).decode()

    def _invoke_zato(self, data: Any, timeout: float) -> Any:
        session = self._require_session()
        msg_id, text = self._envelope(session, data)
        waiter = gevent.event.AsyncResult()
        session.pending[msg_id] = waiter
        try:
            self._write(session, partial(session.conn.send, text))
            reply = self._wait(waiter, timeout, f'no reply to {msg_id} within {timeout}s')
        finally:
            session.pending.pop(msg_id, None)
        status = reply['meta'].get('status')
        if status != 200:
            raise WSXInvokeError(self.name, status, reply.get('data'))
        return reply.get('data')

    def _invoke_generic(self, data: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        payload = _frame_data(data)
        if not self._invoke_lock.acquire(timeout=timeout):
            raise WSXTimeoutError(f'WSX {self.name}: another invocation still waited for its reply after {timeout}s')
        try:
            session = self._require_session()
            waiter = gevent.event.AsyncResult()
            session.reply = waiter  # before sending: a fast reply must find it
            try:
                self._write(session, partial(session.conn.send, payload))
                return self._wait(waiter, max(0.0, deadline - time.monotonic()), f'no reply within {timeout}s')
            finally:
                if session.reply is waiter:
                    session.reply = None  # a late reply goes to on_message
        finally:
            self._invoke_lock.release()

    def _wait(self, waiter: gevent.event.AsyncResult, timeout: float, what: str) -> Any:
        # wait() rather than get(timeout): a gevent.Timeout of the caller's must not be mistaken for ours
        waiter.wait(timeout)
        if not waiter.ready():
            raise WSXTimeoutError(f'WSX {self.name}: {what}')
        return waiter.get()  # raises WSXConnectionError if the connection was lost meanwhile

    def _require_session(self) -> _Session:
        session = self._session
        if session is None or self._stopping or session.lost:
            why = f' ({self._last_error})' if self._last_error and not self._stopping else ''
            raise WSXConnectionError(f'WSX {self.name}: not connected to {self.config.address}{why}')
        return session

    def _write(self, session: _Session, make: Callable[[], bytes]) -> None:
        try:
            session.write(make)
        except WSXConnectionError:
            raise
        except OSError as e:
            cause = session.lost or f'could not send: {_oneline(e)}'
            session.drop(cause)
            raise WSXConnectionError(f'WSX {self.name}: {cause}') from None

    # ------------------------------------------------------------------ the connection greenlet

    def _run(self) -> None:
        """Connect, serve, and reconnect after a backoff, until stopped."""
        cfg = self.config
        attempt = 0  # failed attempts in a row
        while not self._stopping:
            what = 'could not connect to'
            exc_info = False
            try:
                session = self._open()
            except _OPEN_ERRORS as e:
                cause = _describe(e)
            except Exception as e:  # noqa: BLE001 - a bug rather than the network: logged with its traceback
                cause, exc_info = _describe(e), True
            else:
                cause = self._serve(session)
                what = 'lost the connection to'
                if time.monotonic() - session.opened >= STABLE_AFTER:
                    attempt = 0
            if self._stopping:
                break

            self._last_error = cause
            attempt += 1
            if not cfg.has_auto_reconnect:
                logger.warning('WSX %s: %s %s (%s), not reconnecting: auto-reconnect is off',
                    self.name, what, cfg.address, cause, exc_info=exc_info)
                break
            delay = backoff_delay(attempt - 1, cfg.reconnect_min, cfg.reconnect_max, _jitter())
            logger.warning('WSX %s: %s %s (%s), reconnect attempt %d in %.2fs',
                self.name, what, cfg.address, cause, attempt, delay, exc_info=exc_info)
            self._wake.wait(delay)

    def _open(self) -> _Session:
        """Connect, do the handshake and create the session, all within connect_timeout."""
        cfg = self.config
        with gevent.Timeout(cfg.connect_timeout, TimeoutError(f'not connected within {cfg.connect_timeout}s')):
            sock = self._connect()
            try:
                session = self._handshake(sock)
                if cfg.is_zato and cfg.username:
                    self._create_session(session)
            except BaseException:
                _close(sock)
                raise
        return session

    def _connect(self) -> gsocket.socket:
        target = self._target
        sock = gsocket.create_connection((target.host, target.port))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.tls:
                return self._tls_context().wrap_socket(sock, server_hostname=target.host)
        except BaseException:
            sock.close()
            raise
        return sock

    def _tls_context(self) -> gssl.SSLContext:
        # What ssl.create_default_context gives, built from gevent's class: that function, even
        # when taken from gevent.ssl, makes the stdlib's blocking sockets in an unpatched process.
        if self._ssl_context is None:
            context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and host name
            if self.config.ca_file:
                context.load_verify_locations(cafile=self.config.ca_file)
            else:
                context.load_default_certs()
            self._ssl_context = context
        return self._ssl_context

    def _handshake(self, sock: gsocket.socket) -> _Session:
        cfg, target = self.config, self._target
        key = ws.new_key()
        headers = list(cfg.headers)
        if cfg.username and not cfg.is_zato:
            credentials = base64.b64encode(f'{cfg.username}:{cfg.secret}'.encode()).decode('ascii')
            headers.append(('Authorization', f'Basic {credentials}'))
        sock.sendall(ws.client_request(target.host_header, target.path, key, deflate=cfg.deflate, headers=headers))

        buf = bytearray()
        while (head := ws.parse_response(buf)) is None:
            chunk = sock.recv(_RECV_SIZE)
            if not chunk:
                raise ConnectionResetError('the remote end closed the connection during the handshake')
            buf += chunk
        status, response_headers, rest = head
        if status != 101:
            raise _Refused(f'handshake refused with HTTP {status} {REASONS.get(status, "")}'.rstrip())
        agreed = ws.check_response(status, response_headers, key, offered_deflate=cfg.deflate)

        conn = ws.Connection('client', max_message=cfg.max_message, deflate=agreed.deflate)
        if rest:
            conn.feed(rest)
        return _Session(self.name, sock, conn, self._silence_limit)

    def _create_session(self, session: _Session) -> None:
        """Log in to a Zato remote and keep the token it gives."""
        cfg = self.config
        msg_id = new_msg_id()
        meta = {'action': 'create-session', 'id': msg_id, 'timestamp': _now(), 'username': cfg.username,
                'secret': cfg.secret, 'client_id': self._client_id, 'client_name': cfg.name}
        session.sock.sendall(session.conn.send(orjson.dumps({'meta': meta}).decode()))

        while True:
            event = self._next_event(session)
            if event is None:
                raise ConnectionResetError('the remote end closed the connection during create-session')
            if isinstance(event, ws.Ping):
                session.sock.sendall(session.conn.send_pong(event.data))
            elif isinstance(event, ws.Close):
                raise _Refused(f'the remote end closed the connection during create-session '
                               f'({event.code} {event.reason})'.replace(' )', ')'))
            elif isinstance(event, ws.Message):
                reply = _loads(event.data)
                reply_meta = reply.get('meta') if isinstance(reply, dict) else None
                if not isinstance(reply_meta, dict) or reply_meta.get('in_reply_to') != msg_id:
                    logger.info('WSX %s: ignored a message that came before the session was created', self.name)
                    continue
                data = reply.get('data')
                if reply_meta.get('status') != 200:
                    raise _Refused(f'create-session refused with status {reply_meta.get("status")}: {_short(data)}')
                token = data.get('token') if isinstance(data, dict) else None
                if not isinstance(token, str) or not token:
                    raise _Refused('the create-session reply carries no token')
                session.token = token
                return

    def _serve(self, session: _Session) -> str:
        """Announce the session, read until it ends, clean up after it; returns why it ended."""
        self._session = session
        self._connected.set()
        self._last_error = ''
        session.keep_alive = gevent.spawn(self._keep_alive, session)
        logger.info('WSX %s: connected to %s', self.name, self.config.address)
        if self._on_connect is not None:
            self._spawn_callback('on_connect', self._on_connect)

        code: int | None = None
        reason = cause = 'stopped'
        try:
            code, reason, cause = self._read(session)
        finally:  # also when stop() kills this greenlet
            self._end(session, code, reason, cause)
        return cause

    def _read(self, session: _Session) -> tuple[int | None, str, str]:
        """Handle events until the session ends; returns the close code, reason and the cause to log."""
        conn = session.conn
        try:
            while True:
                event = self._next_event(session)
                if event is None:
                    cause = session.lost or 'the remote end closed the connection'
                    return None, cause, cause
                if isinstance(event, ws.Message):
                    self._on_data(session, event.data)
                elif isinstance(event, ws.Ping):
                    self._write(session, partial(conn.send_pong, event.data))
                elif isinstance(event, ws.Pong):
                    waiter = session.pings.pop(event.data, None)
                    if waiter is not None:
                        waiter.set(time.monotonic())
                else:
                    if not conn.close_sent:  # the remote end started the closing handshake: answer it
                        _write_quietly(session, partial(conn.send_close, event.code or ws.CLOSE_NORMAL))
                    # The server closes TCP first (RFC 6455 section 7.1.1), which keeps TIME_WAIT on its side
                    _await_eof(session.sock, min(CLOSE_TIMEOUT, self.config.connect_timeout))
                    cause = f'the remote end closed the connection with {event.code} {event.reason}'.rstrip()
                    return event.code, event.reason, cause
        except ws.WebSocketError as e:
            if not conn.close_sent:
                reason = e.reason.encode()[:120].decode('utf-8', 'ignore')
                _write_quietly(session, partial(conn.send_close, e.code, reason))
            return e.code, e.reason, f'protocol error: {e.code} {e.reason}'
        except OSError as e:  # WSXConnectionError included
            cause = session.lost or _oneline(e)
            return None, cause, cause

    def _next_event(self, session: _Session) -> ws.Message | ws.Ping | ws.Pong | ws.Close | None:
        """The next event, reading as needed; None at the end of the stream."""
        conn = session.conn
        while (event := conn.next_event()) is None:
            data = session.sock.recv(_RECV_SIZE)
            if not data:
                return None
            session.last_received = time.monotonic()
            conn.feed(data)
        return event

    def _end(self, session: _Session, code: int | None, reason: str, cause: str) -> None:
        if self._session is session:
            self._session = None
        self._connected.clear()
        session.drop(cause)
        if session.keep_alive is not None:
            session.keep_alive.kill()
        address = self.config.address
        session.fail_waiters(lambda: WSXConnectionError(
            f'WSX {self.name}: the connection to {address} was lost before a reply came ({session.lost})'))
        _close(session.sock)
        if self._on_close is not None:
            self._spawn_callback('on_close', self._on_close, code, reason)

    def _keep_alive(self, session: _Session) -> None:
        """Ping every ping_interval; drop the session once nothing came for pings_missed_threshold of them."""
        cfg = self.config
        interval, limit = cfg.ping_interval, self._silence_limit
        next_ping = time.monotonic() + interval
        while True:
            now = time.monotonic()
            silent = now - session.last_received
            if silent >= limit:
                session.drop(f'nothing received for {silent:.1f}s, {cfg.pings_missed_threshold} pings missed')
                return
            if now >= next_ping:
                next_ping = now + interval
                try:
                    self._write(session, session.conn.send_ping)
                except WSXConnectionError:
                    return  # the reader sees the session end and cleans up
            gevent.sleep(min(next_ping, session.last_received + limit) - now)

    # ------------------------------------------------------------------ received messages

    def _on_data(self, session: _Session, data: str | bytes) -> None:
        if not self.config.is_zato:
            waiter = session.reply
            if waiter is not None:
                session.reply = None
                waiter.set(data)
            else:
                self._deliver(data)
            return

        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._deliver(data)
            return
        meta = value.get('meta') if isinstance(value, dict) else None
        if not isinstance(meta, dict):
            self._deliver(value)
            return

        reply_to = meta.get('in_reply_to')
        if isinstance(reply_to, str) and (waiter := session.pending.pop(reply_to, None)) is not None:
            waiter.set(value)
            return
        if meta.get('action') == REQUEST_ACTION and isinstance(meta.get('id'), str):
            self._spawn_callback('on_message', self._answer, session, meta['id'], value.get('data'))
            return
        status = meta.get('status')
        if status is not None and status != 200:
            # Most likely the answer to a send(), which nobody waits for: an error is worth a line
            logger.warning('WSX %s: the remote end answered %s with status %s: %s',
                self.name, reply_to, status, _short(value.get('data')))
            return
        self._deliver(value.get('data', value))

    def _answer(self, session: _Session, request_id: str, data: Any) -> None:
        """A Zato remote's service asked us something (its invoke_client): on_message's result is the answer."""
        result = self._on_message(data) if self._on_message is not None else None
        meta = {'action': 'client-response', 'id': new_msg_id(), 'in_reply_to': request_id, 'timestamp': _now()}
        if session.token:
            meta['token'] = session.token
        text = orjson.dumps({'meta': meta, 'data': result}, option=_JSON_OPTIONS).decode()
        try:
            self._write(session, partial(session.conn.send, text))
        except WSXConnectionError as e:
            logger.warning('WSX %s: could not answer request %s (%s)', self.name, request_id, e)

    def _deliver(self, value: Any) -> None:
        if self._on_message is not None:
            self._spawn_callback('on_message', self._on_message, value)
        else:
            logger.debug('WSX %s: no on_message callback, dropped a message', self.name)

    def _spawn_callback(self, what: str, func: Callable[..., Any], *args: Any) -> None:
        self._callbacks.spawn(self._call, what, func, *args)

    def _call(self, what: str, func: Callable[..., Any], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            logger.exception('WSX %s: the %s callback failed', self.name, what)


def _frame_data(data: Any) -> str | bytes:
    if isinstance(data, str | bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    return orjson.dumps(data, option=_JSON_OPTIONS).decode()


def _loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _write_quietly(session: _Session, make: Callable[[], bytes]) -> None:
    """A courtesy write (a close frame) on a session that is ending anyway."""
    try:
        session.write(make)
    except OSError:
        pass


def _await_eof(sock: gsocket.socket, timeout: float) -> None:
    try:
        with gevent.Timeout(timeout, False):
            while sock.recv(_RECV_SIZE):
                pass
    except OSError:
        pass


def _close(sock: gsocket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _describe(e: BaseException) -> str:
    if isinstance(e, ws.WebSocketError):
        return f'protocol error: {e.code} {e.reason}'
    if isinstance(e, ws.HandshakeError):
        return f'handshake failed: {e.reason}'
    return _oneline(e)


def _oneline(e: BaseException) -> str:
    return ' '.join(str(e).split()) or type(e).__name__


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


# ################################################################################################ the connector

def _check_address(value: str) -> str | None:
    try:
        parse_address(value)
    except ValueError as e:
        return str(e)
    return None


def _above_zero(value: float) -> str | None:
    return None if value > 0 else 'expected a number above 0'


WSX_FIELDS: tuple[Field, ...] = (
    Field('address', str, None, _check_address, 'ws://host:port/path or wss://...'),
    Field('is_zato', bool, False, None, 'The remote end is a Zato WebSocket channel (JSON envelope, create-session).'),
    Field('username', str, '', None, 'Sent in create-session to a Zato remote, else as Basic Auth at the handshake.'),
    Field('secret', str, '', None, 'The password of username; stored encrypted.', secret=True),
    Field('has_auto_reconnect', bool, True, None, 'Reconnect with backoff and jitter when the connection drops.'),
    Field('on_connect_service', str, '', None, 'Invoked after each (re)connection.'),
    Field('on_message_service', str, '', None, 'Invoked with each message the remote end sends.'),
    Field('on_close_service', str, '', None, 'Invoked when a connection ends, with its code and reason.'),
    Field('ping_interval', float, 30.0, _above_zero, 'Seconds between our pings.'),
    Field('pings_missed_threshold', int, 3, _above_zero, 'Silent ping intervals before the connection is dropped.'),
    Field('max_message_size', int, 1 << 20, _above_zero, 'Largest message accepted from the remote end, in bytes.'),
    Field('connect_timeout', float, 10.0, _above_zero, 'Seconds to connect and complete the handshake.'),
    Field('headers', dict, {}, None, 'Extra handshake headers.'),
    Field('ca_file', str, '', None, 'CA bundle to verify a wss:// server with, instead of the system CAs.'),
)


class WSXConnector(Connector):
    """The Connector contract over `OutgoingWSX`, which connects and reconnects by itself: `conn`
    is the OutgoingWSX, and events go to the configured services through the server's hooks."""

    kind: ClassVar[str] = 'wsx'
    fields: ClassVar[tuple[Field, ...]] = WSX_FIELDS
    # The old connection would go on receiving messages beside the new one: close it at once
    retire_grace: ClassVar[float] = 0.0

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Hooks | None = None) -> None:
        super().__init__(name, config, secret, hooks)
        wsx_config = WSXConfig(
            name=name, address=config['address'], is_zato=config['is_zato'], username=config['username'],
            secret=secret, headers=list(config['headers'].items()), has_auto_reconnect=config['has_auto_reconnect'],
            connect_timeout=config['connect_timeout'], ping_interval=config['ping_interval'],
            pings_missed_threshold=config['pings_missed_threshold'], max_message=config['max_message_size'],
            ca_file=config['ca_file'])
        self.wsx = OutgoingWSX(wsx_config, on_message=self._hook('on_message_service', 'message'),
                               on_connect=self._hook('on_connect_service', 'connect'),
                               on_close=self._hook('on_close_service', 'close'))
        self._client = self.wsx  # always there; OutgoingWSX says itself whether it is connected

    @property
    def conn(self) -> OutgoingWSX:
        return self.wsx

    def start(self) -> None:
        self._stopping = False
        self._client = self.wsx
        self.wsx.start()
        self._attempted.set()

    def ping(self) -> float:
        self.wsx.wait_connected(self.wsx.config.connect_timeout)
        try:
            return self.wsx.ping()
        except WSXConnectionError as e:
            raise self.map_error(e) from e

    def stop(self) -> None:
        self._stopping = True
        self._client = None  # `client` says `stopped` from now on, as every kind's does
        self.wsx.stop()

    def map_error(self, e: BaseException) -> ConnectorError:
        if isinstance(e, WSXTimeoutError):
            return self.error(ConnectorTimeout, str(e))
        if isinstance(e, WSXConnectionError):
            return self.error(ConnectorUnavailable, str(e))
        return super().map_error(e)

    def _hook(self, service_key: str, kind: str) -> Callable[..., Any] | None:
        service = self.config[service_key]
        if not service:
            return None
        name = self.name

        def run(*args: Any) -> Any:
            # What the on-message service returns answers a Zato remote's invoke_client
            if kind == 'message':
                payload = {'type': kind, 'conn': name, 'data': args[0]}
            elif kind == 'close':
                payload = {'type': kind, 'conn': name, 'code': args[0], 'reason': args[1]}
            else:
                payload = {'type': kind, 'conn': name}
            try:
                return self.hooks.invoke(service, payload)
            except Exception:
                logger.exception('Service `%s` failed on a %s event of outgoing WSX `%s`', service, kind, name)
                return None
        return run
