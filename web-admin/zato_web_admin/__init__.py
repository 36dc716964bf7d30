"""Zato's web-admin: a small WSGI application over the shared ODB and a server's admin API.

It imports only `zato.odb` (models and engine), the environment's settings and secrets, password
hashing, and the admin API client — never a server's internals."""
