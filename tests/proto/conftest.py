"""Fixtures that run the HTTP/1.1 tests against the pure-Python module and its compiled twin."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PURE = 'zato.proto.http1'
COMPILED = 'zato.cy.http1'


def compiled_or_skip_reason() -> tuple[ModuleType | None, str]:
    """The compiled twin, or None with the reason it cannot be tested.

    Both twins are imported by name here, not through zato.accel, so ZATO_PURE_PYTHON (which only
    steers zato.accel.load) does not change what these tests cover: a built twin is always checked.
    """
    try:
        return importlib.import_module(COMPILED), ''
    except ImportError:
        return None, f'{COMPILED} is not built (python setup.py build_ext --inplace)'


# Session scope, because Hypothesis refuses function-scoped fixtures (they are not reset between examples)
@pytest.fixture(scope='session', params=[PURE, COMPILED], ids=['pure', 'compiled'])
def http1(request: pytest.FixtureRequest) -> ModuleType:
    """One of the two twins; every test that takes it runs once per twin."""
    if request.param == COMPILED:
        module, reason = compiled_or_skip_reason()
        if module is None:
            pytest.skip(reason)
        return module
    return importlib.import_module(PURE)


@pytest.fixture(scope='session')
def twins() -> tuple[ModuleType, ModuleType]:
    """(pure, compiled), for tests that compare the two; skipped when the compiled one is not built."""
    module, reason = compiled_or_skip_reason()
    if module is None:
        pytest.skip(reason)
    return importlib.import_module(PURE), module
