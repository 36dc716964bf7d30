"""``self.channel``: which channel a service was invoked through, and who called (the security
definition and user that passed its guards); shared by the guards, the checks and the services."""

from __future__ import annotations

from dataclasses import dataclass


class CHANNEL:
    """Channel types (Zato 3.1's names)."""
    HTTP = 'http-soap'
    INVOKE = 'invoke'
    INVOKE_ASYNC = 'invoke-async'
    INVOKE_ASYNC_CALLBACK = 'invoke-async-callback'
    FANOUT_CALL = 'fanout-call'
    FANOUT_ON_TARGET = 'fanout-on-target'
    FANOUT_ON_FINAL = 'fanout-on-final'
    PARALLEL_EXEC_CALL = 'parallel-exec-call'
    PARALLEL_EXEC_ON_TARGET = 'parallel-exec-on-target'
    PARALLEL_EXEC_ON_FINAL = 'parallel-exec-on-final'  # ours: 3.1's parallel pattern had no final callback
    STARTUP_SERVICE = 'startup-service'
    ADMIN = 'admin'
    SCHEDULER = 'scheduler'
    WEB_SOCKET = 'web-socket'
    JSON_RPC = 'json-rpc'


# eq=False: compared and hashed by identity. Each caller's SecurityInfo is built once and cached,
# and the request path keys a dict by it, so a field-by-field hash would be work for nothing.
@dataclass(frozen=True, slots=True, eq=False)
class SecurityInfo:
    id: int | None
    name: str
    type: str
    username: str


@dataclass(frozen=True, slots=True)
class SSOUserInfo:
    """The SSO user a request acts as, having authenticated with a credential linked to them
    (zato.sso.linked): `self.sso_user` of a service. `session_id` is the SSO session the request
    opened or extended for `current_app` (the `session_id` of the user's session list)."""
    user_id: str
    username: str
    current_app: str
    session_id: int


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    id: int | None
    name: str
    type: str
    data_format: str = ''
    is_internal: bool = False
    security: SecurityInfo | None = None
    sso_user: SSOUserInfo | None = None

    @property
    def sec(self) -> SecurityInfo | None:
        return self.security


INVOKE_CHANNEL = ChannelInfo(None, 'invoke', CHANNEL.INVOKE, 'dict')
INVOKE_ASYNC_CHANNEL = ChannelInfo(None, 'invoke-async', CHANNEL.INVOKE_ASYNC, 'dict')
STARTUP_CHANNEL = ChannelInfo(None, 'startup-service', CHANNEL.STARTUP_SERVICE, 'dict')
