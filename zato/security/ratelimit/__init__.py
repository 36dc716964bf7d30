"""Rate limiting and IP allow-lists: rules, approximate and exact counters, and the hierarchy.

``Counters`` is the compiled twin (zato.cy.ratelimit) when it is built and allowed, else the
pure-Python one; ``exact`` (PostgreSQL, Redis) is imported on first use by whoever needs it.
"""

from __future__ import annotations

from zato.accel import load as _load
from zato.security.ratelimit.limiter import APPROXIMATE, EXACT, Decision, LimitDef, Limiter, retry_after
from zato.security.ratelimit.rules import Rule, RuleError, RuleSet, parse_rules

Counters = _load('zato.security.ratelimit.counters').Counters

__all__ = ['APPROXIMATE', 'EXACT', 'Counters', 'Decision', 'LimitDef', 'Limiter', 'Rule', 'RuleError', 'RuleSet',
           'parse_rules', 'retry_after']
