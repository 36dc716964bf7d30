"""Rate limits and IP allow-lists as the request path sees them: one LimitDef per object that
has a definition attached, its parents shared, kept current by the runtime, and the limiter."""

from __future__ import annotations

import logging
from typing import Any

from zato.security.ratelimit import Counters, LimitDef, Limiter, RuleError, parse_rules
from zato.security.ratelimit.rules import RuleSet

logger = logging.getLogger('zato.limits')


class DefRow:
    """What the runtime keeps of a rate_limit_def row."""

    __slots__ = ('id', 'name', 'rules', 'mode', 'parent_id', 'is_active', 'is_default', 'version', 'parsed')

    def __init__(self, row: Any) -> None:
        self.id = row.id
        self.name = row.name
        self.rules = row.rules
        self.mode = row.mode
        self.parent_id = row.parent_id
        self.is_active = row.is_active
        self.is_default = row.is_default
        self.version = row.version
        try:
            self.parsed: RuleSet | None = parse_rules(row.rules)
        except RuleError as e:
            # Refused when saved; if one got in anyway, the object is closed rather than open
            logger.error('Rate-limit definition `%s` does not parse (%s); it will refuse every request', row.name, e)
            self.parsed = parse_rules('')


def _starts_with_any(rules: RuleSet) -> bool:
    """True when the first rule's source is `*`: every address matches it, so no allow-list."""
    first = next(iter(rules), None)
    return first is not None and first.source == '*'


class RateLimits:
    """Built whenever definitions, channels, security definitions or services change."""

    def __init__(self, exact_backend: Any = None) -> None:
        self.limiter = Limiter(Counters(), exact_backend)
        self.default: LimitDef | None = None
        self.by_channel: dict[int, LimitDef] = {}
        self.by_sec: dict[int, LimitDef] = {}
        self.by_service: dict[str, LimitDef] = {}
        # Allow-lists worth checking before authentication: levels whose rules do not all start
        # with a catch-all `*` (None when no level anywhere restricts addresses)
        self.default_allow_list = False
        self.allow_list_channels: frozenset[int] | None = None

    @staticmethod
    def _restricts(limit: LimitDef | None) -> bool:
        while limit is not None:
            if not _starts_with_any(limit.rules):
                return True
            limit = limit.parent
        return False

    def rebuild(self, defs: dict[int, DefRow], channels: dict[int, Any], security: dict[int, Any],
                services: dict[str, int]) -> None:
        shared: dict[int, LimitDef | None] = {}

        def chain(def_id: int | None, seen: frozenset[int] = frozenset()) -> LimitDef | None:
            """The shared LimitDef of a definition used as a parent (or as the default)."""
            if def_id is None or def_id in seen:
                return None
            if def_id not in shared:
                row = defs.get(def_id)
                if row is None or not row.is_active or row.parsed is None:
                    shared[def_id] = None
                else:
                    shared[def_id] = LimitDef(f'def-{row.id}-v{row.version}', row.parsed, row.mode,
                                              chain(row.parent_id, seen | {def_id}))
            return shared[def_id]

        def own(kind: str, obj_id: object, def_id: int | None) -> LimitDef | None:
            """An object's own level: its definition's rules, counted for this object alone."""
            row = defs.get(def_id) if def_id is not None else None
            if row is None or not row.is_active or row.parsed is None:
                return None
            return LimitDef(f'{kind}-{obj_id}-def-{row.id}-v{row.version}', row.parsed, row.mode,
                            chain(row.parent_id, frozenset({row.id})))

        default = next((row for row in defs.values() if row.is_default and row.is_active), None)
        self.default = chain(default.id) if default is not None else None
        self.by_channel = {cid: d for cid, c in channels.items() if (d := own('channel', cid, c.rate_limit_id))}
        self.by_sec = {sid: d for sid, s in security.items() if (d := own('sec', sid, s.rate_limit_id))}
        self.by_service = {name: d for name, def_id in services.items() if (d := own('service', name, def_id))}
        self.default_allow_list = self._restricts(self.default)
        restricting = frozenset(cid for cid, d in self.by_channel.items() if self._restricts(d))
        self.allow_list_channels = restricting if (restricting or self.default_allow_list) else None

    def address_allowed(self, channel_id: int | None, client_ip: str) -> bool:
        """The allow-list part of the IP and channel levels (and their parents), decided before
        authentication: an address no rule matches gets 403 whatever credentials it sends.
        Nothing is counted here; the full check after authentication does that."""
        for limit in (self.default, self.by_channel.get(channel_id) if channel_id is not None else None):
            while limit is not None:
                if limit.rules.match(client_ip) is None:
                    return False
                limit = limit.parent
        return True

    def levels(self, channel_id: int | None, sec_id: int | None, service: str) -> list[LimitDef]:
        """The applicable levels in the order of the hierarchy: IP, security definition, channel, service.
        Asked once per channel when its guards are built (zato.server.guards), never per request."""
        out = []
        if self.default is not None:
            out.append(self.default)
        if sec_id is not None and (d := self.by_sec.get(sec_id)) is not None:
            out.append(d)
        if channel_id is not None and (d := self.by_channel.get(channel_id)) is not None:
            out.append(d)
        if (d := self.by_service.get(service)) is not None:
            out.append(d)
        return out
