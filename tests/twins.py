"""Fixtures over a pure-Python module and its compiled (Cython) twin.

Both twins are imported by name, not through zato.accel, so ZATO_PURE_PYTHON (which only steers
zato.accel.load) does not change what these tests cover: a built twin is always checked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import pytest


def twin_fixtures(pure: str, compiled: str, one_name: str) -> tuple[Callable, Callable]:
    """Two session fixtures: `one_name`, run once per twin, and `twins`, the (pure, compiled) pair.

    Session scope, because Hypothesis refuses function-scoped fixtures (they are not reset
    between examples). The compiled twin is skipped, with the reason, only when it is not built.
    """

    def load_compiled() -> ModuleType:
        try:
            return importlib.import_module(compiled)
        except ImportError:
            pytest.skip(f'{compiled} is not built (python setup.py build_ext --inplace)')

    @pytest.fixture(scope='session', params=[pure, compiled], ids=['pure', 'compiled'], name=one_name)
    def one(request: pytest.FixtureRequest) -> ModuleType:
        return load_compiled() if request.param == compiled else importlib.import_module(pure)

    @pytest.fixture(scope='session', name='twins')
    def pair() -> tuple[ModuleType, ModuleType]:
        return importlib.import_module(pure), load_compiled()

    return one, pair
