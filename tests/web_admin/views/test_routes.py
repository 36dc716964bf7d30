"""Every page's route calls its view in the one shape, view(app, request, **params): the names in the
pattern are the view's parameters, and a view needs nothing its pattern does not give it."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from zato_web_admin.resources import ByKind
from zato_web_admin.views import MODULES


@pytest.mark.parametrize('name', MODULES)
def test_every_routes_pattern_gives_its_view_exactly_the_parameters_it_takes(name):
    module = importlib.import_module(f'zato_web_admin.views.{name}')
    for method, pattern, view, public in module.ROUTES:
        assert method in ('GET', 'POST') and isinstance(public, bool)
        params = dict.fromkeys(re.findall(r'\{(\w+)\}', pattern), '1')
        if isinstance(view, ByKind):
            # The kind chooses the resource; the view is called with it and the other names
            assert 'kind' in params, pattern
            params.pop('kind')
            view, args = view.view, ('app', 'request', 'res')
        else:
            args = ('app', 'request')
        inspect.signature(view).bind(*args, **params)  # TypeError if a name is missing or unknown
