"""Built-in caches: one worker's memory (store), Zato 3.1's API over it (api), the by-pattern variants."""

from zato.cache.api import Cache
from zato.cache.store import CacheDeleted, CacheError, CacheStore, Clock, Entry, ItemTooLarge

__all__ = ['Cache', 'CacheDeleted', 'CacheError', 'CacheStore', 'Clock', 'Entry', 'ItemTooLarge']
