"""Rate-limit and IP allow-list rules: Zato 3.1's text syntax, parsed, validated and matched.

The syntax, one rule per line (``#`` starts a comment, blank lines are ignored)::

    source = limit

* ``source``: ``*`` (any client), an IPv4 or IPv6 address, or a CIDR network. Networks are strict:
  ``10.0.0.1/8`` has host bits set and is refused rather than silently widened to ``10.0.0.0/8``.
* ``limit``: ``N/s``, ``N/m``, ``N/h``, ``N/d`` or ``*`` (unlimited). Minutes, hours and days are
  calendar windows in UTC, as in 3.1. Per-second limits are ours and may add a burst: ``N/s burst=M``.
  ``N`` is at least 1, ``M`` at least 0; both are ASCII digits only (never ``int()`` on unchecked
  text: it takes ``+``, ``_``, spaces and non-ASCII digits).

Rules are tried in order and the first that matches wins; no match means the address is not allowed
(403). A definition without rules therefore rejects everything, as in 3.1.

Addresses: an IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) is the IPv4 address it carries, both as
a client and in a rule. An address that does not parse (a Unix socket peer, say) matches only ``*``.

Which count a request is charged to (the *client key*) is decided here too, once per address:

* a CIDR rule: the network itself - every client in ``10.0.0.0/8`` shares one count, as in 3.1;
* a single-address rule: that address;
* ``*``: the client's own address (its peer address; trusted-proxy handling is the caller's), except
  that IPv6 clients are keyed by their /64, because one host usually holds a whole /64 and could
  otherwise rotate through addresses to reset its count. An address that does not parse is its own key.

So ``* = 10/s`` gives every client 10/s, while ``0.0.0.0/0 = 1000/d`` plus ``::/0 = 1000/d`` is
one shared daily budget for all clients.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from zato.bounded_cache import BoundedCache

__all__ = ['Rule', 'RuleError', 'RuleSet', 'parse_rules', 'UNIT_SECONDS']

# Kinds of limit, also read by the counters (as plain ints, so the Cython twin can copy them into C)
UNLIMITED = 0
GCRA = 1
WINDOW = 2

UNIT_SECONDS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}

# Far beyond any sensible limit, and short enough that int() of the digits is cheap and exact
_MAX_DIGITS = 9

_LIMIT = re.compile(r'([0-9]+)/([smhd])(?:[ \t]+burst=([0-9]+))?')
_MAX_VALUE = 10 ** _MAX_DIGITS - 1
_LIMIT_SHAPE = 'expected N/s, N/m, N/h, N/d or *'

_V4_MAPPED = 0xFFFF << 32
_V6_ALL = (1 << 128) - 1
_V6_SLASH64 = _V6_ALL ^ ((1 << 64) - 1)


class RuleError(ValueError):
    """A definition that cannot be used; ``line_no`` is 1-based, ``reason`` says what is wrong."""

    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(line_no, reason)
        self.line_no = line_no
        self.reason = reason

    def __str__(self) -> str:
        return f'line {self.line_no}: {self.reason}'


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed line. ``kind``, ``interval``, ``tolerance``, ``limit`` and ``period`` are what the
    counters need, precomputed so that the hot path reads them, never derives them."""

    index: int              # position among the definition's rules, 0-based
    line_no: int
    source: str             # as normalised: '*', '10.0.0.0/8', '2001:db8::1' ...
    limit_text: str         # as normalised: '*', '10/s', '10/s burst=5', '100/m' ...
    unit: str               # 's', 'm', 'h', 'd', or '*' when unlimited
    limit: int              # N; 0 when unlimited
    burst: int = 0
    kind: int = field(init=False)
    interval: float = field(init=False)    # GCRA emission interval T = 1/N seconds
    tolerance: float = field(init=False)   # GCRA burst tolerance B*T seconds
    period: int = field(init=False)        # window length in seconds (1 for per-second limits)

    def __post_init__(self) -> None:
        # object.__setattr__ because the dataclass is frozen; this runs once, at parse time
        unlimited = self.unit == '*'
        kind = UNLIMITED if unlimited else (GCRA if self.unit == 's' else WINDOW)
        object.__setattr__(self, 'kind', kind)
        object.__setattr__(self, 'interval', 0.0 if unlimited else 1.0 / self.limit)
        object.__setattr__(self, 'tolerance', self.burst / self.limit if kind == GCRA else 0.0)
        object.__setattr__(self, 'period', UNIT_SECONDS.get(self.unit, 0))

    @property
    def is_unlimited(self) -> bool:
        return self.kind == UNLIMITED

    @property
    def is_any(self) -> bool:
        return self.source == '*'

    def __str__(self) -> str:
        return f'{self.source} = {self.limit_text}'


# What a client address is, once parsed: (family, integer value), family 4 or 6, or None
_Parsed = tuple[int, int] | None


def parse_address(ip: str) -> _Parsed:
    """(4, int) or (6, int) for a textual address, IPv4-mapped IPv6 folded into IPv4; None if unparsable.

    inet_pton rather than ipaddress: it is several times faster, takes exactly the canonical forms
    a socket reports, and refuses zone ids and IPv4 octets with leading zeros.
    """
    try:
        if ':' in ip:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), 'big')
            if value >> 32 == 0xFFFF:
                return 4, value & 0xFFFFFFFF
            return 6, value
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), 'big')
    except (OSError, ValueError, TypeError):
        return None


def _parse_source(line_no: int, text: str) -> tuple[str, int, int, int]:
    """(normalised source, family, network as int, mask as int); family 0 for '*'."""
    if text == '*':
        return '*', 0, 0, 0
    if '%' in text:
        raise RuleError(line_no, f"invalid source '{text}': zone ids (%) are not allowed")
    try:
        if '/' in text:
            net = ipaddress.ip_network(text, strict=True)
        else:
            addr = ipaddress.ip_address(text)
            net = ipaddress.ip_network(addr)
    except ValueError as e:
        if 'host bits set' in str(e):
            raise RuleError(line_no, f"invalid source '{text}': host bits are set in the network address")
        raise RuleError(line_no, f"invalid source '{text}': expected *, an IP address or a CIDR network")

    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and \
            int(net.network_address) >> 32 == 0xFFFF:
        # ::ffff:a.b.c.d/n is the IPv4 network a.b.c.d/(n-96): clients are folded the same way
        net = ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))

    family = net.version
    width = 32 if family == 4 else 128
    mask = ((1 << width) - 1) ^ ((1 << (width - net.prefixlen)) - 1)
    # A single address reads as one, not as a /32 or /128
    source = str(net.network_address) if net.prefixlen == width else str(net)
    return source, family, int(net.network_address), mask


def _parse_limit(line_no: int, text: str) -> tuple[str, str, int, int]:
    """(normalised limit text, unit, N, burst)."""
    if text == '*':
        return '*', '*', 0, 0
    match = _LIMIT.fullmatch(text)
    if match is None:
        hint = " (a burst is written 'N/s burst=M')" if 'burst' in text else ''
        raise RuleError(line_no, f"invalid limit '{text}': {_LIMIT_SHAPE}{hint}")
    count, unit, burst_text = match.groups()
    # Leading zeros are fine; the length is checked on the digits that count, before int() sees them
    if len(count.lstrip('0')) > _MAX_DIGITS or len((burst_text or '').lstrip('0')) > _MAX_DIGITS:
        raise RuleError(line_no, f"invalid limit '{text}': N and burst must be at most {_MAX_VALUE}")
    limit = int(count)  # safe: the regex allowed ASCII digits only
    if limit < 1:
        raise RuleError(line_no, f"invalid limit '{text}': N must be at least 1")
    burst = 0
    if burst_text is not None:
        if unit != 's':
            raise RuleError(line_no, f"invalid limit '{text}': burst is allowed only with per-second limits (N/s)")
        burst = int(burst_text)
    normalised = f'{limit}/{unit}' + (f' burst={burst}' if burst else '')
    return normalised, unit, limit, burst


def parse_rules(text: str) -> RuleSet:
    """Parses a definition's text into a RuleSet; raises RuleError naming the first bad line."""
    rules: list[Rule] = []
    networks: list[tuple[int, int, int]] = []
    # Lines split on LF only, so that \x0b, \x1c or U+2028 cannot start a new line the user does not see
    for line_no, raw in enumerate(text.split('\n'), 1):
        line = raw.partition('#')[0].strip(' \t\r')
        if not line:
            continue
        source_text, eq, limit_text = line.partition('=')
        if not eq:
            raise RuleError(line_no, f"expected 'source = limit', got '{line}'")
        source_text, limit_text = source_text.strip(' \t'), limit_text.strip(' \t')
        if not source_text:
            raise RuleError(line_no, "missing source before '='")
        if not limit_text:
            raise RuleError(line_no, "missing limit after '='")
        source, family, net, mask = _parse_source(line_no, source_text)
        normalised, unit, limit, burst = _parse_limit(line_no, limit_text)
        rules.append(Rule(len(rules), line_no, source, normalised, unit, limit, burst))
        networks.append((family, net, mask))
    return RuleSet(rules, networks)


class RuleSet:
    """The rules of one definition, in order, with what makes matching fast.

    Each family (IPv4, IPv6) has its own list of (network, mask, rule) in rule order, ``*`` rules
    included with a zero mask, so matching an address is a scan of integer comparisons. Results
    are cached per address string in a bounded dict, so a returning client costs one dict lookup.
    """

    __slots__ = ('rules', '_by_family', '_any', '_cache')

    def __init__(self, rules: list[Rule], networks: list[tuple[int, int, int]], cache_size: int = 4096) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        by_family: dict[int, list[tuple[int, int, Rule]]] = {4: [], 6: []}
        for rule, (family, net, mask) in zip(rules, networks, strict=True):
            for fam in ((4, 6) if family == 0 else (family,)):
                by_family[fam].append((net, mask, rule))
        self._by_family = {fam: tuple(entries) for fam, entries in by_family.items()}
        self._any = next((rule for rule in rules if rule.is_any), None)
        self._cache: BoundedCache[str, tuple[Rule, str] | None] = BoundedCache(cache_size)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __repr__(self) -> str:
        return f'RuleSet({[str(rule) for rule in self.rules]!r})'

    def lookup(self, ip: str) -> tuple[Rule, str] | None:
        """(the first matching rule, the client key to count under), or None if no rule matches."""
        try:
            return self._cache[ip]
        except KeyError:
            pass
        return self._cache.remember(ip, self._lookup(ip))

    def match(self, ip: str) -> Rule | None:
        """The first rule that matches ``ip``, or None (the address is not allowed)."""
        found = self.lookup(ip)
        return None if found is None else found[0]

    def _lookup(self, ip: str) -> tuple[Rule, str] | None:
        parsed = parse_address(ip)
        if parsed is None:
            return None if self._any is None else (self._any, ip)
        family, value = parsed
        for net, mask, rule in self._by_family[family]:
            if value & mask == net:
                return rule, _client_key(rule, family, value)
        return None


def _client_key(rule: Rule, family: int, value: int) -> str:
    """The count a matched request is charged to: see the module's docstring."""
    if rule.source != '*':
        return rule.source
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, 'big'))
    prefix = socket.inet_ntop(socket.AF_INET6, (value & _V6_SLASH64).to_bytes(16, 'big'))
    return f'{prefix}/64'
