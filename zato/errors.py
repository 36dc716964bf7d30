"""The error hierarchy. Each client-facing error carries its HTTP status and a stable code, so the
dispatcher maps exceptions to responses in one place and never leaks a traceback to a caller."""

from __future__ import annotations

from typing import Any


class ZatoError(Exception):
    """Base of every error Zato raises on purpose."""


class ClientError(ZatoError):
    """A caller's mistake: answered with ``status`` and the standard error body, never a traceback.

    Services may raise these (or the 3.1 names below) to choose the HTTP status themselves.
    """
    status = 400
    code = 'bad_request'

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


class InvocationTimeout(ZatoError):
    """``self.invoke(..., timeout=N)`` ran out of time."""


class DeploymentError(ZatoError):
    """A service module could not be deployed; ``details`` says why (file name, line, reason)."""


class ConfigError(ZatoError):
    """A broken configuration file or value; the CLI prints it as one line."""
