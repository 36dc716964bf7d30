"""Pub/sub served by a server: 3.1's REST API under /zato/pubsub/..., the acknowledged pull, the
`self.pubsub` API of services, and the guard that tells which endpoint a REST caller is.

The REST channels are internal channels that go through the same guard chain as every channel
(zato.server.guards; the IP level of the rate-limit hierarchy applies, as to SSO's channels). Their
authentication step is this module's `PubSub.authenticate`: the user name of the request's Basic Auth
names the definition, which must be that of an active REST endpoint, and the password is verified
against it by the worker's Authenticator (a user name no endpoint has costs the same argon2
verification, against a dummy hash, and gets the same 401).

A topic's name is the rest of the URL path: `POST /zato/pubsub/topic/customer/new` publishes to
`/customer/new`. What an endpoint may do is decided by its role and `pub=`/`sub=` patterns
(zato.pubsub.matcher) before the topic is looked up, so a caller learns nothing of the topics it may
not use (403, the same for a topic that does not exist). A sub_key that names no subscription the caller may
use (none at all, malformed, another endpoint's or another topic's) is one 404 with one body for every
case (SubKeyNotFound), so that an existing sub_key cannot be told from one that does not exist.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from sqlalchemy import delete, select

from zato.config.security import SecurityConfig
from zato.errors import BadRequest, ConnectorTimeout, ConnectorUnavailable, NotFound, Unauthorized
from zato.odb.models import PubSubEndpoint, PubSubSubscription, PubSubTopic
from zato.pubsub import hook as ps_hook
from zato.pubsub.errors import HookFailed, NotAllowed, SubKeyNotFound
from zato.pubsub.keys import new_msg_id, new_sub_key
from zato.pubsub.matcher import MAX_TOPIC_DEPTH, Pattern, can_publish, can_subscribe, parse_patterns, topic_name_error
from zato.pubsub.message import new_message
from zato.pubsub.store import MAX_BATCH, Publication, PubSubStore, public
from zato.server.pubsub_batch import Batcher
from zato.server.pubsub_delivery import Delivery, DeliveryError, SocketError, Sub
from zato.server.pubsub_meta import EndpointMeta
from zato.security.authenticate import INVALID
from zato.security.basic_auth import parse_basic_auth
from zato.security.passwords import hash_password
from zato.server.admin.base import AdminService
from zato.server.pubsub_wsx import PubSubWSX

if TYPE_CHECKING:
    from zato.config.channel import ChannelInfo
    from zato.server.guards import Caller
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.pubsub')

TOPIC_PREFIX = '/zato/pubsub/topic'
SUBSCRIBE_PREFIX = '/zato/pubsub/subscribe/topic'

PUBLISH = 'zato.pubsub.pubapi.publish'
GET_MESSAGES = 'zato.pubsub.pubapi.get-messages'
SUBSCRIBE = 'zato.pubsub.pubapi.subscribe'
UNSUBSCRIBE = 'zato.pubsub.pubapi.unsubscribe'
PULL = 'zato.pubsub.pubapi.pull'
ACK = 'zato.pubsub.pubapi.ack'
DELETE_MESSAGE = 'zato.pubsub.pubapi.delete-message'

# The realm of every 401 of the pub/sub REST API
REALM = 'Zato pub/sub'

# How many messages a pull returns when the caller does not say (3.1's GET batch)
DEFAULT_BATCH = 50
DEFAULT_VISIBILITY = 30.0
# Messages in a page of a browsed queue (read_messages, the admin API's subscriptions/{id}/messages)
PAGE_SIZE = 50
MAX_VISIBILITY = 12 * 3600.0


def _topic_routes() -> list[tuple[str, str, str]]:
    """A topic's name spans several segments of the path, and a route's parameter never spans a slash:
    one template per depth, up to the deepest name allowed."""
    routes = []
    for depth in range(1, MAX_TOPIC_DEPTH + 1):
        tail = ''.join(f'/{{t{i}}}' for i in range(depth))
        routes += [(TOPIC_PREFIX + tail, 'POST', PUBLISH), (TOPIC_PREFIX + tail, 'GET', GET_MESSAGES),
                   (SUBSCRIBE_PREFIX + tail, 'POST', SUBSCRIBE), (SUBSCRIBE_PREFIX + tail, 'DELETE', UNSUBSCRIBE)]
    return routes


# url path, method, service
ROUTES = (*_topic_routes(),
          ('/zato/pubsub/msg/pull', 'POST', PULL),
          ('/zato/pubsub/msg/ack', 'POST', ACK),
          ('/zato/pubsub/msg/{msg_id}', 'DELETE', DELETE_MESSAGE))

# The services whose channels authenticate pub/sub endpoints (PubSub.authenticate)
SERVICES = frozenset(service for _, _, service in ROUTES)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint as a worker keeps it in memory."""

    id: int
    name: str
    endpoint_type: str
    role: str
    patterns: tuple[Pattern, ...]
    security_id: int | None
    is_active: bool
    ws_channel_id: int | None = None

    @classmethod
    def from_model(cls, row: PubSubEndpoint) -> Endpoint:
        try:
            patterns = parse_patterns(row.topic_patterns or '')
        except ValueError:
            patterns = ()  # checked on input; a row edited by hand into nonsense allows nothing
        return cls(row.id, row.name, row.endpoint_type, row.role, patterns, row.security_id, row.is_active,
                   row.ws_channel_id)


class PubSub:
    """A worker's pub/sub: the GD store and the endpoints, kept current by the cluster bus."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.store: PubSubStore | None = None
        self.endpoints: dict[int, Endpoint] = {}
        self.by_security: dict[int, Endpoint] = {}
        self.max_data_size: int = runtime.config.get('pubsub', 'max_data_size')
        self._dummy: SecurityConfig | None = None
        self.on_published: Callable[[str], None] | None = None  # wakes WSX pushers (zato.server.pubsub_wsx)
        self.wsx = PubSubWSX(self)
        # What the publish and pull paths would otherwise read from the ODB on every call: sub_key ->
        # (sub id, endpoint id, topic name), and a topic's name -> its hook service ('' for none). Both
        # forget through the bus whatever a subscription, topic or endpoint change may have made wrong;
        # `_generation` goes up on each change, and a lookup that began before one is not kept.
        self._subs: dict[str, tuple[int, int, str]] = {}
        self._topic_hooks: dict[str, str] = {}
        self._generation = 0
        self.delivery: Delivery | None = None
        self.batcher: Batcher | None = None
        # When each endpoint last published and last had a message delivered, written every few seconds
        self.meta = EndpointMeta()

    def start(self, cluster_id: int) -> None:
        self.store = PubSubStore(self.runtime.engine, cluster_id)
        self.batcher = Batcher(self.store)
        config = self.runtime.config
        self.delivery = Delivery(self.store, self.runtime.leases, self._push,
                                 ttl=config.get('pubsub', 'delivery_lease_ttl'),
                                 holder=f'{self.runtime.server_name}:{os.getpid()}',
                                 sync_interval=config.get('pubsub', 'task_sync_interval'),
                                 delivery_timeout=config.get('pubsub', 'delivery_timeout'),
                                 server_name=self.runtime.server_name, hook=self._before_delivery,
                                 on_delivered=self.meta.delivered)
        self.meta.start(self.runtime.engine, config.get('pubsub', 'meta_flush_interval'))

    def _before_delivery(self, sub: Sub, message: dict[str, Any]) -> Any:
        """The `before_delivery` of the subscription's PubSubHook, or of its topic's (zato.pubsub.hook)."""
        return ps_hook.before_delivery(self.runtime, sub.topic_name, sub, message)

    def _push(self, sub: Sub, payload: Any) -> None:
        """A push delivery's target: the endpoint's service, or the subscription's outgoing REST connection."""
        if sub.endpoint_type == 'srv':
            if not sub.service_name:
                raise DeliveryError(f'Endpoint {sub.endpoint_id} has no service')
            self.runtime.invoker.invoke(sub.service_name, payload)
            return
        handle = self.runtime.outconn_mgr.by_id.get(sub.out_rest_id or 0)
        if handle is None:
            raise DeliveryError(f'Subscription {sub.id} has no outgoing REST connection')
        try:
            response = handle.conn.request(sub.out_http_method, secrets.token_hex(12), data=payload)
        except (ConnectorUnavailable, ConnectorTimeout) as e:
            raise SocketError(str(e)) from e
        if not response.ok:
            raise DeliveryError(f'HTTP {response.status_code} from outgoing connection `{handle.name}`')

    @property
    def gd(self) -> PubSubStore:
        if self.store is None:
            raise RuntimeError('Pub/sub is not started')
        return self.store

    # Endpoints

    def reload(self, session: Any) -> None:
        self._forget()
        rows = session.scalars(select(PubSubEndpoint).where(PubSubEndpoint.cluster_id == self.runtime.cluster_id))
        self._set({row.id: Endpoint.from_model(row) for row in rows})
        self._stop_deleted_pushers(session, list(self.wsx.pushers))  # a deletion whose bus message was missed

    def endpoint_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        self._forget(lambda sub: sub[1] == obj_id, topics=False)
        endpoints = dict(self.endpoints)
        row = session.get(PubSubEndpoint, obj_id)
        if row is None:
            endpoints.pop(obj_id, None)
        else:
            endpoints[obj_id] = Endpoint.from_model(row)
        self._set(endpoints)

    def sub_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        """A subscription created, edited or deleted: its sub_key is looked up again when next used, the
        delivery looks for push subscriptions (and topics to wake others for) at once, and its WSX pusher
        on this worker, if any, stops once it is deleted."""
        self._forget(lambda sub: sub[0] == obj_id, topics=False)
        if self.delivery is not None:
            self.delivery.wake()
        self._stop_deleted_pushers(session, [obj_id])

    def _stop_deleted_pushers(self, session: Any, sub_ids: list[int]) -> None:
        """The WSX pushers of these subscriptions that no longer exist stop now, instead of pulling an empty
        queue until their client's socket closes."""
        held = [sub_id for sub_id in sub_ids if sub_id in self.wsx.pushers]
        if not held:
            return
        existing = set(session.scalars(select(PubSubSubscription.id).where(PubSubSubscription.id.in_(held))))
        for sub_id in held:
            if sub_id not in existing:
                logger.info('Subscription %s was deleted; its WSX pusher stops', sub_id)
                self.wsx.detach(sub_id)

    def topic_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        """A topic changed (its name, its hook) or went: every lookup is made again (a topic's change is rare)."""
        self._forget()
        if self.delivery is not None:
            self.delivery.wake()

    def _forget(self, which: Any = None, topics: bool = True) -> None:
        self._generation += 1
        if which is None:
            self._subs = {}
        else:
            self._subs = {key: sub for key, sub in self._subs.items() if not which(sub)}
        if topics:
            self._topic_hooks = {}

    def topic_hook(self, topic_name: str) -> str | None:
        """The topic's hook service (None: none, or no such topic), kept until the topic changes."""
        hook = self._topic_hooks.get(topic_name)
        if hook is None:
            generation = self._generation
            hook = ps_hook.topic_hook(self.runtime, topic_name) or ''
            if generation == self._generation:
                self._topic_hooks[topic_name] = hook
        return hook or None

    def _set(self, endpoints: dict[int, Endpoint]) -> None:
        self.endpoints = endpoints
        self.by_security = {e.security_id: e for e in endpoints.values()
                            if e.security_id is not None and e.endpoint_type == 'rest'}

    def endpoint_by_name(self, name: str) -> Endpoint:
        for endpoint in self.endpoints.values():
            if endpoint.name == name:
                return endpoint
        raise NotFound(f'Pub/sub endpoint `{name}` not found')

    # The guard

    def authenticate(self, caller: Caller) -> None:
        """The authentication step of the pub/sub channels' guards: the Basic Auth definition of an
        active REST endpoint, found by the request's user name (see the module's docstring)."""
        runtime = self.runtime
        creds = parse_basic_auth(caller.headers.get('authorization'))
        candidates = []
        if creds is not None:
            for sec_id, endpoint in self.by_security.items():
                sec = runtime.security.get(sec_id)
                if endpoint.is_active and sec is not None and sec.kind == 'basic_auth' and sec.username == creds[0]:
                    candidates.append(sec)
        if not candidates:
            candidates.append(self._dummy_security())
        for sec in candidates[:-1]:
            try:
                caller.security = runtime.authenticator.authenticate(sec, caller.headers)
                return
            except Unauthorized:
                continue  # another definition of the same user name may take the password
        try:
            caller.security = runtime.authenticator.authenticate(candidates[-1], caller.headers)
        except Unauthorized:
            # One challenge for every failure: a definition's own realm would tell a known user name
            raise Unauthorized(INVALID, {'WWW-Authenticate': f'Basic realm="{REALM}"'}) from None

    def _dummy_security(self) -> SecurityConfig:
        """A definition no credentials match, verified like a real one: an unknown user name costs the
        same argon2 verification as a wrong password."""
        if self._dummy is None:
            self._dummy = SecurityConfig(id=-1, name='zato.pubsub.nobody', kind='basic_auth',
                                         username=secrets.token_hex(16),
                                         password_hash=hash_password(secrets.token_hex(16)))
        return self._dummy

    def endpoint_of(self, channel: ChannelInfo) -> Endpoint:
        sec = channel.security
        endpoint = self.by_security.get(sec.id) if sec is not None and sec.id is not None else None
        if endpoint is None or not endpoint.is_active:
            raise NotAllowed()
        return endpoint

    # What the REST API and self.pubsub share

    def publish(self, topic_name: str, data: dict[str, Any], endpoint: Endpoint | None = None) -> list[str]:
        """Publishes as `endpoint` (None: a service, which may publish to any topic): the message `data`
        describes, or each of its `data_list` (a list of such descriptions, all committed or none);
        their msg_ids."""
        error = topic_name_error(topic_name)
        if error is not None:
            raise BadRequest(f'Invalid topic name: {error}')
        pattern = ''
        if endpoint is not None:
            pattern = can_publish(endpoint.role, endpoint.patterns, topic_name) or ''
            if not pattern:
                raise NotAllowed()
        data_list = data.get('data_list')
        if data_list is None:
            items = [data]
        elif data.get('data') is not None:
            raise BadRequest('Invalid input `data_list`: expected either `data` or `data_list`')
        elif not isinstance(data_list, list) or not 1 <= len(data_list) <= MAX_BATCH or \
                not all(isinstance(item, dict) for item in data_list):
            raise BadRequest(f'Invalid input `data_list`: expected 1 to {MAX_BATCH} objects, each with its `data`')
        else:
            items = data_list
        kept = self._before_publish(topic_name, items)
        msgs = [new_message(item, self.max_data_size) for item in kept if item is not None]
        msg_ids: list[str] = []
        if msgs:
            pub = Publication(topic_name, msgs, None if endpoint is None else endpoint.id, pattern)
            published = self.gd.publish_list(topic_name, msgs, pub.endpoint_id, pattern) if self.batcher is None \
                else self.batcher.publish(pub)
            self.meta.published(pub.endpoint_id, time.time())
            if published.dropped:
                logger.info('%d message(s) to `%s` dropped: the topic has no subscribers', len(msgs), topic_name)
            elif self.on_published is not None:
                self.on_published(topic_name)
            msg_ids = published.msg_ids
        # A message the hook skipped still has its msg_id (3.1), in its place among the others
        stored = iter(msg_ids)
        return [new_msg_id() if item is None else next(stored) for item in kept]

    def _before_publish(self, topic_name: str, items: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """The messages as the topic's hook (zato.pubsub.hook) left them, None for those it skipped."""
        service_name = self.topic_hook(topic_name)
        if not service_name:
            return list(items)
        kept: list[dict[str, Any] | None] = []
        for item in items:
            try:
                kept.append(ps_hook.before_publish(self.runtime, service_name, topic_name, item))
            except Exception:
                logger.exception('Exception in %s.before_publish (topic `%s`); nothing is published',
                                 service_name, topic_name)
                raise HookFailed(f'Publication rejected: the hook service of topic `{topic_name}` failed') from None
        return kept

    def subscribe(self, topic_name: str, endpoint: Endpoint, api: bool = True) -> dict[str, Any]:
        """A new pull subscription of the endpoint to the topic: {sub_key, queue_depth}. `api`: asked
        by the endpoint itself, which the topic's `is_api_sub_allowed` must allow."""
        if not can_subscribe(endpoint.role, endpoint.patterns, topic_name):
            raise NotAllowed()
        with self.runtime.Session() as session:
            topic = session.scalars(select(PubSubTopic).where(PubSubTopic.cluster_id == self.runtime.cluster_id,
                                                              PubSubTopic.name == topic_name)).one_or_none()
            if topic is None:
                raise NotFound(f'Topic `{topic_name}` not found')
            if api and not topic.is_api_sub_allowed:
                raise NotAllowed()
            row = PubSubSubscription(cluster_id=self.runtime.cluster_id, sub_key=new_sub_key(endpoint.endpoint_type),
                                     endpoint_id=endpoint.id, topic_id=topic.id, creation_time=time.time(),
                                     delivery_method='pull', opaque={})
            session.add(row)
            AdminService.flush_or_conflict(session, f'Subscription to topic `{topic_name}`')
            self.runtime.commit_change(session, 'pubsub_sub', row.id, action='create')
            sub_key, hook_service = row.sub_key, topic.hook_service
        ps_hook.on_subscription(self.runtime, ps_hook.ON_SUBSCRIBED, hook_service, topic_name, sub_key, endpoint.name)
        return {'sub_key': sub_key, 'queue_depth': 0}

    def subscription(self, sub_key: Any, endpoint: Endpoint | None = None, topic_name: str | None = None) -> int:
        """The id of the subscription `sub_key` names, which must be `endpoint`'s (when given) and of
        `topic_name` (when given); SubKeyNotFound (one 404 that says no more) for anything else."""
        return self.subscription_of(sub_key, endpoint, topic_name)[0]

    def subscription_of(self, sub_key: Any, endpoint: Endpoint | None = None,
                        topic_name: str | None = None) -> tuple[int, int, str]:
        """(sub id, endpoint id, topic name) of the subscription `sub_key` names, as `subscription` checks it."""
        if not isinstance(sub_key, str) or not sub_key or len(sub_key) > 80:
            raise SubKeyNotFound()
        row = self._subs.get(sub_key)
        if row is None:
            generation = self._generation
            with self.runtime.Session() as session:
                query = select(PubSubSubscription.id, PubSubSubscription.endpoint_id, PubSubTopic.name) \
                    .join(PubSubTopic, PubSubTopic.id == PubSubSubscription.topic_id) \
                    .where(PubSubSubscription.cluster_id == self.runtime.cluster_id,
                           PubSubSubscription.sub_key == sub_key)
                found = session.execute(query).first()
            if found is not None:
                row = (int(found[0]), int(found[1]), str(found[2]))
                if generation == self._generation:  # no change was heard while it was read
                    self._subs[sub_key] = row
        if row is None or (endpoint is not None and row[1] != endpoint.id) or \
                (topic_name is not None and row[2] != topic_name):
            raise SubKeyNotFound()
        return row

    def ack(self, sub_id: int, endpoint_id: int, msg_ids: list[str]) -> int:
        """Takes the messages off the subscription's queue; how many it held. Any: a delivery to the endpoint."""
        acked = self.gd.ack(sub_id, msg_ids)
        if acked:
            self.meta.delivered(endpoint_id, time.time())
        return acked

    def get_and_delete(self, sub_id: int, endpoint_id: int, max_messages: int) -> list[dict[str, Any]]:
        """3.1's get-messages: up to `max_messages`, deleted as they are returned (a delivery, when any)."""
        msgs = self.gd.get_and_delete(sub_id, max_messages)
        if msgs:
            self.meta.delivered(endpoint_id, time.time())
        return [public(m) for m in msgs]

    def unsubscribe(self, sub_id: int) -> None:
        """Deletes the subscription with its queue (messages no other queue holds go with it)."""
        store = self.gd
        info = self.hook_info(sub_id)
        with store.transaction() as conn:
            store.delete_queue(conn, sub_id)
            conn.execute(delete(PubSubSubscription).where(PubSubSubscription.id == sub_id))
        with self.runtime.Session() as session:
            self.runtime.commit_change(session, 'pubsub_sub', sub_id, action='delete')
        self._forget(lambda sub: sub[0] == sub_id, topics=False)  # at once here; the bus tells the others
        if info is not None:
            ps_hook.on_subscription(self.runtime, ps_hook.ON_UNSUBSCRIBED, *info)

    def hook_info(self, sub_id: int) -> tuple[str | None, str, str, str] | None:
        """What on_subscribed/on_unsubscribed of the subscription are given: (the hook service, the topic's
        name, the sub_key, the endpoint's name); None: no such subscription."""
        with self.runtime.Session() as session:
            row = session.execute(
                select(PubSubSubscription.hook_service, PubSubTopic.hook_service, PubSubTopic.name,
                       PubSubSubscription.sub_key, PubSubEndpoint.name)
                .join(PubSubTopic, PubSubTopic.id == PubSubSubscription.topic_id)
                .join(PubSubEndpoint, PubSubEndpoint.id == PubSubSubscription.endpoint_id)
                .where(PubSubSubscription.id == sub_id)).first()
        if row is None:
            return None
        return row[0] or row[1] or None, str(row[2]), str(row[3]), str(row[4])

    # Browsing queues (the Python API's read_messages and the admin API share these)

    def read_messages(self, sub_id: int, paginate: bool = True, query: str = '', cur_page: int = 1) -> dict[str, Any]:
        """A page of the subscription's queue in delivery order, nothing dequeued: {messages, total,
        cur_page, num_pages, page_size}; without `paginate`, every message in one page."""
        if not isinstance(query, str) or len(query) > 200:
            raise BadRequest('Invalid input `query`: expected a string of at most 200 characters')
        if not isinstance(cur_page, int) or isinstance(cur_page, bool) or cur_page < 1:
            raise BadRequest('Invalid input `page`: expected an integer from 1')
        if paginate:
            messages, total = self.gd.browse(sub_id, (cur_page - 1) * PAGE_SIZE, PAGE_SIZE, query)
            num_pages = max(1, -(-total // PAGE_SIZE))
        else:
            messages, total = self.gd.browse(sub_id, 0, None, query)
            cur_page, num_pages = 1, 1
        return {'messages': [public(m) for m in messages], 'total': total, 'cur_page': cur_page,
                'num_pages': num_pages, 'page_size': PAGE_SIZE if paginate else total}

    def read_message(self, msg_id: Any, sub_id: int | None = None, topic_name: str | None = None) -> dict[str, Any]:
        """The message (of `topic_name`, in the queue of `sub_id`, when given); 404 otherwise."""
        if not isinstance(msg_id, str) or not msg_id or len(msg_id) > 80:
            raise BadRequest('Invalid input `msg_id`: expected a message id')
        message = self.gd.message(msg_id, sub_id)
        if message is None or (topic_name is not None and message['topic_name'] != topic_name):
            raise NotFound(f'Message `{msg_id}` not found')
        return public(message)

    def api(self) -> PubSubAPI:
        return PubSubAPI(self)


class PubSubAPI:
    """`self.pubsub` of a service: trusted code, which may publish to any topic and read any queue
    whose sub_key it has (3.1's rules)."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    def publish(self, topic_name: str, data: Any = None, *, data_list: list[dict[str, Any]] | None = None,
                endpoint_name: str | None = None, **fields: Any) -> Any:
        """Publishes `data` with 3.1's fields (priority, expiration in milliseconds, mime_type, correl_id,
        in_reply_to, ext_client_id, group_id, ext_pub_time, has_gd) and returns its msg_id; or each
        message of `data_list` (dicts of those fields), all or none, and returns their msg_ids. With
        `endpoint_name`, as that endpoint, whose role and `pub=` patterns must allow it."""
        endpoint = None if endpoint_name is None else self._pubsub.endpoint_by_name(endpoint_name)
        if data_list is not None:
            return self._pubsub.publish(topic_name, {'data_list': data_list}, endpoint)
        return self._pubsub.publish(topic_name, {**fields, 'data': data}, endpoint)[0]

    def subscribe(self, topic_name: str, endpoint_name: str | None = None, *, use_current_wsx: bool = False,
                  service: Any = None, unsub_on_wsx_close: bool = False) -> str:
        """Subscribes the endpoint (its role and `sub=` patterns must allow it) to the topic; the sub_key.
        With `use_current_wsx=True` and `service=self`, the endpoint of the WebSocket channel of the client
        the service runs for, and the subscription's messages are pushed to that client."""
        if use_current_wsx:
            client = _wsx_client(service)
            wsx = self._pubsub.wsx
            out = wsx.subscribe(client, wsx.endpoint_of(client), topic_name, unsub_on_wsx_close, api=False)
            return str(out['sub_key'])
        if endpoint_name is None:
            raise BadRequest('Missing input `endpoint_name`')
        endpoint = self._pubsub.endpoint_by_name(endpoint_name)
        return str(self._pubsub.subscribe(topic_name, endpoint, api=False)['sub_key'])

    def resume_wsx_subscription(self, sub_key: str, service: Any) -> None:
        """Attaches the subscription `sub_key` (of the channel's endpoint) to the WebSocket client the
        service runs for: its queued messages are pushed to that client."""
        client = _wsx_client(service)
        wsx = self._pubsub.wsx
        wsx.resume(client, wsx.endpoint_of(client), sub_key)

    def unsubscribe(self, sub_key: str) -> None:
        self._pubsub.unsubscribe(self._pubsub.subscription(sub_key))

    def get_messages(self, topic_name: str, sub_key: str, max_messages: int = DEFAULT_BATCH) -> list[dict[str, Any]]:
        """3.1's get-messages: up to `max_messages` in delivery order, deleted from the queue as they are
        returned (prefer `pull` and `ack`, with which a message is lost by no failure)."""
        sub_id, endpoint_id, _ = self._pubsub.subscription_of(sub_key, topic_name=topic_name)
        return self._pubsub.get_and_delete(sub_id, endpoint_id, max_messages)

    def pull(self, sub_key: str, max_messages: int = DEFAULT_BATCH,
             visibility_timeout: float = DEFAULT_VISIBILITY) -> list[dict[str, Any]]:
        """Up to `max_messages` in delivery order, invisible to other pulls for `visibility_timeout`
        seconds; each stays queued until acknowledged (`ack`), else it comes back with a higher
        `delivery_count`."""
        sub_id = self._pubsub.subscription(sub_key)
        return [public(m) for m in self._pubsub.gd.pull(sub_id, max_messages, visibility_timeout)]

    def ack(self, sub_key: str, msg_ids: list[str]) -> int:
        """Removes the messages from the subscription's queue; how many it held."""
        sub_id, endpoint_id, _ = self._pubsub.subscription_of(sub_key)
        return self._pubsub.ack(sub_id, endpoint_id, msg_ids)


    # Browsing queues

    def read_messages(self, topic_name: str, sub_key: str, paginate: bool = True, query: str = '',
                      cur_page: int = 1) -> dict[str, Any]:
        """Browses the subscription's queue without taking anything off it: a page (`cur_page`, from 1) of
        its messages in delivery order, only those whose data contains `query`, as {messages, total,
        cur_page, num_pages, page_size}; without `paginate`, all of them."""
        sub_id = self._pubsub.subscription(sub_key, topic_name=topic_name)
        return self._pubsub.read_messages(sub_id, paginate, query, cur_page)

    def read_message(self, topic_name: str, msg_id: str, sub_key: str | None = None) -> dict[str, Any]:
        """One message of the topic (with `sub_key`: while that subscription's queue holds it, with its
        delivery_count there); NotFound when there is none."""
        sub_id = None if sub_key is None else self._pubsub.subscription(sub_key, topic_name=topic_name)
        return self._pubsub.read_message(msg_id, sub_id, topic_name)

    def delete_message(self, sub_key: str, msg_id: str) -> bool:
        """Takes the message off the subscription's queue (as an ack does); whether the queue held it."""
        sub_id, endpoint_id, _ = self._pubsub.subscription_of(sub_key)
        return self._pubsub.ack(sub_id, endpoint_id, [msg_id]) == 1


def _wsx_client(service: Any) -> Any:
    client = (getattr(service, 'environ', None) or {}).get('web_socket')
    if client is None:
        raise BadRequest('Not invoked by a WebSocket client: no WSX connection to use')
    return client


# ################################################################################################ REST API

class _PubAPIService(AdminService):
    """A REST call of a pub/sub endpoint: which endpoint, the topic of the URL path, the input."""

    zato_dont_import = True

    @property
    def ps(self) -> PubSub:
        return self.server.pubsub

    def endpoint(self) -> Endpoint:
        return self.ps.endpoint_of(self.channel)

    def topic_name(self, prefix: str) -> str:
        http = self.request.http
        path = http.path if http is not None else ''
        return path[len(prefix):] if path.startswith(prefix + '/') else ''

    def sub_key(self, data: dict[str, Any]) -> Any:
        sub_key = data.get('sub_key')
        if sub_key is None:
            raise BadRequest('Missing input `sub_key`')
        return sub_key

    def batch(self, data: dict[str, Any]) -> int:
        value: int = self.field(data, 'max_messages', int, False, DEFAULT_BATCH)
        if not 1 <= value <= MAX_BATCH:
            raise BadRequest(f'Invalid input `max_messages`: expected 1 to {MAX_BATCH}')
        return value


class Publish(_PubAPIService):
    """POST /zato/pubsub/topic/{topic} {data, priority, expiration (ms), ...} -> {"msg_id": ...}, or
    {data_list: [{data, ...}, ...]} -> {"msg_id_list": [...]}. With a `sub_key` (query string or body)
    and no `data`, 3.1's get-messages instead."""
    name = PUBLISH

    def handle(self) -> None:
        endpoint = self.endpoint()
        topic_name = self.topic_name(TOPIC_PREFIX)
        data = self.input_dict()  # the body, and the query string over it
        if data.get('sub_key') is not None and data.get('data') is None and data.get('data_list') is None:
            self.response.payload = _get_messages(self, endpoint, topic_name, data)
            return
        msg_ids = self.ps.publish(topic_name, data, endpoint)
        self.response.payload = {'msg_id_list': msg_ids} if 'data_list' in data else {'msg_id': msg_ids[0]}


def _get_messages(svc: _PubAPIService, endpoint: Endpoint, topic_name: str, data: dict[str, Any]) -> list[Any]:
    sub_id = svc.ps.subscription(svc.sub_key(data), endpoint, topic_name)
    return svc.ps.get_and_delete(sub_id, endpoint.id, svc.batch(data))


class GetMessages(_PubAPIService):
    """GET /zato/pubsub/topic/{topic}?sub_key=... -> 3.1's get-messages: messages in delivery order,
    deleted from the queue as they are returned (kept for compatibility; see /zato/pubsub/msg/pull)."""
    name = GET_MESSAGES

    def handle(self) -> None:
        endpoint = self.endpoint()
        http = self.request.http
        if http is not None and http.method == 'HEAD':
            # The router serves HEAD with the GET channel, and a HEAD answer has no body: messages taken
            # from the queue for it would be lost, so the queue is not touched
            self.ps.subscription(self.sub_key(self.input_dict()), endpoint, self.topic_name(TOPIC_PREFIX))
            self.response.payload = []
            return
        self.response.payload = _get_messages(self, endpoint, self.topic_name(TOPIC_PREFIX), self.input_dict())


class Subscribe(_PubAPIService):
    """POST /zato/pubsub/subscribe/topic/{topic} -> {"sub_key": ..., "queue_depth": 0}."""
    name = SUBSCRIBE

    def handle(self) -> None:
        endpoint = self.endpoint()
        topic_name = self.topic_name(SUBSCRIBE_PREFIX)
        self.response.payload = self.ps.subscribe(topic_name, endpoint)


class Unsubscribe(_PubAPIService):
    """DELETE /zato/pubsub/subscribe/topic/{topic}?sub_key=... -> {}."""
    name = UNSUBSCRIBE

    def handle(self) -> None:
        endpoint = self.endpoint()
        data = self.input_dict()
        sub_id = self.ps.subscription(self.sub_key(data), endpoint, self.topic_name(SUBSCRIBE_PREFIX))
        self.ps.unsubscribe(sub_id)
        self.response.payload = {}


class Pull(_PubAPIService):
    """POST /zato/pubsub/msg/pull {sub_key, max_messages?, visibility_timeout? (seconds)} -> messages in
    delivery order, each invisible to other pulls until acknowledged or until the timeout."""
    name = PULL

    def handle(self) -> None:
        endpoint = self.endpoint()
        data = self.input_dict()
        sub_id = self.ps.subscription(self.sub_key(data), endpoint)
        timeout: float = self.field(data, 'visibility_timeout', float, False, DEFAULT_VISIBILITY)
        if not 0 < timeout <= MAX_VISIBILITY:
            raise BadRequest('Invalid input `visibility_timeout`: expected more than 0 and at most '
                             f'{MAX_VISIBILITY:g} seconds')
        self.response.payload = [public(m) for m in self.ps.gd.pull(sub_id, self.batch(data), timeout)]


class Ack(_PubAPIService):
    """POST /zato/pubsub/msg/ack {sub_key, msg_ids: [...]} -> {"acked": n}: the messages leave the queue."""
    name = ACK

    def handle(self) -> None:
        endpoint = self.endpoint()
        data = self.input_dict()
        sub_id = self.ps.subscription(self.sub_key(data), endpoint)
        msg_ids = self.field(data, 'msg_ids', list)
        if not msg_ids or len(msg_ids) > MAX_BATCH or not all(isinstance(m, str) and len(m) <= 80 for m in msg_ids):
            raise BadRequest(f'Invalid input `msg_ids`: expected 1 to {MAX_BATCH} message ids')
        self.response.payload = {'acked': self.ps.ack(sub_id, endpoint.id, msg_ids)}


class DeleteMessage(_PubAPIService):
    """DELETE /zato/pubsub/msg/{msg_id}?sub_key=... -> {"acked": 0 or 1}: 3.1's delete, an ack of one."""
    name = DELETE_MESSAGE

    def handle(self) -> None:
        endpoint = self.endpoint()
        data = self.input_dict()
        sub_id = self.ps.subscription(self.sub_key(data), endpoint)
        http = self.request.http
        msg_id = str(http.params.get('msg_id', '')) if http is not None else ''
        self.response.payload = {'acked': self.ps.ack(sub_id, endpoint.id, [msg_id])}

