"""URL routing for REST channels: a static dict first, then patterns compiled once per config load.

A URL path may carry several channels that differ by method (3.1 allows that); a channel with no
method serves every method not claimed by another channel on the same path.
"""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

T = TypeVar('T')

_PARAM = re.compile(r'\{([A-Za-z_][A-Za-z0-9_]*)\}')
ANY_METHOD = ''


class RouteError(ValueError):
    """A URL path that cannot be routed (bad pattern, duplicate channel)."""


def validate_url_path(url_path: str) -> None:
    if not url_path.startswith('/'):
        raise RouteError(f'URL path `{url_path}` must start with /')
    if any(ch in url_path for ch in ' ?#\r\n\t'):
        raise RouteError(f'URL path `{url_path}` must not contain spaces, ? or #')
    rest = _PARAM.sub('', url_path)
    if '{' in rest or '}' in rest:
        raise RouteError(f'URL path `{url_path}` has a malformed {{param}} pattern')
    names = _PARAM.findall(url_path)
    if len(names) != len(set(names)):
        raise RouteError(f'URL path `{url_path}` repeats a parameter name')


def _compile_pattern(url_path: str) -> re.Pattern[str]:
    out = []
    pos = 0
    for m in _PARAM.finditer(url_path):
        out.append(re.escape(url_path[pos:m.start()]))
        # A parameter is one path segment: it never spans a slash
        out.append(f'(?P<{m.group(1)}>[^/]+)')
        pos = m.end()
    out.append(re.escape(url_path[pos:]))
    return re.compile(''.join(out) + r'\Z')


class Router(Generic[T]):
    """Built once per config change from (url_path, method, target) triples; read-only after."""

    def __init__(self, routes: list[tuple[str, str, T]]) -> None:
        self.static: dict[str, dict[str, T]] = {}
        patterns: dict[str, dict[str, T]] = {}
        for url_path, method, target in routes:
            validate_url_path(url_path)
            method = (method or ANY_METHOD).upper()
            table = self.static if _PARAM.search(url_path) is None else patterns
            methods = table.setdefault(url_path, {})
            if method in methods:
                raise RouteError(f'Two channels serve {method or "any method"} on `{url_path}`')
            methods[method] = target
        # More literal characters first, so /customer/me wins over /customer/{id}
        ordered = sorted(patterns.items(), key=lambda item: -len(_PARAM.sub('', item[0])))
        self.patterns: list[tuple[re.Pattern[str], dict[str, T]]] = [
            (_compile_pattern(path), methods) for path, methods in ordered]

    def match(self, path: str) -> tuple[dict[str, T], dict[str, str]] | None:
        """Returns (method -> target, path params) for the path, or None when nothing matches."""
        methods = self.static.get(path)
        if methods is not None:
            return methods, {}
        for pattern, methods in self.patterns:
            m = pattern.match(path)
            if m is not None:
                return methods, m.groupdict()
        return None

    @staticmethod
    def pick(methods: dict[str, Any], method: str) -> Any:
        target = methods.get(method)
        if target is None:
            target = methods.get(ANY_METHOD)
            if target is None and method == 'HEAD':
                target = methods.get('GET')
        return target
