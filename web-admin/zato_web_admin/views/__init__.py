"""The pages: each module here has `routes(app)`, a list of (method, pattern, handler, public)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

MODULES = ('account', 'audit', 'resources', 'home', 'channels', 'rate_limits', 'services')


def register_all(app: WebAdmin) -> None:
    for name in MODULES:
        module = importlib.import_module(f'zato_web_admin.views.{name}')
        app.router.extend(module.routes(app))
