"""URL routing for REST channels: a dict of literal paths, then one function per method compiled to
Python source at config load.

The rules, in the order they decide:

1. A URL path may carry several channels that differ by method (3.1 allows that); a channel with no
   method serves every method not claimed by another channel of the same template. HEAD is served by
   a HEAD channel, else a channel of any method, else the GET channel.
2. A path with no `{param}` is looked up in a dict, and wins over every template it also matches.
3. Templates are ranked segment by segment, left to right, as Falcon's compiled router does: at each
   level a literal segment is tried before a segment mixing literals and parameters (`{id}.json`; more
   literal characters first), and those before a segment that is one parameter. A lower level never
   outranks a higher one: `/customer/{id}` wins over `/{kind}/summary-report` for
   `/customer/summary-report`, because `customer` is literal where `{kind}` is not. A branch that
   fails deeper gives way to the next one at its level (backtracking).
4. Two templates that differ only in the names of their parameters (`/a/{x}` and `/a/{y}`) are the
   same template: two channels with it and one method are refused (`RouteError`; a 409 in the admin
   API, naming the channel that has it). No route is decided by the order of rows.
5. A parameter is a non-empty part of one segment: it never spans a slash.
6. A method is routed by the templates that serve it, so a path no channel serves with that method
   but one serves with another gets 405 with `Allow` (see `allowed`), not another channel's service.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import CodeType
from typing import Any, Generic, TypeVar

T = TypeVar('T')

_PARAM = re.compile(r'\{([A-Za-z_][A-Za-z0-9_]*)\}')
ANY_METHOD = ''


class RouteError(ValueError):
    """A URL path that cannot be routed (bad pattern, a template taken already)."""


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


def template_of(url_path: str) -> str:
    """The template a URL path stands for, whatever its parameters are called: `/a/{x}` -> `/a/{}`."""
    return _PARAM.sub('{}', url_path)


# ################################################################################################ the trie

_LITERAL, _MIXED, _VARIABLE = 0, 1, 2


class _Segment:
    """One segment of a template: its rank at its level, the key that tells it apart from its siblings,
    and the names of the parameters it captures."""

    __slots__ = ('kind', 'key', 'names', 'regex', 'literal_chars')

    def __init__(self, text: str) -> None:
        self.names = _PARAM.findall(text)
        self.literal_chars = len(_PARAM.sub('', text))
        if not self.names:
            self.kind, self.key, self.regex = _LITERAL, text, ''
        elif _PARAM.fullmatch(text):
            self.kind, self.key, self.regex = _VARIABLE, '{}', ''
        else:
            self.kind, self.key = _MIXED, _PARAM.sub('{}', text)
            parts = _PARAM.split(text)  # literal, name, literal, name ..., literal
            self.regex = ''.join(re.escape(part) if i % 2 == 0 else '([^/]+)' for i, part in enumerate(parts))


class _Node(Generic[T]):
    __slots__ = ('segment', 'children', 'target', 'names')

    def __init__(self, segment: _Segment | None) -> None:
        self.segment = segment
        self.children: dict[tuple[int, str], _Node[T]] = {}
        self.target: T | None = None   # a template ends here
        self.names: list[str] = []     # its parameters, in the order the segments capture them

    def ordered(self) -> list[_Node[T]]:
        """Children in the order they are tried: literal, mixed (more literal first), variable."""
        def rank(node: _Node[T]) -> tuple[int, int, str]:
            seg = node.segment
            assert seg is not None
            return seg.kind, -seg.literal_chars, seg.key
        return sorted(self.children.values(), key=rank)


# Compiled sources, by (source, name): a worker that builds the routes its master built before forking
# (zato/server/preload.py) finds their code here, shared copy-on-write, instead of compiling its own
# copy (compiling allocates and writes ~2 MiB of memory per worker). The last few only.
_CODE: dict[tuple[str, str], CodeType] = {}
_CODE_MAX = 32


def _compiled(source: str, name: str) -> CodeType:
    key = (source, name)
    code = _CODE.get(key)
    if code is None:
        code = compile(source, name, 'exec')
        while len(_CODE) >= _CODE_MAX:
            del _CODE[next(iter(_CODE))]
        _CODE[key] = code
    return code


class _Compiler(Generic[T]):
    """Turns one method's trie into the source of one function: path -> (target, params) or None."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.targets: list[Any] = []
        self.regexes: list[re.Pattern[str]] = []

    def compile(self, root: _Node[T], name: str) -> Callable[[str], tuple[T, dict[str, str]] | None]:
        self.lines = ['def match(path):', '    s = path.split("/")', '    n = len(s)']
        self._node(root, 0, 1, [])
        self.lines.append('    return None')
        namespace: dict[str, Any] = {'T': self.targets, 'R': self.regexes}
        # A readable file name for tracebacks and profiles; the source is kept for them too
        code = _compiled('\n'.join(self.lines) + '\n', f'<zato router {name}>')
        exec(code, namespace)  # noqa: S102 - our own generated source, from validated templates
        return namespace['match']

    def _node(self, node: _Node[T], depth: int, indent: int, captures: list[str]) -> None:
        pad = '    ' * indent
        if node.target is not None:
            self.targets.append(node.target)
            params = ', '.join(f'{name!r}: {value}' for name, value in zip(node.names, captures, strict=True))
            self.lines.append(f'{pad}if n == {depth + 1}:')
            self.lines.append(f'{pad}    return T[{len(self.targets) - 1}], {{{params}}}')
        if not node.children:
            return
        level = depth + 1
        self.lines.append(f'{pad}if n > {level}:')
        self.lines.append(f'{pad}    s{level} = s[{level}]')
        for child in node.ordered():
            seg = child.segment
            assert seg is not None
            inner = pad + '    '
            if seg.kind == _LITERAL:
                self.lines.append(f'{inner}if s{level} == {seg.key!r}:')
                self._node(child, level, indent + 2, captures)
            elif seg.kind == _VARIABLE:
                self.lines.append(f'{inner}if s{level}:')
                self._node(child, level, indent + 2, [*captures, f's{level}'])
            else:
                self.regexes.append(re.compile(seg.regex))
                self.lines.append(f'{inner}m{level} = R[{len(self.regexes) - 1}].fullmatch(s{level})')
                self.lines.append(f'{inner}if m{level} is not None:')
                groups = [f'm{level}.group({i + 1})' for i in range(len(seg.names))]
                self._node(child, level, indent + 2, [*captures, *groups])


def _insert(root: _Node[T], url_path: str, target: T) -> None:
    node = root
    names: list[str] = []
    for text in url_path.split('/')[1:]:
        seg = _Segment(text)
        names.extend(seg.names)
        key = (seg.kind, seg.key)
        child = node.children.get(key)
        if child is None:
            child = node.children[key] = _Node(seg)
        node = child
    node.target = target
    node.names = names


# ################################################################################################ the router

class Router(Generic[T]):
    """Built once per config change from (url_path, method, target) triples; read-only after."""

    def __init__(self, routes: list[tuple[str, str, T]]) -> None:
        self.static: dict[str, dict[str, T]] = {}
        templates: dict[str, dict[str, tuple[str, T]]] = {}  # template -> method -> (url_path, target)
        for url_path, method, target in routes:
            validate_url_path(url_path)
            method = (method or ANY_METHOD).upper()
            if _PARAM.search(url_path) is None:
                methods = self.static.setdefault(url_path, {})
                if method in methods:
                    raise RouteError(f'Two channels serve {method or "any method"} on `{url_path}`')
                methods[method] = target
                continue
            by_method = templates.setdefault(template_of(url_path), {})
            if method in by_method:
                taken = by_method[method][0]
                same = f'`{url_path}`' if taken == url_path else f'`{url_path}` and `{taken}` (one template)'
                raise RouteError(f'Two channels serve {method or "any method"} on {same}')
            by_method[method] = (url_path, target)

        # One trie and one compiled function per method named by some channel, and one for the others
        methods_named = {m for by_method in templates.values() for m in by_method} | \
                        {m for by_path in self.static.values() for m in by_path}
        methods_named.discard(ANY_METHOD)
        if 'GET' in methods_named:
            methods_named.add('HEAD')
        self._by_method: dict[str, Callable[[str], tuple[T, dict[str, str]] | None]] = {}
        for method in sorted(methods_named):
            self._by_method[method] = self._compile(templates, method)
        self._any = self._compile(templates, ANY_METHOD)

    @staticmethod
    def _compile(templates: dict[str, dict[str, tuple[str, T]]], method: str) -> Callable[[str], Any]:
        root: _Node[T] = _Node(None)
        for by_method in templates.values():
            chosen = Router.pick({m: pair for m, pair in by_method.items()}, method)
            if chosen is not None:
                _insert(root, chosen[0], chosen[1])
        compiler: _Compiler[T] = _Compiler()
        return compiler.compile(root, method or 'any method')

    def route(self, method: str, path: str) -> tuple[T, dict[str, str]] | None:
        """The target serving `method` on `path` and the path's parameters, or None."""
        by_path = self.static.get(path)
        if by_path is not None:
            target = self.pick(by_path, method)
            if target is not None:
                return target, {}
        match = self._by_method.get(method)
        return (match or self._any)(path)

    def allowed(self, path: str) -> list[str]:
        """The methods some channel serves on `path`: what a 405's Allow lists (empty: a 404).
        A channel of any method makes every method allowed, which `route` would have found."""
        out = set(self.static.get(path, ()))
        out.update(method for method, match in self._by_method.items() if method != 'HEAD' and match(path))
        if self._any(path) is not None:
            out.add(ANY_METHOD)
        return sorted(out)

    @staticmethod
    def pick(methods: dict[str, Any], method: str) -> Any:
        target = methods.get(method)
        if target is None:
            target = methods.get(ANY_METHOD)
            if target is None and method == 'HEAD':
                target = methods.get('GET')
        return target
