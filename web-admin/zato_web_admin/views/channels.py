"""Channels besides REST: WebSockets (with a page of each channel's connected clients, a "Broadcast"
form and a "Disconnect" button per client), JSON-RPC, and Kafka (with what each worker's consumer
of a channel is doing). The forms carry the fields the admin API takes, which validates them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select

from zato.admin_client import AdminCallError
from zato.odb.models import OutConn
from zato_web_admin.http import HTTPError, Request, Response, Route
from zato_web_admin.resources import Field, Resource, audit, crud_routes, get_one
from zato_web_admin.views.resources import ACTIVE, NAME, RATE_LIMIT, security_choices, service_choices

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin


def kafka_conn_choices(app: WebAdmin) -> list[tuple[str, str]]:
    with app.db() as db:
        names = db.scalars(select(OutConn.name).where(OutConn.cluster_id == app.config.cluster_id,
                                                      OutConn.kind == 'kafka').order_by(OutConn.name)).all()
    return [(name, name) for name in names]


SECURITY = Field('security', 'Security', 'select', 'A Basic Auth, API key or JWT definition clients authenticate with',
                 choices=security_choices)

WSX_CHANNELS = Resource(
    'channels/wsx', 'WebSocket channels', 'WebSocket channel', '/zato/admin/channels/wsx', section='Channels',
    fields=(
        NAME, ACTIVE,
        Field('url_path', 'URL path', required=True, help='A fixed path, such as /ws/orders'),
        Field('service', 'Service', 'select', 'Invoked with each message a client sends', required=True,
              choices=service_choices),
        Field('data_format', 'Data format', 'select', default='json', choices=(('json', 'JSON'), ('', 'none'))),
        SECURITY,
        Field('max_message_size', 'Max message size (bytes)', 'number', 'A larger message closes the connection '
              '(1009)', default=1048576),
        Field('ping_interval', 'Ping interval (s)', 'number', 'Between pings to a client that has been silent',
              default=30),
        Field('pings_missed_threshold', 'Pings missed threshold', 'number', 'Unanswered pings before a client is '
              'dropped', default=5),
        Field('new_token_wait_time', 'New token wait time (s)', 'number', 'How long a client of a secured channel '
              'has to authenticate when it did not at the handshake', default=5),
        Field('token_ttl', 'Token TTL (s)', 'number', 'How long a session token lives; each call extends it',
              default=3600),
        Field('send_queue_max', 'Send queue size', 'number', 'Messages queued for a client that does not read; '
              'above it the client is disconnected', default=1000),
        Field('origins', 'Allowed origins', 'lines', 'One a line (https://example.com), or * for any. Empty: pages '
              'of the channel\'s own origin only'),
        Field('services_allowed', 'Services allowed', 'lines', 'Services a client may name in an invoke-service '
              'message, one a line'),
        Field('subprotocols', 'Subprotocols', 'lines', 'Sec-WebSocket-Protocol values the channel speaks, one a '
              'line'),
    ),
    columns=(('name', 'Name'), ('url_path', 'URL path'), ('service', 'Service'), ('security', 'Security')),
    search_keys=('name', 'url_path', 'service'), links=(('Clients', '/clients'),), audit_kind='channel-wsx')

JSONRPC_CHANNELS = Resource(
    'channels/jsonrpc', 'JSON-RPC channels', 'JSON-RPC channel', '/zato/admin/channels/jsonrpc', section='Channels',
    fields=(
        NAME, ACTIVE,
        Field('url_path', 'URL path', required=True, help='A fixed path clients POST JSON-RPC 2.0 requests to'),
        Field('service_whitelist', 'Services', 'lines', 'The services callable as methods, one a line'),
        SECURITY, RATE_LIMIT,
    ),
    columns=(('name', 'Name'), ('url_path', 'URL path'), ('service_whitelist', 'Services'), ('security', 'Security')),
    search_keys=('name', 'url_path', 'service_whitelist'), audit_kind='channel-jsonrpc')

KAFKA_CHANNELS = Resource(
    'channels/kafka', 'Kafka channels', 'Kafka channel', '/zato/admin/channels/kafka', section='Channels',
    fields=(
        NAME, ACTIVE,
        Field('out_conn', 'Connection', 'select', 'The outgoing Kafka connection whose brokers are read',
              required=True, choices=kafka_conn_choices),
        Field('topics', 'Topics', 'lines', 'One a line', required=True),
        Field('group_id', 'Consumer group', help='Empty: the channel\'s name', send_empty=False),
        Field('service', 'Service', 'select', 'Invoked with each message', required=True, choices=service_choices),
        Field('data_format', 'Data format', 'select', default='json',
              choices=(('json', 'JSON'), ('text', 'text'), ('bytes', 'bytes'))),
        Field('start_from', 'Start from', 'select', 'Where a new consumer group starts', default='earliest',
              choices=(('earliest', 'earliest'), ('latest', 'latest'))),
        Field('on_error', 'On error', 'select', default='retry',
              choices=(('retry', 'retry'), ('dead_letter', 'dead letter'))),
        Field('max_attempts', 'Max attempts', 'number', 'Before a message goes to the dead-letter topic', default=5),
        Field('dead_letter_topic', 'Dead-letter topic', help='Required with on error: dead letter'),
        Field('retry_min', 'Retry min (s)', 'float', default=0.5),
        Field('retry_max', 'Retry max (s)', 'float', default=30.0),
    ),
    columns=(('name', 'Name'), ('topics', 'Topics'), ('service', 'Service'), ('out_conn', 'Connection')),
    search_keys=('name', 'topics', 'service', 'out_conn'), links=(('Status', '/status'),), audit_kind='channel-kafka')

RESOURCES = (WSX_CHANNELS, JSONRPC_CHANNELS, KAFKA_CHANNELS)

BROADCAST_FORMATS = (('text', 'Text'), ('json', 'JSON'))


def _no_constant(name: str) -> Any:
    raise ValueError(f'{name} is not JSON')


def broadcast_data(text: str, data_format: str) -> Any:
    """The message a broadcast form sends: its text (with the browser's CRLF line ends as LF), or the
    JSON value it holds; ValueError saying why it cannot be sent."""
    text = text.replace('\r\n', '\n')
    if data_format == 'json':
        try:
            return json.loads(text, parse_constant=_no_constant)
        except ValueError as e:
            raise ValueError(f'not valid JSON: {e}') from None
    if data_format != 'text':
        raise ValueError('expected text or JSON')
    if not text:
        raise ValueError('required')
    return text


def render_clients(app: WebAdmin, request: Request, obj_id: str, status: int = 200,
                   values: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> Response:
    """A WebSocket channel's connected clients, with the broadcast form as typed (`values`) and its `errors`."""
    wsx = WSX_CHANNELS
    item = get_one(app, wsx, obj_id)
    error = ''
    try:
        clients = app.config.admin.call('GET', f'{wsx.api}/{obj_id}/clients') or []
    except AdminCallError as e:
        if e.status >= 500:
            raise
        clients, error = [], str(e.details)
    return app.render(request, 'wsx_clients.html', status, res=wsx, item=item, clients=clients, error=error,
                      values=values or {'data': '', 'format': 'text'}, errors=errors or {},
                      formats=BROADCAST_FORMATS)


def clients(app: WebAdmin, request: Request, obj_id: str) -> Response:
    return render_clients(app, request, obj_id)


def broadcast(app: WebAdmin, request: Request, obj_id: str) -> Response:
    wsx = WSX_CHANNELS
    values = {'data': request.form.get('data', ''), 'format': request.form.get('format', 'text')}
    try:
        data = broadcast_data(values['data'], values['format'])
    except ValueError as e:
        return render_clients(app, request, obj_id, 400, values, {'data': str(e)})
    item = get_one(app, wsx, obj_id)
    try:
        app.config.admin.call('POST', f'{wsx.api}/{obj_id}/broadcast', {'data': data})
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return render_clients(app, request, obj_id, e.status, values, {'data': str(e.details)})
    name = str(item.get('name', ''))
    # The message itself is not recorded: it may be large, or hold what an audit log should not
    audit(app, request, wsx, f'{wsx.slug}.broadcast', name, {'format': values['format'],
                                                              'size': len(values['data'])})
    return app.done(request, f'{wsx.base}/{obj_id}/clients', f'Broadcast to the clients of `{name}`.')


def disconnect(app: WebAdmin, request: Request, obj_id: str, client_id: str) -> Response:
    wsx = WSX_CHANNELS
    item = get_one(app, wsx, obj_id)
    back = f'{wsx.base}/{obj_id}/clients'
    try:
        app.config.admin.call('DELETE', f'/zato/admin/wsx/clients/{quote(client_id, safe="")}')
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return app.done(request, back, f'Disconnect `{client_id}`: {e.details}', 'error')
    audit(app, request, wsx, f'{wsx.slug}.disconnect', str(item.get('name', '')), {'client_id': client_id})
    return app.done(request, back, f'Disconnected client `{client_id}`.')


def kafka_status(app: WebAdmin, request: Request, obj_id: str) -> Response:
    item = get_one(app, KAFKA_CHANNELS, obj_id)
    try:
        status = app.config.admin.call('GET', f'{KAFKA_CHANNELS.api}/{obj_id}/status')
    except AdminCallError as e:
        if e.status == 404:
            raise HTTPError(404, 'No such Kafka channel') from None
        raise
    return app.render(request, 'kafka_status.html', res=KAFKA_CHANNELS, item=item,
                      workers=status.get('workers', []) if isinstance(status, dict) else [])


ROUTES: list[Route] = [
    *(route for res in RESOURCES for route in crud_routes(res)),
    ('GET', f'{WSX_CHANNELS.base}/{{obj_id}}/clients', clients, False),
    ('POST', f'{WSX_CHANNELS.base}/{{obj_id}}/broadcast', broadcast, False),
    ('POST', f'{WSX_CHANNELS.base}/{{obj_id}}/clients/{{client_id}}/disconnect', disconnect, False),
    ('GET', f'{KAFKA_CHANNELS.base}/{{obj_id}}/status', kafka_status, False),
]
