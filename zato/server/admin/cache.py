"""Admin services of built-in caches (/zato/admin/caches/builtin ...), with 3.1's names: create, edit,
delete, get and get-list of definitions; browse the entries, get or delete one, clear them all.

Entries are read from the memory of the worker that serves the admin call, which with `in-background`
sync holds what every worker holds (eventually: zato.server.caches); delete and clear spread to every
worker like a service's own. The REST channels' response-cache fields (`cache`, `cache_expiry`) are
checked here too (`apply_channel_cache`), kept in the channel's opaque column.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from zato.errors import BadRequest, Conflict, NotFound
from zato.odb.models import CacheBuiltin, ChannelREST
from zato.server.admin.base import AdminService
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList

if TYPE_CHECKING:
    from zato.cache.api import Cache
    from zato.cache.store import Entry

SYNC_METHODS = ('in-background', 'no-sync')

# field, minimum, maximum, default
_LIMITS = (('max_size', 1, 10_000_000, 10000), ('max_item_size', 1, 100_000_000, 10000))

INPUTS = frozenset(('id', 'name', 'is_active', 'is_default', 'max_size', 'max_item_size', 'extend_expiry_on_get',
                    'extend_expiry_on_set', 'sync_method'))

# Entries a browse returns at most
MAX_BROWSE = 1000

# The longest response-cache expiry of a channel: a year, in seconds
MAX_CHANNEL_EXPIRY = 365 * 86400


def cache_to_dict(row: CacheBuiltin) -> dict[str, Any]:
    return {'id': row.id, 'name': row.name, 'is_active': row.is_active, 'is_default': row.is_default,
            'max_size': row.max_size, 'max_item_size': row.max_item_size,
            'extend_expiry_on_get': row.extend_expiry_on_get, 'extend_expiry_on_set': row.extend_expiry_on_set,
            'sync_method': row.sync_method}


class _CacheBase(CRUD):
    zato_dont_import = True

    model = CacheBuiltin
    label = 'cache'
    bus_kind = 'cache_builtin'

    def _new_row(self) -> CacheBuiltin:
        return CacheBuiltin(cluster_id=self.server.cluster_id, version=1, opaque={}, is_active=True, is_default=False,
                            sync_method='in-background')

    def _apply(self, session: Any, row: CacheBuiltin, data: dict[str, Any], creating: bool) -> None:
        unknown = sorted(set(data) - INPUTS)
        if unknown:
            raise BadRequest(f'Invalid input `{unknown[0]}`: a cache has no such field')
        f = self.field
        self._apply_name(row, data, creating)
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        for name, low, high, default in _LIMITS:
            value = f(data, name, int, False, default if creating else getattr(row, name))
            if not low <= value <= high:
                raise BadRequest(f'Invalid input `{name}`: expected {low} to {high}')
            setattr(row, name, value)
        for name in ('extend_expiry_on_get', 'extend_expiry_on_set'):
            setattr(row, name, f(data, name, bool, False, True if creating else getattr(row, name)))
        sync_method = f(data, 'sync_method', str, False, row.sync_method)
        if sync_method not in SYNC_METHODS:
            raise BadRequest(f'Invalid input `sync_method`: expected one of {", ".join(SYNC_METHODS)}')
        row.sync_method = sync_method
        was_default = bool(row.is_default) and not creating
        row.is_default = f(data, 'is_default', bool, False, False if creating else row.is_default)
        if was_default and not row.is_default:
            raise BadRequest('Invalid input `is_default`: make another cache the default instead')
        if row.is_default and not row.is_active:
            raise BadRequest('Invalid input `is_active`: the default cache must be active')

    def _check_flushed(self, session: Any, row: CacheBuiltin) -> None:
        if row.is_default:
            # One default per cluster: the others stop being it in the same transaction
            session.execute(update(CacheBuiltin).where(CacheBuiltin.cluster_id == row.cluster_id,
                                                       CacheBuiltin.id != row.id).values(is_default=False))

    def _check_unused(self, session: Any, row: CacheBuiltin) -> None:
        if row.is_default:
            raise Conflict(f'Cache `{row.name}` is the default cache; make another cache the default first')
        user = next((chan for chan in self._channels(session) if (chan.opaque or {}).get('cache_id') == row.id), None)
        if user is not None:
            raise Conflict(f'Cache `{row.name}` caches the responses of REST channel `{user.name}`')

    def _channels(self, session: Any) -> list[ChannelREST]:
        return list(session.scalars(select(ChannelREST).where(ChannelREST.cluster_id == self.server.cluster_id)))

    def _to_dict(self, session: Any, row: CacheBuiltin) -> dict[str, Any]:
        return cache_to_dict(row)


class CreateCache(_CacheBase, Create):
    name = 'zato.cache.builtin.create'


class EditCache(_CacheBase, Edit):
    name = 'zato.cache.builtin.edit'


class DeleteCache(_CacheBase, Delete):
    name = 'zato.cache.builtin.delete'


class GetCache(_CacheBase, Get):
    name = 'zato.cache.builtin.get'


class GetCacheList(_CacheBase, GetList):
    name = 'zato.cache.builtin.get-list'

    def handle(self) -> None:
        super().handle()
        # How many entries this worker holds of each
        for item in self.response.payload:
            cache = self.server.caches.by_id.get(item['id'])
            item['entries'] = len(cache) if cache is not None else 0


# Entries

def entry_to_dict(entry: Entry) -> dict[str, Any]:
    out = entry.to_dict()
    value = out['value']
    out['is_bytes'] = isinstance(value, bytes)
    if out['is_bytes']:
        out['value'] = base64.b64encode(value).decode('ascii')
    return out


class _EntryBase(_CacheBase):
    zato_dont_import = True

    def _cache(self) -> Cache:
        with self.server.Session() as session:
            row = self._get_row(session)
            cache_id, name = row.id, row.name
        cache = self.server.caches.by_id.get(cache_id)
        if cache is None:
            raise NotFound(f'Cache `{name}` is not active')
        return cache

    def _key(self) -> str:
        key = self.field(self.input_dict(), 'key', str)
        if not key:
            raise BadRequest('Invalid input `key`: expected a non-empty string')
        return key


class GetEntryList(_EntryBase):
    """The entries of a cache, least recently used first: `query` (a part of the key) and `limit` narrow it."""
    name = 'zato.cache.builtin.entry.get-list'

    def handle(self) -> None:
        data = self.input_dict()
        query = self.field(data, 'query', str, False, '')
        limit = self.field(data, 'limit', int, False, MAX_BROWSE)
        if not 1 <= limit <= MAX_BROWSE:
            raise BadRequest(f'Invalid input `limit`: expected 1 to {MAX_BROWSE}')
        cache = self._cache()
        found = []
        for entry in cache.store.live():
            if query in entry.key:
                found.append(entry_to_dict(entry))
                if len(found) >= limit:
                    break
        self.response.payload = found


class GetEntry(_EntryBase):
    name = 'zato.cache.builtin.entry.get'

    def handle(self) -> None:
        cache = self._cache()  # the cache first: an id that names none is a 404 whatever the input
        key = self._key()
        entry = cache.store.peek(key)
        if entry is None:
            raise NotFound(f'Key `{key[:200]}` not found')
        self.response.payload = entry_to_dict(entry)


class DeleteEntry(_EntryBase):
    """Deletes one entry on every worker."""
    name = 'zato.cache.builtin.entry.delete'

    def handle(self) -> None:
        cache = self._cache()
        key = self._key()
        try:
            cache.delete(key)
        except KeyError:
            raise NotFound(f'Key `{key[:200]}` not found') from None
        self.response.payload = {'key': key, 'deleted': True}


class ClearCache(_EntryBase):
    """Deletes every entry of the cache on every worker."""
    name = 'zato.cache.builtin.clear'

    def handle(self) -> None:
        cache = self._cache()
        cache.clear()
        self.response.payload = {'id': cache.id, 'name': cache.name, 'cleared': True}


# A REST channel's response cache

def apply_channel_cache(svc: AdminService, session: Any, row: ChannelREST, data: dict[str, Any]) -> None:
    """Inputs `cache` (the name of a built-in cache; null or '' for none) and `cache_expiry` (seconds a
    response is kept, 0: until evicted) of a REST channel, kept in its opaque column."""
    opaque = dict(row.opaque or {})
    if 'cache' in data:
        name = svc.ref_name(data, 'cache', 'a built-in cache')
        if name is None:
            opaque.pop('cache_id', None)
        else:
            cache = session.scalars(select(CacheBuiltin).where(CacheBuiltin.cluster_id == svc.server.cluster_id,
                                                               CacheBuiltin.name == name)).one_or_none()
            if cache is None:
                raise BadRequest(f'Invalid input `cache`: no built-in cache named `{name}`')
            opaque['cache_id'] = cache.id
    expiry = svc.field(data, 'cache_expiry', int, False, opaque.get('cache_expiry', 0))
    if not 0 <= expiry <= MAX_CHANNEL_EXPIRY:
        raise BadRequest(f'Invalid input `cache_expiry`: expected 0 to {MAX_CHANNEL_EXPIRY} seconds')
    opaque['cache_expiry'] = expiry
    row.opaque = opaque


def channel_cache_fields(session: Any, row: ChannelREST) -> dict[str, Any]:
    """The response-cache fields of a REST channel as the API shows them."""
    opaque = row.opaque or {}
    cache_id = opaque.get('cache_id')
    cache = session.get(CacheBuiltin, cache_id) if cache_id is not None else None
    return {'cache': cache.name if cache is not None else None, 'cache_expiry': opaque.get('cache_expiry', 0)}
