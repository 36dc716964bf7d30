"""Admin services of pub/sub (/zato/admin/pubsub/...), with 3.1's names: topics, endpoints and
subscriptions (zato.pubsub.topic.*, zato.pubsub.endpoint.*, zato.pubsub.subscription.*), and the
delivery tasks of the cluster's push subscriptions by server (zato.pubsub.delivery-task.get-list).

Deleting a topic or an endpoint that still has subscriptions is refused (409): their queues may hold
messages that were promised to subscribers, so they go only by deleting each subscription, which
deletes its queue (and the messages no other queue holds) in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text

from zato.errors import BadRequest, Conflict, NotFound
from zato.odb.lease import _NOW
from zato.odb.models import ChannelWSX, Lease, OutConn, PubSubEndpoint, PubSubSubscription, PubSubTopic
from zato.pubsub import hook as ps_hook
from zato.pubsub.keys import new_sub_key
from zato.pubsub.message import INPUTS as MESSAGE_INPUTS
from zato.pubsub.matcher import ROLES, can_subscribe, parse_patterns, topic_name_error
from zato.server.admin.base import AdminService
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList
from zato.server.pubsub_delivery import lease_name

ENDPOINT_TYPES = ('rest', 'wsx', 'srv')
ON_NO_SUBS = ('accept', 'drop')
DELIVERY_METHODS = ('notify', 'pull')

# field, minimum, maximum, default (3.1's defaults)
_TOPIC_INTS = (('max_depth_gd', 1, 100_000_000, 10_000), ('max_depth_non_gd', 1, 10_000_000, 1000),
               ('depth_check_freq', 1, 1_000_000, 100), ('pub_buffer_size_gd', 0, 1_000_000, 0),
               ('task_sync_interval', 1, 3_600_000, 500), ('task_delivery_interval', 1, 3_600_000, 2000))
_SUB_INTS = (('delivery_batch_size', 1, 15_000, 500), ('delivery_max_retry', 1, 2_147_483_647, 123_456_789),
             ('wait_sock_err', 0, 86_400, 10), ('wait_non_sock_err', 0, 86_400, 30))

TOPIC_INPUTS = frozenset(('id', 'name', 'is_active', 'has_gd', 'is_api_sub_allowed', 'on_no_subs_pub', 'hook_service',
                          *(name for name, *_ in _TOPIC_INTS)))
ENDPOINT_INPUTS = frozenset(('id', 'name', 'endpoint_type', 'role', 'topic_patterns', 'security', 'service',
                             'ws_channel', 'is_active'))
SUB_INPUTS = frozenset(('id', 'endpoint', 'topic', 'is_active', 'delivery_method', 'wrap_one_msg_in_list',
                        'delivery_err_should_block', 'ext_client_id', 'out_rest', 'out_http_method', 'hook_service',
                        *(name for name, *_ in _SUB_INTS)))

# How a push subscription of a REST endpoint calls its outgoing REST connection
OUT_HTTP_METHODS = ('POST', 'PUT', 'PATCH', 'GET', 'DELETE')


def _known(data: dict[str, Any], inputs: frozenset[str], what: str) -> None:
    unknown = sorted(set(data) - inputs)
    if unknown:
        raise BadRequest(f'Invalid input `{unknown[0]}`: a {what} has no such field')


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadRequest(f'Invalid input `{name}`: expected one of {", ".join(allowed)}')
    return value


def _ints(data: dict[str, Any], row: Any, fields: tuple[tuple[str, int, int, int], ...], creating: bool) -> None:
    for name, low, high, default in fields:
        value = AdminService.field(data, name, int, False, default if creating else getattr(row, name))
        if not low <= value <= high:
            raise BadRequest(f'Invalid input `{name}`: expected {low} to {high}')
        setattr(row, name, value)


def _subscription_count(session: Any, column: Any, obj_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(PubSubSubscription).where(column == obj_id)) or 0)


# ################################################################################################ topics

class _TopicBase(CRUD):
    zato_dont_import = True

    model = PubSubTopic
    label = 'pub/sub topic'
    bus_kind = 'pubsub_topic'

    def _new_row(self) -> PubSubTopic:
        return PubSubTopic(cluster_id=self.server.cluster_id, version=1, opaque={}, gd_depth=0)

    def _apply(self, session: Any, row: PubSubTopic, data: dict[str, Any], creating: bool) -> None:
        _known(data, TOPIC_INPUTS, 'topic')
        f = self.field
        row.name = f(data, 'name', str, creating, row.name)
        error = topic_name_error(row.name)
        if error is not None:
            raise BadRequest(f'Invalid input `name`: {error}')
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        row.has_gd = f(data, 'has_gd', bool, False, True if creating else row.has_gd)
        row.is_api_sub_allowed = f(data, 'is_api_sub_allowed', bool, False,
                                   True if creating else row.is_api_sub_allowed)
        row.on_no_subs_pub = _one_of('on_no_subs_pub', f(data, 'on_no_subs_pub', str, False,
                                                         'accept' if creating else row.on_no_subs_pub), ON_NO_SUBS)
        _ints(data, row, _TOPIC_INTS, creating)
        if 'hook_service' in data:
            hook = self.ref_name(data, 'hook_service', 'a service')
            if hook is not None and hook != row.hook_service and not self._service_exists(session, hook):
                raise BadRequest(f'Invalid input `hook_service`: service `{hook}` is not deployed')
            row.hook_service = hook

    def _to_dict(self, session: Any, row: PubSubTopic) -> dict[str, Any]:
        return {'id': row.id, 'name': row.name, 'is_active': row.is_active, 'has_gd': row.has_gd,
                'is_api_sub_allowed': row.is_api_sub_allowed, 'on_no_subs_pub': row.on_no_subs_pub,
                'hook_service': row.hook_service, **{name: getattr(row, name) for name, *_ in _TOPIC_INTS},
                'gd_depth': row.gd_depth, 'last_pub_time': row.last_pub_time,
                'subscriptions': _subscription_count(session, PubSubSubscription.topic_id, row.id)}

    def _check_unused(self, session: Any, row: PubSubTopic) -> None:
        count = _subscription_count(session, PubSubSubscription.topic_id, row.id)
        if count:
            raise Conflict(f'Topic `{row.name}` has {count} subscription(s); delete them first')


class CreateTopic(_TopicBase, Create):
    name = 'zato.pubsub.topic.create'


class EditTopic(_TopicBase, Edit):
    name = 'zato.pubsub.topic.edit'


class DeleteTopic(_TopicBase, Delete):
    name = 'zato.pubsub.topic.delete'


class GetTopic(_TopicBase, Get):
    name = 'zato.pubsub.topic.get'


class GetTopicList(_TopicBase, GetList):
    name = 'zato.pubsub.topic.get-list'


# ################################################################################################ endpoints

class _EndpointBase(CRUD):
    zato_dont_import = True

    model = PubSubEndpoint
    label = 'pub/sub endpoint'
    bus_kind = 'pubsub_endpoint'

    def _new_row(self) -> PubSubEndpoint:
        return PubSubEndpoint(cluster_id=self.server.cluster_id, version=1, opaque={}, topic_patterns='')

    def _apply(self, session: Any, row: PubSubEndpoint, data: dict[str, Any], creating: bool) -> None:
        _known(data, ENDPOINT_INPUTS, 'pub/sub endpoint')
        f = self.field
        self._apply_name(row, data, creating)
        row.endpoint_type = _one_of('endpoint_type', f(data, 'endpoint_type', str, creating, row.endpoint_type),
                                    ENDPOINT_TYPES)
        row.role = _one_of('role', f(data, 'role', str, creating, row.role), ROLES)
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        patterns = data.get('topic_patterns')
        if isinstance(patterns, list) and all(isinstance(line, str) for line in patterns):
            patterns = '\n'.join(patterns)
        elif patterns is not None and not isinstance(patterns, str):
            raise BadRequest('Invalid input `topic_patterns`: expected lines of pub=<pattern> or sub=<pattern>')
        if patterns is not None:
            try:
                parse_patterns(patterns)
            except ValueError as e:
                raise BadRequest(f'Invalid input `topic_patterns`: {e}') from None
            row.topic_patterns = patterns
        row.security_id = self.resolve_security(session, data, row.security_id, ('basic_auth',))
        if row.endpoint_type == 'rest':
            if row.security_id is None:
                raise BadRequest('Invalid input `security`: a REST endpoint is identified by a Basic Auth definition')
            taken = session.scalars(select(PubSubEndpoint.name).where(
                PubSubEndpoint.security_id == row.security_id, PubSubEndpoint.id != (row.id or -1))).first()
            if taken is not None:
                raise Conflict(f'Security definition is used by pub/sub endpoint `{taken}` already')
        if 'service' in data or (creating and row.endpoint_type == 'srv'):
            service = self.ref_name(data, 'service', 'a service')
            if row.endpoint_type == 'srv' and service is None:
                raise BadRequest('Missing input `service`')
            if service is not None and service != row.service_name and not self._service_exists(session, service):
                raise BadRequest(f'Invalid input `service`: service `{service}` is not deployed')
            row.service_name = service
        if 'ws_channel' in data or (creating and row.endpoint_type == 'wsx'):
            row.ws_channel_id = self._ws_channel(session, data, row.endpoint_type == 'wsx')

    def _ws_channel(self, session: Any, data: dict[str, Any], required: bool) -> int | None:
        name = self.ref_name(data, 'ws_channel', 'a WebSocket channel')
        if name is None:
            if required:
                raise BadRequest('Missing input `ws_channel`')
            return None
        chan_id = session.scalars(select(ChannelWSX.id).where(ChannelWSX.cluster_id == self.server.cluster_id,
                                                              ChannelWSX.name == name)).first()
        if chan_id is None:
            raise BadRequest(f'Invalid input `ws_channel`: no WebSocket channel named `{name}`')
        return int(chan_id)

    def _to_dict(self, session: Any, row: PubSubEndpoint) -> dict[str, Any]:
        ws_channel = None if row.ws_channel_id is None else session.get(ChannelWSX, row.ws_channel_id)
        return {'id': row.id, 'name': row.name, 'endpoint_type': row.endpoint_type, 'role': row.role,
                'topic_patterns': row.topic_patterns, 'security': self._sec_name(session, row.security_id),
                'security_id': row.security_id, 'service': row.service_name,
                'ws_channel': None if ws_channel is None else ws_channel.name, 'is_active': row.is_active,
                'last_seen': row.last_seen, 'last_pub_time': row.last_pub_time, 'last_sub_time': row.last_sub_time,
                'last_delivery_time': row.last_delivery_time,
                'subscriptions': _subscription_count(session, PubSubSubscription.endpoint_id, row.id)}

    def _check_unused(self, session: Any, row: PubSubEndpoint) -> None:
        count = _subscription_count(session, PubSubSubscription.endpoint_id, row.id)
        if count:
            raise Conflict(f'Pub/sub endpoint `{row.name}` has {count} subscription(s); delete them first')


class CreateEndpoint(_EndpointBase, Create):
    name = 'zato.pubsub.endpoint.create'


class EditEndpoint(_EndpointBase, Edit):
    name = 'zato.pubsub.endpoint.edit'


class DeleteEndpoint(_EndpointBase, Delete):
    name = 'zato.pubsub.endpoint.delete'


class GetEndpoint(_EndpointBase, Get):
    name = 'zato.pubsub.endpoint.get'


class GetEndpointList(_EndpointBase, GetList):
    name = 'zato.pubsub.endpoint.get-list'


# ################################################################################################ subscriptions

class _SubscriptionBase(CRUD):
    zato_dont_import = True

    model = PubSubSubscription
    label = 'pub/sub subscription'
    bus_kind = 'pubsub_sub'

    _topic_name = ''

    def _new_row(self) -> PubSubSubscription:
        return PubSubSubscription(cluster_id=self.server.cluster_id, version=1, opaque={}, creation_time=time.time())

    def _named(self, row: Any) -> str:
        return f'Subscription to topic `{self._topic_name}`'

    def _list_rows(self, session: Any) -> Sequence[Any]:
        return session.scalars(select(PubSubSubscription).where(
            PubSubSubscription.cluster_id == self.server.cluster_id).order_by(PubSubSubscription.id)).all()

    def _by_name(self, session: Any, model: type, data: dict[str, Any], name: str, what: str) -> Any:
        value = self.ref_name(data, name, what)
        if value is None:
            raise BadRequest(f'Missing input `{name}`')
        row = session.scalars(select(model).where(model.cluster_id == self.server.cluster_id,  # type: ignore[attr-defined]
                                                  model.name == value)).one_or_none()  # type: ignore[attr-defined]
        if row is None:
            raise BadRequest(f'Invalid input `{name}`: no {what[2:]} named `{value}`')
        return row

    def _apply(self, session: Any, row: PubSubSubscription, data: dict[str, Any], creating: bool) -> None:
        _known(data, SUB_INPUTS, 'subscription')
        f = self.field
        if creating:
            endpoint = self._by_name(session, PubSubEndpoint, data, 'endpoint', 'a pub/sub endpoint')
            topic = self._by_name(session, PubSubTopic, data, 'topic', 'a pub/sub topic')
            if not can_subscribe(endpoint.role, parse_patterns(endpoint.topic_patterns or ''), topic.name):
                raise BadRequest(f'Invalid input `topic`: endpoint `{endpoint.name}` may not subscribe to '
                                 f'`{topic.name}` (its role and sub= patterns do not allow it)')
            row.endpoint_id, row.topic_id = endpoint.id, topic.id
            row.sub_key = new_sub_key(endpoint.endpoint_type)
        else:
            for name in ('endpoint', 'topic'):
                if data.get(name) is not None:
                    raise BadRequest(f'Invalid input `{name}`: a subscription keeps its {name}; delete it and '
                                     'subscribe again')
        topic_row = session.get(PubSubTopic, row.topic_id)
        self._topic_name = topic_row.name if topic_row is not None else ''
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        row.delivery_method = _one_of('delivery_method', f(data, 'delivery_method', str, False,
                                                           'pull' if creating else row.delivery_method),
                                      DELIVERY_METHODS)
        row.wrap_one_msg_in_list = f(data, 'wrap_one_msg_in_list', bool, False,
                                     True if creating else row.wrap_one_msg_in_list)
        row.delivery_err_should_block = f(data, 'delivery_err_should_block', bool, False,
                                          True if creating else row.delivery_err_should_block)
        self._apply_push(session, row, data, creating)
        ext_client_id = f(data, 'ext_client_id', str, False, '' if creating else row.ext_client_id)
        if len(ext_client_id) > 200:
            raise BadRequest('Invalid input `ext_client_id`: expected at most 200 characters')
        row.ext_client_id = ext_client_id
        _ints(data, row, _SUB_INTS, creating)

    def _apply_push(self, session: Any, row: PubSubSubscription, data: dict[str, Any], creating: bool) -> None:
        """Where a push (`notify`) subscription delivers: a REST endpoint's through the outgoing REST
        connection `out_rest` with `out_http_method`, a service endpoint's to its service; a WebSocket
        endpoint's subscriptions are pushed by their client's connection, so they are `pull` here. And
        the subscription's own PubSubHook (`hook_service`), which wins over its topic's."""
        if 'out_rest' in data:
            name = data['out_rest']
            if name is None or name == '':
                row.out_rest_id = None
            else:
                if not isinstance(name, str):
                    raise BadRequest('Invalid input `out_rest`: expected the name of an outgoing REST connection')
                conn = session.scalars(select(OutConn.id).where(OutConn.cluster_id == self.server.cluster_id,
                                                                OutConn.kind == 'rest', OutConn.name == name)).first()
                if conn is None:
                    raise BadRequest(f'Invalid input `out_rest`: no outgoing REST connection named `{name}`')
                row.out_rest_id = conn
        method = data.get('out_http_method') or ('POST' if creating else row.out_http_method)  # empty: as it was
        if not isinstance(method, str) or method.upper() not in OUT_HTTP_METHODS:
            raise BadRequest(f'Invalid input `out_http_method`: expected one of {", ".join(OUT_HTTP_METHODS)}')
        row.out_http_method = method.upper()
        if 'hook_service' in data:
            hook = self.ref_name(data, 'hook_service', 'a service')
            if hook is not None and hook != row.hook_service and not self._service_exists(session, hook):
                raise BadRequest(f'Invalid input `hook_service`: service `{hook}` is not deployed')
            row.hook_service = hook
        if row.delivery_method == 'notify':
            endpoint = session.get(PubSubEndpoint, row.endpoint_id)
            kind = endpoint.endpoint_type if endpoint is not None else ''
            if kind == 'wsx':
                raise BadRequest('Invalid input `delivery_method`: a WebSocket endpoint\'s subscriptions are pushed '
                                 'over their client\'s connection; use `pull`')
            if kind == 'rest' and row.out_rest_id is None:
                raise BadRequest('Invalid input `out_rest`: a `notify` subscription of a REST endpoint needs the '
                                 'outgoing REST connection to push to')

    def _to_dict(self, session: Any, row: PubSubSubscription) -> dict[str, Any]:
        endpoint = session.get(PubSubEndpoint, row.endpoint_id)
        topic = session.get(PubSubTopic, row.topic_id)
        return {'id': row.id, 'sub_key': row.sub_key, 'endpoint': endpoint.name if endpoint else None,
                'topic': topic.name if topic else None, 'is_active': row.is_active,
                'creation_time': row.creation_time, 'delivery_method': row.delivery_method,
                'wrap_one_msg_in_list': row.wrap_one_msg_in_list,
                'delivery_err_should_block': row.delivery_err_should_block, 'ext_client_id': row.ext_client_id,
                'out_rest': _out_rest_name(session, row.out_rest_id), 'out_http_method': row.out_http_method,
                'hook_service': row.hook_service,
                **{name: getattr(row, name) for name, *_ in _SUB_INTS},
                'queue_depth': self.server.pubsub.gd.depth(row.id), 'last_delivery_time': row.last_delivery_time}


def _out_rest_name(session: Any, out_rest_id: int | None) -> str | None:
    conn = session.get(OutConn, out_rest_id) if out_rest_id is not None else None
    return conn.name if conn is not None else None


class CreateSubscription(_SubscriptionBase, Create):
    """A new subscription; then the on_subscribed hook of its topic (zato.pubsub.hook), if any."""
    name = 'zato.pubsub.subscription.create'

    def handle(self) -> None:
        super().handle()
        info = self.server.pubsub.hook_info(self.response.payload['id'])
        if info is not None:
            ps_hook.on_subscription(self.server, ps_hook.ON_SUBSCRIBED, *info)


class EditSubscription(_SubscriptionBase, Edit):
    name = 'zato.pubsub.subscription.edit'


class DeleteSubscription(_SubscriptionBase, Delete):
    """Deletes the subscription with its queue: the messages no other queue holds go with it."""
    name = 'zato.pubsub.subscription.delete'

    def handle(self) -> None:
        with self.server.Session() as session:
            sub_id = self._get_row(session).id
        self.server.pubsub.unsubscribe(sub_id)
        self.response.payload = {'id': sub_id, 'deleted': True}


class GetSubscription(_SubscriptionBase, Get):
    name = 'zato.pubsub.subscription.get'


class GetSubscriptionList(_SubscriptionBase, GetList):
    """Every subscription, without its sub_key (a bearer secret: shown by create and get only)."""
    name = 'zato.pubsub.subscription.get-list'

    def _to_dict(self, session: Any, row: PubSubSubscription) -> dict[str, Any]:
        out = super()._to_dict(session, row)
        del out['sub_key']
        return out


# ################################################################################################ browsing queues

class GetSubscriptionMessages(_SubscriptionBase):
    """GET /zato/admin/pubsub/subscriptions/{id}/messages?page=&query= -> a page of the queue in delivery
    order, nothing dequeued: {messages, total, cur_page, num_pages, page_size}."""
    name = 'zato.pubsub.subscription.get-messages'

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            sub_id = self._get_row(session).id
        page = self.field(data, 'page', (int, str), False, 1)
        if isinstance(page, str):
            if not page.isascii() or not page.isdigit():
                raise BadRequest('Invalid input `page`: expected an integer from 1')
            page = int(page)
        query = self.field(data, 'query', str, False, '')
        self.response.payload = self.server.pubsub.read_messages(sub_id, True, query, page)


class GetMessage(AdminService):
    """GET /zato/admin/pubsub/messages/{msg_id} -> one message, wherever it is queued."""
    name = 'zato.pubsub.message.get'

    def handle(self) -> None:
        self.response.payload = self.server.pubsub.read_message(self.input_dict().get('msg_id'))


class DeleteSubscriptionMessage(_SubscriptionBase):
    """DELETE /zato/admin/pubsub/subscriptions/{id}/messages/{msg_id} -> {deleted}: off this queue (a
    message no other queue holds goes with it); 404 when the queue does not hold it."""
    name = 'zato.pubsub.subscription.delete-message'

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            sub_id = self._get_row(session).id
        msg_id = data.get('msg_id')
        if not isinstance(msg_id, str) or not msg_id or len(msg_id) > 80:
            raise BadRequest('Invalid input `msg_id`: expected a message id')
        if not self.server.pubsub.gd.ack(sub_id, [msg_id]):
            raise NotFound(f'Message `{msg_id}` not found in subscription {sub_id}')
        self.response.payload = {'id': sub_id, 'msg_id': msg_id, 'deleted': True}


class ClearSubscription(_SubscriptionBase):
    """POST /zato/admin/pubsub/subscriptions/{id}/clear -> {cleared: n}: empties the queue."""
    name = 'zato.pubsub.subscription.clear'

    def handle(self) -> None:
        with self.server.Session() as session:
            sub_id = self._get_row(session).id
        self.response.payload = {'id': sub_id, 'cleared': self.server.pubsub.gd.clear(sub_id)}


class PublishToTopic(_TopicBase):
    """POST /zato/admin/pubsub/topics/{id}/publish {data, priority, ...} or {data_list: [...]} -> {msg_id}
    or {msg_id_list}: publishes as the server (the topic's before_publish hook runs)."""
    name = 'zato.pubsub.topic.publish'

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            topic_name = self._get_row(session).name
        fields = {key: value for key, value in data.items() if key != 'id'}
        unknown = sorted(set(fields) - MESSAGE_INPUTS - {'data_list'})
        if unknown:
            raise BadRequest(f'Invalid input `{unknown[0]}`: a message has no such field')
        msg_ids = self.server.pubsub.publish(topic_name, fields)
        self.response.payload = {'msg_id_list': msg_ids} if 'data_list' in fields else {'msg_id': msg_ids[0]}


# ################################################################################################ delivery tasks

class GetDeliveryTaskList(AdminService):
    """GET /zato/admin/pubsub/delivery-tasks?server= -> the delivery tasks of the cluster's active push
    (`notify`) subscriptions, grouped by the server whose worker runs each now: {servers: [{server_name,
    tasks: [{holder (server:pid), server_pid, sub_id, topic, endpoint, queue_depth, last_delivery_time,
    lease_expires_in}]}], without_task: [the same without holder, pid and lease]}. A task runs where the
    lease `zato.pubsub.sub.<sub_id>` is held (zato.server.pubsub_delivery), by the ODB's clock; a
    subscription without a live holder is `without_task` until a worker takes its lease. `server`: only
    that server's tasks (and no `without_task`)."""
    name = 'zato.pubsub.delivery-task.get-list'

    def handle(self) -> None:
        data = self.input_dict()
        unknown = sorted(set(data) - {'server'})
        if unknown:
            raise BadRequest(f'Invalid input `{unknown[0]}`: expected only `server`')
        only = self.field(data, 'server', str, False, None)
        if only is not None and not 1 <= len(only) <= 200:
            raise BadRequest('Invalid input `server`: expected a server name of 1 to 200 characters')
        cluster_id = self.server.cluster_id
        with self.server.Session() as session:
            subs = session.execute(
                select(PubSubSubscription.id, PubSubTopic.name, PubSubEndpoint.name,
                       PubSubSubscription.last_delivery_time)
                .join(PubSubTopic, PubSubTopic.id == PubSubSubscription.topic_id)
                .join(PubSubEndpoint, PubSubEndpoint.id == PubSubSubscription.endpoint_id)
                .where(PubSubSubscription.cluster_id == cluster_id, PubSubSubscription.delivery_method == 'notify',
                       PubSubSubscription.is_active.is_(True))
                .order_by(PubSubSubscription.id)).all()
            now = float(session.execute(text(f'SELECT {_NOW[session.get_bind().dialect.name]}')).scalar_one())
            leases = {name: (holder, expires_at) for name, holder, expires_at in session.execute(
                select(Lease.name, Lease.holder, Lease.expires_at).where(
                    Lease.cluster_id == cluster_id, Lease.name.in_([lease_name(row[0]) for row in subs]),
                    Lease.expires_at > now))} if subs else {}
        by_server: dict[str, list[dict[str, Any]]] = {}
        without_task: list[dict[str, Any]] = []
        gd = self.server.pubsub.gd
        for sub_id, topic, endpoint, last_delivery in subs:
            holder, expires_at = leases.get(lease_name(sub_id), (None, 0.0))
            server_name, _, pid = (holder or '').rpartition(':')
            if only is not None and server_name != only:
                continue
            task = {'sub_id': sub_id, 'topic': topic, 'endpoint': endpoint, 'queue_depth': gd.depth(sub_id),
                    'last_delivery_time': last_delivery}
            if holder is None:
                without_task.append(task)
                continue
            by_server.setdefault(server_name, []).append(
                {'holder': holder, 'server_pid': int(pid) if pid.isdigit() else None, **task,
                 'lease_expires_in': round(max(0.0, expires_at - now), 3)})
        self.response.payload = {
            'servers': [{'server_name': name, 'tasks': tasks} for name, tasks in sorted(by_server.items())],
            'without_task': without_task}
