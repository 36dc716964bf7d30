"""The guards of a channel: built once per channel at config load, run by every entry point.

A request passes the guards of its channel in the order of the hierarchy (../shared/RELIABILITY.md):

1. the **allow-list** of the IP level (the default rate-limit definition) and of the channel's own
   definition, and their parents: an address no rule matches gets 403 before its credentials are
   looked at;
2. **authentication** against the channel's security definition (401);
3. the **rate-limit levels** — IP, security definition, channel, service, and each one's parents —
   checked together, a refused request charged to none of them (429, or 403).

A channel whose security definition is linked to an SSO user (zato.sso.linked) has, instead of the
third step, one that acts as that user (zato.server.sso_linked): the user's status and level of the
hierarchy (between the channel and the service) are checked with the others, an SSO session is
opened or extended, and the service sees the user (`ActingGuards`). Whether a channel has that step
is decided here, at config load, so a channel without a linked credential pays nothing for it.

JSON Schema and SimpleIO, the last guards, belong to the service and run in the invoker, which every
entry point invokes services through.

What depends only on the channel is decided when the chain is built, not per request: which steps
it has at all (a channel without security or limits has none, and costs nothing), the security
definition, and the levels that apply. For the most common shape - Basic Auth or an API key, any
rate-limit levels, no allow-list - the chain is also fused into one function (`Guards.run`): a
header value this chain verified before maps straight to its caller, and one approximate level
without parents is checked inline. It decides exactly what the steps decide (tests/server/
test_guards_fused.py runs both on the same requests); anything it has not seen goes through them.

The REST dispatcher (`Guards.run`), the JSON-RPC gateway (and, per call, the called service's own
level, a `rate_limits` guard the runtime builds per service) and the WebSocket handshake
(`Guards.check`) all run the chain; a channel type added later builds its `Guards` the same way and
gets all of this by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from zato.bounded_cache import BoundedCache
from zato.errors import Forbidden, ServiceUnavailable, TooManyRequests
from zato.server.client_address import client_address
from zato.config.channel import ChannelInfo, SecurityInfo, SSOUserInfo
from zato.security.ratelimit.limiter import Limiter as _Limiter  # noqa: TC001 - its _refused, at run time
from zato.security.ratelimit.rules import UNLIMITED

if TYPE_CHECKING:
    from zato.security.authenticate import Authenticator
    from zato.security.ratelimit import LimitDef, Limiter
    from zato.security.ratelimit.limiter import Decision
    from zato.config.security import SecurityConfig
    from zato.server.client_address import Network
    from zato.server.limits import RateLimits

NO_STORE = {'Cache-Control': 'no-store'}

# What a channel remembers per caller (one ChannelInfo each, so not one per request)
MAX_CALLERS = 1000


class Caller:
    """What the guards know of one request: set up by the entry point, filled in by the guards."""

    __slots__ = ('peer', 'headers', 'proxies', '_address', 'security', 'sso_user')

    def __init__(self, peer: str, headers: dict[str, str], proxies: tuple[Network, ...]) -> None:
        self.peer = peer
        self.headers = headers
        self.proxies = proxies
        self._address = ''
        self.security: SecurityInfo | None = None
        self.sso_user: SSOUserInfo | None = None  # set by the step of a linked credential only

    @property
    def address(self) -> str:
        """The client's address (`address_of`), worked out once per request, and only when a guard
        needs it."""
        address = self._address
        if not address:
            address = self._address = address_of(self.peer, self.headers, self.proxies)
        return address


def address_of(peer: str, headers: dict[str, str], proxies: tuple[Network, ...]) -> str:
    """The client's address: the peer's, or what a trusted proxy reported in X-Forwarded-For."""
    forwarded = headers.get('x-forwarded-for') if proxies else None
    return client_address(peer, forwarded, proxies) if forwarded else peer


Guard = Callable[[Caller], None]

# What makes the step of a linked credential, from the levels before the SSO user's (IP, security
# definition, channel) and after it (service): zato.server.sso_linked.LinkedCredentials.step
ActingStep = Callable[[list['LimitDef'], list['LimitDef']], Guard]


def allow_list(limits: RateLimits, channel_id: int | None) -> Guard:
    def check_address(caller: Caller) -> None:
        if not limits.address_allowed(channel_id, caller.address):
            raise Forbidden(headers=NO_STORE)
    return check_address


def authenticate(authenticator: Authenticator, sec: SecurityConfig | None, optional: bool = False) -> Guard:
    """Credentials checked against `sec` (None, a definition that is gone: nobody passes). With
    `optional`, a request that carries no credentials passes unauthenticated (a WebSocket client
    may authenticate later, in its first message)."""
    def check_credentials(caller: Caller) -> None:
        if optional and not _has_credentials(sec, caller.headers):
            return
        caller.security = authenticator.authenticate(sec, caller.headers)
    return check_credentials


def _has_credentials(sec: SecurityConfig | None, headers: dict[str, str]) -> bool:
    if sec is not None and sec.kind == 'apikey':
        return sec.username.lower() in headers
    return 'authorization' in headers


def rate_limits(limiter: Limiter, levels: Sequence[LimitDef], anonymous: Sequence[LimitDef] | None = None) -> Guard:
    """Every level checked at once, charged to none if one refuses. `anonymous`: the levels of a
    caller that passed without credentials (no security-definition level), when that may happen."""
    levels = list(levels)
    anon = levels if anonymous is None else list(anonymous)

    def check_limits(caller: Caller) -> None:
        chosen = levels if caller.security is not None else anon
        if not chosen:
            return
        decision = limiter.check(chosen, caller.address)
        if not decision.allowed:
            refuse(decision)
    return check_limits


def rate_limits_by_caller(limiter: Limiter, levels_of: Callable[[int | None], Sequence[LimitDef]]) -> Guard:
    """Every level checked at once, as `rate_limits`, for a channel whose callers' security definitions
    are learnt only as they authenticate (`authenticate_with`): each definition's levels worked out once
    per chain, which is built again with every change of security or limits."""
    by_sec: dict[int | None, list[LimitDef]] = {}

    def check_limits(caller: Caller) -> None:
        sec_id = caller.security.id if caller.security is not None else None
        chosen = by_sec.get(sec_id)
        if chosen is None:
            chosen = by_sec[sec_id] = list(levels_of(sec_id))
        if not chosen:
            return
        decision = limiter.check(chosen, caller.address)
        if not decision.allowed:
            refuse(decision)
    return check_limits


def refuse(decision: Decision) -> NoReturn:
    """A rate-limit refusal as the error every entry point answers: 429, or 403 for an address no
    rule lets in."""
    error = TooManyRequests if decision.status == 429 else Forbidden
    raise error(headers=decision.headers)


def not_built(caller: Caller) -> None:
    """The guard of a channel whose guards are not built yet: nobody passes (never open by default)."""
    raise ServiceUnavailable('Channel not ready', headers={'Retry-After': '1'})


class Guards:
    """The guard chain of one channel. `check` runs it and returns the ChannelInfo the service sees:
    the channel's own, or one naming the authenticated caller (built once per caller). `run` is the
    same decision from a request's peer, headers and trusted proxies, fused where the chain allows."""

    __slots__ = ('steps', 'info', 'by_caller', 'run')

    def __init__(self, steps: Sequence[Guard] | None, info: ChannelInfo) -> None:
        """With `steps` None, a chain that refuses everyone until the real one is built."""
        self.steps = tuple(steps) if steps is not None else (not_built,)
        self.info = info
        self.by_caller: BoundedCache[SecurityInfo, ChannelInfo] = BoundedCache(MAX_CALLERS)
        self.run: Callable[[str, dict[str, str], tuple[Network, ...]], ChannelInfo] = self._run_steps

    def _run_steps(self, peer: str, headers: dict[str, str], proxies: tuple[Network, ...]) -> ChannelInfo:
        return self.check(Caller(peer, headers, proxies))

    def check(self, caller: Caller) -> ChannelInfo:
        for step in self.steps:
            step(caller)
        sec = caller.security
        if sec is None:
            return self.info
        known = self.by_caller.get(sec)
        if known is None:
            info = self.info
            known = self.by_caller.remember(sec, ChannelInfo(info.id, info.name, info.type, info.data_format,
                                                             info.is_internal, sec))
        return known


class ActingGuards(Guards):
    """The chain of a channel whose security definition is linked to an SSO user: what the service
    sees names the user too, so it is made per request (it names the request's SSO session)."""

    __slots__ = ()

    def check(self, caller: Caller) -> ChannelInfo:
        for step in self.steps:
            step(caller)
        sec = caller.security
        if sec is None:
            return self.info
        info = self.info
        return ChannelInfo(info.id, info.name, info.type, info.data_format, info.is_internal, sec, caller.sso_user)


def build(*, info: ChannelInfo, limits: RateLimits, authenticator: Authenticator, security: dict[int, Any],
          channel_id: int | None, security_id: int | None, service: str, is_internal: bool = False,
          credentials_optional: bool = False, acting: ActingStep | None = None,
          authenticate_with: Guard | None = None) -> Guards:
    """The guards of one channel, from what is known of it at config load.

    `channel_id` None: a channel kind without rate-limit definitions of its own (WebSocket channels).
    `service` '': no service level (JSON-RPC checks it per call, `service_level`; a handshake has none).
    An internal channel (the admin API, /zato/ping) is not rate-limited or allow-listed.
    `acting`: the channel's security definition is linked to an SSO user (the runtime knows).
    `authenticate_with`: the authentication step of a channel whose callers are not checked against one
    definition (pub/sub's, which finds the caller's endpoint by its user name: zato.server.pubsub).
    """
    steps: list[Guard] = []
    if not is_internal and limits.allow_list_channels is not None and \
            (limits.default_allow_list or channel_id in limits.allow_list_channels):
        steps.append(allow_list(limits, channel_id))
    if authenticate_with is not None:
        steps.append(authenticate_with)
    elif security_id is not None:
        steps.append(authenticate(authenticator, security.get(security_id), credentials_optional))
    if acting is not None and security_id is not None and not is_internal and not credentials_optional:
        # The SSO user's level goes between the channel's and the service's
        service_level = limits.by_service.get(service) if service else None
        levels = limits.levels(channel_id, security_id, service)
        steps.append(acting([level for level in levels if level is not service_level],
                            [level for level in levels if level is service_level]))
        return ActingGuards(steps, info)
    levels = []
    if not is_internal and authenticate_with is not None:
        steps.append(rate_limits_by_caller(limits.limiter, lambda sec_id: limits.levels(channel_id, sec_id, service)))
    elif not is_internal:
        levels = limits.levels(channel_id, security_id, service)
        anonymous = limits.levels(channel_id, None, service) if credentials_optional else None
        if levels or anonymous:
            steps.append(rate_limits(limits.limiter, levels, anonymous))
    guards = Guards(steps, info)
    sec = security.get(security_id) if security_id is not None else None
    if sec is not None and sec.is_active and sec.kind in ('basic_auth', 'apikey') and not credentials_optional \
            and len(steps) == 1 + bool(levels):  # authentication and limits, no allow-list
        guards.run = fused(guards, 'authorization' if sec.kind == 'basic_auth' else sec.username.lower(),
                           limits.limiter, levels)
    return guards


def fused(guards: Guards, header_name: str, limiter: Limiter, levels: Sequence[LimitDef]) -> \
        Callable[[str, dict[str, str], tuple[Network, ...]], ChannelInfo]:
    """`guards.run` for a chain of authentication by one header (Basic Auth, API key) and rate limits.

    A header value is remembered only once the steps verified it, in this chain, which is dropped
    with every change of security, limits or channels (the runtime builds all guards anew), so a
    changed or deleted credential is never found here. A value not seen before takes the steps.
    """
    known: BoundedCache[str, ChannelInfo] = BoundedCache(MAX_CALLERS)
    known_get = known.get
    remember = known.remember
    check = guards.check
    levels = list(levels)
    single = levels[0] if len(levels) == 1 and len(levels[0].levels) == 1 and not levels[0].is_exact else None
    limiter_check = limiter.check
    counters = limiter.counters
    refused = _Limiter._refused

    def run(peer: str, headers: dict[str, str], proxies: tuple[Network, ...]) -> ChannelInfo:
        value = headers.get(header_name)
        info = known_get(value) if value is not None else None
        if info is None:
            caller = Caller(peer, headers, proxies)
            info = check(caller)
            if value is not None and caller.security is not None:
                remember(value, info)
            return info
        if not levels:
            return info
        address = address_of(peer, headers, proxies)
        if single is not None:
            found = single.resolve(address)
            if found is None:
                raise Forbidden(headers=NO_STORE)
            rule = found[0]
            if rule.kind != UNLIMITED:
                wait = counters.hit(found[1], rule, counters.clock())
                if wait > 0.0:
                    raise TooManyRequests(headers=refused(wait, single.id).headers)
            return info
        decision = limiter_check(levels, address)
        if not decision.allowed:
            refuse(decision)
        return info

    return run
