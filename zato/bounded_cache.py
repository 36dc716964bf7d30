"""A dict with a bound: what the request path remembers per caller, per address or per credential.

Reads are plain `dict` lookups (`cache.get(key)`, at C speed); only `remember` knows the bound. When
the cache is full, the older half of its entries go (a dict keeps insertion order), so a full cache
never empties at once and the entries most recently added stay: one type instead of a "clear when
full" dict written again in every module that needs one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

K = TypeVar('K')
V = TypeVar('V')


class BoundedCache(dict[K, V]):
    """At most `max_size` entries; `remember` adds one, dropping the older half first when full."""

    __slots__ = ('max_size',)

    def __init__(self, max_size: int) -> None:
        if max_size < 2:
            raise ValueError('max_size must be at least 2')
        super().__init__()
        self.max_size = max_size

    def remember(self, key: K, value: V) -> V:
        if len(self) >= self.max_size and key not in self:
            for old in list(self)[:len(self) // 2]:
                del self[old]
        self[key] = value
        return value

    def forget_where(self, predicate: Callable[[K], bool]) -> None:
        """Drops every entry whose key `predicate` is true of (a definition that changed ...)."""
        for key in [key for key in self if predicate(key)]:
            del self[key]
