"""The pages. Each module here declares ROUTES, a table of (method, pattern, view, public); a view is a
module-level function called as `view(app, request, **params)`, params being the values of its
pattern's {names}, so that it can be imported and called alone."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zato_web_admin.http import Request, Response

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

MODULES = ('account', 'audit', 'resources', 'home', 'channels', 'rate_limits', 'services')


def register_all(app: WebAdmin) -> None:
    for name in MODULES:
        module = importlib.import_module(f'zato_web_admin.views.{name}')
        if hasattr(module, 'ROUTES'):
            app.router.extend(module.ROUTES)
        else:
            app.router.extend((method, pattern, _legacy(handler), public)
                              for method, pattern, handler, public in module.routes(app))


def _legacy(handler: Callable[[Request], Response]) -> Callable[..., Response]:
    """A closure of a module still building its routes in a function, called with the view's shape."""
    def view(_app: WebAdmin, request: Request, **_params: Any) -> Response:
        return handler(request)
    return view

