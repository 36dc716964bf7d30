"""``self.cache``: a service's view of the built-in caches, as in Zato 3.1 — ``self.cache.default`` and
``self.cache.builtin['My Cache']``. One view per worker, kept current by the worker's registry
(zato.server.caches), so reaching a cache costs two attribute reads and a dict lookup."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from zato.cache.store import CacheDeleted

if TYPE_CHECKING:
    from zato.cache.api import Cache


class BuiltinCaches:
    """``self.cache.builtin``: the built-in caches by name. An unknown name (one never defined, or one
    deleted or made inactive) raises zato.cache.CacheDeleted, a KeyError, naming it."""

    __slots__ = ('by_name', 'inactive')

    def __init__(self) -> None:
        self.by_name: dict[str, Cache] = {}
        self.inactive: dict[int, str] = {}  # id → name of each cache defined but not active

    def __getitem__(self, name: str) -> Cache:
        cache = self.by_name.get(name)
        if cache is not None:
            return cache
        if name in self.inactive.values():
            raise CacheDeleted(f'Cache `{name}` is not active')
        close = difflib.get_close_matches(name, list(self.by_name), n=3)
        hint = f'; did you mean {", ".join(f"`{c}`" for c in close)}?' if close else ''
        raise CacheDeleted(f'No such cache `{name}`{hint}')

    def get(self, name: str) -> Cache | None:
        return self.by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def keys(self) -> list[str]:
        return sorted(self.by_name)


class CacheFacade:
    """``self.cache``: ``.default`` (the cluster's default cache) and ``.builtin[name]``."""

    __slots__ = ('builtin', 'default_cache')

    def __init__(self) -> None:
        self.builtin = BuiltinCaches()
        self.default_cache: Cache | None = None  # kept by the worker's registry (zato.server.caches)

    @property
    def default(self) -> Cache:
        cache = self.default_cache
        if cache is None:
            raise CacheDeleted('No default cache is defined (set is_default on a built-in cache)')
        return cache
