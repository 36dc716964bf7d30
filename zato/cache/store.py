"""The memory of one built-in cache in one worker: LRU order, expiry, a size cap, and the rule that
decides which of two changes to one key wins.

Rules, each with a test in tests/cache/test_store.py:

* **LRU.** At most `max_size` entries; adding one more drops the least recently used (a `get` or a
  `set` makes an entry the most recent). An OrderedDict keeps the order: a hit moves its key to the
  end in O(1), an eviction pops the front in O(1), both in C.
* **Expiry.** An entry may expire at an absolute time (`expires_at`, seconds since the epoch, the
  same number on every worker); an expired entry is never returned, and is dropped when touched or
  by `delete_expired`. With `extend_expiry_on_get`, each hit on this worker pushes its expiry
  `expiry` seconds past the hit (a sliding expiry, this worker only: reads are not spread).
* **Size cap.** `max_item_size` bounds the serialized size of one value; the caller (zato.cache.api)
  measures it, because it serializes the value anyway to spread it.
* **Order of changes: last writer wins by a hybrid logical clock.** Every change carries a stamp
  `(time in ns, writer id)` from `Clock.stamp`, which is greater than the wall clock and than any
  stamp this worker has seen. A change of a key applies only if its stamp is greater than the stamp
  of what the worker holds for that key: the entry's own, the tombstone a delete left, or the floor
  a `clear` raised. So every worker that received the same changes holds the same entry for each key,
  whatever order they arrived in; a change made after its writer saw another one always wins over it.
  Tombstones are kept `TOMBSTONE_TTL` seconds, far longer than the bus takes to deliver a change.

Nothing here does I/O or reads the time itself: the clock is passed in, so tests move it by hand.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

# (time in ns, writer id): compared as a tuple, time first
Stamp = tuple[int, str]

ZERO_STAMP: Stamp = (0, '')

# How long the stamp of a deleted key is remembered, so that an older change of it arriving late is refused
TOMBSTONE_TTL = 60.0


class CacheError(Exception):
    """Base of the errors of the cache API."""


class ItemTooLarge(CacheError, ValueError):
    """A value whose serialized form is larger than the cache's `max_item_size`."""


class CacheDeleted(CacheError, KeyError):
    """The cache's definition was deleted; its entries are gone on every worker."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else 'Cache deleted'


class Clock:
    """The wall clock of one worker and its hybrid logical clock for stamps; `now` is injectable."""

    __slots__ = ('now', 'member', '_last')

    def __init__(self, member: str, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.member = member
        self._last = 0

    def stamp(self) -> Stamp:
        """A stamp greater than any this clock gave or saw."""
        last = self._last = max(self._last + 1, int(self.now() * 1e9))
        return last, self.member

    def saw(self, stamp: Stamp) -> None:
        if stamp[0] > self._last:
            self._last = stamp[0]


class Entry:
    """One cached value and what 3.1's `details=True` showed of it. Times are seconds since the epoch;
    `expiry` is the entry's lifetime in seconds (0: none), `expires_at` when it ends (0: never)."""

    __slots__ = ('key', 'value', 'expiry', 'expires_at', 'stamp', 'hits', 'last_read', 'prev_read',
                 'last_write', 'prev_write', 'size')

    def __init__(self, key: str, value: Any, expiry: float, expires_at: float, stamp: Stamp, now: float,
                 size: int) -> None:
        self.key = key
        self.value = value
        self.expiry = expiry
        self.expires_at = expires_at
        self.stamp = stamp
        self.hits = 0
        self.last_read = 0.0
        self.prev_read = 0.0
        self.last_write = now
        self.prev_write = 0.0
        self.size = size

    def copy(self) -> Entry:
        """A snapshot, so that a caller holding details never sees (or makes) later changes."""
        other = Entry.__new__(Entry)
        for name in Entry.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def to_dict(self) -> dict[str, Any]:
        return {'key': self.key, 'value': self.value, 'expiry': self.expiry, 'expires_at': self.expires_at,
                'hits': self.hits, 'last_read': self.last_read, 'prev_read': self.prev_read,
                'last_write': self.last_write, 'prev_write': self.prev_write, 'size': self.size}

    def __repr__(self) -> str:
        return f'<Entry {self.key!r} expiry={self.expiry} hits={self.hits}>'


class CacheStore:
    """The entries of one cache in one worker. Not thread-safe: a gevent worker runs one greenlet at a
    time and nothing here yields."""

    __slots__ = ('name', 'max_size', 'max_item_size', 'extend_expiry_on_get', 'extend_expiry_on_set', 'clock',
                 '_data', '_tombstones', 'floor', '_move_to_end')

    def __init__(self, name: str, clock: Clock, max_size: int = 10000, max_item_size: int = 10000,
                 extend_expiry_on_get: bool = True, extend_expiry_on_set: bool = True) -> None:
        self.name = name
        self.clock = clock
        self.max_size = max_size
        self.max_item_size = max_item_size
        self.extend_expiry_on_get = extend_expiry_on_get
        self.extend_expiry_on_set = extend_expiry_on_set
        self._data: OrderedDict[str, Entry] = OrderedDict()
        self._move_to_end = self._data.move_to_end
        self._tombstones: dict[str, Stamp] = {}
        self.floor = ZERO_STAMP

    def configure(self, max_size: int, max_item_size: int, extend_expiry_on_get: bool,
                  extend_expiry_on_set: bool) -> None:
        """A definition edited: the new limits apply at once, the least recently used going first."""
        self.max_size = max_size
        self.max_item_size = max_item_size
        self.extend_expiry_on_get = extend_expiry_on_get
        self.extend_expiry_on_set = extend_expiry_on_set
        while len(self._data) > max_size:
            self._data.popitem(last=False)

    # Reads

    def get(self, key: str, extend: bool = True) -> Entry | None:
        """The live entry of `key`, made the most recently used; None if there is none. `extend` False:
        its expiry stays as it is whatever `extend_expiry_on_get` says (a channel's cached answers)."""
        entry = self._data.get(key)
        if entry is None:
            return None
        now = self.clock.now()
        expires_at = entry.expires_at
        if expires_at and now >= expires_at:
            del self._data[key]
            return None
        self._move_to_end(key)
        entry.hits += 1
        entry.prev_read = entry.last_read
        entry.last_read = now
        if expires_at and extend and self.extend_expiry_on_get:
            entry.expires_at = now + entry.expiry
        return entry

    def peek(self, key: str) -> Entry | None:
        """The live entry of `key`, leaving its LRU place and counters alone (browsing, `in`)."""
        entry = self._data.get(key)
        if entry is None or (entry.expires_at and self.clock.now() >= entry.expires_at):
            return None
        return entry

    def live(self) -> Iterator[Entry]:
        """Every live entry, least recently used first."""
        now = self.clock.now()
        for entry in list(self._data.values()):
            if not entry.expires_at or now < entry.expires_at:
                yield entry

    def __len__(self) -> int:
        return len(self._data)

    # Writes: applied only when newer than what this worker holds of the key (see the module's rules)

    def expiry_of(self, key: str, expiry: float, now: float) -> tuple[float, float]:
        """(expiry, expires_at) for a set of `key` with `expiry` seconds (0: none given): with
        `extend_expiry_on_set`, a set without an expiry keeps the lifetime the entry had, from now."""
        if not expiry and self.extend_expiry_on_set:
            current = self._data.get(key)
            if current is not None and current.expiry:
                expiry = current.expiry
        return expiry, (now + expiry if expiry else 0.0)

    def put(self, key: str, value: Any, expiry: float, expires_at: float, stamp: Stamp, size: int) -> bool:
        """Stores the value unless something newer of `key` is known; True if it was stored."""
        current = self._data.get(key)
        if current is not None:
            if stamp <= current.stamp:
                return False
        elif stamp <= self.floor or stamp <= self._tombstones.get(key, ZERO_STAMP):
            return False
        now = self.clock.now()
        if current is not None:
            # Changed in place: a caller holding details has a copy (Entry.copy)
            current.value = value
            current.expiry = expiry
            current.expires_at = expires_at
            current.stamp = stamp
            current.prev_write = current.last_write
            current.last_write = now
            current.size = size
            self._move_to_end(key)
            return True
        self._data[key] = Entry(key, value, expiry, expires_at, stamp, now, size)
        if self._tombstones:
            self._tombstones.pop(key, None)
        if len(self._data) > self.max_size:
            self._data.popitem(last=False)
        return True

    def remove(self, key: str, stamp: Stamp) -> Entry | None:
        """Deletes `key` unless it was written after `stamp`; remembers the delete. The entry removed, if any."""
        current = self._data.get(key)
        if current is not None and stamp <= current.stamp:
            return None
        if stamp > self._tombstones.get(key, ZERO_STAMP):
            self._tombstones[key] = stamp
        if current is None:
            return None
        del self._data[key]
        return current

    def clear(self, stamp: Stamp) -> None:
        """Deletes every entry written before `stamp`, and refuses any such change arriving later."""
        if stamp <= self.floor:
            return
        self.floor = stamp
        for key in [key for key, entry in self._data.items() if entry.stamp < stamp]:
            del self._data[key]
        self._tombstones = {key: st for key, st in self._tombstones.items() if st > stamp}

    def forget(self) -> None:
        """Drops everything, tombstones too: the definition is gone."""
        self._data.clear()
        self._tombstones.clear()

    def delete_expired(self) -> list[str]:
        """Drops expired entries, and tombstones older than TOMBSTONE_TTL; the keys of the entries dropped."""
        now = self.clock.now()
        expired = [key for key, entry in self._data.items() if entry.expires_at and now >= entry.expires_at]
        for key in expired:
            del self._data[key]
        oldest = int((now - TOMBSTONE_TTL) * 1e9)
        if self._tombstones:
            self._tombstones = {key: stamp for key, stamp in self._tombstones.items() if stamp[0] >= oldest}
        return expired
