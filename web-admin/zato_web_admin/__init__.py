"""Zato's web-admin: a small WSGI application over the shared ODB and a server's admin API.

It imports only `zato.odb` (models and engine), the environment's settings and secrets, password
hashing, the admin API client and the SSO core (`zato.sso`, for the SSO pages) — never a server's
internals."""
