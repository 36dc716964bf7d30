"""Pub/sub pages: topics, endpoints and subscriptions, each a declared resource over the admin API
(/zato/admin/pubsub/...), which validates what the forms send. A subscription's sub_key is shown by
its own page (the admin API's get), not in the list. The lists show times as ISO 8601 (UTC), an
endpoint's last publication and subscription read from the ODB; a topic's page and a subscription's
queue are views.pubsub_messages'. The delivery tasks page shows, by server, the task that pushes each
push subscription (the admin API's GET /zato/admin/pubsub/delivery-tasks); it reads and changes nothing
else, so it records nothing in the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from zato.odb.lease import _NOW
from zato.odb.models import ChannelWSX, Lease, OutConn, PubSubEndpoint, PubSubTopic
from zato_web_admin.http import Request, Response, Route
from zato_web_admin.pubsub_browse import endpoint_times, iso
from zato_web_admin.resources import Field, Resource, crud_routes
from zato_web_admin.views.resources import ACTIVE, NAME, security_choices, service_choices

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin


def _names(app: WebAdmin, model: type) -> list[tuple[str, str]]:
    with app.db() as db:
        names = db.scalars(select(model.name).where(model.cluster_id == app.config.cluster_id)  # type: ignore[attr-defined]
                           .order_by(model.name)).all()  # type: ignore[attr-defined]
    return [(name, name) for name in names]


def _readable(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, **{k: iso(v) for k, v in item.items() if k.endswith('_time') and isinstance(v, (int, float))}}


def with_times(app: WebAdmin, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """List rows with the API's times (seconds since the epoch) as ISO 8601, UTC."""
    return [_readable(item) for item in items]


def endpoints_with_times(app: WebAdmin, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Endpoint rows with when each last published and subscribed, read from the ODB (pubsub_browse.endpoint_times)."""
    with app.db() as db:
        times = endpoint_times(db, app.config.cluster_id)
    out = []
    for item in items:
        last_pub, last_sub = times.get(item['id'], (None, None))
        out.append(_readable({**item, 'last_pub_time': max(filter(None, (item.get('last_pub_time'), last_pub)),
                                                              default=None),
                              'last_sub_time': max(filter(None, (item.get('last_sub_time'), last_sub)),
                                                   default=None)}))
    return out


# The lease a push subscription's delivery task holds (zato.server.pubsub_delivery.lease_name)
DELIVERY_LEASE = 'zato.pubsub.sub.'


def subscriptions_with_tasks(app: WebAdmin, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Subscription rows with the worker whose delivery task pushes each one now (`server:pid`, the
    holder of its lease while that lease lasts, by the ODB's clock), and times as ISO 8601."""
    with app.db() as db:
        now = db.execute(text(f'SELECT {_NOW[db.get_bind().dialect.name]}')).scalar_one()
        rows = db.execute(select(Lease.name, Lease.holder).where(
            Lease.cluster_id == app.config.cluster_id, Lease.name.like(f'{DELIVERY_LEASE}%'),
            Lease.expires_at > now)).all()
    holders = {name[len(DELIVERY_LEASE):]: holder for name, holder in rows}
    return [_readable({**item, 'delivery_task': holders.get(str(item.get('id')), '')}) for item in items]


def out_rest_choices(app: WebAdmin) -> list[tuple[str, str]]:
    with app.db() as db:
        names = db.scalars(select(OutConn.name).where(OutConn.cluster_id == app.config.cluster_id,
                                                      OutConn.kind == 'rest').order_by(OutConn.name)).all()
    return [('', '(none)'), *((name, name) for name in names)]


def topic_choices(app: WebAdmin) -> list[tuple[str, str]]:
    return _names(app, PubSubTopic)


def endpoint_choices(app: WebAdmin) -> list[tuple[str, str]]:
    return _names(app, PubSubEndpoint)


def ws_channel_choices(app: WebAdmin) -> list[tuple[str, str]]:
    return [('', '(none)'), *_names(app, ChannelWSX)]


def optional_service_choices(app: WebAdmin) -> list[tuple[str, str]]:
    return [('', '(none)'), *service_choices(app)]


TOPICS = Resource(
    'pubsub/topics', 'Pub/sub topics', 'pub/sub topic', '/zato/admin/pubsub/topics', section='Pub/sub',
    fields=(
        Field('name', 'Name', required=True, help='Starts with /, segments separated by /, e.g. /customer/new'),
        ACTIVE,
        Field('has_gd', 'Guaranteed delivery', 'checkbox', default=True),
        Field('max_depth_gd', 'Max depth (GD)', 'number', 'Messages of the topic the ODB may hold, cluster-wide; '
              'a publication beyond it gets 503', default=10_000),
        Field('max_depth_non_gd', 'Max depth (non-GD)', 'number', default=1000),
        Field('on_no_subs_pub', 'Without subscribers', 'select', 'What a publication to a topic without '
              'subscriptions does', default='accept', choices=(('accept', 'accept: keep the message'),
                                                              ('drop', 'drop: do not store it'))),
        Field('is_api_sub_allowed', 'Endpoints may subscribe themselves', 'checkbox', default=True),
        Field('hook_service', 'Hook service', 'select', choices=optional_service_choices),
    ),
    columns=(('name', 'Name'), ('gd_depth', 'Messages'), ('last_pub_time', 'Last publication (UTC)'),
             ('subscriptions', 'Subscriptions'), ('max_depth_gd', 'Max depth'),
             ('on_no_subs_pub', 'Without subscribers')),
    links=(('Messages', ''),), shape=with_times, audit_kind='pubsub-topic')

PATTERNS_HELP = ('One a line: pub=/pattern (may publish) or sub=/pattern (may subscribe). * is any characters '
                 'within one segment, ** any characters across segments: pub=/orders/**, sub=/customer/*/changed')

ENDPOINTS = Resource(
    'pubsub/endpoints', 'Pub/sub endpoints', 'pub/sub endpoint', '/zato/admin/pubsub/endpoints', section='Pub/sub',
    fields=(
        NAME, ACTIVE,
        Field('endpoint_type', 'Type', 'select', default='rest', create_only=True,
              choices=(('rest', 'REST'), ('wsx', 'WebSockets'), ('srv', 'Service'))),
        Field('role', 'Role', 'select', default='pub-sub',
              choices=(('pub-only', 'publisher'), ('sub-only', 'subscriber'), ('pub-sub', 'publisher and subscriber'))),
        Field('topic_patterns', 'Topic patterns', 'textarea', PATTERNS_HELP),
        Field('security', 'Security', 'select', 'REST: the Basic Auth definition that identifies the endpoint',
              choices=security_choices),
        Field('service', 'Service', 'select', 'Service endpoints: the service', choices=optional_service_choices),
        Field('ws_channel', 'WebSocket channel', 'select', 'WebSocket endpoints: the channel',
              choices=ws_channel_choices),
    ),
    columns=(('name', 'Name'), ('endpoint_type', 'Type'), ('role', 'Role'), ('topic_patterns', 'Patterns'),
             ('security', 'Security'), ('subscriptions', 'Subscriptions'), ('last_pub_time', 'Last publication (UTC)'),
             ('last_sub_time', 'Last subscription (UTC)'), ('last_delivery_time', 'Last delivery (UTC)')),
    search_keys=('name', 'topic_patterns', 'security'), shape=endpoints_with_times, audit_kind='pubsub-endpoint')

SUBSCRIPTIONS = Resource(
    'pubsub/subscriptions', 'Pub/sub subscriptions', 'pub/sub subscription', '/zato/admin/pubsub/subscriptions',
    section='Pub/sub',
    fields=(
        Field('endpoint', 'Endpoint', 'select', required=True, create_only=True, choices=endpoint_choices),
        Field('topic', 'Topic', 'select', required=True, create_only=True, choices=topic_choices),
        ACTIVE,
        Field('delivery_method', 'Delivery', 'select', default='pull',
              choices=(('pull', 'pull: the subscriber fetches'), ('notify', 'notify: Zato pushes'))),
        Field('delivery_batch_size', 'Batch size', 'number', default=500),
        Field('wrap_one_msg_in_list', 'Always a list', 'checkbox', default=True),
        Field('delivery_max_retry', 'Max retries', 'number', default=123_456_789),
        Field('delivery_err_should_block', 'Stop the queue on errors', 'checkbox', default=True),
        Field('wait_sock_err', 'Wait after a socket error (s)', 'number', default=10),
        Field('wait_non_sock_err', 'Wait after another error (s)', 'number', default=30),
        Field('out_rest', 'Outgoing REST connection', 'select', 'REST endpoints with notify: where messages are '
              'pushed', choices=out_rest_choices),
        Field('out_http_method', 'HTTP method', 'select', default='POST',
              choices=tuple((m, m) for m in ('POST', 'PUT', 'PATCH', 'GET', 'DELETE'))),
        Field('hook_service', 'Hook service', 'select', "This subscription's PubSubHook, instead of its topic's",
              choices=optional_service_choices),
    ),
    columns=(('endpoint', 'Endpoint'), ('topic', 'Topic'), ('delivery_method', 'Delivery'),
             ('queue_depth', 'Queue depth'), ('last_delivery_time', 'Last delivery (UTC)'),
             ('delivery_task', 'Delivery task (server:pid)')),
    search_keys=('endpoint', 'topic'), links=(('Queue', '/messages'),), shape=subscriptions_with_tasks,
    audit_kind='pubsub-subscription')

RESOURCES = (TOPICS, ENDPOINTS, SUBSCRIPTIONS)


def delivery_tasks(app: WebAdmin, request: Request) -> Response:
    """GET /pubsub/delivery-tasks: the admin API's delivery tasks by server, times as ISO 8601 (UTC)."""
    out = app.config.admin.call('GET', '/zato/admin/pubsub/delivery-tasks')
    servers = [{'server_name': server['server_name'], 'tasks': [_readable(t) for t in server['tasks']]}
               for server in out['servers']]
    return app.render(request, 'pubsub_tasks.html', servers=servers,
                      without_task=[_readable(t) for t in out['without_task']])


ROUTES: list[Route] = [('GET', '/pubsub/delivery-tasks', delivery_tasks, False),
                       *(route for res in RESOURCES for route in crud_routes(res))]
