"""Pub/sub over WebSockets (3.1's spec 6.5): the pub/sub services a WSX client invokes, and the pushers
that deliver a WSX subscription's messages over the socket.

A WSX client is identified by its channel: the active pub/sub endpoint of type `wsx` whose
`ws_channel_id` is the client's channel; its role and `pub=`/`sub=` patterns apply (3.1 let any WSX
client reach any topic). A client invokes the services below with 3.1's envelope,
`{"meta": {"action": "invoke-service", "id": ...}, "data": {"service": <name>, "request": {...}}}`;
they are reachable on every channel that has a pub/sub endpoint, without `services_allowed`.

A subscription is held by the worker of the connection that subscribed or resumed it. Its pusher
pulls from the queue with the acknowledged pull (a visibility timeout) and sends each batch to the
client as a server-to-client request:

    {"meta": {"action": "zwsx.psrq", "id": "zato.ws.srv.psrq.<hex>", "sub_key": ..., "timestamp": ...},
     "data": [<message>, ...]}

The client acknowledges by msg_id (`zato.pubsub.pubapi.ack`); a message not acknowledged within the
visibility timeout is pushed again with a higher `delivery_count`. A publication wakes the pushers of
its topic on every worker through the bus; each pusher also polls every POLL_INTERVAL seconds.

When the connection goes away the subscription stays and its messages keep queuing, unless it was
made with `unsub_on_wsx_close` (kept in the subscription's `opaque`), in which case it is deleted.
`zato.pubsub.resume-wsx-subscription` with the sub_key attaches it to a new connection.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from sqlalchemy import select

from zato.errors import BadRequest, failure_of
from zato.odb.models import PubSubSubscription, PubSubTopic
from zato.pubsub.errors import NotAllowed
from zato.pubsub.store import MAX_BATCH, public
from zato.server.pubsub_delivery import WAKE_SUBJECT
from zato.server.wsx.session import timestamp

if TYPE_CHECKING:
    from zato.server.pubsub import Endpoint, PubSub
    from zato.server.wsx.session import WSXClient

logger = logging.getLogger('zato.pubsub')

PUBLISH_MESSAGE = 'zato.pubsub.pubapi.publish-message'
SUBSCRIBE = 'zato.pubsub.pubapi.subscribe'
SUBSCRIBE_WSX = 'zato.pubsub.pubapi.subscribe-wsx'
UNSUBSCRIBE = 'zato.pubsub.pubapi.unsubscribe'
GET_MESSAGES = 'zato.pubsub.pubapi.get-messages'
ACK = 'zato.pubsub.pubapi.ack'
RESUME = 'zato.pubsub.resume-wsx-subscription'

SERVICES = frozenset((PUBLISH_MESSAGE, SUBSCRIBE, SUBSCRIBE_WSX, UNSUBSCRIBE, GET_MESSAGES, ACK, RESUME))

PUSH_ACTION = 'zwsx.psrq'
# The bus subject of a publication's wake-up, heard by WSX pushers and delivery tasks alike
SUBJECT_WAKE = WAKE_SUBJECT
POLL_INTERVAL = 5.0          # seconds between a pusher's pulls when nothing wakes it
DEFAULT_VISIBILITY = 30.0
PUSH_BATCH = 50
ERROR_WAIT = 1.0


class _Pusher:
    """One subscription held by one connection of this worker."""

    __slots__ = ('sub_id', 'sub_key', 'topic_name', 'client', 'visibility', 'event', 'stopped', 'greenlet')

    def __init__(self, sub_id: int, sub_key: str, topic_name: str, client: WSXClient, visibility: float) -> None:
        self.sub_id = sub_id
        self.sub_key = sub_key
        self.topic_name = topic_name
        self.client = client
        self.visibility = visibility
        self.event = Event()
        self.stopped = False
        self.greenlet: gevent.Greenlet | None = None


class PubSubWSX:
    """A worker's WSX subscriptions."""

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub
        self.pushers: dict[int, _Pusher] = {}
        self.to_tell: set[str] = set()
        self.teller: gevent.Greenlet | None = None

    def start(self) -> None:
        runtime = self.pubsub.runtime
        runtime.bus.subscribe(SUBJECT_WAKE, self._on_wake)
        runtime.wsx.pubsub_services = SERVICES
        runtime.wsx.pubsub_handler = self.on_invoke
        runtime.wsx.on_remove.append(self.client_gone)
        self.pubsub.on_published = self.published

    # Waking pushers

    def published(self, topic_name: str) -> None:
        """Wakes this worker's pushers and delivery tasks of the topic now, and tells the other workers in
        the background (when any has something to wake): publications that come while the bus is busy share
        one bus message a topic."""
        self._wake(topic_name)
        delivery = self.pubsub.delivery
        if delivery is not None:
            delivery.wake({'topic': topic_name})  # this worker's delivery tasks of the topic
            if not delivery.wakes_others(topic_name):
                return  # no WSX subscriber, no push subscription pushed by another worker
        self.to_tell.add(topic_name)
        if self.teller is None:
            self.teller = gevent.spawn(self._tell)

    def _tell(self) -> None:
        bus = self.pubsub.runtime.bus
        try:
            while self.to_tell:
                topics, self.to_tell = self.to_tell, set()
                for topic_name in sorted(topics):
                    try:
                        bus.publish(SUBJECT_WAKE, {'topic': topic_name})
                    except Exception:  # noqa: BLE001 - the pushers' poll delivers it anyway
                        logger.warning('Could not tell other workers of a publication to `%s`', topic_name,
                                       exc_info=True)
        finally:
            self.teller = None

    def _on_wake(self, msg: dict[str, Any]) -> None:
        self._wake(str(msg.get('topic')))

    def _wake(self, topic_name: str) -> None:
        for pusher in list(self.pushers.values()):
            if pusher.topic_name == topic_name:
                pusher.event.set()

    # The services a WSX client invokes

    def on_invoke(self, client: WSXClient, msg_id: Any, name: str, request: Any, cid: str) -> None:
        """Runs one pub/sub call and answers it with the WSX API's reply (errors: their status and code)."""
        try:
            out = self.invoke(client, name, request)
        except Exception as e:  # noqa: BLE001 - every error is an answer to this client only
            failure = failure_of(e, cid)
            if failure.status >= 500:
                logger.warning('Pub/sub call `%s` of WebSocket client %s failed (cid %s)', name, client.id, cid,
                               exc_info=e)
            client.send({'meta': {'status': failure.status, 'code': failure.code, 'timestamp': timestamp(),
                                  'in_reply_to': msg_id, 'id': f'zato.ws.srv.rsp-err.{cid}'},
                         'data': failure.details})
            return
        client.reply(msg_id, 200, out, cid)

    def endpoint_of(self, client: WSXClient) -> Endpoint:
        for endpoint in self.pubsub.endpoints.values():
            if endpoint.endpoint_type == 'wsx' and endpoint.ws_channel_id == client.channel.id and endpoint.is_active:
                return endpoint
        raise NotAllowed()

    def invoke(self, client: WSXClient, name: str, request: Any) -> Any:
        endpoint = self.endpoint_of(client)
        data = request if request is not None else {}
        if not isinstance(data, dict):
            raise BadRequest('Invalid request: expected an object')
        ps = self.pubsub
        if name == PUBLISH_MESSAGE:
            msg_ids = ps.publish(_topic(data), data, endpoint)
            return {'msg_id_list': msg_ids} if 'data_list' in data else {'msg_id': msg_ids[0]}
        if name in (SUBSCRIBE, SUBSCRIBE_WSX):
            return self.subscribe(client, endpoint, _topic(data), bool(data.get('unsub_on_wsx_close', False)),
                                  _visibility(data))
        if name == RESUME:
            return self.resume(client, endpoint, data.get('sub_key'))
        sub_key = data.get('sub_key')
        if sub_key is None:
            raise BadRequest('Missing input `sub_key`')
        sub_id = ps.subscription(sub_key, endpoint)
        if name == UNSUBSCRIBE:
            self.detach(sub_id)
            ps.unsubscribe(sub_id)
            return {}
        if name == ACK:
            acked = data.get('msg_ids')
            if not isinstance(acked, list) or not 1 <= len(acked) <= MAX_BATCH or \
                    not all(isinstance(m, str) and len(m) <= 80 for m in acked):
                raise BadRequest(f'Invalid input `msg_ids`: expected 1 to {MAX_BATCH} message ids')
            return {'acked': ps.ack(sub_id, endpoint.id, acked)}
        # GET_MESSAGES: 3.1's, deleting what it returns
        batch = data.get('max_messages', PUSH_BATCH)
        if type(batch) is not int or not 1 <= batch <= MAX_BATCH:
            raise BadRequest(f'Invalid input `max_messages`: expected 1 to {MAX_BATCH}')
        return ps.get_and_delete(sub_id, endpoint.id, batch)

    def subscribe(self, client: WSXClient, endpoint: Endpoint, topic_name: str, unsub_on_close: bool = False,
                  visibility: float = DEFAULT_VISIBILITY, api: bool = True) -> dict[str, Any]:
        """`api`: asked by the client itself, which the topic's `is_api_sub_allowed` must allow."""
        out = self.pubsub.subscribe(topic_name, endpoint, api=api)
        runtime = self.pubsub.runtime
        with runtime.Session() as session:
            row = session.scalars(select(PubSubSubscription).where(
                PubSubSubscription.sub_key == out['sub_key'])).one()
            row.opaque = {**(row.opaque or {}), 'wsx': True, 'unsub_on_wsx_close': unsub_on_close,
                          'visibility_timeout': visibility}
            session.commit()
            sub_id = row.id
        self.attach(sub_id, out['sub_key'], topic_name, client, visibility)
        return out

    def resume(self, client: WSXClient, endpoint: Endpoint, sub_key: Any) -> dict[str, Any]:
        """Attaches the subscription `sub_key` names (the endpoint's own, else the one 404 of every wrong
        sub_key) to `client`."""
        sub_id = self.pubsub.subscription(sub_key, endpoint)
        runtime = self.pubsub.runtime
        with runtime.Session() as session:
            row = session.execute(select(PubSubSubscription.opaque, PubSubTopic.name)
                                  .join(PubSubTopic, PubSubTopic.id == PubSubSubscription.topic_id)
                                  .where(PubSubSubscription.id == sub_id)).one()
        opaque = row[0] or {}
        self.attach(sub_id, str(sub_key), row[1], client, float(opaque.get('visibility_timeout', DEFAULT_VISIBILITY)))
        return {'sub_key': sub_key, 'topic_name': row[1]}

    # Pushers

    def attach(self, sub_id: int, sub_key: str, topic_name: str, client: WSXClient, visibility: float) -> None:
        self.detach(sub_id)
        if client.closed or client.closing or client.id not in self.pubsub.runtime.wsx.clients:
            # The client went away while its call ran: client_gone has been and will not come again
            gevent.spawn(self._maybe_unsubscribe, sub_id)
            return
        pusher = _Pusher(sub_id, sub_key, topic_name, client, visibility)
        self.pushers[sub_id] = pusher
        pusher.greenlet = gevent.spawn(self._push, pusher)

    def detach(self, sub_id: int) -> None:
        pusher = self.pushers.pop(sub_id, None)
        if pusher is not None:
            pusher.stopped = True
            pusher.event.set()

    def client_gone(self, client: WSXClient) -> None:
        for pusher in [p for p in self.pushers.values() if p.client is client]:
            self.detach(pusher.sub_id)
            gevent.spawn(self._maybe_unsubscribe, pusher.sub_id)

    def _maybe_unsubscribe(self, sub_id: int) -> None:
        runtime = self.pubsub.runtime
        try:
            with runtime.Session() as session:
                opaque = session.scalar(select(PubSubSubscription.opaque).where(PubSubSubscription.id == sub_id))
            if opaque and opaque.get('unsub_on_wsx_close'):
                self.pubsub.unsubscribe(sub_id)
        except Exception:  # noqa: BLE001 - logged; the subscription stays, as it would without the flag
            logger.warning('Could not delete WSX subscription %s on close', sub_id, exc_info=True)

    def _push(self, pusher: _Pusher) -> None:
        gd = self.pubsub.gd
        client = pusher.client
        wait = min(POLL_INTERVAL, pusher.visibility)
        while not pusher.stopped and not client.closed and not client.closing:
            pusher.event.clear()
            try:
                msgs = gd.pull(pusher.sub_id, PUSH_BATCH, pusher.visibility)
            except Exception:  # noqa: BLE001 - the ODB may be down for a while; try again
                logger.warning('Could not pull for WSX subscription %s', pusher.sub_id, exc_info=True)
                gevent.sleep(ERROR_WAIT)
                continue
            if msgs:
                # What is pulled and not sent (a client gone meanwhile) comes back after the visibility timeout
                client.send({'meta': {'action': PUSH_ACTION, 'id': 'zato.ws.srv.psrq.' + secrets.token_hex(8),
                                      'sub_key': pusher.sub_key, 'timestamp': timestamp()},
                             'data': [public(m) for m in msgs]})
                continue
            pusher.event.wait(wait)
        # A pusher whose client went leaves its entry to client_gone, which applies unsub_on_wsx_close


def _topic(data: dict[str, Any]) -> str:
    topic_name = data.get('topic_name')
    if not isinstance(topic_name, str) or not topic_name:
        raise BadRequest('Missing input `topic_name`')
    return topic_name


def _visibility(data: dict[str, Any]) -> float:
    value = data.get('visibility_timeout', DEFAULT_VISIBILITY)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 12 * 3600:
        raise BadRequest('Invalid input `visibility_timeout`: expected more than 0 and at most 43200 seconds')
    return float(value)
