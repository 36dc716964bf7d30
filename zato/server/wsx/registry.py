"""The WebSocket side of one worker: channels by path, the clients connected to this worker, the
upgrade handshake, what each message runs, and the cluster-wide operations (broadcast, send to one
client, disconnect, list) carried by the cluster bus so that they reach every worker of every server.
"""

from __future__ import annotations

import base64
import logging
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Callable

import gevent
import orjson
from gevent.event import Event

from zato.errors import STATUS_CODES, ClientError, Failure, Inactive, Unauthorized, failure_of, log_failure
from zato.proto import websocket as ws
from zato.server.wsx.config import WSXChannelConfig
from zato.server.guards import Caller
from zato.server.wsx.session import WSXClient, encode_payload
from zato.config.channel import SecurityInfo
from zato.service.invoker import new_cid

if TYPE_CHECKING:
    from zato.config.settings import ServerConfig
    from zato.config.networks import Network
    from zato.security.authenticate import Authenticator
    from zato.server.store import ServiceStore
    from zato.service.invoker import Invoker

logger = logging.getLogger('zato.wsx')

SUBJECT_BROADCAST = 'wsx.broadcast'
SUBJECT_CLIENT = 'wsx.client'        # send to / disconnect one client, wherever it is connected
SUBJECT_QUERY = 'wsx.query'          # list clients: every worker answers on SUBJECT_REPLY
SUBJECT_REPLY = 'wsx.reply'

QUERY_QUIET = 0.3                    # a listing is complete when no worker has answered for this long
QUERY_MAX = 3.0
YIELD_EVERY = 256                    # clients served by a broadcast between two yields to other greenlets

_dumps = orjson.dumps
_loads = orjson.loads


def wire_data(data: Any) -> dict[str, Any]:
    """A message for the bus (JSON): text as is, bytes in base64, anything else as JSON text."""
    if isinstance(data, str):
        return {'t': data}
    if isinstance(data, (bytes, bytearray, memoryview)):
        return {'b': base64.b64encode(bytes(data)).decode('ascii')}
    return {'t': _dumps(data, option=orjson.OPT_NON_STR_KEYS).decode('utf-8')}


def from_wire(msg: dict[str, Any]) -> str | bytes:
    if 'b' in msg:
        return base64.b64decode(msg['b'])
    return msg['t']


class HandshakeRefused(Exception):
    def __init__(self, status: int, details: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(details)
        self.status = status
        self.details = details
        self.headers = headers or []


class _Query:
    __slots__ = ('results', 'event', 'last', 'first_only')

    def __init__(self, first_only: bool) -> None:
        self.results: list[Any] = []
        self.event = Event()
        self.last = 0.0
        self.first_only = first_only


class WSXHost(Protocol):
    """What the WebSocket side uses of its worker."""

    bus: Any
    config: ServerConfig
    server_name: str
    store: ServiceStore
    invoker: Invoker
    authenticator: Authenticator
    security: dict[int, Any]
    trusted_proxies: tuple[Network, ...]


class WSXRegistry:
    """One per worker."""

    def __init__(self, runtime: WSXHost) -> None:
        self.runtime = runtime
        self.channels: dict[int, WSXChannelConfig] = {}
        self.by_path: dict[str, WSXChannelConfig] = {}
        self.by_name: dict[str, WSXChannelConfig] = {}
        self.clients: dict[str, WSXClient] = {}
        self.by_channel: dict[int, dict[str, WSXClient]] = {}
        self.queries: dict[str, _Query] = {}
        self.accepting = True
        self.pools: list[Any] = []
        self.max_connections: int = runtime.config.get('wsx', 'max_connections')
        # Pub/sub over WebSockets (zato.server.pubsub_wsx): its calls, and what a client's end tells it
        self.pubsub_services: frozenset[str] = frozenset()
        self.pubsub_handler: Callable[[WSXClient, Any, str, Any, str], None] | None = None
        self.on_remove: list[Callable[[WSXClient], None]] = []

    def start(self) -> None:
        bus = self.runtime.bus
        bus.subscribe(SUBJECT_BROADCAST, self._on_broadcast)
        bus.subscribe(SUBJECT_CLIENT, self._on_client_op)
        bus.subscribe(SUBJECT_QUERY, self._on_query)
        bus.subscribe(SUBJECT_REPLY, self._on_reply)

    # Channels

    def set_channels(self, channels: dict[int, WSXChannelConfig]) -> None:
        for gone in set(self.channels) - set(channels):
            self._drop_clients(gone, 'Channel deleted')
        for chan_id, chan in channels.items():
            old = self.channels.get(chan_id)
            if old is not None and (not chan.is_active or chan.security_id != old.security_id
                                    or chan.url_path != old.url_path):
                self._drop_clients(chan_id, 'Channel changed')
            for client in self.by_channel.get(chan_id, {}).values():
                client.channel = chan
        self.channels = channels
        self.by_path = {c.url_path: c for c in channels.values()}
        self.by_name = {c.name: c for c in channels.values()}

    def update_channel(self, chan_id: int, chan: WSXChannelConfig | None) -> None:
        channels = dict(self.channels)
        if chan is None:
            channels.pop(chan_id, None)
        else:
            channels[chan_id] = chan
        self.set_channels(channels)

    def _drop_clients(self, chan_id: int, reason: str) -> None:
        for client in list(self.by_channel.get(chan_id, {}).values()):
            client.close(ws.CLOSE_GOING_AWAY, reason)

    # Clients of this worker

    def add(self, client: WSXClient) -> None:
        self.clients[client.id] = client
        self.by_channel.setdefault(client.channel.id, {})[client.id] = client

    def remove(self, client: WSXClient) -> None:
        for callback in self.on_remove:
            callback(client)
        self.clients.pop(client.id, None)
        group = self.by_channel.get(client.channel.id)
        if group is not None:
            group.pop(client.id, None)
            if not group:
                self.by_channel.pop(client.channel.id, None)

    def close_all(self, code: int = ws.CLOSE_GOING_AWAY, reason: str = 'Server shutting down') -> None:
        self.accepting = False
        for client in list(self.clients.values()):
            client.close(code, reason)

    # The handshake

    def upgrade(self, req: Any, sock: socket.socket, peer: str, leftover: bytes) -> bytes | None:
        """Serves a WebSocket connection from its upgrade request to its end.

        Returns the bytes of an HTTP error response when the handshake is refused (the connection
        is then closed by the caller), None after a WebSocket session.
        """
        chan = self.by_path.get(req.path)
        if chan is None or not chan.is_active:
            return self.refusal(404, f'URL not found `{req.path}`')
        try:
            hs, sec_info, address = self.check_handshake(chan, req, peer)
        except HandshakeRefused as e:
            logger.info('WebSocket handshake on `%s` from %s refused: %s %s', chan.name, peer, e.status, e.details)
            return self.refusal(e.status, e.details, e.headers)
        forwarded = req.headers.get('x-forwarded-for', '')
        conn = ws.Connection('server', max_message=chan.max_message_size, deflate=hs.deflate)
        client = WSXClient(self, chan, sock, address, forwarded, conn, sec_info)
        sock.sendall(ws.accept_response(hs, [('X-Zato-CID', new_cid())]))
        current = gevent.getcurrent()
        for pool in self.pools:
            if current in pool.greenlets:  # discarding an untracked greenlet would free a slot for nothing
                pool.discard(current)
        client.serve(leftover)
        return None

    def check_handshake(self, chan: WSXChannelConfig, req: Any, peer: str) -> tuple[Any, SecurityInfo | None, str]:
        """The handshake, the channel's security info of the client (None until create-session, if it sent
        no credentials) and the client's address; HandshakeRefused with the status to answer."""
        if not self.accepting:
            raise HandshakeRefused(503, 'Server shutting down')
        if len(self.clients) >= self.max_connections:
            logger.warning('WebSocket handshake on `%s` from %s refused: %s clients connected to this worker already',
                           chan.name, peer, len(self.clients))
            raise HandshakeRefused(503, 'Too many WebSocket connections', [('Retry-After', '5')])
        headers = req.headers
        if 'upgrade' not in headers and req.method == 'GET':
            raise HandshakeRefused(426, 'This is a WebSocket channel: upgrade required',
                                   [('Upgrade', 'websocket'), ('Sec-WebSocket-Version', '13')])
        try:
            hs = ws.check_request(req.method, req.version, headers, subprotocols=chan.subprotocols)
        except ws.HandshakeError as e:
            raise HandshakeRefused(e.status, e.reason, list(e.headers or [])) from None
        if not chan.origin_allowed(headers.get('origin'), headers.get('host')):
            raise HandshakeRefused(403, 'Origin not allowed')
        # The channel's guards, as every entry point runs them (zato.server.guards): the IP level's
        # allow-list before credentials, credentials if the client sent any (otherwise it has
        # new_token_wait_time to send create-session), then the handshake charged to the IP level and,
        # for a client that authenticated with it, to its security definition's level
        caller = Caller(peer, headers, self.runtime.trusted_proxies)
        try:
            chan.guards.check(caller)
        except ClientError as e:
            failure = failure_of(e, '')
            raise HandshakeRefused(failure.status, str(failure.details), list(failure.headers.items())) from None
        return hs, caller.security, caller.address

    def authenticate_secret(self, chan: WSXChannelConfig, username: str, secret: str) -> SecurityInfo:
        """Checks a create-session credential against the channel's security definition."""
        sec = self.runtime.security.get(chan.security_id) if chan.security_id is not None else None
        if sec is None:
            raise Unauthorized()
        if sec.kind == 'basic_auth':
            token = base64.b64encode(f'{username}:{secret}'.encode()).decode('ascii')
            headers = {'authorization': f'Basic {token}'}
        elif sec.kind == 'apikey':
            headers = {sec.username.lower(): secret}
        else:
            headers = {'authorization': f'Bearer {secret}'}
        return self.runtime.authenticator.authenticate(sec, headers)

    @staticmethod
    def refusal(status: int, details: str, headers: list[tuple[str, str]] | None = None) -> bytes:
        from zato.server.dispatcher import JSON, error_body, serialize_response
        cid = new_cid()
        out = [('X-Zato-CID', cid), ('Content-Type', JSON), *(headers or ())]
        return serialize_response(status, out, error_body(cid, details, STATUS_CODES.get(status, 'error')), False)

    # Messages and hooks

    def on_message(self, client: WSXClient, data: str | bytes) -> None:
        chan = client.channel
        cid = new_cid()
        payload: Any = data
        if chan.data_format == 'json':
            try:
                payload = _loads(data)
            except orjson.JSONDecodeError as e:
                if not client.authenticated:
                    client.close(ws.CLOSE_POLICY, 'Not authenticated')
                    return
                client.send({'result': 'ZATO_ERROR', 'cid': cid, 'details': f'Invalid JSON in message: {e}'})
                return
            if type(payload) is dict:
                meta = payload.get('meta')
                if type(meta) is dict and 'action' in meta:
                    self._on_envelope(client, cid, meta, payload.get('data'), data)
                    return
        if not client.authenticated:
            logger.info('WebSocket client %s (%s) sent a message before creating a session', client.id, client.peer)
            client.close(ws.CLOSE_POLICY, 'Not authenticated')
            return
        try:
            out = self._invoke(client, chan.service_name, cid, payload, data)
        except Exception as e:  # noqa: BLE001 - each error becomes a message to this client only
            failure = self._failure(e, cid, chan.service_name)
            client.send({'result': 'ZATO_ERROR', 'cid': cid, 'details': failure.details, 'code': failure.code})
            return
        if out is not None:
            client.send(out)

    def _on_envelope(self, client: WSXClient, cid: str, meta: dict[str, Any], data: Any, raw: str | bytes) -> None:
        action = meta['action']
        msg_id = meta.get('id')
        if action == 'create-session':
            client.create_session(meta)
            return
        if action == 'invoke-service':
            if not client.authenticated or not client.token_valid(meta.get('token')):
                client.refuse(msg_id)
                return
            chan = client.channel
            name = chan.service_name
            if type(data) is dict and data.get('service') in self.pubsub_services and self.pubsub_handler is not None:
                self.pubsub_handler(client, msg_id, data['service'], data.get('request'), cid)
                return
            if type(data) is dict and isinstance(data.get('service'), str) and data['service'] != name:
                if data['service'] not in chan.services_allowed:
                    client.reply(msg_id, 403, f'Service `{data["service"]}` is not allowed on this channel', cid)
                    return
                name, data = data['service'], data.get('request')
            try:
                out = self._invoke(client, name, cid, data, raw)
            except Exception as e:  # noqa: BLE001 - answered to this client only, as every entry point answers
                failure = self._failure(e, cid, name)
                client.reply(msg_id, failure.status, failure.details, cid)
                return
            client.reply(msg_id, 200, out, cid)
            return
        if action == 'client-response':
            return  # a late answer to an invoke_client that gave up waiting
        client.reply(msg_id, 400, f'Unknown action `{str(action)[:100]}`', cid)

    def _invoke(self, client: WSXClient, name: str, cid: str, payload: Any, raw: str | bytes) -> Any:
        runtime = self.runtime
        cls = runtime.store.get(name)
        invoker = runtime.invoker
        svc = invoker.run(cls, cid, client.info, client.request_for(payload, raw), environ=client.environ())
        return invoker.output_of(svc)

    @staticmethod
    def _failure(e: BaseException, cid: str, name: str) -> Failure:
        failure = failure_of(e, cid)
        log_failure(logger, failure, e, f'Service `{name}` for a WebSocket message', cid)
        return failure

    def run_hook(self, client: WSXClient, hook: str) -> None:
        try:
            cls = self.runtime.store.get(client.channel.service_name)
        except (KeyError, Inactive):  # not deployed, or switched off: no hooks
            return
        if getattr(cls, hook, None) is None:
            return
        self.runtime.invoker.run_hook(cls, hook, new_cid(), client.info, client.environ())

    # Cluster-wide operations

    def broadcast(self, channel_name: str, data: Any) -> None:
        """Every client of the channel, on every worker of every server; returns at once."""
        if channel_name not in self.by_name:
            raise KeyError(f'No such WebSocket channel `{channel_name}`')
        self.runtime.bus.publish(SUBJECT_BROADCAST, {'channel': channel_name, **wire_data(data)})

    def _on_broadcast(self, msg: dict[str, Any]) -> None:
        chan = self.by_name.get(msg['channel'])
        if chan is None:
            return
        group = self.by_channel.get(chan.id)
        if not group:
            return
        data = from_wire(msg)
        opcode, payload = encode_payload(data)
        frame = ws.encode_frame(opcode, payload)   # built once, sent to every client without deflate
        for count, client in enumerate(list(group.values()), 1):
            if client.authenticated and not client.closing:
                if client.deflate:
                    client.send(data)
                else:
                    client.send_frame(frame)
            if count % YIELD_EVERY == 0:
                gevent.sleep(0)

    def send_to(self, client_id: str, data: Any, timeout: float = 1.0) -> bool:
        """Sends to one client wherever it is connected; False if no worker has it."""
        return self._client_op('send', client_id, wire_data(data), timeout)

    def disconnect(self, client_id: str, timeout: float = 1.0) -> bool:
        return self._client_op('disconnect', client_id, {}, timeout)

    def _client_op(self, op: str, client_id: str, extra: dict[str, Any], timeout: float) -> bool:
        client = self.clients.get(client_id)
        if client is not None:
            return self._apply_op(client, op, extra)
        query_id = self._new_query(first_only=True)
        try:
            self.runtime.bus.publish(SUBJECT_CLIENT, {'op': op, 'client_id': client_id, 'query': query_id, **extra})
            self.queries[query_id].event.wait(timeout)
            return any(self.queries[query_id].results)
        finally:
            self.queries.pop(query_id, None)

    @staticmethod
    def _apply_op(client: WSXClient, op: str, msg: dict[str, Any]) -> bool:
        if op == 'send':
            return client.send(from_wire(msg))
        client.close(ws.CLOSE_NORMAL, 'Disconnected by the server')
        return True

    def _on_client_op(self, msg: dict[str, Any]) -> None:
        if msg['query'] in self.queries:
            return  # our own request: applied locally already if the client was ours
        client = self.clients.get(msg['client_id'])
        if client is not None:
            done = self._apply_op(client, msg['op'], msg)
            self.runtime.bus.publish(SUBJECT_REPLY, {'query': msg['query'], 'result': done})

    def list_clients(self, channel_name: str | None = None) -> list[dict[str, Any]]:
        """Every connected client of the cluster (of one channel, if named)."""
        query_id = self._new_query(first_only=False)
        try:
            self.runtime.bus.publish(SUBJECT_QUERY, {'query': query_id, 'channel': channel_name})
            query = self.queries[query_id]
            started = time.monotonic()
            while True:
                now = time.monotonic()
                if now - started >= QUERY_MAX:
                    break
                if query.last and now - query.last >= QUERY_QUIET:
                    break
                gevent.sleep(0.02)
            out = [c for result in query.results for c in result]
        finally:
            self.queries.pop(query_id, None)
        out.sort(key=lambda c: (c['channel'], c['connected_at'], c['id']))
        return out

    def local_clients(self, channel_name: str | None) -> list[dict[str, Any]]:
        return [c.describe() for c in self.clients.values()
                if channel_name is None or c.channel.name == channel_name]

    def _on_query(self, msg: dict[str, Any]) -> None:
        self.runtime.bus.publish(SUBJECT_REPLY, {'query': msg['query'],
                                                 'result': self.local_clients(msg.get('channel'))})

    def _on_reply(self, msg: dict[str, Any]) -> None:
        query = self.queries.get(msg['query'])
        if query is None:
            return
        query.results.append(msg['result'])
        query.last = time.monotonic()
        if query.first_only and msg['result']:
            query.event.set()

    def _new_query(self, first_only: bool) -> str:
        query_id = secrets.token_hex(8)
        self.queries[query_id] = _Query(first_only)
        return query_id
