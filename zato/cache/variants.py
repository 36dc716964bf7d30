"""The by-pattern variants of Zato 3.1's cache API: `get_`, `set_`, `delete_` and `expire_` followed by
`by_prefix`, `by_suffix`, `by_regex`, `contains`, `not_contains`, `contains_all` or `contains_any`.

Each matches keys as zato.cache.matchers says (`by_regex` searches, so anchor it with ^ and $ for a
whole key; `contains_all` and `contains_any` take a list of strings) and comes down to one of four
methods of zato.cache.api.Cache. `limit` (0: none) stops after that many matches, least recently used
first. A set or an expire of a pattern changes only keys that exist: a pattern creates no key.

* ``get_by_*(key, details=False, limit=0)`` → {key: value, or Entry with details}
* ``set_by_*(key, value, expiry=0.0, return_found=False, details=False, limit=0)`` → with
  `return_found`, {key: its previous value (Entry with details)}, else None
* ``delete_by_*(key, return_found=False, limit=0)`` → with `return_found`, {key: deleted value}, else None
* ``expire_by_*(key, expiry=0.0, limit=0)`` → the keys that now expire `expiry` seconds from now (0: at once)
"""

from __future__ import annotations

from typing import Any


class PatternVariants:
    """The 28 by-pattern methods, written out so that each is a real, documented method."""

    __slots__ = ()

    def _get_by(self, variant: str, what: Any, details: bool, limit: int) -> dict[str, Any]:
        raise NotImplementedError

    def _set_by(self, variant: str, what: Any, value: Any, expiry: float, return_found: bool, details: bool,
                limit: int) -> dict[str, Any] | None:
        raise NotImplementedError

    def _delete_by(self, variant: str, what: Any, return_found: bool, limit: int) -> dict[str, Any] | None:
        raise NotImplementedError

    def _expire_by(self, variant: str, what: Any, expiry: float, limit: int) -> list[str]:
        raise NotImplementedError

    # by_prefix

    def get_by_prefix(self, key: str, details: bool = False, limit: int = 0) -> dict[str, Any]:
        return self._get_by('by_prefix', key, details, limit)

    def set_by_prefix(self, key: str, value: Any, expiry: float = 0.0, return_found: bool = False,
                      details: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._set_by('by_prefix', key, value, expiry, return_found, details, limit)

    def delete_by_prefix(self, key: str, return_found: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._delete_by('by_prefix', key, return_found, limit)

    def expire_by_prefix(self, key: str, expiry: float = 0.0, limit: int = 0) -> list[str]:
        return self._expire_by('by_prefix', key, expiry, limit)

    # by_suffix

    def get_by_suffix(self, key: str, details: bool = False, limit: int = 0) -> dict[str, Any]:
        return self._get_by('by_suffix', key, details, limit)

    def set_by_suffix(self, key: str, value: Any, expiry: float = 0.0, return_found: bool = False,
                      details: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._set_by('by_suffix', key, value, expiry, return_found, details, limit)

    def delete_by_suffix(self, key: str, return_found: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._delete_by('by_suffix', key, return_found, limit)

    def expire_by_suffix(self, key: str, expiry: float = 0.0, limit: int = 0) -> list[str]:
        return self._expire_by('by_suffix', key, expiry, limit)

    # by_regex

    def get_by_regex(self, key: str, details: bool = False, limit: int = 0) -> dict[str, Any]:
        return self._get_by('by_regex', key, details, limit)

    def set_by_regex(self, key: str, value: Any, expiry: float = 0.0, return_found: bool = False,
                     details: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._set_by('by_regex', key, value, expiry, return_found, details, limit)

    def delete_by_regex(self, key: str, return_found: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._delete_by('by_regex', key, return_found, limit)

    def expire_by_regex(self, key: str, expiry: float = 0.0, limit: int = 0) -> list[str]:
        return self._expire_by('by_regex', key, expiry, limit)

    # contains

    def get_contains(self, key: str, details: bool = False, limit: int = 0) -> dict[str, Any]:
        return self._get_by('contains', key, details, limit)

    def set_contains(self, key: str, value: Any, expiry: float = 0.0, return_found: bool = False,
                     details: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._set_by('contains', key, value, expiry, return_found, details, limit)

    def delete_contains(self, key: str, return_found: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._delete_by('contains', key, return_found, limit)

    def expire_contains(self, key: str, expiry: float = 0.0, limit: int = 0) -> list[str]:
        return self._expire_by('contains', key, expiry, limit)

    # not_contains

    def get_not_contains(self, key: str, details: bool = False, limit: int = 0) -> dict[str, Any]:
        return self._get_by('not_contains', key, details, limit)

    def set_not_contains(self, key: str, value: Any, expiry: float = 0.0, return_found: bool = False,
                         details: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._set_by('not_contains', key, value, expiry, return_found, details, limit)

    def delete_not_contains(self, key: str, return_found: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._delete_by('not_contains', key, return_found, limit)

    def expire_not_contains(self, key: str, expiry: float = 0.0, limit: int = 0) -> list[str]:
        return self._expire_by('not_contains', key, expiry, limit)

    # contains_all

    def get_contains_all(self, keys: list[str], details: bool = False, limit: int = 0) -> dict[str, Any]:
        return self._get_by('contains_all', keys, details, limit)

    def set_contains_all(self, keys: list[str], value: Any, expiry: float = 0.0, return_found: bool = False,
                         details: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._set_by('contains_all', keys, value, expiry, return_found, details, limit)

    def delete_contains_all(self, keys: list[str], return_found: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._delete_by('contains_all', keys, return_found, limit)

    def expire_contains_all(self, keys: list[str], expiry: float = 0.0, limit: int = 0) -> list[str]:
        return self._expire_by('contains_all', keys, expiry, limit)

    # contains_any

    def get_contains_any(self, keys: list[str], details: bool = False, limit: int = 0) -> dict[str, Any]:
        return self._get_by('contains_any', keys, details, limit)

    def set_contains_any(self, keys: list[str], value: Any, expiry: float = 0.0, return_found: bool = False,
                         details: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._set_by('contains_any', keys, value, expiry, return_found, details, limit)

    def delete_contains_any(self, keys: list[str], return_found: bool = False, limit: int = 0) -> dict[str, Any] | None:
        return self._delete_by('contains_any', keys, return_found, limit)

    def expire_contains_any(self, keys: list[str], expiry: float = 0.0, limit: int = 0) -> list[str]:
        return self._expire_by('contains_any', keys, expiry, limit)
