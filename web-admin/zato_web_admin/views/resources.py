"""The pages made of declared resources: REST channels, security definitions and every kind of
outgoing connection (its form built from the fields the server declares for the kind)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from zato.odb.models import RateLimitDef, SecurityDef, Service
from zato_web_admin.http import HTTPError, Route
from zato_web_admin.resources import PING, Field, Resource, crud_routes, family_routes
from zato_web_admin.views.caches import cache_choices

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin


# ################################################################################################ choices

def security_choices(app: WebAdmin) -> list[tuple[str, str]]:
    with app.db() as db:
        rows = db.execute(select(SecurityDef.name, SecurityDef.kind).where(
            SecurityDef.cluster_id == app.config.cluster_id, SecurityDef.is_internal.is_(False))
            .order_by(SecurityDef.name)).all()
    return [('', '(none)'), *((name, f'{name} ({kind})') for name, kind in rows)]


def rate_limit_choices(app: WebAdmin) -> list[tuple[str, str]]:
    with app.db() as db:
        names = db.scalars(select(RateLimitDef.name).where(RateLimitDef.cluster_id == app.config.cluster_id)
                           .order_by(RateLimitDef.name)).all()
    return [('', '(none)'), *((name, name) for name in names)]


def rate_limit_name(app: WebAdmin, item: dict[str, Any]) -> str:
    limit_id = item.get('rate_limit_id')
    if not limit_id:
        return ''
    with app.db() as db:
        return db.scalar(select(RateLimitDef.name).where(RateLimitDef.id == limit_id)) or ''


def service_choices(app: WebAdmin) -> list[tuple[str, str]]:
    with app.db() as db:
        names = db.scalars(select(Service.name).where(Service.cluster_id == app.config.cluster_id,
                                                      ~Service.name.startswith('zato.')).order_by(Service.name)).all()
    return [(name, name) for name in names]


NAME = Field('name', 'Name', required=True)
ACTIVE = Field('is_active', 'Active', 'checkbox', default=True)
RATE_LIMIT = Field('rate_limit', 'Rate limit', 'select', 'A rate-limit and IP allow-list definition',
                   choices=rate_limit_choices, read=rate_limit_name)

REST_CHANNELS = Resource(
    'channels/rest', 'REST channels', 'REST channel', '/zato/admin/channels/rest', section='Channels',
    fields=(
        NAME, ACTIVE,
        Field('url_path', 'URL path', required=True, help='/api/customer/{id}: {placeholders} become input'),
        Field('service', 'Service', 'select', required=True, choices=service_choices),
        Field('method', 'Method', 'select', choices=tuple((m, m or '(any)') for m in
                                                          ('', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'))),
        Field('data_format', 'Data format', 'select', default='json', choices=(('json', 'JSON'), ('', 'none'))),
        Field('security', 'Security', 'select', choices=security_choices),
        RATE_LIMIT,
        Field('merge_url_params_req', 'Merge URL parameters into the request', 'checkbox', default=True),
        Field('cache', 'Response cache', 'select', '200 answers to GET kept in this built-in cache (docs/cache.md)',
              choices=cache_choices),
        Field('cache_expiry', 'Response cache expiry (s)', 'number', '0: until evicted', default=0),
    ),
    columns=(('name', 'Name'), ('url_path', 'URL path'), ('method', 'Method'), ('service', 'Service'),
             ('security', 'Security')),
    search_keys=('name', 'url_path', 'service'),
    # JSON-RPC channels are REST rows too (as in 3.1); they have a page of their own
    keep=lambda item: item.get('service') != 'pub.zato.channel.json-rpc.gateway')


def _security(kind: str, title: str, singular: str, fields: tuple[Field, ...],
              columns: tuple[tuple[str, str], ...]) -> Resource:
    return Resource(
        f'security/{kind}', title, singular, '/zato/admin/security', section='Security',
        fields=(NAME, ACTIVE, *fields, RATE_LIMIT), columns=(('name', 'Name'), *columns),
        password_field='password', create_extra={'kind': kind}, keep=lambda item: item.get('kind') == kind,  # noqa: S106 - a field's name
        audit_kind=f'security-{kind}')


BASIC_AUTH = _security('basic_auth', 'HTTP Basic Auth', 'Basic Auth definition',
                       (Field('username', 'User name', required=True), Field('realm', 'Realm', default='Zato')),
                       (('username', 'User name'), ('realm', 'Realm')))
API_KEYS = _security('apikey', 'API keys', 'API key definition',
                     (Field('header', 'Header', required=True, default='X-API-Key'),), (('header', 'Header'),))
JWT = _security('jwt', 'JWT', 'JWT definition',
                (Field('username', 'User name', required=True), Field('ttl', 'Token TTL (s)', 'number', default=3600),
                 Field('max_lifetime', 'Max lifetime (s)', 'number', default=86400),
                 Field('audience', 'Audience')),
                (('username', 'User name'), ('ttl', 'TTL')))

RESOURCES = (REST_CHANNELS, BASIC_AUTH, API_KEYS, JWT)


# ################################################################################################ outgoing

WIDGETS = {'bool': 'checkbox', 'int': 'number', 'float': 'float', 'list': 'lines', 'dict': 'json', 'str': 'text'}


class OutgoingKinds:
    """The kinds the server knows, with their fields, read from the admin API once and kept."""

    def __init__(self, app: WebAdmin) -> None:
        self.app = app
        self._resources: dict[str, Resource] = {}
        self._lock = threading.Lock()

    def all(self) -> dict[str, Resource]:
        with self._lock:
            if not self._resources:
                for kind in self.app.config.admin.call('GET', '/zato/admin/outconns'):
                    self._resources[kind['kind']] = self._resource(kind)
            return dict(self._resources)

    def get(self, kind: str) -> Resource:
        res = self.all().get(kind)
        if res is None:
            raise HTTPError(404, 'No such kind of outgoing connection')
        return res

    @staticmethod
    def _resource(kind: dict[str, Any]) -> Resource:
        fields: list[Field] = [NAME, ACTIVE]
        secret = ''
        for f in kind['fields']:
            if f['secret']:
                secret = f['name']
                fields.append(Field(f['name'], _label(f['name']), 'password', f['doc'], create_only=True))
                continue
            default = f['default'] if f['default'] is not None else ''
            fields.append(Field(f['name'], _label(f['name']), WIDGETS.get(f['type'], 'text'), f['doc'],
                                required=f['required'], default=default))
        title = TITLES.get(kind['kind'], kind['kind'])
        return Resource(f'outgoing/{kind["kind"]}', f'Outgoing {title}', f'outgoing {title} connection',
                        f'/zato/admin/outconns/{kind["kind"]}', tuple(fields),
                        (('name', 'Name'), *[(f['name'], _label(f['name'])) for f in kind['fields']
                                             if not f['secret'] and f['type'] in ('str', 'list')][:2]),
                        section='Outgoing', actions=(PING,), password_field=secret and 'secret',
                        audit_kind=f'outconn-{kind["kind"]}')


TITLES = {'rest': 'REST', 'jsonrpc': 'JSON-RPC', 'ldap': 'LDAP', 'mongodb': 'MongoDB', 'kafka': 'Kafka',
          'sftp': 'SFTP', 'ssh': 'SSH', 'slack': 'Slack', 'telegram': 'Telegram', 'wsx': 'WebSockets',
          'smtp': 'SMTP', 'imap': 'IMAP'}


def _label(name: str) -> str:
    return name.replace('_', ' ').capitalize()


def outgoing_kind(app: WebAdmin, kind: str) -> Resource:
    """The kind of outgoing connection a path names; a 404 page if the server knows no such kind."""
    return app.outgoing.get(kind)


ROUTES: list[Route] = [
    *(route for res in RESOURCES for route in crud_routes(res)),
    *family_routes('/outgoing/{kind}', outgoing_kind, actions=(PING,), has_password=True),
]
