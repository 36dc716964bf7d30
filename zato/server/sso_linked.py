"""Linked credentials on the request path: a request that authenticated with a Basic Auth or JWT
definition linked to an SSO user (zato.sso.linked) acts as that user.

Each worker keeps which definitions are linked (`LinkedCredentials.links`), loaded with the rest of
the config and reloaded on every change the cluster bus announces (kind `sso_linked`, and the
deletion of a definition), so the guards of a channel are built with the step below only when its
definition is linked: every other channel keeps the chain it had, at the cost it had.

The step (`LinkedCredentials.step`), after authentication, in one ODB transaction:

1. reads the link and its user from the ODB (so a link removed, or a user locked or deleted, a moment
   ago on another server is seen at once); with no active link any more, the request goes on as a
   plain one (no user, the plain levels);
2. refuses a user who may not act (locked, not approved, not confirmed): 403, the generic body;
3. takes the application from the `[apps] http_header` header (X-Zato-SSO-Current-App), or
   `[apps] default`; one not in `[apps] all` is a 403 saying so;
4. checks the rate-limit levels with the user's own between the channel's and the service's - the
   SSO-user level of the hierarchy, exact (cluster-wide) where the ODB is PostgreSQL, as in 3.1, and
   counted per worker with SQLite, which has no exact store; a refused request is charged to no level;
5. opens the user's session for (application, credential) or extends it, and commits; the service
   sees the user as `self.sso_user`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from zato.bounded_cache import BoundedCache
from zato.config.channel import SSOUserInfo
from zato.errors import Forbidden
from zato.security.ratelimit import APPROXIMATE, EXACT, LimitDef, RuleError, parse_rules
from zato.server.guards import NO_STORE, refuse
from zato.sso.linked import may_act

if TYPE_CHECKING:
    from zato.config.security import SecurityConfig
    from zato.security.ratelimit import Limiter
    from zato.server.guards import ActingStep, Caller, Guard
    from zato.sso.api import SSO

logger = logging.getLogger('zato.sso')

# Users whose rate-limit definition a worker keeps parsed
MAX_USER_LIMITS = 10_000


class LinkedCredentials:
    """One per worker: the linked definitions, and the step their channels' guards run."""

    def __init__(self, sso: SSO, limiter: Limiter) -> None:
        self.sso = sso
        self.limiter = limiter
        self.links: dict[int, int] = {}  # definition id -> the user's row id
        # (user's row id, their rules) -> their level: a changed definition is a new level, with new counters
        self.user_levels: BoundedCache[tuple[int, str], LimitDef] = BoundedCache(MAX_USER_LIMITS)

    def reload(self, session: Any) -> None:
        self.links = self.sso.user.linked.active_links(session)

    def forget_security(self, sec_id: int) -> None:
        """A deleted definition: the ODB removed its link (ON DELETE CASCADE); this worker forgets it."""
        self.links.pop(sec_id, None)

    def user_level(self, user_pk: int, rules: str) -> LimitDef:
        key = (user_pk, rules)
        level = self.user_levels.get(key)
        if level is None:
            digest = hashlib.sha256(rules.encode('utf-8')).hexdigest()[:16]
            try:
                parsed = parse_rules(rules)
            except RuleError as e:
                # Refused when saved; if one got in anyway, the user is closed rather than open
                logger.error('The rate-limit definition of SSO user %s does not parse (%s); it refuses everything',
                             user_pk, e)
                parsed = parse_rules('')
            mode = EXACT if self.limiter.exact_backend is not None else APPROXIMATE
            level = self.user_levels.remember(key, LimitDef(f'sso_user-{user_pk}-{digest}', parsed, mode))
        return level

    def step(self, sec: SecurityConfig) -> ActingStep | None:
        """What guards.build calls with the levels before and after the SSO user's: the step of a
        channel authenticated by `sec`, or None when `sec` is linked to no one."""
        if sec.id not in self.links or sec.kind not in ('basic_auth', 'jwt'):
            return None

        def make(before: list[LimitDef], after: list[LimitDef]) -> Guard:
            return self._acting(sec, before, after)
        return make

    def _acting(self, sec: SecurityConfig, before: list[LimitDef], after: list[LimitDef]) -> Guard:
        apps = self.sso.ctx.config['apps']
        header = apps['http_header'].lower()
        default_app = apps['default']
        known_apps = frozenset(apps['all'])
        linked = self.sso.user.linked
        ctx = self.sso.ctx
        limiter = self.limiter
        plain = before + after
        sec_id, kind = sec.id, sec.kind

        def act_as_user(caller: Caller) -> None:
            now = ctx.clock()
            with ctx.Session() as session:
                user = linked.user_of(session, sec_id)
                if user is None:
                    # Unlinked (or switched off) a moment ago; this worker hears of it next
                    if plain:
                        decision = limiter.check(plain, caller.address)
                        if not decision.allowed:
                            refuse(decision)
                    return
                if not may_act(user):
                    raise Forbidden(headers=NO_STORE)
                app = caller.headers.get(header) or default_app
                if app not in known_apps:
                    raise Forbidden(f'Invalid SSO application in {apps["http_header"]}', NO_STORE)
                levels = plain
                if user.is_rate_limit_active:
                    levels = [*before, self.user_level(user.id, user.rate_limit_def), *after]
                if levels:
                    decision = limiter.check(levels, caller.address)
                    if not decision.allowed:
                        refuse(decision)
                principal = caller.security.username if caller.security is not None else ''
                row = linked.touch_session(session, user, sec_id, kind, principal, app, caller.address,
                                           caller.headers.get('user-agent', ''), now)
                session.commit()
                caller.sso_user = SSOUserInfo(user.user_id, user.username, app, row.id)
        return act_as_user
