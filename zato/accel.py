"""Chooses between a compiled Cython module and its pure-Python twin.

Every module in ext/ is built as ``zato.cy.<name>`` and has a twin somewhere under zato/ with the
same public API. Python is the specification; Cython is a measured speed-up. ``ZATO_PURE_PYTHON=1``
forces the twins, which is how the test suite runs both.
"""

from __future__ import annotations

import os
from importlib import import_module
from types import ModuleType

# compiled module name -> pure-Python twin; setup.py builds exactly these (a test checks it)
EXTENSIONS: dict[str, str] = {
    'zato.cy.http1': 'zato.proto.http1',
    'zato.cy.ratelimit': 'zato.security.ratelimit.counters',
    'zato.cy.wsmask': 'zato.proto.wsmask',
}


def pure_python_forced() -> bool:
    return os.environ.get('ZATO_PURE_PYTHON', '') not in ('', '0')


def load(twin: str) -> ModuleType:
    """Returns the compiled build of ``twin`` if there is one and it is allowed, else ``twin`` itself."""
    if not pure_python_forced():
        for compiled, python in EXTENSIONS.items():
            if python == twin:
                try:
                    return import_module(compiled)
                except ImportError:
                    break
    return import_module(twin)


def is_compiled(module: ModuleType) -> bool:
    return module.__name__.startswith('zato.cy.')
