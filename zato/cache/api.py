"""`self.cache.default` and `self.cache.builtin[name]`: Zato 3.1's built-in cache API over one worker's
memory (zato.cache.store), each change spread to every worker of the cluster.

A change (set, delete, expire, clear and their by-pattern variants) is applied here at once, then
handed to `spread` with its stamp; every other worker applies it through `apply`, where the stamps
decide (last writer wins, zato.cache.store). A by-pattern change spreads as the changes of the keys
it matched on this worker. A cache with `sync_method` `no-sync` has no `spread`: its changes stay in
the worker that made them.

Values travel as JSON (bytes as base64): what JSON cannot carry is refused with TypeError before
anything changes, and a tuple set on one worker is a list on the others. `max_item_size` is the
size of that JSON (or of the bytes) in bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson

from zato.cache.matchers import matcher
from zato.cache.store import CacheDeleted, CacheStore, Entry, ItemTooLarge, Stamp
from zato.cache.variants import PatternVariants

# (cache id, op): op is ['s', key, value, size, expiry, expires_at, stamp time, stamp member] for a set (value
# as JSON), ['b', ...] the same with bytes as base64, ['d', key, time, member] a delete, ['c', time, member] a clear
Spread = Callable[[int, list[Any]], None]

_dumps = orjson.dumps
_Fragment = orjson.Fragment


def encode_value(value: Any, wire: bool = True) -> tuple[str, Any, int]:
    """(op code, the value as it travels (None unless `wire`), its size in bytes); TypeError for what
    JSON cannot carry."""
    if isinstance(value, bytes | bytearray):
        return 'b', base64.b64encode(value).decode('ascii') if wire else None, len(value)
    try:
        raw = _dumps(value)
    except TypeError as e:
        raise TypeError(f'A cache value must be JSON-serializable or bytes: {e}') from None
    return 's', _Fragment(raw) if wire else None, len(raw)


class Cache(PatternVariants):
    """One built-in cache as a service sees it. Keys are strings; `expiry` is in seconds (0: none).

    ``get(key, default=None, details=False)``, ``set(key, value, expiry=0.0, details=False)``,
    ``delete(key, details=False)``, ``expire(key, expiry=0.0)``, ``keys()``, ``values()``,
    ``items()``, ``clear()``, ``key in cache``, ``len(cache)``, ``cache[key]``, and the by-pattern
    variants of get, set, delete and expire (zato.cache.variants).
    """

    __slots__ = ('id', 'name', 'store', 'clock', 'spread', 'is_deleted')

    def __init__(self, cache_id: int, store: CacheStore, spread: Spread | None = None) -> None:
        self.id = cache_id
        self.name = store.name
        self.store = store
        self.clock = store.clock
        self.spread = spread
        self.is_deleted = False

    def __repr__(self) -> str:
        return f'<Cache {self.name!r} entries={len(self.store)}>'

    # Reads

    def get(self, key: str, default: Any = None, details: bool = False) -> Any:
        """The value of `key`, or `default` when there is none (or it expired); with `details`, an
        Entry (value, expiry, expires_at, hits, last_read, last_write ...) instead of the value."""
        entry = self.store.get(key)
        if entry is None:
            return default
        return entry.copy() if details else entry.value

    def __getitem__(self, key: str) -> Any:
        entry = self.store.get(key)
        if entry is None:
            raise KeyError(key)
        return entry.value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.store.peek(key) is not None

    def __len__(self) -> int:
        return len(self.store)

    def keys(self) -> list[str]:
        """Every key, least recently used first."""
        return [entry.key for entry in self.store.live()]

    def values(self) -> list[Any]:
        return [entry.value for entry in self.store.live()]

    def items(self) -> list[tuple[str, Any]]:
        return [(entry.key, entry.value) for entry in self.store.live()]

    # Writes

    def set(self, key: str, value: Any, expiry: float = 0.0, details: bool = False) -> Any:
        """Stores `value` under `key` for `expiry` seconds (0: until evicted; with the cache's
        `extend_expiry_on_set`, a key that had an expiry keeps it, counted from now). Returns the
        previous value (its Entry with `details`), or None."""
        if not isinstance(key, str):
            raise TypeError(f'A cache key must be a string, not {type(key).__name__}')
        if self.is_deleted:
            raise CacheDeleted(f'Cache `{self.name}` was deleted')
        store = self.store
        spread = self.spread
        code, wire, size = encode_value(value, spread is not None)
        if size > store.max_item_size > 0:
            raise ItemTooLarge(f'Value of `{key}` is {size} bytes; cache `{self.name}` takes at most '
                               f'{store.max_item_size}')
        if expiry.__class__ is not float or expiry < 0.0:
            expiry = _seconds(expiry)
        previous = store.peek(key)
        if previous is not None:
            previous = previous.copy() if details else previous.value
        expiry, expires_at = store.expiry_of(key, expiry, store.clock.now())
        stamp = self.clock.stamp()
        store.put(key, value, expiry, expires_at, stamp, size)
        if spread is not None:
            spread(self.id, [code, key, wire, size, expiry, expires_at, stamp[0], stamp[1]])
        return previous

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def delete(self, key: str, details: bool = False) -> Any:
        """Deletes `key` and returns its value (its Entry with `details`); KeyError if there was none."""
        entry = self._delete(key)
        if entry is None:
            raise KeyError(key)
        return entry if details else entry.value

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def expire(self, key: str, expiry: float = 0.0) -> bool:
        """Makes `key` expire `expiry` seconds from now (0: at once); False if there was no such key."""
        entry = self.store.peek(key)
        if entry is None:
            return False
        self._expire(entry, _seconds(expiry))
        return True

    def clear(self) -> None:
        """Deletes every entry, on every worker."""
        stamp = self.clock.stamp()
        self.store.clear(stamp)
        if self.spread is not None:
            self.spread(self.id, ['c', stamp[0], stamp[1]])

    # The by-pattern variants (zato.cache.variants) come down to these

    def _matching(self, variant: str, what: Any, limit: int) -> list[Entry]:
        match = matcher(variant, what)
        found = []
        for entry in self.store.live():
            if match(entry.key):
                found.append(entry)
                if limit and len(found) >= limit:
                    break
        return found

    def _get_by(self, variant: str, what: Any, details: bool, limit: int) -> dict[str, Any]:
        return {entry.key: entry.copy() if details else entry.value for entry in self._matching(variant, what, limit)}

    def _set_by(self, variant: str, what: Any, value: Any, expiry: float, return_found: bool, details: bool,
                limit: int) -> dict[str, Any] | None:
        found = {entry.key: entry.copy() if details else entry.value for entry in self._matching(variant, what, limit)}
        for key in found:
            self.set(key, value, expiry)
        return found if return_found else None

    def _delete_by(self, variant: str, what: Any, return_found: bool, limit: int) -> dict[str, Any] | None:
        found = self._matching(variant, what, limit)
        for entry in found:
            self._delete(entry.key)
        return {entry.key: entry.value for entry in found} if return_found else None

    def _expire_by(self, variant: str, what: Any, expiry: float, limit: int) -> list[str]:
        expiry = _seconds(expiry)
        found = self._matching(variant, what, limit)
        for entry in found:
            self._expire(entry, expiry)
        return [entry.key for entry in found]

    def _delete(self, key: str) -> Entry | None:
        stamp = self.clock.stamp()
        entry = self.store.remove(key, stamp)
        if self.spread is not None:
            self.spread(self.id, ['d', key, stamp[0], stamp[1]])
        return entry

    def _expire(self, entry: Entry, expiry: float) -> None:
        if not expiry:
            self._delete(entry.key)
            return
        # Spread as a set of the same value with the new expiry, so that a worker which had not yet
        # received the value gets both at once
        store = self.store
        stamp = self.clock.stamp()
        expires_at = store.clock.now() + expiry
        store.put(entry.key, entry.value, expiry, expires_at, stamp, entry.size)
        if self.spread is not None:
            code, wire, size = encode_value(entry.value)
            self.spread(self.id, [code, entry.key, wire, size, expiry, expires_at, stamp[0], stamp[1]])

    # Changes made by other workers

    def apply(self, op: list[Any]) -> None:
        """Applies one change another worker made (the op `spread` gave there)."""
        code = op[0]
        store = self.store
        if code == 's' or code == 'b':
            _, key, wire, size, expiry, expires_at, at, member = op
            stamp: Stamp = (at, member)
            value = base64.b64decode(wire) if code == 'b' else wire
            store.put(key, value, expiry, expires_at, stamp, size)
        elif code == 'd':
            _, key, at, member = op
            stamp = (at, member)
            store.remove(key, stamp)
        elif code == 'c':
            _, at, member = op
            stamp = (at, member)
            store.clear(stamp)
        else:
            raise ValueError(f'Unknown cache op {code!r}')
        self.clock.saw(stamp)


def _seconds(expiry: Any) -> float:
    if isinstance(expiry, bool) or not isinstance(expiry, int | float) or expiry < 0 or expiry != expiry:
        raise ValueError(f'expiry must be a number of seconds, 0 or more, not {expiry!r}')
    return float(expiry)
