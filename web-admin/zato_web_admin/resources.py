"""Declared pages over the admin API: a `Resource` says which admin API path holds the objects, which
fields its form has and which columns its list shows; `crud_routes` gives it list, search and
pagination, create, edit, delete, activate/deactivate, and its row actions (ping, change password),
each a module-level view.

Every write goes through the admin API, so the server validates it and the cluster bus spreads it to
every worker, exactly as a change made with the CLI. A refused form is shown again with what the
user typed (never a password) and the server's message next to the field it names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from zato.admin_client import AdminCallError
from zato_web_admin import users
from zato_web_admin.http import HTTPError, Request, Response, Route, View
from zato_web_admin.listing import Page

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

Choices = Callable[['WebAdmin'], list[tuple[str, str]]]


@dataclass(frozen=True)
class Field:
    """One form field. `widget`: text, number, float, checkbox, select, textarea, lines (a list, one item
    a line), json (an object), password (sent only when filled in)."""
    name: str
    label: str
    widget: str = 'text'
    help: str = ''
    required: bool = False
    default: Any = ''
    choices: tuple[tuple[str, str], ...] | Choices = ()
    create_only: bool = False
    # How an API item's value is shown when it is not under `name` (a rate limit's id → its name ...)
    read: Callable[[WebAdmin, dict[str, Any]], Any] | None = None
    # A web-admin URL that checks the text as it is typed (static/app.js; answers {"ok", "error"})
    check: str = ''
    # False: an empty value is not sent, so the server's default applies (a Kafka group id ...)
    send_empty: bool = True

    def value_of(self, app: WebAdmin, item: dict[str, Any]) -> str:
        return self.to_form(self.read(app, item) if self.read is not None else item.get(self.name, self.default))

    def options(self, app: WebAdmin) -> list[tuple[str, str]]:
        return self.choices(app) if callable(self.choices) else list(self.choices)

    def to_form(self, value: Any) -> str:
        """An API value as the text the form shows."""
        if value is None:
            return ''
        if self.widget == 'checkbox':
            return 'on' if value else ''
        if self.widget == 'lines':
            return '\n'.join(str(v) for v in value) if isinstance(value, list) else str(value)
        if self.widget == 'json':
            return json.dumps(value, indent=2) if value not in ('', None) else ''
        return str(value)

    def from_form(self, text: str) -> Any:
        """The form's text as the API value; ValueError with a message for the user."""
        if self.widget == 'checkbox':
            return text in ('on', 'true', '1')
        if self.widget == 'textarea':
            text = text.replace('\r\n', '\n')  # browsers send a textarea's lines with CRLF
        text = text.strip() if self.widget not in ('textarea', 'password') else text
        if self.widget in ('number', 'float'):
            if text == '':
                if self.required:
                    raise ValueError('required')
                return None
            try:
                return int(text) if self.widget == 'number' else float(text)
            except ValueError:
                raise ValueError('expected a number') from None
        if self.widget == 'lines':
            return [line.strip() for line in text.splitlines() if line.strip()]
        if self.widget == 'json':
            if not text:
                return {}
            try:
                value = json.loads(text)
            except ValueError as e:
                raise ValueError(f'not valid JSON: {e}') from None
            if not isinstance(value, dict):
                raise ValueError('expected a JSON object')
            return value
        if self.required and not text:
            raise ValueError('required')
        return text


@dataclass(frozen=True)
class Action:
    """A button on each row that POSTs to the admin API: `path` is appended to the object's path."""
    name: str
    label: str
    path: str
    describe: Callable[[dict[str, Any]], tuple[str, str]] = lambda out: ('ok', json.dumps(out))


@dataclass(frozen=True)
class Resource:
    slug: str                  # its pages live under /<slug>
    title: str                 # 'REST channels'
    singular: str              # 'REST channel'
    api: str                   # '/zato/admin/channels/rest'
    fields: tuple[Field, ...]
    columns: tuple[tuple[str, str], ...]  # (key of an API item, column title)
    section: str = ''          # the menu it is under
    search_keys: tuple[str, ...] = ('name',)
    actions: tuple[Action, ...] = ()
    password_field: str = ''   # the field change-password sends ('' = no such action)
    create_extra: dict[str, Any] = field(default_factory=dict)  # always sent on create (a kind ...)
    keep: Callable[[dict[str, Any]], bool] | None = None  # which API items belong to this page
    audit_kind: str = ''
    links: tuple[tuple[str, str], ...] = ()  # (label, suffix): a link on each row to /<slug>/<id><suffix>
    # The API's items as the list shows them (times made readable, figures added from the ODB ...)
    shape: Callable[[WebAdmin, list[dict[str, Any]]], list[dict[str, Any]]] | None = None

    @property
    def base(self) -> str:
        return '/' + self.slug


def field_of_message(message: str, fields: tuple[Field, ...]) -> str:
    """The field a server message names in backticks, '' if none of ours."""
    names = {f.name for f in fields}
    for name in re.findall(r'`([A-Za-z_][\w.]*)`', message):
        if name in names:
            return name
    return ''


def audit(app: WebAdmin, request: Request, res: Resource, action: str, name: str,
          details: dict[str, Any] | None = None) -> None:
    """Records a change the signed-in user made to an object of `res`."""
    with app.db() as db:
        users.audit(db, request.current.username, action, res.audit_kind or res.slug, name, details,
                    request.remote_addr)
        db.commit()


def get_one(app: WebAdmin, res: Resource, obj_id: str) -> dict[str, Any]:
    """The object of `res` with this id, from the admin API; a 404 page if there is none."""
    if not obj_id.isdigit():
        raise HTTPError(404)
    try:
        out = app.config.admin.call('GET', f'{res.api}/{obj_id}')
    except AdminCallError as e:
        if e.status == 404:
            raise HTTPError(404, f'No such {res.singular}') from None
        raise
    return out if isinstance(out, dict) else {}


# ################################################################################################ the pages
# Every view of a resource is called as view(app, request, res, [obj_id]): `res` is bound by its route
# (crud_routes) or found from the {kind} in its path (family_routes).

def items(app: WebAdmin, res: Resource) -> list[dict[str, Any]]:
    found = app.config.admin.call('GET', res.api) or []
    kept = [item for item in found if res.keep is None or res.keep(item)]
    return kept if res.shape is None else res.shape(app, kept)


def list_page(app: WebAdmin, request: Request, res: Resource) -> Response:
    page = Page.from_request(request)
    shown, page = page.slice(items(app, res), lambda item: ' '.join(str(item.get(k, '')) for k in res.search_keys))
    return app.render(request, 'list.html', res=res, items=shown, page=page)


def render_form(app: WebAdmin, request: Request, res: Resource, values: dict[str, str], obj_id: str = '',
                status: int = 200, errors: dict[str, str] | None = None) -> Response:
    """The create form (no `obj_id`) or the edit form, showing `values` and the `errors` next to their fields."""
    return app.render(request, 'form.html', status, res=res, values=values, obj_id=obj_id, errors=errors or {},
                      fields=[f for f in res.fields if not (obj_id and f.create_only)],
                      options={f.name: f.options(app) for f in res.fields if f.widget == 'select'})


def new(app: WebAdmin, request: Request, res: Resource) -> Response:
    return render_form(app, request, res, {f.name: f.to_form(f.default) for f in res.fields})


def collect(request: Request, res: Resource, editing: bool) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """What the user typed, the API payload made of it, and the fields that could not be read."""
    values, payload, errors = {}, {}, {}
    for f in res.fields:
        if editing and f.create_only:
            continue
        text = request.form.get(f.name, '')
        values[f.name] = '' if f.widget == 'password' else text
        if f.widget == 'password' and not text:
            if f.required and not editing:
                errors[f.name] = 'required'
            continue
        try:
            value = f.from_form(text)
        except ValueError as e:
            errors[f.name] = str(e)
            continue
        if value is not None and (f.send_empty or value != ''):
            payload[f.name] = value
    return values, payload, errors


def refused(app: WebAdmin, request: Request, res: Resource, values: dict[str, str], e: AdminCallError,
            obj_id: str = '') -> Response:
    """The form again, with the server's message next to the field it names."""
    message = e.details if isinstance(e.details, str) else json.dumps(e.details)
    name = field_of_message(message, res.fields)
    errors = {name: message} if name else {'__all__': message}
    return render_form(app, request, res, values, obj_id, e.status if 400 <= e.status < 500 else 400, errors)


def create(app: WebAdmin, request: Request, res: Resource) -> Response:
    values, payload, errors = collect(request, res, editing=False)
    if errors:
        return render_form(app, request, res, values, status=400, errors=errors)
    try:
        out = app.config.admin.call('POST', res.api, {**res.create_extra, **payload})
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return refused(app, request, res, values, e)
    name = str(out.get('name', payload.get('name', ''))) if isinstance(out, dict) else ''
    audit(app, request, res, f'{res.slug}.create', name,
          {k: v for k, v in payload.items() if k != res.password_field})
    secret = out.get('password') if isinstance(out, dict) else None
    if secret:
        # A secret the server generated is shown on this page once, never put in a cookie or a URL
        return app.render(request, 'created.html', res=res, name=name, secret=secret)
    return app.done(request, res.base, f'Created {res.singular} `{name}`.')


def edit(app: WebAdmin, request: Request, res: Resource, obj_id: str) -> Response:
    item = get_one(app, res, obj_id)
    return render_form(app, request, res, {f.name: f.value_of(app, item) for f in res.fields}, obj_id)


def update(app: WebAdmin, request: Request, res: Resource, obj_id: str) -> Response:
    values, payload, errors = collect(request, res, editing=True)
    if errors:
        return render_form(app, request, res, values, obj_id, 400, errors)
    try:
        out = app.config.admin.call('PUT', f'{res.api}/{obj_id}', payload)
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return refused(app, request, res, values, e, obj_id)
    name = str(out.get('name', '')) if isinstance(out, dict) else ''
    audit(app, request, res, f'{res.slug}.edit', name,
          {k: v for k, v in payload.items() if k != res.password_field})
    return app.done(request, res.base, f'Saved {res.singular} `{name}`.')


def write(app: WebAdmin, request: Request, res: Resource, obj_id: str, item: dict[str, Any], what: str,
          method: str, payload: dict[str, Any] | None = None) -> Response | None:
    """Calls the admin API on `item`; a refusal (a definition still in use ...) is a message on the
    list rather than an error page."""
    try:
        app.config.admin.call(method, f'{res.api}/{obj_id}', payload)
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return app.done(request, res.base, f'Could not {what} {res.singular} `{item.get("name", "")}`: '
                                           f'{e.details}', 'error')
    return None


def remove(app: WebAdmin, request: Request, res: Resource, obj_id: str) -> Response:
    item = get_one(app, res, obj_id)
    failed = write(app, request, res, obj_id, item, 'delete', 'DELETE')
    if failed is not None:
        return failed
    audit(app, request, res, f'{res.slug}.delete', str(item.get('name', '')))
    return app.done(request, res.base, f'Deleted {res.singular} `{item.get("name", "")}`.')


def toggle(app: WebAdmin, request: Request, res: Resource, obj_id: str) -> Response:
    item = get_one(app, res, obj_id)
    active = not item.get('is_active', False)
    failed = write(app, request, res, obj_id, item, 'activate' if active else 'deactivate', 'PUT',
                   {'is_active': active})
    if failed is not None:
        return failed
    audit(app, request, res, f'{res.slug}.{"activate" if active else "deactivate"}', str(item.get('name', '')))
    return app.done(request, res.base, f'{"Activated" if active else "Deactivated"} {res.singular} '
                                       f'`{item.get("name", "")}`.')


def run_action(app: WebAdmin, request: Request, res: Resource, obj_id: str, act: Action) -> Response:
    """A row's button (`act`, bound by its route): the admin API's answer as a message on the list."""
    item = get_one(app, res, obj_id)
    try:
        out = app.config.admin.call('POST', f'{res.api}/{obj_id}{act.path}')
    except AdminCallError as e:
        return app.done(request, res.base, f'{act.label} `{item.get("name", "")}`: {e.details}', 'error')
    kind, text = act.describe(out if isinstance(out, dict) else {})
    return app.done(request, res.base, f'{act.label} `{item.get("name", "")}`: {text}', kind)


def render_password_form(app: WebAdmin, request: Request, res: Resource, obj_id: str, status: int = 200,
                         error: str = '') -> Response:
    if not res.password_field:
        raise HTTPError(404)
    item = get_one(app, res, obj_id)
    return app.render(request, 'password.html', status, res=res, item=item, error=error)


def password_form(app: WebAdmin, request: Request, res: Resource, obj_id: str) -> Response:
    return render_password_form(app, request, res, obj_id)


def change_password(app: WebAdmin, request: Request, res: Resource, obj_id: str) -> Response:
    if not res.password_field:
        raise HTTPError(404)
    new, again = request.form.get('password', ''), request.form.get('password_again', '')
    if not new or new != again:
        return render_password_form(app, request, res, obj_id, 400, 'The two passwords differ.' if new else 'required')
    item = get_one(app, res, obj_id)
    try:
        app.config.admin.call('POST', f'{res.api}/{obj_id}/change-password', {res.password_field: new})
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return render_password_form(app, request, res, obj_id, e.status, str(e.details))
    audit(app, request, res, f'{res.slug}.change-password', str(item.get('name', '')))
    return app.done(request, res.base, f'Changed the password of {res.singular} `{item.get("name", "")}`.')


# ################################################################################################ their routes

@dataclass(frozen=True)
class ByKind:
    """A view of a family of resources under one pattern: the {kind} in the path names the resource
    (`find` raises a 404 for an unknown one), then the view is called with it as with a fixed one."""
    view: View
    find: Callable[[WebAdmin, str], Resource]

    def __call__(self, app: WebAdmin, request: Request, kind: str, **params: str) -> Response:
        return self.view(app, request, self.find(app, kind), **params)


def crud_routes(res: Resource) -> list[Route]:
    """The pages of one resource, under its base path."""
    return _routes(res.base, res.actions, bool(res.password_field), lambda view: partial(view, res=res))


def family_routes(base: str, find: Callable[[WebAdmin, str], Resource], actions: tuple[Action, ...] = (),
                  has_password: bool = False) -> list[Route]:
    """The pages of a family of resources under `base`, a pattern with {kind}."""
    return _routes(base, actions, has_password, lambda view: ByKind(view, find))


def _routes(base: str, actions: tuple[Action, ...], has_password: bool, bind: Callable[[View], View]) -> list[Route]:
    routes: list[Route] = [
        ('GET', base, bind(list_page), False),
        ('GET', f'{base}/new', bind(new), False),
        ('POST', f'{base}/new', bind(create), False),
        ('GET', f'{base}/{{obj_id}}/edit', bind(edit), False),
        ('POST', f'{base}/{{obj_id}}/edit', bind(update), False),
        ('POST', f'{base}/{{obj_id}}/delete', bind(remove), False),
        ('POST', f'{base}/{{obj_id}}/toggle', bind(toggle), False),
    ]
    for act in actions:
        routes.append(('POST', f'{base}/{{obj_id}}/{act.name}', bind(partial(run_action, act=act)), False))
    if has_password:
        routes.append(('GET', f'{base}/{{obj_id}}/change-password', bind(password_form), False))
        routes.append(('POST', f'{base}/{{obj_id}}/change-password', bind(change_password), False))
    return routes


def ping_result(out: dict[str, Any]) -> tuple[str, str]:
    """An admin ping's answer as a message: the round trip in ms, or the error."""
    if out.get('ok'):
        return 'ok', f'OK in {float(out.get("time", 0)) * 1000:.1f} ms'
    return 'error', str(out.get('error', 'failed'))


PING = Action('ping', 'Ping', '/ping', ping_result)

