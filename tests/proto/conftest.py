"""Fixtures that run the HTTP/1.1 tests against the pure-Python module and its compiled twin."""

from __future__ import annotations

from tests.twins import twin_fixtures

PURE = 'zato.proto.http1'
COMPILED = 'zato.cy.http1'

# `http1` is one of the twins (every test taking it runs once per twin); `twins` is the pair
http1, twins = twin_fixtures(PURE, COMPILED, 'http1')
