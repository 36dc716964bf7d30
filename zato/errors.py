"""The error hierarchy, and the one place where an exception becomes an answer.

Each error a caller may see carries its HTTP status and a stable `code`, sent in the error body
(`{"result": "ZATO_ERROR", "cid": ..., "details": ..., "code": ...}`). `failure_of` decides, for
every entry point alike (REST, JSON-RPC, WebSockets and every channel type added later), what an
exception a service let out means: a client's mistake (its 4xx), a remote end that failed (503 down
or inactive, 504 too slow, 502 refused our credentials), or our own bug (500, the details in the
log only); `log_failure` logs each as what it is.

A dependency of the whole server whose failures arrive as some library's exceptions (the ODB's, as
SQLAlchemy's) is taught to `failure_of` by the layer that owns it, through `register_unavailable`:
this module imports none of those libraries.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ZatoError(Exception):
    """Base of every error Zato raises on purpose."""


class ClientError(ZatoError):
    """A caller's mistake: answered with ``status`` and the standard error body, never a traceback.

    Services may raise these (or the 3.1 names below) to choose the HTTP status themselves.
    """
    status = 400
    code = 'bad_request'
    # A whole answer of its own instead of the standard error body (the cid is added to it): what
    # 3.1's SSO envelope needs (zato.sso.status.SSOError); None for every other error
    body: dict[str, Any] | None = None

    def __init__(self, details: Any = None, headers: dict[str, str] | None = None) -> None:
        self.details = details if details is not None else self.default_details()
        self.headers = headers or {}
        super().__init__(self.details if isinstance(self.details, str) else repr(self.details))

    def default_details(self) -> str:
        from zato.proto.reasons import REASONS
        return REASONS.get(self.status, 'Error')


class BadRequest(ClientError):
    status, code = 400, 'bad_request'


class Unauthorized(ClientError):
    status, code = 401, 'unauthorized'


class Forbidden(ClientError):
    status, code = 403, 'forbidden'


class NotFound(ClientError):
    status, code = 404, 'not_found'


class MethodNotAllowed(ClientError):
    status, code = 405, 'method_not_allowed'


class Conflict(ClientError):
    status, code = 409, 'conflict'


class UnsupportedMediaType(ClientError):
    status, code = 415, 'unsupported_media_type'


class TooManyRequests(ClientError):
    status, code = 429, 'too_many_requests'


class ServiceUnavailable(ClientError):
    # Not strictly the client's fault, but answered the same way: a clear status, no traceback
    status, code = 503, 'service_unavailable'


class ServiceNotFound(ZatoError, KeyError):
    """No service of that name is deployed."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'Service `{name}` not found')

    def __str__(self) -> str:
        return self.args[0]


class Inactive(NotFound):
    """The service is deployed but switched off (``is_active`` false): its channels answer 404 with this
    code, and ``self.invoke`` / ``self.invoke_async`` raise it (Zato 3.1's ``Inactive``)."""
    code = 'service_inactive'

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'Service `{name}` is inactive')


class RetryFailed(ZatoError):
    """``self.patterns.invoke_retry.invoke`` ran out of attempts (3.1's name); ``cid`` names the background
    retries when ``async_fallback`` handed the invocation over to them."""

    def __init__(self, message: str, cid: str = '') -> None:
        self.cid = cid
        super().__init__(message)


class InvocationTimeout(ZatoError):
    """``self.invoke(..., timeout=N)`` ran out of time."""


class DeploymentError(ZatoError):
    """A service module could not be deployed; ``details`` says why (file name, line, reason)."""


class ConfigError(ZatoError):
    """A broken configuration file or value; the CLI prints it as one line."""


# ################################################################################################ leases and locks

class LeaseLost(ZatoError):
    """A lease's token is no longer the current one, or its time ran out (by the ODB's clock): another
    holder may have taken over, so whatever the old holder was about to write must not be written."""


class LockTimeout(ServiceUnavailable):
    """``self.lock()`` could not acquire its cluster-wide lock within ``block`` seconds: another holder
    kept it (Zato 3.1 raised retools' LockTimeout here)."""
    code = 'lock_timeout'

    def __init__(self, name: str, block: float) -> None:
        self.name = name
        super().__init__(f'Lock `{name}` not acquired within {block:g} s: another holder has it')


class LockLost(ServiceUnavailable, LeaseLost):
    """A lock held by ``self.lock()`` ran out before the block ended (the holder stalled past its TTL,
    or the ODB could not be reached to renew it): another holder may have acted meanwhile."""
    code = 'lock_lost'

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'Lock `{name}` was lost before the work under it ended')


# ################################################################################################ remote ends

class ConnectorError(ZatoError, ConnectionError):
    """Base of what using an outgoing connection raises, whatever its kind; `kind` and `name` say which.

    `retry_after`, when known, is how many seconds until the connection tries its remote end again.
    """
    status = 503
    code = 'remote_unavailable'

    def __init__(self, message: str, *, kind: str = '', name: str = '', retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.retry_after = retry_after

    def __str__(self) -> str:
        return str(self.args[0])


class ConnectorUnavailable(ConnectorError):
    """The client is not built yet, or the remote end cannot be reached; the message says why."""


class ConnectorTimeout(ConnectorError, TimeoutError):
    """The remote end did not answer in time; it may still have acted on the request."""
    status, code = 504, 'remote_timeout'


class ConnectorAuthError(ConnectorError):
    """The remote end refused our credentials."""
    status, code = 502, 'remote_refused_credentials'


class ConnectorInactive(ConnectorError):
    """The connection's definition is not active."""
    code = 'connection_inactive'

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f'Outgoing {kind} connection `{name}` is not active', kind=kind, name=name)


# ################################################################################################ answers

# The code of an error answered without an exception of ours (a route not found, a framing error ...)
STATUS_CODES: dict[int, str] = {
    400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed',
    408: 'request_timeout', 409: 'conflict', 413: 'content_too_large', 414: 'uri_too_long',
    415: 'unsupported_media_type', 426: 'upgrade_required', 429: 'too_many_requests',
    431: 'header_fields_too_large', 500: 'internal_error', 502: 'bad_gateway', 503: 'service_unavailable',
    504: 'gateway_timeout', 505: 'http_version_not_supported',
}

CLIENT, REMOTE, OURS = 'client', 'remote', 'ours'

_REMOTE_DETAILS = {
    503: 'Service Unavailable: a remote end this service uses could not be reached',
    504: 'Gateway Timeout: a remote end this service uses did not answer in time',
    502: 'Bad Gateway: a remote end this service uses refused its credentials',
}


@dataclass(frozen=True, slots=True)
class Failure:
    """What an exception means to the caller: the status, the stable code, the details it may see,
    the headers that go with them, and whose failure it was (CLIENT, REMOTE or OURS)."""

    status: int
    code: str
    details: Any
    headers: dict[str, str] = field(default_factory=dict)
    cause: str = CLIENT
    body: dict[str, Any] | None = None
    reason: str = ''  # what the log says of a remote failure instead of str(e), when set


@dataclass(frozen=True, slots=True)
class _Unavailable:
    exc_type: type[BaseException]
    what: str
    label: str
    applies: Callable[[BaseException], bool] | None
    reason: Callable[[BaseException], str] | None
    retry_after: int


_unavailable: list[_Unavailable] = []


def register_unavailable(exc_type: type[BaseException], what: str, *, label: str = '',
                         applies: Callable[[BaseException], bool] | None = None,
                         reason: Callable[[BaseException], str] | None = None, retry_after: int = 5) -> None:
    """Teaches `failure_of` that `exc_type` (when `applies(e)` says so, if given) means the dependency
    `what` could not be used: 503 with the code `<what>_unavailable` and `Retry-After: retry_after`,
    logged as a remote failure (no traceback) with `reason(e)` (else str(e)). `label` names it to the
    caller (`the ODB`). Registering the same type and `what` again replaces the earlier entry."""
    entry = _Unavailable(exc_type, what, label or what, applies, reason, max(1, int(retry_after)))
    _unavailable[:] = [u for u in _unavailable if (u.exc_type, u.what) != (exc_type, what)]
    _unavailable.append(entry)


def unregister_unavailable(exc_type: type[BaseException], what: str) -> None:
    """Undoes `register_unavailable` (tests use it to see what the answer would be without it)."""
    _unavailable[:] = [u for u in _unavailable if (u.exc_type, u.what) != (exc_type, what)]


def _unavailable_of(e: BaseException) -> _Unavailable | None:
    for entry in _unavailable:
        if isinstance(e, entry.exc_type) and (entry.applies is None or entry.applies(e)):
            return entry
    return None


def failure_of(e: BaseException, cid: str) -> Failure:
    """The answer to an exception raised while serving a request, the same for every entry point."""
    if isinstance(e, ClientError):
        return Failure(e.status, e.code, e.details, e.headers, CLIENT, e.body)
    if isinstance(e, ConnectorError):
        headers = {'Retry-After': str(max(1, math.ceil(e.retry_after)))} if e.retry_after else {}
        details = f'{_REMOTE_DETAILS[e.status]}; the server log has the details under cid {cid}'
        return Failure(e.status, e.code, details, headers, REMOTE)
    if isinstance(e, ServiceNotFound):
        return Failure(404, 'not_found', str(e), {}, CLIENT)
    unavailable = _unavailable_of(e) if _unavailable else None
    if unavailable is not None:
        details = (f'Service Unavailable: {unavailable.label} could not be reached; the server log has the details '
                   f'under cid {cid}')
        reason = unavailable.reason(e) if unavailable.reason else str(e)
        return Failure(503, f'{unavailable.what}_unavailable', details,
                       {'Retry-After': str(unavailable.retry_after)}, REMOTE, reason=reason)
    return Failure(500, 'internal_error', f'Internal server error; the server log has the details under cid {cid}',
                   {}, OURS)


def log_failure(logger: logging.Logger, failure: Failure, e: BaseException, what: str, cid: str) -> None:
    """Logs a failure as what it was: our bug with its traceback, a remote end's failure naming the
    connection (no traceback: nothing of ours to fix), a missing service as a warning; a client's
    mistake is not logged."""
    if failure.cause == OURS:
        logger.error('%s failed, cid `%s`', what, cid, exc_info=e)
    elif failure.cause == REMOTE:
        logger.warning('%s failed, cid `%s`: %s (%s)', what, cid, failure.reason or e, type(e).__name__)
    elif isinstance(e, ServiceNotFound):
        logger.warning('%s: %s, cid `%s`', what, e, cid)

