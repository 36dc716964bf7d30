"""Built-in caches: their definitions (list, create, edit, delete, "Clear"), and a page of each cache's
entries where one can be looked up by a part of its key and deleted.

The entries are those of the worker that answers the admin call; with `in-background` sync every
worker holds the same ones (docs/cache.md). A delete or a clear goes through the admin API and spreads
to every worker like a service's own."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import select

from zato.admin_client import AdminCallError
from zato.odb.models import CacheBuiltin
from zato_web_admin.http import HTTPError, Request, Response, Route
from zato_web_admin.resources import Action, Field, Resource, audit, crud_routes, get_one

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

# How much of a value the entries page shows
SHOWN_VALUE = 300

CLEAR = Action('clear', 'Clear', '/clear', lambda out: ('ok', 'every entry deleted, on every worker'))

CACHES = Resource(
    'caches/builtin', 'Built-in caches', 'built-in cache', '/zato/admin/caches/builtin', section='Cache',
    fields=(
        Field('name', 'Name', required=True),
        Field('is_active', 'Active', 'checkbox', default=True),
        Field('is_default', 'Default', 'checkbox', 'self.cache.default: one cache of the cluster is the default'),
        Field('max_size', 'Max entries', 'number', 'The least recently used entry goes first', default=10000),
        Field('max_item_size', 'Max item size (bytes)', 'number', 'Of a value as JSON (bytes as they are)',
              default=10000),
        Field('extend_expiry_on_get', 'Extend expiry on get', 'checkbox', 'A read restarts an entry’s expiry',
              default=True),
        Field('extend_expiry_on_set', 'Extend expiry on set', 'checkbox',
              'A set without an expiry keeps the one the entry had', default=True),
        Field('sync_method', 'Sync', 'select', default='in-background',
              choices=(('in-background', 'Every worker of the cluster'), ('no-sync', 'None: each worker its own'))),
    ),
    columns=(('name', 'Name'), ('is_default', 'Default'), ('max_size', 'Max entries'), ('sync_method', 'Sync'),
             ('entries', 'Entries')),
    actions=(CLEAR,), links=(('Entries', '/entries'),), audit_kind='cache-builtin')


def cache_choices(app: WebAdmin) -> list[tuple[str, str]]:
    """The REST channel form's `cache` choices."""
    with app.db() as db:
        names = db.scalars(select(CacheBuiltin.name).where(CacheBuiltin.cluster_id == app.config.cluster_id)
                           .order_by(CacheBuiltin.name)).all()
    return [('', '(none)'), *((name, name) for name in names)]


def shown(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as its row shows it: the value as JSON text, cut."""
    text = entry['value'] if entry.get('is_bytes') else json.dumps(entry.get('value'), ensure_ascii=False)
    return {**entry, 'text': text if len(text) <= SHOWN_VALUE else text[:SHOWN_VALUE] + '…'}


def entries(app: WebAdmin, request: Request, obj_id: str) -> Response:
    item = get_one(app, CACHES, obj_id)
    query = request.query.get('query', '')
    try:
        found = app.config.admin.call('GET', f'{CACHES.api}/{obj_id}/entries?{urlencode({"query": query})}') or []
        error = ''
    except AdminCallError as e:
        if e.status >= 500:
            raise
        found, error = [], str(e.details)
    return app.render(request, 'cache_entries.html', res=CACHES, item=item, entries=[shown(e) for e in found],
                      query=query, error=error)


def delete_entry(app: WebAdmin, request: Request, obj_id: str) -> Response:
    item = get_one(app, CACHES, obj_id)
    key = request.form.get('key', '')
    back = f'{CACHES.base}/{obj_id}/entries'
    if not key:
        raise HTTPError(400, 'No key given')
    try:
        app.config.admin.call('POST', f'{CACHES.api}/{obj_id}/entry/delete', {'key': key})
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return app.done(request, back, f'Delete `{key}`: {e.details}', 'error')
    audit(app, request, CACHES, f'{CACHES.slug}.entry.delete', str(item.get('name', '')), {'key': key})
    return app.done(request, back, f'Deleted entry `{key}` on every worker.')


def clear(app: WebAdmin, request: Request, obj_id: str) -> Response:
    """The "Clear" button (of the list and of the entries page): a change, so audited, unlike a ping."""
    item = get_one(app, CACHES, obj_id)
    try:
        app.config.admin.call('POST', f'{CACHES.api}/{obj_id}/clear')
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return app.done(request, CACHES.base, f'Clear `{item.get("name", "")}`: {e.details}', 'error')
    audit(app, request, CACHES, f'{CACHES.slug}.clear', str(item.get('name', '')))
    return app.done(request, CACHES.base, f'Cleared cache `{item.get("name", "")}` on every worker.')


# "Clear" is this module's own view (audited) instead of the generic action's
ROUTES: list[Route] = [
    *(route for route in crud_routes(CACHES) if route[1] != f'{CACHES.base}/{{obj_id}}/clear'),
    ('POST', f'{CACHES.base}/{{obj_id}}/clear', clear, False),
    ('GET', f'{CACHES.base}/{{obj_id}}/entries', entries, False),
    ('POST', f'{CACHES.base}/{{obj_id}}/entries/delete', delete_entry, False),
]
