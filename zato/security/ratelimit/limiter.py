"""The hierarchy: one request checked against every applicable definition and their parents.

A request passes only if every level passes. The caller lists the objects that apply, in the order
IP range -> security definition -> channel -> (SSO user ->) service, and each object's parent chain
is walked too. A definition reached twice (two objects sharing a parent) is checked once.

Order of work in ``Limiter.check``, and why:

1. Every level's rule is matched first. A level with no matching rule refuses the address (403)
   before anything is counted anywhere: an allow-list refusal costs no one's quota.
2. Levels whose rule is ``*`` pass without a counter.
3. Approximate levels are probed. If one refuses, the request gets 429 and nothing is charged
   (exact levels are only probed, to learn their wait, so Retry-After is never too short).
4. The approximate levels are charged - a reservation, with no yield between probe and charge, so
   concurrent greenlets cannot both take the last slot - and then the exact levels are checked in
   one atomic call that charges all of them or none.
5. If an exact level refuses (or its store fails), the reservations are refunded, so a refused
   request ends up charged to no level (nginx's behaviour: a blocked client cannot burn another
   level's quota). While the call is in flight the reservation counts, which can only make a
   concurrent request wait, never let one through.

Keying (see rules.py): counters are per (definition id, index of the matched rule, client key),
the client key being the matched network for a CIDR rule (one count shared by the network, as in
3.1), the address for a single-address rule, and the client's own address for ``*`` (IPv6: its /64).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zato.bounded_cache import BoundedCache
from zato.security.ratelimit.rules import UNLIMITED, Rule, RuleSet, parse_rules

if TYPE_CHECKING:
    from zato.security.ratelimit.exact import ExactBackend

__all__ = ['APPROXIMATE', 'EXACT', 'Decision', 'LimitDef', 'Limiter']

APPROXIMATE = 'approximate'
EXACT = 'exact'


# What a definition resolves an address to: the rule, the approximate key, the exact-mode key
_Resolved = tuple[Rule, tuple[str, int, str], str]


class LimitDef:
    """The rate-limit definition of one object: ``id`` such as ``'sec_def:5'``, its rules, its mode
    (``'approximate'``, counted per process, or ``'exact'``, shared by the cluster) and an optional
    parent whose limits apply as well. Immutable, so a parent chain checked here stays acyclic."""

    __slots__ = ('id', 'rules', 'mode', 'parent', 'chain', 'levels', 'is_exact', '_resolved')

    id: str
    rules: RuleSet
    mode: str
    parent: LimitDef | None
    chain: tuple[LimitDef, ...]    # the parent, its parent, and so on
    levels: tuple[LimitDef, ...]   # this definition, then its chain: what a request must pass
    is_exact: bool
    _resolved: BoundedCache[str, _Resolved | None]

    def __init__(self, id: str, rules: RuleSet | str, mode: str = APPROXIMATE,
                 parent: LimitDef | None = None, cache_size: int = 4096) -> None:
        if not id or '|' in id:
            # '|' separates the parts of exact-mode keys, so it would make two keys collide
            raise ValueError(f'invalid definition id {id!r}: must be non-empty and without "|"')
        if mode not in (APPROXIMATE, EXACT):
            raise ValueError(f"invalid mode {mode!r}: expected 'approximate' or 'exact'")
        if parent is not None and not isinstance(parent, LimitDef):
            raise TypeError(f'parent must be a LimitDef, not {type(parent).__name__}')
        chain: tuple[LimitDef, ...] = (parent, *parent.chain) if parent is not None else ()
        # A new object cannot be its own ancestor, but a definition re-created under the same id can
        # be: ids are what the counters are keyed by, so a repeated id is a cycle.
        if any(ancestor.id == id for ancestor in chain):
            path = ' -> '.join([id, *(ancestor.id for ancestor in chain)])
            raise ValueError(f'rate-limit definitions form a cycle: {path}')
        setter = object.__setattr__
        setter(self, 'id', id)
        setter(self, 'rules', parse_rules(rules) if isinstance(rules, str) else rules)
        setter(self, 'mode', mode)
        setter(self, 'parent', parent)
        setter(self, 'chain', chain)
        setter(self, 'levels', (self, *chain))
        setter(self, 'is_exact', mode == EXACT)
        setter(self, '_resolved', BoundedCache(cache_size))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError('LimitDef is immutable; create a new one')

    def __repr__(self) -> str:
        parent = f', parent={self.parent.id!r}' if self.parent is not None else ''
        return f'LimitDef({self.id!r}, {self.mode!r}, {len(self.rules)} rules{parent})'

    def resolve(self, ip: str) -> _Resolved | None:
        """(matching rule, approximate key, exact key) for a client address, or None (403).

        Cached per address (a BoundedCache), so a returning client costs one dict lookup and no
        string building, and memory stays bounded whatever the addresses.
        """
        try:
            return self._resolved[ip]
        except KeyError:
            pass
        found = self.rules.lookup(ip)
        resolved: _Resolved | None = None
        if found is not None:
            rule, client_key = found
            resolved = (rule, (self.id, rule.index, client_key), f'{self.id}|{rule.index}|{client_key}')
        self._resolved.remember(ip, resolved)
        return resolved


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one request: ``status`` 200, 403 (address not allowed) or 429 (over a limit),
    ``retry_after`` whole seconds (0 when allowed), ``level`` the id of the definition that refused."""

    allowed: bool
    status: int
    retry_after: int = 0
    level: str = ''
    reason: str = ''

    @property
    def headers(self) -> dict[str, str]:
        """Response headers for a refusal: refusals must not be cached, and 429 says when to retry."""
        if self.allowed:
            return {}
        if self.status == 429:
            return {'Retry-After': str(self.retry_after), 'Cache-Control': 'no-store'}
        return {'Cache-Control': 'no-store'}


ALLOWED = Decision(True, 200)


def retry_after(wait: float) -> int:
    """Whole seconds for Retry-After: rounded up, so never shorter than the real wait, and at least 1."""
    return max(1, math.ceil(wait))


def _refusing(exact: list[tuple[LimitDef, str, Rule]], index: int) -> str:
    """The id of the exact level a store named as refusing (the first one if it named none)."""
    return exact[index][0].id if 0 <= index < len(exact) else exact[0][0].id


class Limiter:
    """Checks requests against rate-limit definitions.

    ``counters`` holds the approximate states (a ``Counters`` of either twin, e.g.
    ``zato.accel.load('zato.security.ratelimit.counters').Counters()``); ``exact_backend`` is needed
    only if some definition is exact (PostgresExact or RedisExact).
    """

    __slots__ = ('counters', 'exact_backend')

    def __init__(self, counters: Any, exact_backend: ExactBackend | None = None) -> None:
        self.counters = counters
        self.exact_backend = exact_backend

    def check(self, defs: Sequence[LimitDef], client_ip: str, now: float | None = None) -> Decision:
        """Decides on one request from ``client_ip`` (the peer address, or the one a trusted proxy
        reported) against ``defs`` and their parents; charges the request only if it is allowed."""
        if len(defs) == 1 and len(defs[0].levels) == 1 and not defs[0].is_exact:
            # The common case of one approximate level without parents, without the lists below
            level = defs[0]
            found = level.resolve(client_ip)
            if found is None:
                return Decision(False, 403, 0, level.id, 'address not allowed')
            rule, key, _exact_key = found
            if rule.kind == UNLIMITED:
                return ALLOWED
            counters = self.counters
            wait = counters.hit(key, rule, counters.clock() if now is None else now)
            return ALLOWED if wait <= 0.0 else self._refused(wait, level.id)
        approximate: list[tuple[tuple[str, int, str], Rule]] = []
        exact: list[tuple[LimitDef, str, Rule]] | None = None  # made only when needed: this is the hot path
        # One object's levels never repeat an id (LimitDef refuses cycles); only several objects
        # can share an ancestor, so only then is it worth remembering what was checked
        seen: set[str] | None = set() if len(defs) > 1 else None

        for obj in defs:
            for level in obj.levels:
                if seen is not None:
                    if level.id in seen:
                        continue
                    seen.add(level.id)
                found = level.resolve(client_ip)
                if found is None:
                    return Decision(False, 403, 0, level.id, 'address not allowed')
                rule, key, exact_key = found
                if rule.kind == UNLIMITED:
                    continue
                if level.is_exact:
                    if exact is None:
                        exact = []
                    exact.append((level, exact_key, rule))
                else:
                    approximate.append((key, rule))

        if exact is None:
            if not approximate:
                return ALLOWED
        elif self.exact_backend is None:
            raise RuntimeError('an exact rate-limit definition needs an exact backend')

        counters = self.counters
        t = counters.clock() if now is None else now

        # Probe every approximate level and, only if all pass, charge them all - without a yield in
        # between, so this is the reservation of the module's docstring
        if approximate:
            wait = counters.hit_all(approximate, t)
            if wait > 0.0:
                level_id = self._refusing_approximate(approximate, t)
                if exact is not None:
                    # Only to learn their wait: Retry-After must cover every level that would refuse
                    result = self._exact(exact, now, charge=False)
                    if not result.ok and result.wait > wait:
                        wait, level_id = result.wait, _refusing(exact, result.refused)
                return self._refused(wait, level_id)
        if exact is None:
            return ALLOWED

        try:
            result = self._exact(exact, now, charge=True)
        except BaseException:
            self._refund(approximate, t)
            raise
        if result.ok:
            return ALLOWED
        self._refund(approximate, t)
        return self._refused(result.wait, _refusing(exact, result.refused))

    def _refusing_approximate(self, approximate: list[tuple[tuple[str, int, str], Rule]], t: float) -> str:
        """The id of the approximate level with the longest wait (a refusal's cold path)."""
        waits = [self.counters.probe(key, rule, t) for key, rule in approximate]
        return approximate[waits.index(max(waits))][0][0]  # a key starts with its definition's id

    def _exact(self, exact: list[tuple[LimitDef, str, Rule]], now: float | None, charge: bool) -> Any:
        # now None lets the store use its own clock: one timeline for the whole cluster
        items = [(key, rule) for _, key, rule in exact]
        return self.exact_backend.probe_and_charge_all(items, now, charge=charge)  # type: ignore[union-attr]

    def _refund(self, approximate: list[tuple[tuple[str, int, str], Rule]], t: float) -> None:
        for key, rule in approximate:
            self.counters.refund(key, rule, t)

    @staticmethod
    def _refused(wait: float, level: str) -> Decision:
        return Decision(False, 429, retry_after(wait), level, 'rate limit reached')
