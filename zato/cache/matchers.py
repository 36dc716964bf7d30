"""The key predicates of the cache API's `*_by_prefix`, `*_by_suffix`, `*_by_regex`, `*_contains`,
`*_not_contains`, `*_contains_all` and `*_contains_any` methods (3.1's names): one table, so that each
of get, set, delete and expire has all seven variants without seven copies of each."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

Matcher = Callable[[str], bool]


def _words(what: Any, variant: str) -> list[str]:
    if isinstance(what, str) or not isinstance(what, Iterable):
        raise TypeError(f'by {variant}: expected a list of strings, got {type(what).__name__}')
    words = list(what)
    if not all(isinstance(word, str) for word in words):
        raise TypeError(f'by {variant}: expected a list of strings')
    return words


def _str(what: Any, variant: str) -> str:
    if not isinstance(what, str):
        raise TypeError(f'by {variant}: expected a string, got {type(what).__name__}')
    return what


def _prefix(what: Any) -> Matcher:
    prefix = _str(what, 'prefix')
    return lambda key: key.startswith(prefix)


def _suffix(what: Any) -> Matcher:
    suffix = _str(what, 'suffix')
    return lambda key: key.endswith(suffix)


def _regex(what: Any) -> Matcher:
    pattern = what if isinstance(what, re.Pattern) else re.compile(_str(what, 'regex'))
    return lambda key: pattern.search(key) is not None


def _contains(what: Any) -> Matcher:
    part = _str(what, 'contains')
    return lambda key: part in key


def _not_contains(what: Any) -> Matcher:
    part = _str(what, 'not_contains')
    return lambda key: part not in key


def _contains_all(what: Any) -> Matcher:
    parts = _words(what, 'contains_all')
    return lambda key: all(part in key for part in parts)


def _contains_any(what: Any) -> Matcher:
    parts = _words(what, 'contains_any')
    return lambda key: any(part in key for part in parts)


# The suffix of each method name → how it matches keys
VARIANTS: dict[str, Callable[[Any], Matcher]] = {
    'by_prefix': _prefix,
    'by_suffix': _suffix,
    'by_regex': _regex,
    'contains': _contains,
    'not_contains': _not_contains,
    'contains_all': _contains_all,
    'contains_any': _contains_any,
}


def matcher(variant: str, what: Any) -> Matcher:
    """The predicate of one variant (a key of VARIANTS) for `what`: TypeError for input of the wrong
    type, re.error for a bad regex."""
    return VARIANTS[variant](what)
