"""Single Sign-On: users, sessions, TOTP two-factor and brute-force protection (docs/sso.md).

The core here is plain logic over the ODB with an injected clock: no gevent, no sockets, no server.
zato.server.sso serves it as 3.1's REST channels (/zato/sso/...) and as `self.sso` in services."""

from zato.sso.status import SSOError, status_code

__all__ = ['SSOError', 'status_code']
