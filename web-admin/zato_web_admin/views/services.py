"""The services: a searchable list of every deployed user service with its usage in the last hour and
whether it is active; a page per service with its source, SimpleIO, channels, options (active, JSON
Schema, rate limit; editable), per-minute charts, an "Invoke" form and "Delete" (undeploy from the
whole cluster); and the upload of a module that deploys it.

Reads come from the ODB and from GET /zato/admin/services/{name} (what only a loaded service knows:
its SimpleIO, HTTP verbs, JSON Schema). Every change and every invocation goes through the admin API
and is recorded in the audit log."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from zato.admin_client import AdminCallError
from zato.errors import ZatoError
from zato.odb import stats_query
from zato.odb.models import ChannelREST, ChannelWSX, DeployedCode, RateLimitDef, Service
from zato_web_admin import users
from zato_web_admin.charts import usage_charts
from zato_web_admin.http import HTTPError, Request, Response, Route
from zato_web_admin.listing import Page
from zato_web_admin.resources import Field, field_of_message
from zato_web_admin.views.resources import rate_limit_choices

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

MINUTES = 60
UNDEPLOYED = 'undeployed'  # in service.opaque: undeployed alone while its module stays (zato.service.delete)
INTERNAL = ('zato.', 'pub.zato.')
JSONRPC_PREFIX = 'json.rpc.channel.'  # a JSON-RPC channel is a REST channel row named so (zato.server.channels)
MAX_SHOWN = 200_000  # characters of an invocation's response shown
OPTIONS = ('is_json_schema_enabled', 'needs_json_schema_err_details')
OPTION_FIELDS = (Field('is_active', 'Active', 'checkbox'),
                 Field('is_json_schema_enabled', 'JSON Schema validation', 'checkbox'),
                 Field('needs_json_schema_err_details', 'JSON Schema error details in responses', 'checkbox'),
                 Field('rate_limit', 'Rate limit', 'select'))
NO_USAGE: dict[str, Any] = {'count': 0, 'errors': 0, 'error_rate': 0.0, 'mean_ms': None, 'p50_ms': None,
                            'p99_ms': None, 'max_ms': None, 'last_call': None}


def is_internal(name: str) -> bool:
    return name.startswith(INTERNAL)


def service_url(name: str) -> str:
    return '/services/' + quote(name, safe='')


def details_text(e: AdminCallError) -> str:
    return e.details if isinstance(e.details, str) else json.dumps(e.details)


def pretty(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f'\n… ({len(text) - MAX_SHOWN} more characters)'


def channels_of(db: Session, cluster_id: int, name: str) -> list[dict[str, Any]]:
    """The REST, JSON-RPC and WebSocket channels that invoke the service."""
    out: list[dict[str, Any]] = []
    rest = db.scalars(select(ChannelREST).where(ChannelREST.cluster_id == cluster_id,
                                                ChannelREST.is_internal.is_(False)).order_by(ChannelREST.name))
    for row in rest:
        if (row.opaque or {}).get('jsonrpc'):
            if name in ((row.opaque or {}).get('service_whitelist') or []):
                out.append({'kind': 'JSON-RPC', 'slug': 'channels/jsonrpc', 'id': row.id,
                            'name': row.name.removeprefix(JSONRPC_PREFIX), 'url_path': row.url_path, 'method': 'POST',
                            'is_active': row.is_active})
        elif row.service_name == name:
            out.append({'kind': 'REST', 'slug': 'channels/rest', 'id': row.id, 'name': row.name,
                        'url_path': row.url_path, 'method': row.method or 'any', 'is_active': row.is_active})
    wsx = db.scalars(select(ChannelWSX).where(ChannelWSX.cluster_id == cluster_id, ChannelWSX.service_name == name)
                     .order_by(ChannelWSX.name))
    out.extend({'kind': 'WebSocket', 'slug': 'channels/wsx', 'id': row.id, 'name': row.name,
                'url_path': row.url_path, 'method': 'GET (upgrade)', 'is_active': row.is_active} for row in wsx)
    return out


def audit(app: WebAdmin, request: Request, action: str, name: str, details: dict[str, Any] | None = None) -> None:
    with app.db() as db:
        users.audit(db, request.current.username, action, 'service', name, details, request.remote_addr)
        db.commit()


# ############################################################################################## list

def services_list(app: WebAdmin, request: Request) -> Response:
    cluster_id = app.config.cluster_id
    with app.db() as db:
        rows = db.execute(select(Service.name, DeployedCode.file_name, Service.is_active, Service.opaque)
                          .outerjoin(DeployedCode, Service.code_id == DeployedCode.id)
                          .where(Service.cluster_id == cluster_id, Service.is_internal.is_(False))
                          .order_by(Service.name)).all()
        usage = {s['name']: s for s in stats_query.services_summary(db, cluster_id, MINUTES)}
    # A service undeployed alone (zato.service.delete) keeps its row while its module stays: not listed
    items = [{**NO_USAGE, **usage.get(name, {}), 'name': name, 'file_name': file_name or '', 'is_active': is_active,
              'url': service_url(name)} for name, file_name, is_active, opaque in rows
             if not is_internal(name) and not (opaque or {}).get(UNDEPLOYED)]
    shown, page = Page.from_request(request).slice(items, lambda item: f'{item["name"]} {item["file_name"]}')
    return app.render(request, 'services.html', items=shown, page=page, minutes=MINUTES)


# ############################################################################################## one service

def info_of(app: WebAdmin, db: Session, name: str) -> dict[str, Any]:
    """What the admin API says of the service, with its options and rate limit as the ODB has them
    (a worker may not have applied an edit made a moment ago); from the ODB alone if no server has
    loaded it yet."""
    if is_internal(name):
        raise HTTPError(404, f'No user service named `{name}`')
    row = db.scalar(select(Service).where(Service.cluster_id == app.config.cluster_id, Service.name == name))
    if row is not None and (row.opaque or {}).get(UNDEPLOYED):
        raise HTTPError(404, f'No service named `{name}` is deployed')
    note = ''
    try:
        info = app.config.admin.call('GET', f'/zato/admin/services/{quote(name, safe="")}')
    except AdminCallError as e:
        if e.status != 404:
            raise
        info, note = None, 'The server that answered has not loaded this service yet; reload in a moment.'
    except ZatoError as e:
        info, note = None, f'No server answered ({e}); showing what the ODB has.'
    if info is None:
        if row is None:
            raise HTTPError(404, f'No service named `{name}` is deployed')
        code = db.get(DeployedCode, row.code_id) if row.code_id is not None else None
        info = {'name': name, 'impl_name': row.impl_name, 'file_name': code.file_name if code else '',
                'source': code.source if code else None, 'http_verbs': None, 'simple_io': None,
                'has_simple_io': None, 'schema': None}
    info['note'] = note
    limit_id = info.get('rate_limit_id')
    if row is not None:
        opaque = row.opaque or {}
        for option in OPTIONS:
            info[option] = bool(opaque.get(option, info.get(option, option == 'is_json_schema_enabled')))
        info['is_active'] = row.is_active
        limit_id = row.rate_limit_id
    limit = db.get(RateLimitDef, limit_id) if limit_id is not None else None
    info['rate_limit'] = limit.name if limit is not None else None
    info['rate_limit_rules'] = limit.rules if limit is not None else ''
    return info


def render_service(app: WebAdmin, request: Request, name: str, status: int = 200,
                   options: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                   **context: Any) -> Response:
    """The page of service `name`, with the options form as typed (`options`) and `errors` if refused."""
    cluster_id = app.config.cluster_id
    with app.db() as db:
        info = info_of(app, db, name)
        channels = channels_of(db, cluster_id, name)
        points = stats_query.series(db, cluster_id, name, MINUTES)
        usage = next((s for s in stats_query.services_summary(db, cluster_id, MINUTES) if s['name'] == name),
                     NO_USAGE)
    if options is None:
        options = {**{o: info[o] for o in OPTIONS if o in info}, 'rate_limit': info.get('rate_limit') or '',
                   'is_active': info.get('is_active', True)}
    context.setdefault('payload', '')
    return app.render(request, 'services_detail.html', status, svc=info, url=service_url(name), channels=channels,
                      usage=usage, charts=usage_charts(points, name, 'svc-'), minutes=MINUTES, options=options,
                      limits=rate_limit_choices(app), errors=errors or {}, **context)


def service_page(app: WebAdmin, request: Request, name: str) -> Response:
    return render_service(app, request, name)


def service_edit(app: WebAdmin, request: Request, name: str) -> Response:
    form = request.form
    options: dict[str, Any] = {o: form.get(o, '') in ('on', 'true', '1') for o in (*OPTIONS, 'is_active')}
    options['rate_limit'] = form.get('rate_limit', '')
    try:
        app.config.admin.call('PUT', f'/zato/admin/services/{quote(name, safe="")}',
                              {**options, 'rate_limit': options['rate_limit'] or None})
    except AdminCallError as e:
        if e.status >= 500:
            raise
        message = details_text(e)
        field = field_of_message(message, OPTION_FIELDS) or 'options'
        return render_service(app, request, name, e.status, options=options, errors={field: message})
    audit(app, request, 'service.edit', name, options)
    return app.done(request, service_url(name), f'Saved the options of service `{name}`.')


def service_delete(app: WebAdmin, request: Request, name: str) -> Response:
    """Undeploys the service from every worker of the cluster (DELETE /zato/admin/services/{name})."""
    if is_internal(name):
        raise HTTPError(404, f'No user service named `{name}`')
    try:
        out = app.config.admin.call('DELETE', f'/zato/admin/services/{quote(name, safe="")}')
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return app.done(request, service_url(name), details_text(e), 'error')
    audit(app, request, 'service.delete', name, out)
    module = f' and its module `{out["file_name"]}`' if out.get('module_deleted') else ''
    return app.done(request, '/services', f'Deleted service `{name}`{module} from every server.')


def service_invoke(app: WebAdmin, request: Request, name: str) -> Response:
    admin = app.config.admin
    text = request.form.get('payload', '')
    payload = None
    if text.strip():
        try:
            payload = json.loads(text)
        except ValueError as e:
            return render_service(app, request, name, 400, payload=text, errors={'payload': f'Not valid JSON: {e}'})
    started = time.monotonic()
    try:
        out = admin.call('POST', '/zato/admin/invoke', {'name': name, 'payload': payload})
        # None: the service returned nothing (the API's 204)
        result: dict[str, Any] = {'ok': True, 'status': 200 if out is not None else 204,
                                  'body': pretty(out) if out is not None else '(no response)'}
    except AdminCallError as e:
        result = {'ok': False, 'status': e.status, 'body': pretty(e.details)}
    except ZatoError as e:
        result = {'ok': False, 'status': None, 'body': str(e)}
    result['ms'] = round((time.monotonic() - started) * 1000, 1)
    # The payload may hold anything, a secret included: the audit log keeps its size only
    audit(app, request, 'service.invoke', name, {'ok': result['ok'], 'status': result['status'],
                                                 'payload_bytes': len(text.encode())})
    return render_service(app, request, name, payload=text, result=result)


# ############################################################################################## deploy

def render_deploy(app: WebAdmin, request: Request, status: int = 200, **context: Any) -> Response:
    return app.render(request, 'services_deploy.html', status, **context)


def deploy_form(app: WebAdmin, request: Request) -> Response:
    return render_deploy(app, request)


def deploy(app: WebAdmin, request: Request) -> Response:
    file_name, data = request.files.get('module', ('', b''))
    # A browser may send the client's whole path; the server takes the base name only
    file_name = file_name.replace('\\', '/').rsplit('/', 1)[-1]
    if not file_name:
        return render_deploy(app, request, 400, error='Choose a .py module or a .json schema to deploy.')
    if not file_name.endswith(('.py', '.json')):
        return render_deploy(app, request, 400, file_name=file_name,
                             error=f'`{file_name}` is neither a .py module nor a .json schema.')
    try:
        source = data.decode('utf-8')
    except UnicodeDecodeError:
        return render_deploy(app, request, 400, file_name=file_name, error=f'`{file_name}` is not UTF-8 text.')
    try:
        out = app.config.admin.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': source})
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return render_deploy(app, request, e.status, file_name=file_name, error=details_text(e))
    if 'services_using' in out:
        # A JSON Schema: every worker now validates with it the services that name it
        audit(app, request, 'schema.deploy', file_name, {'version': out.get('version'),
                                                         'services_using': out.get('services_using')})
        using = [{'name': name, 'url': service_url(name)} for name in out.get('services_using') or []]
        return render_deploy(app, request, file_name=file_name, result=out, schema=True, deployed=using)
    audit(app, request, 'service.deploy', file_name, {'version': out.get('version'), 'services': out.get('services'),
                                                      'changed': out.get('changed')})
    deployed = [{'name': name, 'url': service_url(name)} for name in out.get('services') or []]
    return render_deploy(app, request, file_name=file_name, result=out, deployed=deployed)


ROUTES: list[Route] = [
    ('GET', '/services', services_list, False),
    ('GET', '/services/{name}', service_page, False),
    ('POST', '/services/{name}/edit', service_edit, False),
    ('POST', '/services/{name}/invoke', service_invoke, False),
    ('POST', '/services/{name}/delete', service_delete, False),
    ('GET', '/deploy', deploy_form, False),
    ('POST', '/deploy', deploy, False),
]
