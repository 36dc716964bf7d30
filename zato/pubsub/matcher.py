"""Topic names and the `pub=` / `sub=` patterns of pub/sub endpoints (3.1's syntax, rules made precise).

Topic names:

* a topic name is `/` followed by one or more segments separated by `/`, e.g. `/customer/new`;
* a segment is 1 or more characters, none of them `/`, `*`, whitespace, a control character, `?`,
  `#` or `%`, and never `.` or `..` alone (a URL path carries the name, and those would not survive
  it); the whole name is at most MAX_TOPIC_NAME characters and MAX_TOPIC_DEPTH segments.

Patterns, one per line of an endpoint's `topic_patterns`, each `pub=<pattern>` or `sub=<pattern>`:

* a pattern is matched against the whole topic name (anchored at both ends), segment by segment;
* `*` stands for any characters within one segment, none included: `/customer/*/changed` matches
  `/customer/1/changed` but not `/customer/a/b/changed`; `*` may sit among other characters
  (`/orders/eu-*` matches `/orders/eu-west`);
* `**` stands for any characters, `/` included, none included: `/usa/**` matches `/usa/ny` and
  `/usa/ny/nyc` but not `/usa` (the `/` after `usa` is literal); `/**` matches every topic;
* every other character stands for itself, compared exactly (case-sensitive);
* blank lines and lines starting with `#` are ignored; anything else is an error (ValueError).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TOPIC_NAME = 200
MAX_TOPIC_DEPTH = 16
MAX_PATTERNS = 100

ROLES = ('pub-only', 'sub-only', 'pub-sub')

# What a segment of a topic name may not hold
_BAD_CHARS = re.compile(r'[/*?#%\s\x00-\x1f\x7f]')


def topic_name_error(name: object) -> str | None:
    """Why `name` is not a valid topic name, or None if it is."""
    if not isinstance(name, str) or not name:
        return 'expected a string'
    if len(name) > MAX_TOPIC_NAME:
        return f'expected at most {MAX_TOPIC_NAME} characters'
    if not name.startswith('/'):
        return 'expected a name starting with /, e.g. /customer/new'
    segments = name[1:].split('/')
    if len(segments) > MAX_TOPIC_DEPTH:
        return f'expected at most {MAX_TOPIC_DEPTH} segments'
    for segment in segments:
        if not segment:
            return 'expected no empty segment (no // and no / at the end)'
        if segment in ('.', '..'):
            return 'expected no . or .. segment'
        if _BAD_CHARS.search(segment):
            return 'a segment may not hold *, ?, #, %, whitespace or control characters'
    return None


def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith('**', i):
            out.append('.*')
            i += 2
        elif pattern[i] == '*':
            out.append('[^/]*')
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile(''.join(out))


@dataclass(frozen=True, slots=True)
class Pattern:
    """One `pub=` or `sub=` line: its text and the regular expression it compiles to."""

    kind: str  # 'pub' or 'sub'
    text: str
    regex: re.Pattern[str]

    def matches(self, topic_name: str) -> bool:
        return self.regex.fullmatch(topic_name) is not None


def parse_patterns(text: str) -> tuple[Pattern, ...]:
    """The patterns of an endpoint's `topic_patterns` (see the module's rules); ValueError naming the
    first bad line."""
    out: list[Pattern] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        kind, sep, pattern = line.partition('=')
        kind, pattern = kind.strip(), pattern.strip()
        if not sep or kind not in ('pub', 'sub'):
            raise ValueError(f'line {number}: expected pub=<pattern> or sub=<pattern>')
        if not pattern.startswith('/') or len(pattern) > MAX_TOPIC_NAME or _CONTROL.search(pattern):
            raise ValueError(f'line {number}: a pattern starts with / and has at most {MAX_TOPIC_NAME} '
                             'characters, none of them whitespace or control characters')
        out.append(Pattern(kind, pattern, _compile(pattern)))
    if len(out) > MAX_PATTERNS:
        raise ValueError(f'expected at most {MAX_PATTERNS} patterns')
    return tuple(out)


_CONTROL = re.compile(r'[\s\x00-\x1f\x7f]')


def can_publish(role: str, patterns: tuple[Pattern, ...], topic_name: str) -> str | None:
    """The `pub=` pattern that lets an endpoint of `role` publish to the topic, or None: an endpoint
    needs both the role and a matching pattern."""
    return _matched(role, 'pub', patterns, topic_name)


def can_subscribe(role: str, patterns: tuple[Pattern, ...], topic_name: str) -> str | None:
    """The `sub=` pattern that lets an endpoint of `role` subscribe to the topic, or None."""
    return _matched(role, 'sub', patterns, topic_name)


def _matched(role: str, kind: str, patterns: tuple[Pattern, ...], topic_name: str) -> str | None:
    if role != 'pub-sub' and role != f'{kind}-only':
        return None
    for pattern in patterns:
        if pattern.kind == kind and pattern.matches(topic_name):
            return pattern.text
    return None
