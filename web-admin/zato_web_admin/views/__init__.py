"""The pages. Each module here declares ROUTES, a table of (method, pattern, view, public); a view is a
module-level function called as `view(app, request, **params)`, params being the values of its
pattern's {names}, so that it can be imported and called alone."""

from __future__ import annotations

import importlib

from zato_web_admin.http import Route

MODULES = ('account', 'audit', 'resources', 'home', 'channels', 'rate_limits', 'services', 'sso', 'caches',
           'scheduler', 'pubsub', 'pubsub_messages')


def all_routes() -> list[Route]:
    """Every module's ROUTES, in the order of MODULES (the first route a request matches wins)."""
    return [route for name in MODULES for route in importlib.import_module(f'zato_web_admin.views.{name}').ROUTES]
